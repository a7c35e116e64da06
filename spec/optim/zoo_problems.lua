-- The problems of the zoo's reference fixtures (spec/fixtures/gen_zoo_b.py's PROBLEMS, kept
-- in zoo_b.lua) and the comparison of a step with its reference: shared by zoo_b_spec and
-- wrappers_spec.  dofile("spec/optim/zoo_problems.lua") returns {make, values, max_rel, copy}.
local crater = require "crater"
local P = dofile("spec/fixtures/zoo_b.lua").problems
local M = {}

local function T(name) return crater.tensor(P[name].values, {dtype = "float64"}):reshape(P[name].shape) end

--- The parameters of a problem (float64 leaves) and its loss function.
function M.make(problem)
  local d, ps = P[problem], {}
  for i, init in ipairs(d.init) do
    ps[i] = crater.tensor(init, {dtype = "float64"}):reshape(d.shapes[i])
    ps[i].requires_grad = true
  end
  local A, b, X, Y, X2, Y2, Y3 = T"A", T"b", T"X", T"Y", T"X2", T"Y2", T"Y3"
  local f
  if problem == "vec" then f = function() return ((A:matmul(ps[1]) - b) ^ 2):mean() end
  elseif problem == "mat" then f = function() return ((X:matmul(ps[1]) - Y) ^ 2):mean() end
  elseif problem == "tall" then f = function() return ((X2:matmul(ps[1]) - Y2) ^ 2):mean() end
  elseif problem == "two_groups" then f = function() return ((X:matmul(ps[1]):matmul(ps[2]) - Y3) ^ 2):mean() end
  else f = function() return ((X:matmul(ps[1]) + ps[2] - Y) ^ 2):mean() + ((ps[2] * ps[2] - 0.5) ^ 2):sum() end end
  return ps, f
end

-- a flat Lua list of a tensor, and the error of the parity specs (problems.lua's)
local classic = dofile("spec/optim/problems.lua")
M.values, M.max_rel = classic.values, classic.max_rel

--- A deep copy of a plain table.
function M.copy(t) local o = {} for k, v in pairs(t) do o[k] = type(v) == "table" and M.copy(v) or v end return o end

return M
