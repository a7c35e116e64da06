--- Adan: adaptive Nesterov momentum (Xie et al. 2022, sail-sg/Adan adan.py). At group step
-- k, with bc_i = 1 - b_i^k and x = g - g_prev (0 at the first step):
--   m = b1 * m + (1 - b1) * g;  d = b2 * d + (1 - b2) * x
--   n = b3 * n + (1 - b3) * (g + b2 * x)^2;  u = 1 / (sqrt(n) / sqrt(bc3) + eps)
--   p = (p - lr / bc1 * m * u - lr * b2 / bc2 * d * u) / (1 + lr * wd)
--     (no_prox: p * (1 - lr * wd) first, and no division)
-- The betas are the reference's: m, d and n keep b1, b2 and b3 of themselves (0.98, 0.92,
-- 0.99). With max_grad_norm > 0, every gradient is first scaled by
-- min(1, max_grad_norm / (global norm + eps)) (the global norm over every parameter; the
-- optimizer's own max_grad_norm and the last group's eps, as the reference). Unlike the
-- reference, p.grad is left as backward made it (it scales p.grad in place). Groups keep
-- the reference's `step`. State: `exp_avg`, `exp_avg_sq`, `exp_avg_diff`, `neg_pre_grad`.
-- https://arxiv.org/abs/2208.06677
-- @tparam[opt=1e-3] number lr learning rate
-- @tparam[opt={0.98, 0.92, 0.99}] table betas decays of m, d and n
-- @tparam[opt=1e-8] number eps term added to the denominator
-- @tparam[opt=0] number weight_decay decoupled weight decay
-- @tparam[opt=0] number max_grad_norm clip the global gradient norm (0: no clipping)
-- @tparam[opt=false] boolean no_prox multiply by 1 - lr*wd instead of dividing by 1 + lr*wd
-- @usage local opt = crater.optim.Adan(model:parameters(), {lr = 1e-3, weight_decay = 0.02})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local BETA = Optimizer.BETAS[2]
local Adan = Optimizer:extend("Adan", {lr = 1e-3, betas = {0.98, 0.92, 0.99}, eps = 1e-8,
  weight_decay = 0, max_grad_norm = 0, no_prox = false},
  {betas = {"list", BETA, BETA, BETA}, max_grad_norm = {"number", 0, what = "max grad norm"}})
Adan.state_keys = {"exp_avg", "exp_avg_sq", "exp_avg_diff", "neg_pre_grad"}
Adan.state_rules = {exp_avg = "param", exp_avg_sq = "param", exp_avg_diff = "param", neg_pre_grad = "param"}
Adan.group_keys = {step = function() return nil end}   -- from the first step

function Adan:init_state(p, state)
  if state.exp_avg == nil then
    local zeros_like = crater.zeros_like
    state.exp_avg, state.exp_avg_sq, state.exp_avg_diff = zeros_like(p), zeros_like(p), zeros_like(p)
    state.neg_pre_grad = zeros_like(p)
    -- the first update sets neg_pre_grad from its gradient, as the reference's missing entry
    self._fresh = self._fresh or setmetatable({}, {__mode = "k"})
    self._fresh[p] = true
  end
end

-- The clip factor of this step and each group's step count and bias corrections.
function Adan:begin_step(grads)
  local clip, groups = 1.0, self.param_groups
  if self.defaults.max_grad_norm > 0 then
    local sum, n = 0.0, 0
    for _, group in ipairs(groups) do
      for _, p in ipairs(group.params) do
        n = n + 1
        if grads[n] then sum = sum + internal.sum_squares(p, true) end
      end
    end
    clip = math.min(self.defaults.max_grad_norm / (math.sqrt(sum) + groups[#groups].eps), 1.0)
  end
  self._clip = clip
  for _, group in ipairs(groups) do group.step = (group.step or 0) + 1 end
end

-- what adan_step reads besides the group and the state: the clip factor, bias corrections
local scalars = {clip = 1, bc1 = 1, bc2 = 1, sqrt_bc3 = 1, first = false}

function Adan:update(p, g, state, group)
  local b, k = group.betas, group.step
  local fresh = self._fresh
  local first = k == 1 or (fresh ~= nil and fresh[p] == true)
  if fresh then fresh[p] = nil end
  local s = scalars
  s.clip, s.bc1, s.bc2, s.sqrt_bc3, s.first = self._clip, 1 - b[1] ^ k, 1 - b[2] ^ k, math.sqrt(1 - b[3] ^ k), first
  internal.adan_step(self, p, g, state, group, s)
end
Optimizer.kernel_update(Adan.update)

return Adan
