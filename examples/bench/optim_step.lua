-- One optimizer step on a 10M-element float32 parameter: the fused C kernels (SGD with
-- momentum, Adam, AdamW) and Adam written in Lua with in-place tensor methods, next to
-- the copy bandwidth (y:copy_(x), 10M floats) measured in the same run. Median of
-- repeats after warm-up, with 1 and 2 threads. Bytes per element: SGD-momentum 20
-- (read p g buf, write p buf), Adam 28 (read p g m v, write p m v), copy 8.
-- Run: build/crater examples/bench/optim_step.lua [n] [repeats]
local crater = rawget(_G, "crater") or require "crater"
local N = tonumber(arg and arg[1]) or 10000000
local REPEATS = tonumber(arg and arg[2]) or 15
local clock = crater.clock or require("crater.core").clock

local function median_ms(fn)
  for _ = 1, 3 do fn() end   -- warm-up: first-step state allocation, page faults
  local t = {}
  for i = 1, REPEATS do
    local t0 = clock()
    fn()
    t[i] = (clock() - t0) * 1e3
  end
  table.sort(t)
  return t[(REPEATS + 1) // 2]
end

local function param()
  local p = crater.randn(N, {requires_grad = true})
  p.grad = crater.randn(N) * 1e-3
  return p
end

-- Adam in Lua: PyTorch's single-tensor formulas with in-place methods, one scratch buffer.
local function lua_adam(p, state, lr, b1, b2, eps)
  local g = p.grad
  if state.step == nil then
    state.step, state.m, state.v, state.d = 0, crater.zeros_like(p), crater.zeros_like(p), crater.zeros_like(p)
  end
  state.step = state.step + 1
  local t, m, v, d = state.step, state.m, state.v, state.d
  crater.no_grad(function()
    m:mul_(b1):add_(g, 1 - b1)
    v:mul_(b2):addcmul_(g, g, 1 - b2)
    d:copy_(v):sqrt_():mul_(1 / math.sqrt(1 - b2 ^ t)):add_(eps)
    p:addcdiv_(m, d, -lr / (1 - b1 ^ t))
  end)
end

local rows = {}
for _, threads in ipairs({1, 2}) do
  crater.set_num_threads(threads)
  local x, y = crater.randn(N), crater.zeros(N)
  local copy = median_ms(function() y:copy_(x) end)
  local copy_gbs = 8 * N / copy / 1e6
  local function row(name, ms, bytes)
    rows[#rows + 1] = string.format("%-22s %7d %9.2f %8.1f %9.2f", name, threads, ms,
      bytes * N / ms / 1e6, copy_gbs)
  end
  row("copy_ (x -> y)", copy, 8)
  x, y = nil, nil
  -- one row at a time: each row's parameter, gradient and state are collected before the
  -- next row makes its own (they are 40 MB each), so the process holds one row's memory
  local function measure(name, bytes, make)
    local p = param()
    local step = make(p)
    row(name, median_ms(step), bytes)
    p, step = nil, nil   -- luacheck: ignore
    collectgarbage("collect")
  end
  measure("SGD momentum (fused)", 20, function(p)
    local sgd = crater.optim.SGD({p}, {lr = 1e-3, momentum = 0.9})
    return function() sgd:step() end
  end)
  measure("Adam (fused)", 28, function(p)
    local adam = crater.optim.Adam({p}, {lr = 1e-3})
    return function() adam:step() end
  end)
  measure("AdamW (fused)", 28, function(p)
    local adamw = crater.optim.AdamW({p}, {lr = 1e-3})
    return function() adamw:step() end
  end)
  measure("Adam (Lua, in-place)", 28, function(p)
    local st = {}
    return function() lua_adam(p, st, 1e-3, 0.9, 0.999, 1e-8) end
  end)
end

print(string.format("one step on a %d-element float32 parameter, median of %d", N, REPEATS))
print(string.format("%-22s %7s %9s %8s %9s", "", "threads", "ms", "GB/s", "copy GB/s"))
for _, r in ipairs(rows) do print(r) end
