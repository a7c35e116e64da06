-- The parity problems of spec/fixtures/gen_optim.py, written with crater's autograd.
-- problems.make(name, dtype) returns the parameter tensors and a loss function of them.
local crater = require "crater"
local P = dofile("spec/fixtures/optim_problems.lua")

local M = {data = P}

function M.make(name, dtype)
  local d = P[name]
  local params = {}
  for i, init in ipairs(d.init) do
    params[i] = crater.tensor(init, {dtype = dtype, requires_grad = true})
  end
  local T = function(x) return crater.tensor(x, {dtype = dtype}) end
  local f
  if name == "rosenbrock" then
    f = function(ps)
      local a, b = ps[1][1], ps[1][2]
      return (1 - a) ^ 2 + 100 * (b - a * a) ^ 2
    end
  elseif name == "lstsq" then
    local A, b = T(d.A), T(d.b)
    f = function(ps) return ((A:matmul(ps[1]) - b) ^ 2):mean() end
  elseif name == "two_groups" then
    local c, t = T(d.c), T(d.t)
    f = function(ps) return (c * (ps[1] - t) ^ 2):sum() + ((ps[2] * ps[2] - 1) ^ 2):sum() end
  elseif name == "zero_coords" then
    local mask, t = T(d.mask), T(d.t)
    f = function(ps) return (mask * (ps[1] - t) ^ 2):sum() end
  else
    error("unknown problem " .. name)
  end
  return params, f
end

-- Flat Lua list of a tensor's values.
function M.values(t)
  local out = {}
  local flat = t:reshape(-1)
  for i = 1, flat:numel() do out[i] = flat:get(i) end
  return out
end

-- Norm-wise relative error: max|got - want| / max|want| (as gen_optim.py measures it).
function M.max_rel(got, want)
  if #got ~= #want then return math.huge end
  local scale, worst = 1e-300, 0
  for i = 1, #want do scale = math.max(scale, math.abs(want[i])) end
  for i = 1, #want do
    local e = math.abs(got[i] - want[i])
    if e ~= e then return math.huge end
    worst = math.max(worst, e)
  end
  return worst / scale
end

return M
