--- StepLR: multiplies each group's lr by gamma every step_size epochs,
--   lr_t = initial_lr * gamma^floor(t / step_size).
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.StepLR.html
-- @usage local s = lr_scheduler.StepLR(opt, {step_size = 30, gamma = 0.1})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local StepLR = LRScheduler:extend("StepLR")
StepLR.field_rules = {step_size = {"integer", 1}, gamma = {"number", 0, open = "lo"}}

--- Builds a StepLR.
-- @param optimizer the optimizer
-- @tparam number step_size the period of the decay, in epochs (a positive integer)
-- @tparam[opt=0.1] number gamma the multiplicative factor
-- @tparam[opt=-1] number last_epoch the index of the last epoch, to resume
function StepLR:init(optimizer, opts)
  local who = "StepLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"step_size", "gamma"})
  self.step_size = B.integer(who, "step_size", opts.step_size, 1)
  self.gamma = B.number(who, "gamma", opts.gamma or 0.1)
  LRScheduler.init(self, optimizer, opts)
end

function StepLR:get_lr()
  if self.last_epoch == 0 or self.last_epoch % self.step_size ~= 0 then return B.current(self) end
  return B.scaled(self, self.gamma)
end

function StepLR:_get_closed_form_lr()
  local out = {}
  for i, base in ipairs(self.base_lrs) do
    out[i] = base * self.gamma ^ (self.last_epoch // self.step_size)
  end
  return out
end

return StepLR
