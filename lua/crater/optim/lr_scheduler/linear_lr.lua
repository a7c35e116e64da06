--- LinearLR: moves the factor on each group's initial lr linearly from start_factor to
-- end_factor over total_iters epochs, then keeps it,
--   lr_t = initial_lr * (start + (end - start) * min(t, total_iters) / total_iters).
-- The usual linear warm-up.
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.LinearLR.html
-- @usage local warm = lr_scheduler.LinearLR(opt, {start_factor = 0.1, total_iters = 10})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local LinearLR = LRScheduler:extend("LinearLR")
LinearLR.field_rules = {start_factor = {"number", 0, 1, open = "lo"}, end_factor = {"number", 0, 1},
  total_iters = {"integer", 1}}

--- Builds a LinearLR.
-- @param optimizer the optimizer
-- @tparam[opt=1/3] number start_factor the factor at epoch 0, in (0, 1]
-- @tparam[opt=1] number end_factor the factor from epoch total_iters on, in [0, 1]
-- @tparam[opt=5] number total_iters the length of the ramp (a positive integer)
-- @tparam[opt=-1] number last_epoch the index of the last epoch, to resume
function LinearLR:init(optimizer, opts)
  local who = "LinearLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"start_factor", "end_factor", "total_iters"})
  local sf = B.number(who, "start_factor", opts.start_factor or 1.0 / 3)
  local ef = B.number(who, "end_factor", opts.end_factor or 1.0)
  if sf > 1.0 or sf <= 0 then B.fail("%s: start_factor must be in (0, 1], got %s", who, B.show(sf)) end
  if ef > 1.0 or ef < 0 then B.fail("%s: end_factor must be between 0 and 1, got %s", who, B.show(ef)) end
  self.start_factor, self.end_factor = sf, ef
  self.total_iters = B.integer(who, "total_iters", opts.total_iters or 5, 1)
  LRScheduler.init(self, optimizer, opts)
end

function LinearLR:get_lr()
  if self.last_epoch == 0 then return B.scaled(self, self.start_factor) end
  if self.last_epoch > self.total_iters then return B.current(self) end
  local sf, ef = self.start_factor, self.end_factor
  return B.scaled(self, 1. + (ef - sf) / (self.total_iters * sf + (self.last_epoch - 1) * (ef - sf)))
end

function LinearLR:_get_closed_form_lr()
  local out = {}
  local sf, ef = self.start_factor, self.end_factor
  for i, base in ipairs(self.base_lrs) do
    out[i] = base * (sf + (ef - sf) * math.min(self.total_iters, self.last_epoch) / self.total_iters)
  end
  return out
end

return LinearLR
