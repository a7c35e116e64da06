--- Nonlinear conjugate gradients, Torch7 optim's `cg.lua` (Rasmussen's minimize.m):
-- Polak-Ribiere directions, s = -g + ((g'g - g'g_old) / g_old'g_old) s, with a line search
-- of cubic and quadratic interpolation and extrapolation under the Wolfe-Powell
-- conditions f(x + z s) <= f(x) + rho z g's and |g(x + z s)'s| <= -sig g's.  One
-- `step(closure)` runs up to maxIter line searches and maxEval closure calls from the
-- current parameters, as one call of optim.cg does; it needs a closure that clears the
-- gradients, computes the loss, calls backward and returns the loss.  It returns the
-- final loss, the list of losses (the first before any step, then one per accepted line
-- search) and the number of evaluations.  Option names and defaults are Torch7's.
-- On a quadratic with n unknowns it reaches the exact minimum in n line searches.
-- https://github.com/torch/optim/blob/master/cg.lua
-- @tparam[opt=0.01] number rho the sufficient-decrease constant (Wolfe-Powell)
-- @tparam[opt=0.5] number sig the curvature constant (Wolfe-Powell)
-- @tparam[opt=0.1] number int do not re-evaluate within int of the current bracket
-- @tparam[opt=3.0] number ext extrapolate at most ext times the current step
-- @tparam[opt=20] integer maxIter line searches per step
-- @tparam[opt=100] number ratio the largest allowed slope ratio
-- @tparam[opt=maxIter*1.25] number maxEval closure calls per step
-- @usage local opt = crater.optim.CG({x}, {maxIter = 10})
-- local f = opt:step(function() opt:zero_grad(); local l = loss(x); l:backward(); return l end)
local Optimizer = require "crater.optim.optimizer"
local flat = require "crater.optim.flat"

local CG = Optimizer:extend("CG", {rho = 0.01, sig = 0.5, int = 0.1, ext = 3.0, maxIter = 20, ratio = 100,
  maxEval = false},
  {rho = {"number", 0}, sig = {"number", 0}, int = {"number", 0, 1}, ext = {"number", 1},
   maxIter = {"integer", 1}, ratio = {"number", 0}, maxEval = {"number", 1, false_ok = true}})
CG.state_keys = {"func_evals", "n_iter"}
CG.state_rules = {func_evals = "count", n_iter = "count"}

function CG:init()
  flat.check(self)
end

function CG:add_param_group()
  error("CG: doesn't support per-parameter options (parameter groups)", 2)
end

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

-- optim.cg's body, line for line; x is the parameter list, the other vectors are flat.
local function run(self, closure)
  local g = self.param_groups[1]
  local params = g.params
  local rho, sig, int, ext, ratio = g.rho, g.sig, g.int, g.ext, g.ratio
  local maxIter = g.maxIter
  local maxEval = g.maxEval or maxIter * 1.25
  local red = 1
  local buf = self.buffers
  if buf == nil or buf.s:numel() ~= flat.numel(params) then
    buf = {s = flat.zeros(params), x0 = flat.zeros(params), df0 = flat.zeros(params),
           df1 = flat.zeros(params), df2 = flat.zeros(params)}
    self.buffers = buf
  end
  local s, x0, df0, df1, df2 = buf.s, buf.x0, buf.df0, buf.df1, buf.df2
  local function opfunc(df)
    local f = flat.evaluate(closure)
    flat.grads(params, df)
    return f
  end
  local function dot(a, b) return a:dot(b):item() end

  local i, ls_failed, fx = 0, 0, {}
  -- moves x by z along s and evaluates there: f and the slope g's
  local function probe(z)
    flat.add(params, z, s)
    local f = opfunc(df2)
    i = i + 1
    return f, dot(df2, s)
  end
  local z2, z3, d2, d3, f2, f3, f0
  local f1 = opfunc(df1)
  fx[#fx + 1] = f1
  i = i + 1
  s:copy_(df1):mul_(-1)
  local d1 = -dot(s, s)
  local z1 = red / (1 - d1)
  while i < math.abs(maxEval) do
    flat.get(params, x0)
    f0 = f1
    df0:copy_(df1)
    f2, d2 = probe(z1)
    f3, d3, z3 = f1, d1, -z1
    local m = math.min(maxIter, maxEval - i)
    local success, limit = 0, -1
    while true do
      while (f2 > f1 + z1 * rho * d1 or d2 > -sig * d1) and m > 0 do
        limit = z1
        if f2 > f1 then
          z2 = z3 - (0.5 * d3 * z3 * z3) / (d3 * z3 + f2 - f3)
        else
          local A = 6 * (f2 - f3) / z3 + 3 * (d2 + d3)
          local B = 3 * (f3 - f2) - z3 * (d3 + 2 * d2)
          z2 = (math.sqrt(B * B - A * d2 * z3 * z3) - B) / A
        end
        if not finite(z2) then z2 = z3 / 2 end
        z2 = math.max(math.min(z2, int * z3), (1 - int) * z3)
        z1 = z1 + z2
        f2, d2 = probe(z2)
        m = m - 1
        z3 = z3 - z2
      end
      if f2 > f1 + z1 * rho * d1 or d2 > -sig * d1 then
        break
      elseif d2 > sig * d1 then
        success = 1
        break
      elseif m == 0 then
        break
      end
      local A = 6 * (f2 - f3) / z3 + 3 * (d2 + d3)
      local B = 3 * (f3 - f2) - z3 * (d3 + 2 * d2)
      z2 = -d2 * z3 * z3 / (B + math.sqrt(B * B - A * d2 * z3 * z3))
      if not finite(z2) or z2 < 0 then
        if limit < -0.5 then z2 = z1 * (ext - 1) else z2 = (limit - z1) / 2 end
      elseif limit > -0.5 and (z2 + z1) > limit then
        z2 = (limit - z1) / 2
      elseif limit < -0.5 and (z2 + z1) > z1 * ext then
        z2 = z1 * (ext - 1)
      elseif z2 < -z3 * int then
        z2 = -z3 * int
      elseif limit > -0.5 and z2 < (limit - z1) * (1 - int) then
        z2 = (limit - z1) * (1 - int)
      end
      f3, d3, z3 = f2, d2, -z2
      z1 = z1 + z2
      f2, d2 = probe(z2)
      m = m - 1
    end
    if success == 1 then
      f1 = f2
      fx[#fx + 1] = f1
      local ss = (dot(df2, df2) - dot(df2, df1)) / dot(df1, df1)
      s:mul_(ss):add_(df2, -1)
      df1, df2 = df2, df1   -- the swap of optim.cg's tmp copy, without the copy
      buf.df1, buf.df2 = df1, df2
      d2 = dot(df1, s)
      if d2 > 0 then
        s:copy_(df1):mul_(-1)
        d2 = -dot(s, s)
      end
      z1 = z1 * math.min(ratio, d1 / (d2 - 1e-320))
      d1 = d2
      ls_failed = 0
    else
      flat.set(params, x0)
      f1 = f0
      df1:copy_(df0)
      -- optim.cg tests `ls_failed or i > maxEval`: 0 is true in Lua, so a failed line
      -- search always ends the run, as there
      if ls_failed or i > maxEval then break end
    end
  end
  return fx, i
end

--- Runs up to maxIter line searches; returns the final loss, the list of losses and the
-- number of closure calls.
-- @param closure function that zeroes the gradients, computes the loss, calls backward
-- and returns it
function CG:step(closure)
  if type(closure) ~= "function" then
    error("CG: step needs a closure that recomputes the loss and its gradients (got " .. type(closure) .. ")", 2)
  end
  local params = self.param_groups[1].params
  local state = self.state[params[1]]
  if state == nil then state = {func_evals = 0, n_iter = 0}; self.state[params[1]] = state end
  local fx, evals = flat.guarded(self, run, self, closure)
  state.func_evals, state.n_iter = state.func_evals + evals, state.n_iter + #fx - 1
  return fx[#fx], fx, evals
end

return CG
