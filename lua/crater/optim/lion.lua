--- Lion: evolved sign momentum (Chen et al. 2023, google/automl lion/lion_pytorch.py).
-- Update, with m the momentum:
--   p = p * (1 - lr * weight_decay)
--   p = p - lr * sign(beta1 * m + (1 - beta1) * g)
--   m = beta2 * m + (1 - beta2) * g
-- Every coordinate moves by exactly lr (a sign step), so lr is 3-10x smaller than AdamW's
-- and weight_decay 3-10x larger for the same effective decay. It keeps one state tensor
-- (Adam keeps two). State: `exp_avg`.
-- https://arxiv.org/abs/2302.06675
-- @tparam[opt=1e-4] number lr learning rate (the size of every coordinate's step)
-- @tparam[opt={0.9, 0.99}] table betas interpolation for the step, decay of m
-- @tparam[opt=0] number weight_decay decoupled weight decay
-- @usage local opt = crater.optim.Lion(model:parameters(), {lr = 3e-4, weight_decay = 0.1})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local Lion = Optimizer:extend("Lion", {lr = 1e-4, betas = {0.9, 0.99}, weight_decay = 0},
  {betas = Optimizer.BETAS, weight_decay = {"number", what = "weight_decay value"}})
Lion.state_keys = {"exp_avg"}
Lion.state_rules = {exp_avg = "param"}

function Lion:init_state(p, state)
  if state.exp_avg == nil then state.exp_avg = crater.zeros_like(p) end
end

function Lion:update(p, g, state, group)
  internal.lion_step(self, p, g, state, group)
end
Optimizer.kernel_update(Lion.update, internal.lion_step, {step = false})   -- a step with nothing new: one C call

return Lion
