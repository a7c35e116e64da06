--- RAdam: rectified Adam (PyTorch's torch.optim.RAdam).
-- Update at step t, with g the gradient:
--   g = g + weight_decay * p                (decoupled_weight_decay: p = p*(1 - lr*wd))
--   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
--   rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
--   rho_t > 5: r = sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t))
--              p = p - lr * m / (1 - beta1^t) * r * sqrt(1 - beta2^t) / (sqrt(v) + eps)
--   otherwise: p = p - lr * m / (1 - beta1^t)
-- As in PyTorch, eps is added to sqrt(v) before the bias correction sqrt(1 - beta2^t)
-- is applied (Liu et al. divide by the corrected sqrt). `maximize` and
-- `decoupled_weight_decay` are PyTorch 2.x options. State: `step`, `exp_avg`, `exp_avg_sq`.
-- https://pytorch.org/docs/1.13/generated/torch.optim.RAdam.html
-- @tparam[opt=1e-3] number lr learning rate
-- @tparam[opt={0.9, 0.999}] table betas coefficients of the running averages of g and g^2
-- @tparam[opt=1e-8] number eps term added to the denominator
-- @tparam[opt=0] number weight_decay weight decay (L2 penalty unless decoupled)
-- @tparam[opt=false] boolean decoupled_weight_decay decay p directly, as AdamW (2.x)
-- @tparam[opt=false] boolean maximize maximize the objective instead (2.x)
-- @usage local opt = crater.optim.RAdam(model:parameters(), {lr = 1e-3})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local RAdam = Optimizer:extend("RAdam", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8,
  weight_decay = 0, decoupled_weight_decay = false, maximize = false}, {betas = Optimizer.BETAS})
RAdam.state_keys = {"step", "exp_avg", "exp_avg_sq"}
RAdam.state_rules = {step = "count", exp_avg = "param", exp_avg_sq = "param"}

function RAdam:init_state(p, state, group)
  if state.step == nil then
    local zeros_like = crater.zeros_like
    state.step, state.exp_avg, state.exp_avg_sq = 0, zeros_like(p), zeros_like(p)
  end
end

function RAdam:update(p, g, state, group)
  state.step = state.step + 1
  internal.radam_step(self, p, g, state, group)
end
Optimizer.kernel_update(RAdam.update, internal.radam_step)   -- a step with nothing new: one C call

return RAdam
