--- MultiStepLR: multiplies each group's lr by gamma at each milestone epoch,
--   lr_t = initial_lr * gamma^(number of milestones <= t);
-- a milestone listed twice multiplies by gamma^2.
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.MultiStepLR.html
-- @usage local s = lr_scheduler.MultiStepLR(opt, {milestones = {30, 80}, gamma = 0.1})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local MultiStepLR = LRScheduler:extend("MultiStepLR")
MultiStepLR.field_rules = {milestones = {"list_of", {"integer", 0}}, gamma = {"number", 0, open = "lo"}}

--- Builds a MultiStepLR.
-- @param optimizer the optimizer
-- @tparam {int,...} milestones the epochs at which to decay (a list of integers, any order)
-- @tparam[opt=0.1] number gamma the multiplicative factor
-- @tparam[opt=-1] number last_epoch the index of the last epoch, to resume
function MultiStepLR:init(optimizer, opts)
  local who = "MultiStepLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"milestones", "gamma"})
  local ms = opts.milestones
  if type(ms) ~= "table" then
    B.fail("%s: milestones must be a list of integers, got %s", who, B.show(ms))
  end
  local sorted = {}
  for i = 1, B.list(who, "milestones", ms) do sorted[i] = B.integer(who, "milestones[" .. i .. "]", ms[i], 0) end
  if next(ms) ~= nil and #sorted == 0 then
    B.fail("%s: milestones must be a list of integers, got a table with non-list keys", who)
  end
  table.sort(sorted)
  self.milestones = sorted
  self.gamma = B.number(who, "gamma", opts.gamma or 0.1)
  LRScheduler.init(self, optimizer, opts)
end

function MultiStepLR:get_lr()
  local count = 0
  for _, m in ipairs(self.milestones) do if m == self.last_epoch then count = count + 1 end end
  if count == 0 then return B.current(self) end
  return B.scaled(self, self.gamma ^ count)
end

function MultiStepLR:_get_closed_form_lr()
  local out = {}
  for i, base in ipairs(self.base_lrs) do
    out[i] = base * self.gamma ^ B.bisect_right(self.milestones, self.last_epoch)
  end
  return out
end

return MultiStepLR
