--- FISTA with backtracking, Torch7 optim's `fista.lua` (optim.FistaLS; Beck and Teboulle,
-- 2009): minimises F(x) = f(x) + g(x), f smooth (the closure: the loss and its gradient),
-- g not (an L1 penalty by default), through its proximal map pl:
--   repeat: p = pl(y - grad f(y) / L, L); accept when f(p) <= f(y) + <p - y, grad f(y)>
--           + L/2 |p - y|^2, else L = L * Lstep (at most maxline times, then keep x)
--   t' = (1 + sqrt(1 + 4 t^2)) / 2;  y = x + ((1 - t) / t') (x_old - x)    (ISTA: y = x)
-- One `step(closure)` runs up to maxiter iterations, as one call of optim.FistaLS does,
-- and stops early when F changes by at most errthres; unlike FistaLS it starts from the
-- parameters (FistaLS starts from zeros, the usual start of sparse coding) and keeps y,
-- t and L between steps, so steps continue one run.  The parameters end at y.  It returns
-- the final F and the list of iterations ({F=, Fply=, Gply=, Q=, L=, nline=}).
-- Option names and defaults are Torch7's; `lambda` sets the default g = lambda * |x|_1
-- with its soft-threshold prox, or pass `g = function(v) return number end` and
-- `pl = function(v, L) ... end` (in place) over the flat vector v of all parameters.
-- https://github.com/torch/optim/blob/master/fista.lua
-- @tparam[opt=0.1] number L 1 / step size, raised by Lstep in the line search
-- @tparam[opt=1.5] number Lstep line-search multiplier of L
-- @tparam[opt=50] integer maxiter iterations per step
-- @tparam[opt=20] integer maxline line-search trials per iteration
-- @tparam[opt=1e-4] number errthres stop when F changes by at most this
-- @tparam[opt=true] boolean doFistaUpdate FISTA (true) or ISTA (false)
-- @tparam[opt=0] number lambda weight of the default L1 penalty
-- @usage local opt = crater.optim.FISTA({x}, {lambda = 0.1, L = 1})
-- local F = opt:step(function() opt:zero_grad(); local l = 0.5 * ((A:matmul(x) - b) ^ 2):sum(); l:backward(); return l end)
local Optimizer = require "crater.optim.optimizer"
local flat = require "crater.optim.flat"

local FISTA = Optimizer:extend("FISTA", {L = 0.1, Lstep = 1.5, maxiter = 50, maxline = 20, errthres = 1e-4,
  doFistaUpdate = true, lambda = 0, g = false, pl = false},
  {L = {"number", 0, open = "lo"}, Lstep = {"number", 1}, maxiter = {"integer", 1}, maxline = {"integer", 0},
   errthres = {"number", 0}, lambda = {"number", 0}, g = {"function", false_ok = true},
   pl = {"function", false_ok = true}})
FISTA.state_keys = {"tk", "niter"}
FISTA.state_rules = {tk = "number", niter = "count", y = "flat", xkm = "flat"}

function FISTA:validate(group)
  Optimizer.validate(self, group)
  if (group.g == false) ~= (group.pl == false) then
    error("FISTA: g and pl come together (a penalty and its proximal map); got only " .. (group.g and "g" or "pl"), 0)
  end
end

function FISTA:init()
  flat.check(self)
end

function FISTA:add_param_group()
  error("FISTA: doesn't support per-parameter options (parameter groups)", 2)
end

-- The default penalty lambda |v|_1 and its proximal map, soft thresholding by lambda / L.
local function l1(lambda) return function(v) return lambda * v:abs():sum():item() end end
local function soft_threshold(lambda)
  return function(v, L) v:copy_(v:sign() * (v:abs() - lambda / L):clamp(0)) end
end

local function run(self, closure)
  local grp = self.param_groups[1]
  local params = grp.params
  local Lstep, maxiter, maxline, errthres = grp.Lstep, grp.maxiter, grp.maxline, grp.errthres
  local g = grp.g or l1(grp.lambda)
  local pl = grp.pl or soft_threshold(grp.lambda)
  local state = self.state[params[1]]
  if state.y == nil then
    state.y, state.xkm, state.tk = flat.get(params), flat.get(params), 1
  end
  local buf = self.buffers
  if buf == nil then
    buf = {xk = flat.zeros(params), ply = flat.zeros(params), gfy = flat.zeros(params)}
    self.buffers = buf
  end
  local y, xkm, xk, ply, gfy = state.y, state.xkm, buf.xk, buf.ply, buf.gfy
  local L, tk, tkp = grp.L, state.tk, 0
  local function f(v, grad)
    flat.set(params, v)
    local value = flat.evaluate(closure)
    if grad then flat.grads(params, grad) end
    return value
  end
  local history, niter, fval = {}, 0, math.huge
  while niter < maxiter do
    local fy = f(y, gfy)
    local Q, nline = 0, 0
    local fply
    local done = false
    while not done do
      ply:copy_(y):add_(gfy, -1 / L)
      pl(ply, L)
      xk:copy_(ply)
      fply = f(ply)
      ply:add_(y, -1)
      Q = fy + gfy:dot(ply):item() + L / 2 * ply:dot(ply):item()
      if fply <= Q then
        done = true
      elseif nline >= maxline then
        done = true
        xk:copy_(xkm)   -- no better point found: the previous iterate stays
      else
        L = L * Lstep
      end
      nline = nline + 1
    end
    if grp.doFistaUpdate then
      tkp = (1 + math.sqrt(1 + 4 * tk * tk)) / 2
      xkm:add_(xk, -1)
      y:copy_(xk):add_(xkm, (1 - tk) / tkp)
      xkm:copy_(xk)
    else
      y:copy_(xk)
    end
    tk = tkp   -- as FistaLS: with ISTA this leaves t at 0, unused
    fply = f(y)
    local gply = g(y)
    niter = niter + 1
    fval = fply + gply
    history[niter] = {nline = nline, L = L, F = fval, Fply = fply, Gply = gply, Q = Q}
    grp.L, state.tk = L, tk
    state.niter = (state.niter or 0) + 1
    if niter > 1 and math.abs(history[niter].F - history[niter - 1].F) <= errthres then break end
  end
  flat.set(params, y)
  return fval, history
end

--- Runs up to maxiter FISTA iterations; returns the final F = f + g and the iterations.
function FISTA:step(closure)
  if type(closure) ~= "function" then
    error("FISTA: step needs a closure that recomputes the smooth loss and its gradients (got "
      .. type(closure) .. ")", 2)
  end
  local params = self.param_groups[1].params
  self.state[params[1]] = self.state[params[1]] or {}
  local F, history = flat.guarded(self, run, self, closure)
  return F, history
end

return FISTA
