--- Per-op overhead and memory bandwidth, crater side of `make bench` (issues 2 and 3).
-- Prints `BENCH` lines (see run.lua):
--   op.add2        2-element float32 `a + b`, a new tensor each time, µs per op (GC included)
--   op.add2_grad   the same with `a` requiring grad, so every add records a graph node
--   bw.copy_.tN    `y:copy_(x)` on 10M float32, GB/s counting 8 bytes per element, N threads
--   bw.add_.tN     `y:add_(x)` in place, GB/s counting 12 bytes per element (read 2, write 1)
--   bw.add.tN      `z = x + y` into a new tensor, 12 bytes per element (allocation included)
-- Usage: crater examples/bench/ops.lua [--reps 7] [--n 10000000]
local crater = rawget(_G, "crater") or require "crater"
local bench = dofile(arg[0]:match("^(.-)[^/]*$") .. "common.lua")
local o = bench.args({ reps = 7, n = 10000000, ops = 200000 })

-- per-op overhead: `ops` adds per repetition, result dropped so the GC reclaims it
local a, b = crater.tensor({ 1, 2 }), crater.tensor({ 3, 4 })
local function adds(x)
  return function()
    for _ = 1, o.ops do local _ = x + b end
  end
end
local ag = crater.tensor({ 1, 2 }, { requires_grad = true })
for _, case in ipairs({ { "op.add2", a }, { "op.add2_grad", ag } }) do
  local secs = bench.time(adds(case[2]), o.reps)
  bench.report(case[1], bench.map(secs, function(s) return s / o.ops * 1e6 end), "us/op")
end

-- bandwidth on arrays of n float32 (40 MB each for the default n: far beyond the L3 cache)
local n = o.n
local x, y = crater.rand(n), crater.rand(n)
local inner = 5      -- calls per repetition, so each timing spans tens of milliseconds
for _, nt in ipairs({ 1, 2 }) do
  crater.set_num_threads(nt)
  local cases = {
    { "bw.copy_", 8, function() for _ = 1, inner do y:copy_(x) end end },
    { "bw.add_", 12, function() for _ = 1, inner do y:add_(x) end end },
    { "bw.add", 12, function() for _ = 1, inner do local _ = x + y end end },
  }
  for _, c in ipairs(cases) do
    local secs = bench.time(c[3], o.reps)
    bench.report(c[1] .. ".t" .. nt,
      bench.map(secs, function(s) return c[2] * n * inner / s / 1e9 end), "GB/s")
  end
end
