--- Adadelta (PyTorch's torch.optim.Adadelta).
-- Update, with g the gradient (negated when maximize):
--   g = g + weight_decay * p
--   v = rho * v + (1 - rho) * g * g
--   d = sqrt(u + eps) / sqrt(v + eps) * g
--   u = rho * u + (1 - rho) * d * d
--   p = p - lr * d
-- eps sits inside both square roots, as in Zeiler's paper; PyTorch adds the lr factor
-- (default 1, which is the paper's rule). State: `step`, `square_avg`, `acc_delta`.
-- https://pytorch.org/docs/1.13/generated/torch.optim.Adadelta.html
-- @tparam[opt=1.0] number lr coefficient that scales the update
-- @tparam[opt=0.9] number rho coefficient of the running averages
-- @tparam[opt=1e-6] number eps term added inside the square roots
-- @tparam[opt=0] number weight_decay L2 penalty added to the gradient
-- @tparam[opt=false] boolean maximize maximize the objective instead
-- @usage local opt = crater.optim.Adadelta(model:parameters())
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local Adadelta = Optimizer:extend("Adadelta", {lr = 1.0, rho = 0.9, eps = 1e-6, weight_decay = 0,
  maximize = false}, {rho = {"number", 0, 1, what = "rho value"}})
Adadelta.state_keys = {"step", "square_avg", "acc_delta"}
Adadelta.state_rules = {step = "count", square_avg = "param", acc_delta = "param"}

function Adadelta:init_state(p, state, group)
  if state.step == nil then
    local zeros_like = crater.zeros_like
    state.step, state.square_avg, state.acc_delta = 0, zeros_like(p), zeros_like(p)
  end
end

function Adadelta:update(p, g, state, group)
  state.step = state.step + 1
  internal.adadelta_step(self, p, g, state, group)
end
Optimizer.kernel_update(Adadelta.update, internal.adadelta_step)   -- a step with nothing new: one C call

return Adadelta
