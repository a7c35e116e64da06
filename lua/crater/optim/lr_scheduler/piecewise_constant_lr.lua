--- PiecewiseConstantLR, piecewise constant scheduling (Géron, ch. 11; Keras'
-- PiecewiseConstantDecay): lr_t = values[1] while t <= boundaries[1], values[2] while
-- t <= boundaries[2], ..., values[n+1] after boundaries[n]. The values are learning
-- rates, set in every param group.
-- @usage local s = lr_scheduler.PiecewiseConstantLR(opt, {boundaries = {5, 15}, values = {0.1, 0.01, 0.001}})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local PiecewiseConstantLR = LRScheduler:extend("PiecewiseConstantLR")
PiecewiseConstantLR.field_rules = {boundaries = {"list_of", {"number"}}, values = {"list_of", {"number"}}}

--- Builds a PiecewiseConstantLR.
-- @param optimizer the optimizer
-- @tparam {number,...} boundaries increasing step numbers
-- @tparam {number,...} values learning rates, one more than boundaries
-- @tparam[opt=-1] number last_epoch the index of the last step, to resume
function PiecewiseConstantLR:init(optimizer, opts)
  local who = "PiecewiseConstantLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"boundaries", "values"})
  local b, v = opts.boundaries, opts.values
  if type(b) ~= "table" then B.fail("%s: boundaries must be a list of numbers, got %s", who, B.show(b)) end
  if type(v) ~= "table" then B.fail("%s: values must be a list of numbers, got %s", who, B.show(v)) end
  if B.list(who, "values", v) ~= B.list(who, "boundaries", b) + 1 then
    B.fail("%s: values must have one more element than boundaries (%d), got %d", who, #b, #v)
  end
  self.boundaries, self.values = {}, {}
  for i, x in ipairs(b) do
    self.boundaries[i] = B.number(who, "boundaries[" .. i .. "]", x)
    if i > 1 and x <= b[i - 1] then
      B.fail("%s: boundaries must be increasing, got %s after %s", who, B.show(x), B.show(b[i - 1]))
    end
  end
  for i, x in ipairs(v) do self.values[i] = B.number(who, "values[" .. i .. "]", x) end
  LRScheduler.init(self, optimizer, opts)
end

function PiecewiseConstantLR:get_lr()
  local k = 1
  while k <= #self.boundaries and self.last_epoch > self.boundaries[k] do k = k + 1 end
  local out = {}
  for i = 1, #self.base_lrs do out[i] = self.values[k] end
  return out
end
PiecewiseConstantLR._get_closed_form_lr = PiecewiseConstantLR.get_lr

return PiecewiseConstantLR
