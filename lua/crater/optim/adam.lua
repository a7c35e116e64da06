--- Adam (PyTorch's torch.optim.Adam), with AMSGrad.
-- Update at step t, with g the gradient (negated when maximize):
--   g = g + weight_decay * p                         (L2 penalty; see AdamW)
--   m = beta1 * m + (1 - beta1) * g
--   v = beta2 * v + (1 - beta2) * g * g
--   vmax = max(vmax, v), used instead of v           (amsgrad)
--   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
-- As in PyTorch, eps is added outside the square root and after the bias correction of v
-- (the paper adds it to sqrt of the corrected v: the same), and the bias corrections are
-- folded into the step size. State: `step`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`.
-- https://pytorch.org/docs/1.13/generated/torch.optim.Adam.html
-- @tparam[opt=1e-3] number lr learning rate
-- @tparam[opt={0.9, 0.999}] table betas coefficients of the running averages of g and g^2
-- @tparam[opt=1e-8] number eps term added to the denominator
-- @tparam[opt=0] number weight_decay L2 penalty added to the gradient
-- @tparam[opt=false] boolean amsgrad use the maximum of past v (AMSGrad)
-- @tparam[opt=false] boolean maximize maximize the objective instead
-- @usage local opt = crater.optim.Adam(model:parameters(), {lr = 1e-3, betas = {0.9, 0.999}})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local Adam = Optimizer:extend("Adam", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8,
  weight_decay = 0, amsgrad = false, maximize = false}, {betas = Optimizer.BETAS})
Adam.state_rules = {step = "count", exp_avg = "param", exp_avg_sq = "param", max_exp_avg_sq = "param"}

Adam.decoupled = false   -- AdamW sets it: weight decay applied to p, not added to g
Adam.state_keys = function(group)
  return group.amsgrad and {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    or {"step", "exp_avg", "exp_avg_sq"}
end

-- looked up only when state is made, not at every step
local function zeros_like(p) return crater.zeros_like(p) end

function Adam:init_state(p, state, group)
  if state.step == nil then
    state.step, state.exp_avg, state.exp_avg_sq = 0, zeros_like(p), zeros_like(p)
  end
  if group.amsgrad and state.max_exp_avg_sq == nil then state.max_exp_avg_sq = zeros_like(p) end
end

function Adam:update(p, g, state, group)
  state.step = state.step + 1
  internal.adam_step(self, p, g, state, group)   -- reads group.lr, state.exp_avg, self.decoupled, ...
end
Optimizer.kernel_update(Adam.update, internal.adam_step)   -- a step with nothing new: one C call

return Adam
