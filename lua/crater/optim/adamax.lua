--- Adamax, Adam with the infinity norm (PyTorch's torch.optim.Adamax).
-- Update at step t, with g the gradient (negated when maximize):
--   g = g + weight_decay * p
--   m = beta1 * m + (1 - beta1) * g
--   u = max(beta2 * u, |g| + eps)
--   p = p - lr / (1 - beta1^t) * m / u
-- Departs from the paper (u = max(beta2*u, |g|), division by u) as PyTorch does: eps
-- goes into the max, so u is never 0. State: `step`, `exp_avg`, `exp_inf`.
-- https://pytorch.org/docs/1.13/generated/torch.optim.Adamax.html
-- @tparam[opt=2e-3] number lr learning rate
-- @tparam[opt={0.9, 0.999}] table betas coefficients of m and of the infinity norm
-- @tparam[opt=1e-8] number eps term added to |g|
-- @tparam[opt=0] number weight_decay L2 penalty added to the gradient
-- @tparam[opt=false] boolean maximize maximize the objective instead
-- @usage local opt = crater.optim.Adamax(model:parameters(), {lr = 2e-3})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local Adamax = Optimizer:extend("Adamax", {lr = 2e-3, betas = {0.9, 0.999}, eps = 1e-8,
  weight_decay = 0, maximize = false}, {betas = Optimizer.BETAS})
Adamax.state_keys = {"step", "exp_avg", "exp_inf"}
Adamax.state_rules = {step = "count", exp_avg = "param", exp_inf = "param"}

function Adamax:init_state(p, state, group)
  if state.step == nil then
    local zeros_like = crater.zeros_like
    state.step, state.exp_avg, state.exp_inf = 0, zeros_like(p), zeros_like(p)
  end
end

function Adamax:update(p, g, state, group)
  state.step = state.step + 1
  internal.adamax_step(self, p, g, state, group)
end
Optimizer.kernel_update(Adamax.update, internal.adamax_step)   -- a step with nothing new: one C call

return Adamax
