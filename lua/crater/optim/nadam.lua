--- NAdam: Adam with Nesterov momentum (PyTorch's torch.optim.NAdam).
-- Update at step t, with g the gradient:
--   g = g + weight_decay * p                (decoupled_weight_decay: p = p*(1 - lr*wd))
--   mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)),  mu_prod = mu_1 * ... * mu_t
--   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
--   denom = sqrt(v / (1 - beta2^t)) + eps
--   p = p - lr * (1 - mu_t) / (1 - mu_prod) * g / denom
--         - lr * mu_{t+1} / (1 - mu_prod * mu_{t+1}) * m / denom
-- Follows PyTorch (Dozat's paper with the momentum schedule of the original code): eps
-- outside the square root, and mu_product kept in float32 as PyTorch's 0-d tensor is,
-- so float64 runs match PyTorch bit for bit in the schedule. `maximize` and
-- `decoupled_weight_decay` are PyTorch 2.x options. State: `step`, `mu_product`,
-- `exp_avg`, `exp_avg_sq`.
-- https://pytorch.org/docs/1.13/generated/torch.optim.NAdam.html
-- @tparam[opt=2e-3] number lr learning rate
-- @tparam[opt={0.9, 0.999}] table betas coefficients of the running averages of g and g^2
-- @tparam[opt=1e-8] number eps term added to the denominator
-- @tparam[opt=0] number weight_decay weight decay (L2 penalty unless decoupled)
-- @tparam[opt=4e-3] number momentum_decay momentum decay psi
-- @tparam[opt=false] boolean decoupled_weight_decay decay p directly, as AdamW (2.x)
-- @tparam[opt=false] boolean maximize maximize the objective instead (2.x)
-- @usage local opt = crater.optim.NAdam(model:parameters(), {lr = 2e-3})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local NAdam = Optimizer:extend("NAdam", {lr = 2e-3, betas = {0.9, 0.999}, eps = 1e-8,
  weight_decay = 0, momentum_decay = 4e-3, decoupled_weight_decay = false, maximize = false},
  {betas = Optimizer.BETAS, momentum_decay = {"number", 0, what = "momentum_decay value"}})
NAdam.state_keys = {"step", "mu_product", "exp_avg", "exp_avg_sq"}
NAdam.state_rules = {step = "count", mu_product = "number", exp_avg = "param", exp_avg_sq = "param"}

local function f32(x) return (string.unpack("f", string.pack("f", x))) end

function NAdam:init_state(p, state, group)
  if state.step == nil then
    local zeros_like = crater.zeros_like
    -- one assignment: a failed allocation leaves the state empty, not half made
    state.exp_avg, state.exp_avg_sq, state.step, state.mu_product = zeros_like(p), zeros_like(p), 0, 1.0
  end
end

-- the momentum schedule the kernel reads besides the group and the state
local scalars = {mu = 0, mu_next = 0, mu_product_next = 0}

function NAdam:update(p, g, state, group)
  local t = state.step + 1
  state.step = t
  local beta1, psi = group.betas[1], group.momentum_decay
  local mu = beta1 * (1 - 0.5 * 0.96 ^ (t * psi))
  local mu_next = beta1 * (1 - 0.5 * 0.96 ^ ((t + 1) * psi))
  state.mu_product = f32(state.mu_product * f32(mu))
  scalars.mu, scalars.mu_next = mu, mu_next
  scalars.mu_product_next = f32(f32(state.mu_product * f32(mu)) * f32(mu_next))
  internal.nadam_step(self, p, g, state, group, scalars)
end
Optimizer.kernel_update(NAdam.update)

return NAdam
