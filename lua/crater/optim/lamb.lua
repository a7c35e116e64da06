--- LAMB: layer-wise adaptive moments (You et al. 2019, cybertronai/pytorch-lamb lamb.py).
-- Adam's direction, rescaled per parameter so that its norm matches the parameter's:
--   m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g * g
--   a = m / (sqrt(v) + eps) + weight_decay * p
--   trust = min(|p|, 10) / |a|  (1 when either norm is 0, or with adam = true)
--   p = p - lr * trust * a
-- As in the reference (the paper's v3), there is no bias correction. Pick it for large
-- batches, where one lr has to suit layers of very different scales. The state keeps the
-- last `weight_norm`, `adam_norm` and `trust_ratio` as numbers. State: `step`, `exp_avg`,
-- `exp_avg_sq`, `weight_norm`, `adam_norm`, `trust_ratio`.
-- https://arxiv.org/abs/1904.00962
-- @tparam[opt=1e-3] number lr learning rate
-- @tparam[opt={0.9, 0.999}] table betas decays of m and v
-- @tparam[opt=1e-6] number eps term added to the denominator
-- @tparam[opt=0] number weight_decay decay added to the direction
-- @tparam[opt=false] boolean adam trust ratio 1: plain Adam without bias correction
-- @usage local opt = crater.optim.LAMB(model:parameters(), {lr = 2e-3, weight_decay = 0.01})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local LAMB = Optimizer:extend("LAMB", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-6, weight_decay = 0,
  adam = false}, {betas = Optimizer.BETAS})
LAMB.state_keys = {"step", "exp_avg", "exp_avg_sq"}
LAMB.state_rules = {step = "count", exp_avg = "param", exp_avg_sq = "param", weight_norm = "number",
  adam_norm = "number", trust_ratio = "number"}

function LAMB:init_state(p, state)
  if state.step == nil then
    local zeros_like = crater.zeros_like
    state.step, state.exp_avg, state.exp_avg_sq = 0, zeros_like(p), zeros_like(p)
  end
end

local scalars = {step = 0}   -- lamb_step's step size, -lr * trust_ratio

function LAMB:update(p, g, state, group)
  state.step = state.step + 1
  local pp, aa = internal.lamb_stats(self, p, g, state, group)
  local weight_norm, adam_norm = math.min(math.sqrt(pp), 10), math.sqrt(aa)
  local trust = (weight_norm == 0 or adam_norm == 0) and 1 or weight_norm / adam_norm
  state.weight_norm, state.adam_norm, state.trust_ratio = weight_norm, adam_norm, trust
  if group.adam then trust = 1 end
  scalars.step = -group.lr * trust
  internal.lamb_step(self, p, g, state, group, scalars)
end
Optimizer.kernel_update(LAMB.update)

return LAMB
