--- RMSprop (PyTorch's torch.optim.RMSprop), centered and with momentum.
-- Update, with g the gradient (negated when maximize):
--   g = g + weight_decay * p
--   v = alpha * v + (1 - alpha) * g * g
--   centered: ga = alpha * ga + (1 - alpha) * g;  avg = sqrt(v - ga * ga) + eps
--   otherwise: avg = sqrt(v) + eps
--   momentum > 0: buf = momentum * buf + g / avg;  p = p - lr * buf
--   otherwise: p = p - lr * g / avg
-- Departs from Hinton's lecture notes as PyTorch does: eps is added outside the square
-- root, and with momentum lr scales the buffer rather than living inside it (TensorFlow
-- keeps lr inside). State: `step`, `square_avg`, `momentum_buffer`, `grad_avg`.
-- https://pytorch.org/docs/1.13/generated/torch.optim.RMSprop.html
-- @tparam[opt=1e-2] number lr learning rate
-- @tparam[opt=0.99] number alpha smoothing constant
-- @tparam[opt=1e-8] number eps term added to the denominator
-- @tparam[opt=0] number weight_decay L2 penalty added to the gradient
-- @tparam[opt=0] number momentum momentum factor
-- @tparam[opt=false] boolean centered normalise by an estimate of the variance
-- @tparam[opt=false] boolean maximize maximize the objective instead
-- @usage local opt = crater.optim.RMSprop(model:parameters(), {lr = 1e-3, centered = true})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local RMSprop = Optimizer:extend("RMSprop", {lr = 1e-2, alpha = 0.99, eps = 1e-8,
  weight_decay = 0, momentum = 0, centered = false, maximize = false},
  {momentum = {"number", 0, what = "momentum value"}, alpha = {"number", 0, 1, what = "alpha value"}})
RMSprop.state_rules = {step = "count", square_avg = "param", momentum_buffer = "param", grad_avg = "param"}

RMSprop.state_keys = function(group)
  local keys = {"step", "square_avg"}
  if group.momentum > 0 then keys[#keys + 1] = "momentum_buffer" end
  if group.centered then keys[#keys + 1] = "grad_avg" end
  return keys
end

function RMSprop:init_state(p, state, group)
  local zeros_like = crater.zeros_like
  if state.step == nil then state.step, state.square_avg = 0, zeros_like(p) end
  if group.momentum > 0 and state.momentum_buffer == nil then state.momentum_buffer = zeros_like(p) end
  if group.centered and state.grad_avg == nil then state.grad_avg = zeros_like(p) end
end

function RMSprop:update(p, g, state, group)
  state.step = state.step + 1
  internal.rmsprop_step(self, p, g, state, group)
end
Optimizer.kernel_update(RMSprop.update, internal.rmsprop_step)   -- a step with nothing new: one C call

return RMSprop
