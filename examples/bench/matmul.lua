--- float32 square matmul throughput, crater side of `make bench` (issue 2).
-- Prints `BENCH matmul.<n>.t<threads> <median> <min> <max> GFLOP/s` (2 n^3 flops per product)
-- for n = 256, 1024, 2048 on 1 and 2 threads; run.lua sets a direct OpenBLAS call
-- (blas_ref.c) beside each row.
-- Usage: crater examples/bench/matmul.lua [--reps 5]
local crater = rawget(_G, "crater") or require "crater"
local bench = dofile(arg[0]:match("^(.-)[^/]*$") .. "common.lua")
local o = bench.args({ reps = 5 })

crater.manual_seed(0)
for _, nt in ipairs({ 1, 2 }) do
  crater.set_num_threads(nt)
  for _, n in ipairs({ 256, 1024, 2048 }) do
    local a, b = crater.randn(n, n), crater.randn(n, n)
    local inner = ({ [256] = 64, [1024] = 2, [2048] = 1 })[n]   -- each repetition spans ~0.1 s
    local secs = bench.time(function()
      for _ = 1, inner do local _ = a:matmul(b) end
    end, o.reps)
    bench.report(string.format("matmul.%d.t%d", n, nt),
      bench.map(secs, function(s) return 2 * n ^ 3 * inner / s / 1e9 end), "GFLOP/s")
  end
end
