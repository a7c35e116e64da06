--- crater.fuse against the built-in kernels (issue #19), crater side of `make bench`.
-- Optimizers written in Lua as one fused elementwise function (Optimizer:fused_update)
-- next to the built-in fused C kernel doing the same update, in the same run:
--   fuse.adam.tN       one step of Adam written in Lua, 10M float32, N threads (ms)
--   fuse.adam_ref.tN   the built-in crater.optim.Adam on the same parameter (ms)
--   fuse.adabelief.tN / fuse.adabelief_ref.tN   AdaBelief (examples/fuse_adabelief.lua)
--   fuse.call2         one call of the fused Adam update on 2 elements (us/op)
--   fuse.rosenbrock_10k / fuse.rosenbrock_ref_10k   10,000 Rosenbrock steps with each Adam (ms)
-- The two sides of a pair are timed alternately, repetition by repetition, so the machine's
-- state changes hit both; the `# ` lines give each pair's ratio (median of the per-repetition
-- ratios) against issue #19's target. The Lua Adam is written in the built-in kernel's order
-- of operations, so both give the same bits (checked here before timing).
-- With a build-v3/crater and valgrind (`make bench-instr` builds it: valgrind cannot decode
-- AVX-512), a `# ` line gives the instructions per element of the VM and of the built-in
-- kernel, counted by callgrind (examples/bench/instr.lua's fuse workloads).
-- Usage: crater examples/bench/fuse_step.lua [--n 10000000] [--reps 9] [--calls 200000]
local crater = rawget(_G, "crater") or require "crater"
local here = arg[0]:match("^(.-)[^/]*$")
local bench = dofile(here .. "common.lua")
local o = bench.args({n = 10000000, reps = 9, calls = 200000, steps = 10000})
local Optimizer = crater.optim.Optimizer

-- Adam in Lua (common.lua's bench.fuse_adam, in the built-in kernel's order)
local LuaAdam = Optimizer:extend("LuaAdam", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, maximize = false})
LuaAdam:fused_update(bench.fuse_adam, {state = {"exp_avg", "exp_avg_sq"}, scalars = function(group, state)
  local b1, b2, t = group.betas[1], group.betas[2], state.step
  return -(group.lr / (1 - b1 ^ t)), b1, b2, group.eps, math.sqrt(1 - b2 ^ t)
end})

local AdaBelief = assert(loadfile(here .. "../fuse_adabelief.lua"))("--define-only")

local function same_bits(a, b, what)
  local n = a:numel()
  if crater.eq(a, b):sum():item() ~= n then error("fuse_step: " .. what .. " differs from the built-in", 0) end
end

-- Times a and b alternately; returns their times (ms) and the per-repetition ratios a/b.
local function pair(a, b, reps, warmup)
  for _ = 1, warmup or 2 do a(); b() end
  local ta, tb, r = {}, {}, {}
  for i = 1, reps do
    collectgarbage("step")
    local t0 = bench.clock(); a(); local t1 = bench.clock(); b(); local t2 = bench.clock()
    ta[i], tb[i] = (t1 - t0) * 1e3, (t2 - t1) * 1e3
    r[i] = ta[i] / tb[i]
  end
  return ta, tb, r
end

local function note(what, r, target)
  local med, lo, hi = bench.stats(r)
  print(string.format("# fuse: %s %.2fx (min %.2f, max %.2f over %d repetitions; target <= %s)",
    what, med, lo, hi, #r, target))
  io.stdout:flush()
end

-- one step of each optimizer on the same 10M float32 parameter, gradient and start
local function race(name, cls, ref_cls, opts, threads, target)
  crater.set_num_threads(threads)
  crater.manual_seed(1)
  local p = crater.randn(o.n, {requires_grad = true})
  local q = crater.zeros(o.n, {requires_grad = true})
  crater.no_grad(function() q:copy_(p) end)
  local g = crater.randn(o.n) * 1e-3
  p.grad, q.grad = g, g
  local a, b = cls({p}, opts), ref_cls({q}, opts)
  a:step(); b:step()
  if cls == LuaAdam then same_bits(p, q, "the fused Lua Adam's step") end
  local ta, tb, r = pair(function() a:step() end, function() b:step() end, o.reps)
  bench.report(string.format("fuse.%s.t%d", name, threads), ta, "ms")
  bench.report(string.format("fuse.%s_ref.t%d", name, threads), tb, "ms")
  note(string.format("%s in Lua / built-in, 10M float32, %d thr:", name, threads), r, target)
  a, b, p, q, g = nil, nil, nil, nil, nil   -- luacheck: ignore
  collectgarbage("collect")
end

for _, threads in ipairs({1, 2}) do
  race("adam", LuaAdam, crater.optim.Adam, {lr = 1e-3}, threads, "1.3x")
  race("adabelief", AdaBelief, crater.optim.AdaBelief, {lr = 1e-3}, threads, "1.3x")
end

-- a 2-element fused update: the cost of one call (argument checks, the scalars, one block)
do
  crater.set_num_threads(1)
  local adam = crater.fuse(bench.fuse_adam, {writes = {"p", "m", "v"}})
  local p, g, m, v = crater.tensor({1, 2}), crater.tensor({0.1, -0.2}), crater.zeros(2), crater.zeros(2)
  local calls = o.calls
  local secs = bench.time(function()
    for _ = 1, calls do adam(p, g, m, v, -1e-3, 0.9, 0.999, 1e-8, 0.5) end
  end, o.reps, 1)
  bench.report("fuse.call2", bench.map(secs, function(s) return s / calls * 1e6 end), "us/op")
end

-- Rosenbrock, as rosenbrock.lua: forward, backward, step, zero_grad, 10,000 times
local function rosenbrock(cls) return function() return bench.rosenbrock(cls, o.steps) end end
do
  crater.set_num_threads(2)
  local lua_run, ref_run = rosenbrock(LuaAdam), rosenbrock(crater.optim.Adam)
  local x, y = lua_run(), ref_run()
  same_bits(x, y, "Rosenbrock's end point with the fused Lua Adam")
  local ta, tb, r = pair(lua_run, ref_run, math.max(5, o.reps // 2), 0)
  local k = o.steps // 1000
  bench.report("fuse.rosenbrock_" .. k .. "k", ta, "ms")
  bench.report("fuse.rosenbrock_ref_" .. k .. "k", tb, "ms")
  note(string.format("Rosenbrock %dk steps, Lua Adam / built-in:", k), r, "1.2x")
end

-- instructions per element, when a valgrind-decodable build is there
local v3 = here .. "../../build-v3/crater"
local vg = io.popen("command -v valgrind 2>/dev/null"):read("l")
local f = io.open(v3)
if f and vg then
  f:close()
  local p = io.popen(string.format("%s %sinstr.lua --fuse 2>&1", v3, here))
  for line in p:lines() do
    if line:match("^#") or line:match("^BENCH") then print(line) end
  end
  p:close()
else
  if f then f:close() end
  print("# fuse: instructions per element not counted: needs valgrind and build-v3/crater (make bench-instr)")
end
