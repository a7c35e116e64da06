--- AdaBelief: Adam with the variance of the gradient around its mean in place of its
-- second moment (Zhuang et al. 2020), as adabelief_pytorch 0.2.1
-- (juntang-zhuang/Adabelief-Optimizer). At step t, with bc1 = 1 - b1^t, bc2 = 1 - b2^t:
--   p = p * (1 - lr * wd)  (weight_decouple; 1 - wd with fixed_decay)  or  g = g + wd * p
--   m = b1 * m + (1 - b1) * g;  s = b2 * s + (1 - b2) * (g - m)^2 + eps
--   smax = max(smax, s) and used for the denominator (amsgrad)
--   not rectify: p = p - lr / bc1 * m / (sqrt(s) / sqrt(bc2) + eps)
--   rectify (RAdam's): rho = rho_inf - 2 t b2^t / bc2 with rho_inf = 2 / (1 - b2) - 1;
--     rho >= 5: p = p - lr * r * m / (sqrt(s) + eps), r = sqrt(bc2 (rho-4)(rho-2) rho_inf /
--       ((rho_inf-4)(rho_inf-2) rho)) / bc1;  else p = p - lr / bc1 * m when
--       degenerated_to_sgd, else no step
-- As in the reference, eps is added to s in place at every step (s keeps it). Pick it where
-- Adam generalizes worse than SGD (image classification) with Adam's speed. Unlike the
-- reference, p.grad is left as backward made it (it adds the coupled decay into p.grad).
-- State: `step`, `exp_avg`, `exp_avg_var` (and `max_exp_avg_var` with amsgrad).
-- https://arxiv.org/abs/2010.07468
-- @tparam[opt=1e-3] number lr learning rate
-- @tparam[opt={0.9, 0.999}] table betas decays of m and s
-- @tparam[opt=1e-16] number eps added to s and to the denominator
-- @tparam[opt=0] number weight_decay weight decay
-- @tparam[opt=false] boolean amsgrad use the maximum of past s
-- @tparam[opt=true] boolean weight_decouple decoupled (AdamW-style) decay
-- @tparam[opt=false] boolean fixed_decay decay by weight_decay, not lr * weight_decay
-- @tparam[opt=true] boolean rectify RAdam's rectification of the early steps
-- @tparam[opt=true] boolean degenerated_to_sgd an SGD-with-momentum step while rho < 5
-- @usage local opt = crater.optim.AdaBelief(model:parameters(), {lr = 1e-3, weight_decay = 1e-2})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local AdaBelief = Optimizer:extend("AdaBelief", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-16,
  weight_decay = 0, amsgrad = false, weight_decouple = true, fixed_decay = false, rectify = true,
  degenerated_to_sgd = true}, {betas = Optimizer.BETAS})
AdaBelief.state_keys = function(group)
  return group.amsgrad and {"step", "exp_avg", "exp_avg_var", "max_exp_avg_var"} or {"step", "exp_avg", "exp_avg_var"}
end
AdaBelief.state_rules = {step = "count", exp_avg = "param", exp_avg_var = "param", max_exp_avg_var = "param"}

local ADAM, RECTIFIED, SGD, NONE = 0, 1, 2, 3   -- the kernel's modes (src/optim/optim.h)

local function zeros_like(p) return crater.zeros_like(p) end

function AdaBelief:init_state(p, state, group)
  if state.step == nil then state.step, state.exp_avg, state.exp_avg_var = 0, zeros_like(p), zeros_like(p) end
  if group.amsgrad and state.max_exp_avg_var == nil then state.max_exp_avg_var = zeros_like(p) end
end

-- what adabelief_step reads besides the group and the state: this step's mode and sizes
local scalars = {decay = 1, sqrt_bc2 = 1, mode = 0, coef = 0}

function AdaBelief:update(p, g, state, group)
  local t = state.step + 1
  state.step = t
  local b1, b2, lr, wd = group.betas[1], group.betas[2], group.lr, group.weight_decay
  local bc1, bc2 = 1 - b1 ^ t, 1 - b2 ^ t
  local mode, coef = ADAM, -lr / bc1
  if group.rectify then
    local b2t = b2 ^ t
    local rho_inf = 2 / (1 - b2) - 1
    local rho = rho_inf - 2 * t * b2t / (1 - b2t)
    if rho >= 5 then
      mode = RECTIFIED
      coef = -math.sqrt((1 - b2t) * (rho - 4) / (rho_inf - 4) * (rho - 2) / rho * rho_inf / (rho_inf - 2))
        / (1 - b1 ^ t) * lr
    elseif group.degenerated_to_sgd then
      mode, coef = SGD, -(1.0 / (1 - b1 ^ t)) * lr
    else
      mode = NONE
    end
  end
  local decay = group.fixed_decay and 1.0 - wd or 1.0 - lr * wd
  scalars.decay, scalars.sqrt_bc2, scalars.mode, scalars.coef = decay, math.sqrt(bc2), mode, coef
  internal.adabelief_step(self, p, g, state, group, scalars)
end
Optimizer.kernel_update(AdaBelief.update)

return AdaBelief
