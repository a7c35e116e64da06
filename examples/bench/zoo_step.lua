-- One step of the optimizer zoo's fused kernels on a 10M-element float32 parameter (as
-- optim_step.lua does for SGD and Adam), in GB/s next to the copy bandwidth measured in the
-- same run, and the same step of each reference implementation under PyTorch when
-- /usr/bin/python3 has torch and the references' mirrors are there
-- (examples/bench/zoo_ref_bench.py). Median of repeats after warm-up, 1 and 2 threads.
-- Bytes per element are the arrays each kernel reads and writes (4 bytes each): Lion 20,
-- LAMB 40 (a norms pass, then the step), AdaBelief 28, AdamWScheduleFree 28, Adan 44,
-- Prodigy 44 (statistics pass, then the step), Adafactor 28 (three passes over g, two over
-- p: its parameter is a 3162 x 3162 matrix, about 10M, so that its moment is factored).
-- Each row is also printed as a BENCH line (`optim.<name>.t<threads>`, ms), and the Muon
-- figures as `muon.ns.t2` with its reference `ref.muon.matmul.t2` (GFLOP/s), so that
-- run.lua's section `zoo` puts them in `make bench`'s table next to the machine's memcpy.
-- Run: build/crater examples/bench/zoo_step.lua [n] [repeats]
local crater = rawget(_G, "crater") or require "crater"
local N = tonumber(arg and arg[1]) or 10000000
local REPEATS = tonumber(arg and arg[2]) or 7
local bench = dofile(arg[0]:match("^(.-)[^/]*$") .. "common.lua")

local function times_ms(fn)   -- two warm-up steps: first-step state, page faults
  return bench.map(bench.time(fn, REPEATS, 2), function(t) return t * 1e3 end)
end
local function median_ms(fn) return (bench.stats(times_ms(fn))) end

local ZOO = {{"Lion", 20, {lr = 1e-4}}, {"LAMB", 40, {}}, {"AdaBelief", 28, {}},
  {"Adan", 44, {}}, {"AdamWScheduleFree", 28, {}}, {"Prodigy", 44, {}}, {"Adafactor", 28, {}, true}}

-- the references' medians, "name threads" -> ms (empty when PyTorch or a mirror is missing)
local ref = {}
local here = (arg and arg[0] or ""):match("^(.*)/") or "examples/bench"
local py = io.popen("/usr/bin/python3 " .. here .. "/zoo_ref_bench.py " .. N .. " " .. REPEATS .. " 2>/dev/null")
local ref_out = py and py:read("a") or ""
if py then py:close() end
for name, t, ms in ref_out:gmatch("(%S+) (%d) (%S+)") do ref[name .. " " .. t] = tonumber(ms) end

print(string.format("one step on a %d-element float32 parameter, median of %d", N, REPEATS))
print(string.format("%-20s %7s %9s %8s %9s %11s %8s", "", "threads", "ms", "GB/s", "copy GB/s", "torch ms", "speedup"))
for _, threads in ipairs({1, 2}) do
  crater.set_num_threads(threads)
  local x, y = crater.randn(N), crater.zeros(N)
  local copy = median_ms(function() y:copy_(x) end)
  for _, z in ipairs(ZOO) do
    local side = math.floor(math.sqrt(N) + 0.5)
    local shape = z[4] and {side, side} or {N}
    local p = crater.randn(shape, {requires_grad = true})
    p.grad = crater.randn(shape) * 1e-3
    local opt = crater.optim[z[1]]({p}, z[3])
    if opt.train then opt:train() end
    local t = times_ms(function() opt:step() end)
    local ms = bench.stats(t)
    bench.report(string.format("optim.%s.t%d", z[1]:lower(), threads), t, "ms")
    local r = ref[z[1] .. " " .. threads]
    print(string.format("%-20s %7d %9.2f %8.1f %9.1f %11s %8s", z[1], threads, ms, z[2] * p:numel() / ms / 1e6,
      8 * N / copy / 1e6, r and string.format("%.2f", r) or "-", r and string.format("%.1fx", r / ms) or "-"))
  end
end

-- Muon: its Newton-Schulz iteration is 15 matrix products per step (3 per iteration, 5
-- iterations), 30 n^3 flops on an n x n matrix; next to one plain n x n matmul, both through
-- OpenBLAS, in GFLOP/s.
local n = 1024
crater.set_num_threads(2)
local A, Bm = crater.randn(n, n), crater.randn(n, n)
local mm_t = times_ms(function() A:matmul(Bm) end)
local mm = bench.stats(mm_t)
local W = crater.randn({n, n}, {requires_grad = true})
W.grad = crater.randn(n, n)
local muon = crater.optim.Muon({W})
local muon_t = times_ms(function() muon:step() end)
local ms = bench.stats(muon_t)
bench.report("muon.ns.t2", bench.map(muon_t, function(t) return 30 * n ^ 3 / t / 1e6 end), "GFLOP/s")
bench.report("ref.muon.matmul.t2", bench.map(mm_t, function(t) return 2 * n ^ 3 / t / 1e6 end), "GFLOP/s")
print(string.format("\nMuon step on a %dx%d matrix: %.1f ms, %.1f GFLOP/s in its 15 products; one matmul %.2f ms, "
  .. "%.1f GFLOP/s: %.0f%% of it", n, n, ms, 30 * n ^ 3 / ms / 1e6, mm, 2 * n ^ 3 / mm / 1e6,
  100 * (30 * n ^ 3 / ms) / (2 * n ^ 3 / mm)))
