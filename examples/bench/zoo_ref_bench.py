#!/usr/bin/python3
"""The reference implementations of the optimizer zoo, timed on the step that
examples/bench/zoo_step.lua times in crater: one step on a 10M-element float32
parameter, median of repeats after warm-up, 1 and 2 threads.  The references load
from the git mirrors exactly as the fixture generators load them (spec/fixtures/
gen_zoo_a.py, gen_zoo_b.py).  Prints lines "name threads ms", or with --bench the
BENCH lines of examples/bench/run.lua ("BENCH optim.<name>.t<threads> med min max ms").
Run: /usr/bin/python3 examples/bench/zoo_ref_bench.py [n] [repeats] [--bench]"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "spec", "fixtures"))
import gen_zoo_a  # noqa: E402  (registers the part-A references and their shims)
import gen_zoo_b as zb  # noqa: E402
import torch  # noqa: E402

BENCH = "--bench" in sys.argv
ARGS = [a for a in sys.argv[1:] if a != "--bench"]
N = int(ARGS[0]) if len(ARGS) > 0 else 10_000_000
REPEATS = int(ARGS[1]) if len(ARGS) > 1 else 7
MAKERS = {
    "Lion": lambda p: gen_zoo_a.make("Lion", [p], {"lr": 1e-4}),
    "LAMB": lambda p: gen_zoo_a.make("LAMB", [p], {}),
    "AdaBelief": lambda p: gen_zoo_a.make("AdaBelief", [p], {}),
    "Adan": lambda p: gen_zoo_a.make("Adan", [p], {}),
    "AdamWScheduleFree": lambda p: zb.reference("sf_adamw").AdamWScheduleFree([p], foreach=False),
    "Prodigy": lambda p: zb.reference("prodigy").Prodigy([p]),
    "Adafactor": lambda p: gen_zoo_a.make("Adafactor", [p], {}),
}
MATRIX = {"Adafactor"}   # on a square matrix of about N elements, as zoo_step.lua


def main():
    torch.manual_seed(0)
    saved = sys.stdout
    for nt in (1, 2):
        torch.set_num_threads(nt)
        for name, make in MAKERS.items():
            side = int(round(N ** 0.5))
            shape = (side, side) if name in MATRIX else (N,)
            p = torch.randn(*shape, requires_grad=True)
            p.grad = torch.randn(*shape) * 1e-3
            sys.stdout = open(os.devnull, "w")   # some references print their settings
            try:
                opt = make(p)
            finally:
                sys.stdout.close()
                sys.stdout = saved
            if hasattr(opt, "train"):
                opt.train()
            with torch.no_grad():
                for _ in range(2):
                    opt.step()
                times = []
                for _ in range(REPEATS):
                    t0 = time.perf_counter()
                    opt.step()
                    times.append((time.perf_counter() - t0) * 1e3)
            if BENCH:
                print("BENCH optim.%s.t%d %.6g %.6g %.6g ms" % (name.lower(), nt, statistics.median(times),
                                                                min(times), max(times)), flush=True)
            else:
                print("%s %d %.3f" % (name, nt, statistics.median(times)), flush=True)
            del opt, p


if __name__ == "__main__":
    main()
