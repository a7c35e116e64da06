"""PyTorch side of `make bench`: the same workloads as examples/bench/*.lua, same row names.

Run by examples/bench/run.lua as
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 /usr/bin/python3 torch_bench.py <section> [--threads N]
one process per section, so each peak RSS (rss.<section>, from resource.getrusage) is that workload's.
Intra-op threads are set with torch.set_num_threads per row; OpenBLAS stays on 1 thread (its pool and
OpenMP's compete for the 2 cores otherwise), except for the matmul section, which run.lua runs once per
thread count with OPENBLAS_NUM_THREADS equal to it (nothing else competes during a bare matmul).
Prints lines `BENCH <name> <median> <min> <max> <unit>`: the median, min and max of several timed
repetitions after a warm-up.
"""
import gzip
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

clock = time.perf_counter


def report(name, values, unit):
    print(f"BENCH {name} {statistics.median(values):.6g} {min(values):.6g} {max(values):.6g} {unit}",
          flush=True)


def timed(fn, reps=5, warmup=1):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def peak_rss(section):
    mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is in KiB on Linux
    report("rss." + section, [mib], "MiB")


def ops(args):
    torch.set_num_threads(2)
    nops = 200000
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    ag = torch.tensor([1.0, 2.0], requires_grad=True)
    for name, x in (("op.add2", a), ("op.add2_grad", ag)):
        def run(x=x):
            for _ in range(nops):
                _ = x + b
        report(name, [s / nops * 1e6 for s in timed(run, 7)], "us/op")
    n, inner = 10_000_000, 5
    x, y = torch.rand(n), torch.rand(n)
    for nt in (1, 2):
        torch.set_num_threads(nt)
        cases = (("bw.copy_", 8, lambda: [y.copy_(x) for _ in range(inner)]),
                 ("bw.add_", 12, lambda: [y.add_(x) for _ in range(inner)]),
                 ("bw.add", 12, lambda: [x + y for _ in range(inner)]))
        for name, nbytes, fn in cases:
            report(f"{name}.t{nt}", [nbytes * n * inner / s / 1e9 for s in timed(fn, 7)], "GB/s")
    peak_rss("ops")


def matmul(args):
    nt = args.threads
    torch.set_num_threads(nt)
    torch.manual_seed(0)
    for n, inner in ((256, 64), (1024, 2), (2048, 1)):
        a, b = torch.randn(n, n), torch.randn(n, n)
        secs = timed(lambda: [a @ b for _ in range(inner)], 5)
        report(f"matmul.{n}.t{nt}", [2 * n ** 3 * inner / s / 1e9 for s in secs], "GFLOP/s")
    peak_rss("matmul")


def rosenbrock(args):
    torch.set_num_threads(2)

    def run(steps=10000):
        x = torch.tensor([-1.5, 2.0], requires_grad=True)
        opt = torch.optim.Adam([x], lr=1e-3)
        for _ in range(steps):
            f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
            f.backward()
            opt.step()
            opt.zero_grad()
        return x

    run(1000)                                   # warm-up
    report("rosenbrock.adam_10k", [s * 1e3 for s in timed(run, 5, 0)], "ms")
    x = run()
    print(f"# rosenbrock: x after 10000 steps = ({x[0].item():.6f}, {x[1].item():.6f})")
    peak_rss("rosenbrock")


def optim(args):
    n = 10_000_000
    makers = (("sgd_momentum", lambda p, fe: torch.optim.SGD([p], lr=1e-3, momentum=0.9, foreach=fe)),
              ("adam", lambda p, fe: torch.optim.Adam([p], lr=1e-3, foreach=fe)),
              ("adamw", lambda p, fe: torch.optim.AdamW([p], lr=1e-3, foreach=fe)))
    torch.manual_seed(0)
    for nt in (1, 2):
        torch.set_num_threads(nt)
        for name, make in makers:
            for fe in (False, True):
                p = torch.randn(n, requires_grad=True)
                p.grad = torch.randn(n) * 1e-3
                opt = make(p, fe)
                secs = timed(opt.step, 10, 3)
                suffix = ".foreach" if fe else ""
                report(f"optim.{name}.t{nt}{suffix}", [s * 1e3 for s in secs], "ms")
                del opt, p
    peak_rss("optim")


def fashion_mnist_train(root="/usr/share/datasets/fashion-mnist"):
    import numpy as np
    with gzip.open(os.path.join(root, "train-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(os.path.join(root, "train-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.from_numpy(x.astype(np.float32) / 255), torch.from_numpy(y.astype(np.int64))


def train(args, kind):
    """Samples/s of Adam(lr=1e-3) training, batch 128, shuffled, the whole training set in memory;
    the same recipe as train.lua: a fresh model per thread count, a warm-up of 50 (MLP) or 5 (CNN)
    batches, then 5 repetitions of 100 (MLP) or 10 (CNN) batches."""
    nn = torch.nn
    torch.set_flush_denormal(True)
    x, y = fashion_mnist_train()
    if kind == "cnn":
        x = x.view(-1, 1, 28, 28)
    per, warm, bs = (100, 50, 128) if kind == "mlp" else (10, 5, 128)
    for nt in (1, 2):
        torch.set_num_threads(nt)
        torch.manual_seed(0)
        if kind == "mlp":
            model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                                  nn.Linear(256, 10))
        else:
            model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        perm = torch.randperm(x.shape[0])
        pos = [0]

        def batches(k):
            for _ in range(k):
                if pos[0] + bs > x.shape[0]:
                    pos[0] = 0
                idx = perm[pos[0]:pos[0] + bs]
                pos[0] += bs
                xb, yb = x[idx], y[idx]
                opt.zero_grad()
                loss_fn(model(xb), yb).backward()
                opt.step()

        batches(warm)
        secs = timed(lambda: batches(per), 5, 0)
        report(f"train.{kind}.t{nt}", [per * bs / s for s in secs], "samples/s")
    peak_rss(kind)


def startup(args):
    """Wall time of `python3 -c 'import torch'` through /bin/sh, minus that of `sh -c true`."""
    def sh(cmd, reps):
        out = []
        for _ in range(reps):
            t0 = clock()
            subprocess.run(cmd, shell=True, check=True)
            out.append(clock() - t0)
        return out
    sh("true", 2)
    base = statistics.median(sh("true", 10))
    cmd = f"{sys.executable} -c 'import torch'"
    sh(cmd, 1)
    report("startup", [(s - base) * 1e3 for s in sh(cmd, 5)], "ms")
    out = subprocess.run([sys.executable, "-c", "import torch, resource; "
                          "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"],
                         check=True, capture_output=True, text=True).stdout
    report("rss.idle", [float(out)], "MiB")


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("section", choices=["ops", "matmul", "rosenbrock", "optim", "mlp", "cnn", "startup"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    {"ops": ops, "matmul": matmul, "rosenbrock": rosenbrock, "optim": optim,
     "mlp": lambda a: train(a, "mlp"), "cnn": lambda a: train(a, "cnn"),
     "startup": startup}[args.section](args)


if __name__ == "__main__":
    main()
