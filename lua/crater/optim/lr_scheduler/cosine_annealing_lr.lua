--- CosineAnnealingLR: anneals each group's lr from its initial lr to eta_min along a half
-- cosine over T_max epochs, and back up over the next T_max (SGDR without restarts):
--   lr_t = eta_min + (initial_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2.
-- `step()` computes it by PyTorch's recursive form, from the current lr, so changes made
-- by other schedulers carry through (it chains); `step(epoch)` uses the closed form.
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.CosineAnnealingLR.html
-- @usage local s = lr_scheduler.CosineAnnealingLR(opt, {T_max = 50, eta_min = 1e-4})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local CosineAnnealingLR = LRScheduler:extend("CosineAnnealingLR")
CosineAnnealingLR.field_rules = {T_max = {"number", 0, open = "lo"}, eta_min = {"number"}}

--- Builds a CosineAnnealingLR.
-- @param optimizer the optimizer
-- @tparam number T_max the half period, in epochs (positive)
-- @tparam[opt=0] number eta_min the minimum learning rate
-- @tparam[opt=-1] number last_epoch the index of the last epoch, to resume
function CosineAnnealingLR:init(optimizer, opts)
  local who = "CosineAnnealingLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"T_max", "eta_min"})
  self.T_max = B.positive(who, "T_max", opts.T_max)
  self.eta_min = B.number(who, "eta_min", opts.eta_min or 0)
  LRScheduler.init(self, optimizer, opts)
end

function CosineAnnealingLR:get_lr()
  local t, T, eta_min, pi = self.last_epoch, self.T_max, self.eta_min, math.pi
  local groups = self.optimizer.param_groups
  local out = {}
  if t == 0 then
    return B.current(self)
  elseif self._step_count == 1 and t > 0 then       -- the first step of a resumed run
    for i, base in ipairs(self.base_lrs) do
      out[i] = eta_min + (base - eta_min) * (1 + math.cos(t * pi / T)) / 2
    end
  elseif (t - 1 - T) % (2 * T) == 0 then             -- one step past a minimum: the ratio below is 0/0
    for i, base in ipairs(self.base_lrs) do
      out[i] = groups[i].lr + (base - eta_min) * (1 - math.cos(pi / T)) / 2
    end
  else
    for i, g in ipairs(groups) do
      out[i] = (1 + math.cos(pi * t / T)) / (1 + math.cos(pi * (t - 1) / T)) * (g.lr - eta_min) + eta_min
    end
  end
  return out
end

function CosineAnnealingLR:_get_closed_form_lr()
  local out = {}
  for i, base in ipairs(self.base_lrs) do
    out[i] = self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
  end
  return out
end

return CosineAnnealingLR
