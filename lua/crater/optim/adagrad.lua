--- Adagrad (PyTorch's torch.optim.Adagrad).
-- Update at step t, with g the gradient (negated when maximize):
--   g = g + weight_decay * p
--   clr = lr / (1 + (t - 1) * lr_decay)
--   sum = sum + g * g
--   p = p - clr * g / (sqrt(sum) + eps)
-- eps is outside the square root, as in PyTorch. The state (`step` = 0 and `sum` filled
-- with initial_accumulator_value) is made when the optimizer is built, as PyTorch does.
-- https://pytorch.org/docs/1.13/generated/torch.optim.Adagrad.html
-- @tparam[opt=1e-2] number lr learning rate
-- @tparam[opt=0] number lr_decay learning rate decay
-- @tparam[opt=0] number weight_decay L2 penalty added to the gradient
-- @tparam[opt=0] number initial_accumulator_value starting value of sum
-- @tparam[opt=1e-10] number eps term added to the denominator
-- @tparam[opt=false] boolean maximize maximize the objective instead
-- @usage local opt = crater.optim.Adagrad(model:parameters(), {lr = 0.01})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local Adagrad = Optimizer:extend("Adagrad", {lr = 1e-2, lr_decay = 0, weight_decay = 0,
  initial_accumulator_value = 0, eps = 1e-10, maximize = false},
  {lr_decay = {"number", 0, what = "lr_decay value"},
   initial_accumulator_value = {"number", 0, what = "initial_accumulator_value"}})
Adagrad.state_keys = {"step", "sum"}
Adagrad.state_rules = {step = "count", sum = "param"}

local function init_state(p, state, group)
  state.step = 0
  state.sum = crater.zeros_like(p):fill_(group.initial_accumulator_value)
end

function Adagrad:init()
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      self.state[p] = {}
      init_state(p, self.state[p], group)
    end
  end
end

function Adagrad:init_state(p, state, group)
  if state.sum == nil then init_state(p, state, group) end
end

function Adagrad:update(p, g, state, group)
  state.step = state.step + 1
  internal.adagrad_step(self, p, g, state, group)
end
Optimizer.kernel_update(Adagrad.update, internal.adagrad_step)   -- a step with nothing new: one C call

return Adagrad
