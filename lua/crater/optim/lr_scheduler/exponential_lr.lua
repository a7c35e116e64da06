--- ExponentialLR: multiplies each group's lr by gamma every epoch,
--   lr_t = initial_lr * gamma^t.
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.ExponentialLR.html
-- @usage local s = lr_scheduler.ExponentialLR(opt, {gamma = 0.9})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local ExponentialLR = LRScheduler:extend("ExponentialLR")
ExponentialLR.field_rules = {gamma = {"number", 0, open = "lo"}}

--- Builds an ExponentialLR.
-- @param optimizer the optimizer
-- @tparam number gamma the multiplicative factor per epoch
-- @tparam[opt=-1] number last_epoch the index of the last epoch, to resume
function ExponentialLR:init(optimizer, opts)
  local who = "ExponentialLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"gamma"})
  self.gamma = B.number(who, "gamma", opts.gamma)
  LRScheduler.init(self, optimizer, opts)
end

function ExponentialLR:get_lr()
  if self.last_epoch == 0 then return B.current(self) end
  return B.scaled(self, self.gamma)
end

function ExponentialLR:_get_closed_form_lr()
  local out = {}
  for i, base in ipairs(self.base_lrs) do out[i] = base * self.gamma ^ self.last_epoch end
  return out
end

return ExponentialLR
