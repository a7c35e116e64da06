--- PolynomialLR: decays each group's lr to 0 along a polynomial over total_iters epochs,
--   lr_t = initial_lr * (1 - min(t, total_iters) / total_iters)^power.
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.PolynomialLR.html
-- @usage local s = lr_scheduler.PolynomialLR(opt, {total_iters = 100, power = 2})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local PolynomialLR = LRScheduler:extend("PolynomialLR")
PolynomialLR.field_rules = {total_iters = {"integer", 1}, power = {"number"}}

--- Builds a PolynomialLR.
-- @param optimizer the optimizer
-- @tparam[opt=5] number total_iters the epochs until the lr reaches 0 (a positive integer)
-- @tparam[opt=1] number power the power of the polynomial
-- @tparam[opt=-1] number last_epoch the index of the last epoch, to resume
function PolynomialLR:init(optimizer, opts)
  local who = "PolynomialLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"total_iters", "power"})
  self.total_iters = B.integer(who, "total_iters", opts.total_iters or 5, 1)
  self.power = B.number(who, "power", opts.power or 1.0)
  LRScheduler.init(self, optimizer, opts)
end

function PolynomialLR:get_lr()
  if self.last_epoch == 0 or self.last_epoch > self.total_iters then return B.current(self) end
  local t, n = self.last_epoch, self.total_iters
  return B.scaled(self, ((1.0 - t / n) / (1.0 - (t - 1) / n)) ^ self.power)
end

function PolynomialLR:_get_closed_form_lr()
  local out = {}
  for i, base in ipairs(self.base_lrs) do
    out[i] = base * (1.0 - math.min(self.total_iters, self.last_epoch) / self.total_iters) ^ self.power
  end
  return out
end

return PolynomialLR
