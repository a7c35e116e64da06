--- ExponentialDecayLR, exponential scheduling (Géron, ch. 11; Keras' ExponentialDecay):
--   lr_t = lr0 * rate^(t/s),  or with staircase  lr0 * rate^floor(t/s),
-- so the lr falls by the factor `rate` every s steps, smoothly or in steps.
-- @usage local s = lr_scheduler.ExponentialDecayLR(opt, {s = 100, staircase = true})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local ExponentialDecayLR = LRScheduler:extend("ExponentialDecayLR")
ExponentialDecayLR.field_rules = {s = {"number", 0, open = "lo"}, rate = {"number", 0, open = "lo"},
  staircase = {"boolean"}}

--- Builds an ExponentialDecayLR.
-- @param optimizer the optimizer
-- @tparam number s the steps per factor of `rate` (positive)
-- @tparam[opt=0.1] number rate the decay over s steps (positive)
-- @tparam[opt=false] boolean staircase decay in whole steps of s
-- @tparam[opt=-1] number last_epoch the index of the last step, to resume
function ExponentialDecayLR:init(optimizer, opts)
  local who = "ExponentialDecayLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"s", "rate", "staircase"})
  self.s = B.positive(who, "s", opts.s)
  self.rate = B.positive(who, "rate", opts.rate or 0.1)
  if opts.staircase ~= nil and type(opts.staircase) ~= "boolean" then
    B.fail("%s: staircase must be a boolean, got %s", who, B.show(opts.staircase))
  end
  self.staircase = opts.staircase or false
  LRScheduler.init(self, optimizer, opts)
end

function ExponentialDecayLR:get_lr()
  local p = self.last_epoch / self.s
  if self.staircase then p = math.floor(p) end
  local out = {}
  for i, lr0 in ipairs(self.base_lrs) do out[i] = lr0 * self.rate ^ p end
  return out
end
ExponentialDecayLR._get_closed_form_lr = ExponentialDecayLR.get_lr

return ExponentialDecayLR
