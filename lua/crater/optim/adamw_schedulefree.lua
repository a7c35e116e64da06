--- AdamWScheduleFree: schedule-free AdamW (Defazio et al. 2024, facebookresearch/schedule_free
-- adamw_schedulefree.py). It keeps z (the plain AdamW-preconditioned SGD sequence) and
-- trains at y, between z and the average x of the z's; no learning-rate schedule is needed.
-- At group step k (from 0), with warmup sched = min(1, (k+1)/warmup_steps):
--   lr_k = lr * sched;  lr_max = max(lr_max, lr_k);  c = (k+1)^r * lr_max^weight_lr_power
--   weight_sum = weight_sum + c;  ckp1 = c / weight_sum
--   v = b2 * v + (1 - b2) * g * g;  u = g / (sqrt(v / (1 - b2^(k+1))) + eps)
--     (inner_momentum: m = im * m + (1 - im) * g and u = m / (1 - im^(k+1)) / (...))
--   u = u + weight_decay * y
--   y = lerp(y, z, ckp1) + lr_k * (b1 * (1 - ckp1) - 1) * u;  z = z - lr_k * u
-- The parameters hold y while training and x = lerp(y, z, 1 - 1/b1) while evaluating:
-- call `opt:train()` before the training steps and `opt:eval()` before evaluating or
-- saving, as with the reference (a new optimizer is in eval mode; step refuses to run in
-- it). The groups keep the reference's `k`, `train_mode`, `weight_sum`, `lr_max` and
-- `scheduled_lr`. Unlike the reference, p.grad is left as backward made it.
-- State: `z`, `exp_avg_sq` (and `exp_avg` with inner_momentum).
-- https://github.com/facebookresearch/schedule_free
-- @tparam[opt=0.0025] number lr learning rate
-- @tparam[opt={0.9, 0.999}] table betas interpolation b1 (in (0, 1)) and the decay of v
-- @tparam[opt=1e-8] number eps term added to the denominator
-- @tparam[opt=0] number weight_decay weight decay, computed at y
-- @tparam[opt=0] number warmup_steps linear warmup of lr over this many steps
-- @tparam[opt=0] number r polynomial weighting of the average
-- @tparam[opt=2] number weight_lr_power the average weights lr_max to this power
-- @tparam[opt=0] number inner_momentum an EMA of g inside the AdamW step (0: none)
-- @usage local opt = crater.optim.AdamWScheduleFree(model:parameters(), {lr = 2.5e-3})
-- opt:train(); ... training steps ...; opt:eval(); ... evaluate ...
local Optimizer = require "crater.optim.optimizer"
local internal = require("crater.core").internal

local B1 = {"number", 0, 1, open = "both", what = "beta parameter"}
local SF = Optimizer:extend("AdamWScheduleFree", {lr = 0.0025, betas = {0.9, 0.999}, eps = 1e-8,
  weight_decay = 0, warmup_steps = 0, r = 0, weight_lr_power = 2, inner_momentum = 0},
  {betas = {"list", B1, Optimizer.BETAS[3]}, warmup_steps = {"integer", 0}, r = {"number", 0},
   weight_lr_power = {"number", 0}, inner_momentum = {"number", 0, 1, open = "hi"}})
SF.state_keys = function(group)
  return group.inner_momentum ~= 0 and {"z", "exp_avg_sq", "exp_avg"} or {"z", "exp_avg_sq"}
end
SF.state_rules = {z = "param", exp_avg_sq = "param", exp_avg = "param"}
SF.group_keys = {k = function() return 0 end, train_mode = function() return false end,
  weight_sum = function() return 0.0 end, lr_max = function() return -1.0 end,
  scheduled_lr = function() return 0.0 end}

local crater = require "crater"

--- The interpolation weight between y and x (betas[1]; SGDScheduleFree: momentum).
function SF.mix(group) return group.betas[1] end

-- Moves every parameter that has a z by lerp(p, z, w(mix)) and sets train_mode.
local function switch(self, to_train)
  crater.no_grad(function()
    for _, group in ipairs(self.param_groups) do
      if group.train_mode ~= to_train then
        local b = self.mix(group)
        local w = to_train and 1 - b or 1 - 1 / b
        for _, p in ipairs(group.params) do
          local st = self.state[p]
          if st and st.z then p:lerp_(st.z, w) end
        end
        group.train_mode = to_train
      end
    end
  end)
  return self
end

--- Puts the parameters at y, the point the gradients are taken at (before training steps).
function SF:train() return switch(self, true) end

--- Puts the parameters at x, the averaged point (before evaluating or saving).
function SF:eval() return switch(self, false) end

--- One step; refused (changing nothing) while the optimizer is in eval mode.
function SF:step(closure)
  if not self.param_groups[1].train_mode then
    error(self.__name .. ": step: the optimizer is in eval mode; call opt:train() before "
      .. "training steps (and opt:eval() before evaluating or saving)", 2)
  end
  return Optimizer.step(self, closure)
end

-- The per-group schedule of this step (the reference computes it before its parameters).
function SF:begin_step()
  local sched = self._sched
  if sched == nil then sched = setmetatable({}, {__mode = "k"}); self._sched = sched end
  for _, group in ipairs(self.param_groups) do
    local k = group.k
    local lr = group.lr * (k < group.warmup_steps and (k + 1) / group.warmup_steps or 1.0)
    group.scheduled_lr = lr
    local lr_max = math.max(lr, group.lr_max)
    group.lr_max = lr_max
    local weight = (k + 1) ^ group.r * lr_max ^ group.weight_lr_power
    group.weight_sum = group.weight_sum + weight
    local s = sched[group] or {}
    sched[group] = s
    s.lr, s.k = lr, k
    s.ckp1 = group.weight_sum ~= 0 and weight / group.weight_sum or 0   -- Python's ZeroDivisionError
    if group.betas then   -- the AdamW kernel's bias corrections (SGDScheduleFree has no betas)
      s.bc1, s.bc2 = 1 - group.inner_momentum ^ (k + 1), 1 - group.betas[2] ^ (k + 1)
    end
    group.k = k + 1
  end
end

function SF:init_state(p, state, group)
  if state.z == nil then
    local zeros_like = crater.zeros_like
    state.z, state.exp_avg_sq = p:clone(), zeros_like(p)
  end
  if group.inner_momentum ~= 0 and state.exp_avg == nil then state.exp_avg = crater.zeros_like(p) end
end

function SF:update(p, g, state, group)
  internal.sf_adamw_step(self, p, g, state, group, self._sched[group])   -- s.lr, s.ckp1, s.bc1, s.bc2
end
Optimizer.kernel_update(SF.update)

return SF
