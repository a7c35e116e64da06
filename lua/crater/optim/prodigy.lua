--- Prodigy: Adam whose step size d is learned from the iterates (Mishchenko and Defazio
-- 2023, konstmish/prodigy prodigy.py). Leave lr at 1: d grows from d0 to the scale of
-- the distance to the solution. At each step, with dlr = d * lr * bias_correction and
-- g' = g (+ weight_decay * p unless decouple):
--   m = b1 * m + d (1 - b1) g';  v = b2 * v + d^2 (1 - b2) g'^2
--   s = b3 * s + (d / d0) * dlr * g'      (d / d0 * d with safeguard_warmup)
--   d_numerator = b3 * d_numerator + (d / d0) * dlr * <g', p0 - p>
--   d_hat = d_coef * d_numerator / sum|s|;  d_max = max(d_max, d_hat);
--   d = min(d_max, d * growth_rate)         (at the first growth, d = max(d, d_hat))
--   p = p - dlr * weight_decay * p (decouple);  p = p - dlr * m / (sqrt(v) + d * eps)
-- where p0 is the starting point, b3 = sqrt(b2) unless given, and the sums run over every
-- slice_p-th element (slice_p > 1 approximates them to save memory). One d serves every
-- param group (the first group's d, k and options steer it, as in the reference); groups
-- must share lr or have lr = 0. The groups keep the reference's `d`, `d_max`, `d_hat`,
-- `d_numerator`, `d_denom` and `k`. Unlike the reference, p.grad is left as backward made
-- it (the reference adds the coupled decay into it). State: `step`, `s`, `p0`,
-- `exp_avg` (when beta1 > 0), `exp_avg_sq`.
-- https://github.com/konstmish/prodigy
-- @tparam[opt=1.0] number lr multiplier of the learned step size
-- @tparam[opt={0.9, 0.999}] table betas decays of m and v
-- @tparam[opt=false] number beta3 decay of s and d_numerator (false: sqrt(betas[2]))
-- @tparam[opt=1e-8] number eps term added to the denominator (times d)
-- @tparam[opt=0] number weight_decay weight decay
-- @tparam[opt=true] boolean decouple AdamW-style decoupled decay
-- @tparam[opt=false] boolean use_bias_correction Adam's bias correction
-- @tparam[opt=false] boolean safeguard_warmup leave lr out of s (for warm-up schedules)
-- @tparam[opt=1e-6] number d0 first estimate of d
-- @tparam[opt=1.0] number d_coef scale of the estimate (the preferred knob)
-- @tparam[opt=math.huge] number growth_rate bound on d's growth per step
-- @tparam[opt=1] number slice_p use every slice_p-th element for the d statistics
-- @usage local opt = crater.optim.Prodigy(model:parameters(), {weight_decay = 0.01})
local Optimizer = require "crater.optim.optimizer"
local internal = require("crater.core").internal

local Prodigy = Optimizer:extend("Prodigy", {lr = 1.0, betas = {0.9, 0.999}, beta3 = false,
  eps = 1e-8, weight_decay = 0, decouple = true, use_bias_correction = false,
  safeguard_warmup = false, d0 = 1e-6, d_coef = 1.0, growth_rate = math.huge, slice_p = 1},
  {lr = {"number", 0, what = "learning rate"}, eps = {"number", 0, open = "lo", what = "epsilon value"},
   beta3 = {"number", 0, 1, open = "hi", false_ok = true, what = "beta3 value"},
   d0 = {"number", 0, open = "lo", what = "d0 value"}, d_coef = {"number"},
   growth_rate = {"number", 0, open = "lo", inf = true}, slice_p = {"integer", 1}})
Prodigy.state_keys = function(group)
  return group.betas[1] > 0 and {"step", "s", "p0", "exp_avg", "exp_avg_sq"} or {"step", "s", "p0", "exp_avg_sq"}
end
Prodigy.state_rules = {step = "count", exp_avg = "param", exp_avg_sq = "param", s = "sliced", p0 = "sliced_or_zero"}
Prodigy.group_keys = {d = function(g) return g.d0 end, d_max = function(g) return g.d0 end,
  d_numerator = function() return 0.0 end, k = function() return 0 end,
  d_hat = function() return nil end, d_denom = function() return nil end}   -- from the first step

local crater = require "crater"

-- p.flatten()[::slice_p] as a new contiguous tensor
local function sliced(p, slice_p)
  local flat = p:reshape(-1)
  if slice_p == 1 then return flat:clone() end
  local C = crater
  return flat:index_select(1, C.arange(1, flat:numel() + 1, slice_p, {dtype = "int64"}))
end

function Prodigy:init_state(p, state, group)
  if state.step == nil then
    local C = crater
    local ns = (p:numel() + group.slice_p - 1) // group.slice_p
    state.step = 0
    state.s = C.zeros(ns, {dtype = p:dtype()})
    -- the reference's p.any(): an all-zero start keeps a 0-d zero
    state.p0 = p:ne(0):sum():item() > 0 and sliced(p, group.slice_p) or C.zeros({}, {dtype = p:dtype()})
    state.exp_avg_sq = C.zeros_like(p)
  end
  if group.betas[1] > 0 and state.exp_avg == nil then state.exp_avg = crater.zeros_like(p) end
end

-- what the kernels read besides the group and the state: the statistics pass's betas
-- (the first group's), alphas and l2, and the update pass's sizes
local stats = {beta1 = 0, beta2 = 0, beta3 = 0, l2 = 0, m_alpha = 0, v_alpha = 0, s_alpha = 0}
local sizes = {dlr = 0, d = 0, d_eps = 0, decoupled_wd = 0, l2 = 0}

-- The statistics pass over every parameter, then the new d: the reference's first loop.
function Prodigy:begin_step(grads)
  local groups = self.param_groups
  local first = groups[1]
  local beta1, beta2 = first.betas[1], first.betas[2]
  local beta3 = first.beta3 or math.sqrt(beta2)
  local k, d, d_max, d0 = first.k, first.d, first.d_max, first.d0
  local lr = 0
  for _, group in ipairs(groups) do lr = math.max(lr, group.lr) end
  local bias_correction = first.use_bias_correction
    and (1 - beta2 ^ (k + 1)) ^ 0.5 / (1 - beta1 ^ (k + 1)) or 1
  local dlr = d * lr * bias_correction
  local d_numerator = first.d_numerator * beta3
  local delta_numerator, d_denom, n = 0.0, 0.0, 0
  local s = stats
  s.beta1, s.beta2, s.beta3, s.m_alpha, s.v_alpha = beta1, beta2, beta3, d * (1 - beta1), d * d * (1 - beta2)
  for _, group in ipairs(groups) do
    s.l2 = group.decouple and 0 or group.weight_decay
    s.s_alpha = group.safeguard_warmup and (d / group.d0) * d or (d / group.d0) * dlr
    for _, p in ipairs(group.params) do
      n = n + 1
      if grads[n] and group.lr > 0 then
        local dot, abs_s = internal.prodigy_stats(self, p, grads[n], self.state[p], group, s)
        delta_numerator = delta_numerator + (d / group.d0) * dlr * dot
        d_denom = d_denom + abs_s
      end
    end
  end
  if d_denom == 0 then return false end   -- no gradient signal: d stays, nothing moves
  local d_hat = d
  if lr > 0 then
    d_numerator = d_numerator + delta_numerator
    d_hat = first.d_coef * d_numerator / d_denom
    if d == d0 then d = math.max(d, d_hat) end
    d_max = math.max(d_max, d_hat)
    d = math.min(d_max, d * first.growth_rate)
  end
  for _, group in ipairs(groups) do
    group.d_numerator, group.d_denom, group.d, group.d_max, group.d_hat = d_numerator, d_denom, d, d_max, d_hat
    group.k = group.k + 1   -- the reference counts after its updates, which now cannot fail
  end
  self._dlr = dlr
end

--- One step; refused (changing nothing) when two groups have different nonzero lr.
function Prodigy:step(closure)
  local lr = nil
  for gi, group in ipairs(self.param_groups) do
    local v = group.lr
    if type(v) == "number" and v ~= 0 then
      if lr ~= nil and v ~= lr then
        error(string.format("Prodigy: step: param group %d has lr %s but another has %s; groups must "
          .. "share lr or set it to 0", gi, tostring(v), tostring(lr)), 2)
      end
      lr = v
    end
  end
  return Optimizer.step(self, closure)
end

function Prodigy:update(p, g, state, group)
  state.step = state.step + 1
  local d, s = group.d, sizes
  s.dlr, s.d, s.d_eps = self._dlr, d, d * group.eps
  s.decoupled_wd, s.l2 = group.decouple and -group.weight_decay * self._dlr or 0, group.decouple and 0 or group.weight_decay
  internal.prodigy_step(self, p, g, state, group, s)
end
Optimizer.kernel_update(Prodigy.update)

return Prodigy
