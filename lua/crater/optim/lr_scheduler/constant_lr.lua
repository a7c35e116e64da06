--- ConstantLR: holds each group's lr at initial_lr * factor until epoch total_iters,
-- then at initial_lr.
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.ConstantLR.html
-- @usage local s = lr_scheduler.ConstantLR(opt, {factor = 0.5, total_iters = 4})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local ConstantLR = LRScheduler:extend("ConstantLR")
ConstantLR.field_rules = {factor = {"number", 0, 1}, total_iters = {"integer", 0}}

--- Builds a ConstantLR.
-- @param optimizer the optimizer
-- @tparam[opt=1/3] number factor the factor until total_iters, between 0 and 1
-- @tparam[opt=5] number total_iters the number of epochs at the reduced lr
-- @tparam[opt=-1] number last_epoch the index of the last epoch, to resume
function ConstantLR:init(optimizer, opts)
  local who = "ConstantLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"factor", "total_iters"})
  local factor = B.number(who, "factor", opts.factor or 1.0 / 3)
  if factor > 1.0 or factor < 0 then
    B.fail("%s: factor must be between 0 and 1, got %s", who, B.show(factor))
  end
  self.factor = factor
  self.total_iters = B.integer(who, "total_iters", opts.total_iters or 5, 0)
  LRScheduler.init(self, optimizer, opts)
end

function ConstantLR:get_lr()
  if self.last_epoch == 0 then return B.scaled(self, self.factor) end
  if self.last_epoch ~= self.total_iters then return B.current(self) end
  return B.scaled(self, 1.0 / self.factor)
end

function ConstantLR:_get_closed_form_lr()
  local out = {}
  local after = self.last_epoch >= self.total_iters and 1 or 0
  for i, base in ipairs(self.base_lrs) do
    out[i] = base * (self.factor + after * (1 - self.factor))
  end
  return out
end

return ConstantLR
