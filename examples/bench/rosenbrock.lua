--- 10,000 Adam steps on the 2-D Rosenbrock function, crater side of `make bench` (issue 3).
-- Each step records the graph of f(x) = (1 - x1)^2 + 100 (x2 - x1^2)^2, runs backward, steps
-- Adam(lr=1e-3) and zeroes the gradient, from x = (-1.5, 2) as torch_bench.py does.
-- Prints `BENCH rosenbrock.adam_10k <median> <min> <max> ms` (whole 10,000-step runs).
-- Usage: crater examples/bench/rosenbrock.lua [--reps 5] [--steps 10000]
local crater = rawget(_G, "crater") or require "crater"
local bench = dofile(arg[0]:match("^(.-)[^/]*$") .. "common.lua")
local o = bench.args({ reps = 5, steps = 10000 })

local function run(steps) return bench.rosenbrock(crater.optim.Adam, steps) end

crater.set_num_threads(2)
run(1000)                                   -- warm-up
local secs = bench.time(function() run(o.steps) end, o.reps, 0)
bench.report("rosenbrock.adam_" .. o.steps // 1000 .. "k", bench.map(secs, function(s) return s * 1e3 end), "ms")
local x = run(o.steps)
print(string.format("# rosenbrock: x after %d steps = (%.6f, %.6f)", o.steps, x:get(1), x:get(2)))
