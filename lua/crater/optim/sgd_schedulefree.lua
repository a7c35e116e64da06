--- SGDScheduleFree: schedule-free SGD (Defazio et al. 2024, facebookresearch/schedule_free
-- sgd_schedulefree.py), AdamWScheduleFree's schedule with the plain gradient step:
--   u = g + weight_decay * y
--   y = lerp(y, z, ckp1) + lr_k * (momentum * (1 - ckp1) - 1) * u;  z = z - lr_k * u
-- with lr_k, ckp1 and the train/eval switch (through momentum) as in adamw_schedulefree.lua.
-- State: `z`.
-- https://github.com/facebookresearch/schedule_free
-- @tparam[opt=1.0] number lr learning rate
-- @tparam[opt=0.9] number momentum interpolation between y and x, in (0, 1)
-- @tparam[opt=0] number weight_decay weight decay, computed at y
-- @tparam[opt=0] number warmup_steps linear warmup of lr over this many steps
-- @tparam[opt=0] number r polynomial weighting of the average
-- @tparam[opt=2] number weight_lr_power the average weights lr_max to this power
-- @usage local opt = crater.optim.SGDScheduleFree(model:parameters(), {lr = 0.5})
-- opt:train(); ... training steps ...; opt:eval()
local AdamWScheduleFree = require "crater.optim.adamw_schedulefree"
local Optimizer = require "crater.optim.optimizer"
local internal = require("crater.core").internal

local SGDSF = AdamWScheduleFree:extend("SGDScheduleFree", {lr = 1.0, momentum = 0.9,
  weight_decay = 0, warmup_steps = 0, r = 0, weight_lr_power = 2},
  {momentum = {"number", 0, 1, open = "both", what = "momentum value"}})
SGDSF.state_keys = {"z"}
SGDSF.state_rules = {z = "param"}

function SGDSF.mix(group) return group.momentum end

function SGDSF:init_state(p, state)
  if state.z == nil then state.z = p:clone() end
end

function SGDSF:update(p, g, state, group)
  internal.sf_sgd_step(self, p, g, state, group, self._sched[group])   -- s.lr, s.ckp1
end
Optimizer.kernel_update(SGDSF.update)

return SGDSF
