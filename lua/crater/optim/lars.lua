--- LARS: layer-wise adaptive rate scaling (You et al. 2017), as facebookresearch/moco-v3
-- moco/optimizer.py. For a parameter of 2 or more dims (a weight):
--   d = g + weight_decay * p;  q = trust_coefficient * |p| / |d|  (1 when a norm is 0)
--   d = q * d
-- and d = g for vectors (biases and normalization gains: no decay, no scaling); then
--   mu = momentum * mu + d;  p = p - lr * mu
-- Every weight matrix moves by about lr * trust_coefficient of its own norm per step,
-- whatever its gradient's scale: pick it for very large batch SGD (SimCLR, MoCo, BYOL).
-- The reference's default lr is 0: give one. (Its step takes no closure; crater's takes
-- one, as every crater optimizer's.)
-- State: `mu`.
-- https://arxiv.org/abs/1708.03888
-- @tparam[opt=0] number lr learning rate
-- @tparam[opt=0] number weight_decay weight decay of the weights (not of vectors)
-- @tparam[opt=0.9] number momentum momentum of mu
-- @tparam[opt=0.001] number trust_coefficient the fraction of |p| a weight's step takes
-- @usage local opt = crater.optim.LARS(model:parameters(), {lr = 1.0, weight_decay = 1e-6})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local LARS = Optimizer:extend("LARS", {lr = 0, weight_decay = 0, momentum = 0.9, trust_coefficient = 0.001},
  {momentum = {"number", 0, what = "momentum value"}, trust_coefficient = {"number", 0}})
LARS.state_keys = {"mu"}
LARS.state_rules = {mu = "param"}

function LARS:init_state(p, state)
  if state.mu == nil then state.mu = crater.zeros_like(p) end
end

local scalars = {q = 1, scaled = false}   -- the trust ratio lars_step reads

function LARS:update(p, g, state, group)
  local scaled, q = p:dim() > 1, 1
  if scaled then
    local pp, dd = internal.lars_norms(self, p, g, state, group)
    local pn, un = math.sqrt(pp), math.sqrt(dd)
    if pn > 0 and un > 0 then q = group.trust_coefficient * pn / un end
  end
  scalars.q, scalars.scaled = q, scaled
  internal.lars_step(self, p, g, state, group, scalars)
end
Optimizer.kernel_update(LARS.update)

return LARS
