--- PowerLR, power scheduling (Géron, "Hands-On Machine Learning", ch. 11):
--   lr_t = lr0 / (1 + t/s)^c,  lr0 = the group's initial lr.
-- With c = 1 the lr halves at t = s and is a third at t = 2s (Keras' InverseTimeDecay).
-- @usage local s = lr_scheduler.PowerLR(opt, {s = 20, c = 1})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local PowerLR = LRScheduler:extend("PowerLR")
PowerLR.field_rules = {s = {"number", 0, open = "lo"}, c = {"number"}}

--- Builds a PowerLR.
-- @param optimizer the optimizer
-- @tparam number s the steps over which the lr falls by 2^c (positive)
-- @tparam[opt=1] number c the power
-- @tparam[opt=-1] number last_epoch the index of the last step, to resume
function PowerLR:init(optimizer, opts)
  local who = "PowerLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"s", "c"})
  self.s = B.positive(who, "s", opts.s)
  self.c = B.number(who, "c", opts.c or 1)
  LRScheduler.init(self, optimizer, opts)
end

function PowerLR:get_lr()
  local out = {}
  for i, lr0 in ipairs(self.base_lrs) do out[i] = lr0 / (1 + self.last_epoch / self.s) ^ self.c end
  return out
end
PowerLR._get_closed_form_lr = PowerLR.get_lr

return PowerLR
