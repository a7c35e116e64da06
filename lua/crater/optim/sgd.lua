--- SGD: stochastic gradient descent with momentum (PyTorch's torch.optim.SGD).
-- Update, per parameter, with g the gradient (negated when maximize):
--   g = g + weight_decay * p
--   buf = momentum * buf + (1 - dampening) * g      (buf = g at the first step)
--   g = nesterov and g + momentum * buf or buf       (when momentum ~= 0)
--   p = p - lr * g
-- Departs from the textbook (Sutskever et al.) as PyTorch does: lr multiplies the whole
-- step rather than living inside the momentum buffer (v = mu*v + lr*g), which matters
-- when lr changes during training. State: `momentum_buffer` (when momentum ~= 0).
-- https://pytorch.org/docs/1.13/generated/torch.optim.SGD.html
-- @tparam number lr learning rate (required, as in PyTorch 1.13)
-- @tparam[opt=0] number momentum momentum factor
-- @tparam[opt=0] number dampening dampening for momentum
-- @tparam[opt=0] number weight_decay L2 penalty added to the gradient
-- @tparam[opt=false] boolean nesterov Nesterov momentum (needs momentum > 0, dampening 0)
-- @tparam[opt=false] boolean maximize maximize the objective instead
-- @usage local opt = crater.optim.SGD(model:parameters(), {lr = 0.1, momentum = 0.9})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local SGD = Optimizer:extend("SGD", {lr = Optimizer.required, momentum = 0, dampening = 0,
  weight_decay = 0, nesterov = false, maximize = false},
  {momentum = {"number", 0, what = "momentum value"}, dampening = {"number", 0, 1}})
SGD.state_rules = {momentum_buffer = "param"}

SGD.state_keys = function(group) return group.momentum ~= 0 and {"momentum_buffer"} or {} end

function SGD:validate(group)
  Optimizer.validate(self, group)
  if group.nesterov and (group.momentum <= 0 or group.dampening ~= 0) then
    error("SGD: Nesterov momentum requires a momentum and zero dampening", 0)
  end
end

-- A new buffer is filled by the kernel's first step (PyTorch copies g into it), so the
-- parameters whose buffer was just made are remembered until their update.
function SGD:init_state(p, state, group)
  if group.momentum ~= 0 and state.momentum_buffer == nil then
    state.momentum_buffer = crater.zeros_like(p)
    local fresh = rawget(self, "_fresh_buffers")
    if fresh == nil then
      fresh = setmetatable({}, {__mode = "k"})
      rawset(self, "_fresh_buffers", fresh)
    end
    fresh[p] = true
  end
end

-- what the kernel reads besides the group and the state, refilled before every call
local scalars = {first = false}

function SGD:update(p, g, state, group)
  local first = false
  if group.momentum ~= 0 then
    local fresh = rawget(self, "_fresh_buffers")
    first = fresh ~= nil and fresh[p] == true
    if first then fresh[p] = nil end
  end
  scalars.first = first
  internal.sgd_step(self, p, g, state, group, scalars)
end
-- a step with no buffer just made: one C call, the kernel told it is no buffer's first step
Optimizer.kernel_update(SGD.update, internal.sgd_step, {step = false, scalars = {first = false},
  ready = function(self)
    local fresh = rawget(self, "_fresh_buffers")
    return fresh == nil or next(fresh) == nil
  end})

return SGD
