--- WarmupCosineLR: a linear warm-up from lr0 * warmup_start_factor to lr0 over
-- warmup_steps, then a half cosine from lr0 down to eta_min at total_steps, then eta_min
-- (w = warmup_steps, T = total_steps, f = warmup_start_factor, lr0 = the initial lr):
--   t < w:        lr0 * (f + (1 - f) * t / w)
--   w <= t <= T:  eta_min + (lr0 - eta_min) * (1 + cos(pi * (t - w) / (T - w))) / 2
--   t > T:        eta_min
-- @usage local s = lr_scheduler.WarmupCosineLR(opt, {warmup_steps = 10, total_steps = 100})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local WarmupCosineLR = LRScheduler:extend("WarmupCosineLR")
WarmupCosineLR.field_rules = {warmup_steps = {"integer", 0}, total_steps = {"integer", 1},
  eta_min = {"number"}, warmup_start_factor = {"number"}}

--- Builds a WarmupCosineLR.
-- @param optimizer the optimizer
-- @tparam number warmup_steps the length of the warm-up (an integer >= 0)
-- @tparam number total_steps where the decay ends (an integer > warmup_steps)
-- @tparam[opt=0] number eta_min the final learning rate
-- @tparam[opt=0] number warmup_start_factor the fraction of lr0 at step 0
-- @tparam[opt=-1] number last_epoch the index of the last step, to resume
function WarmupCosineLR:init(optimizer, opts)
  local who = "WarmupCosineLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"warmup_steps", "total_steps", "eta_min", "warmup_start_factor"})
  self.warmup_steps = B.integer(who, "warmup_steps", opts.warmup_steps, 0)
  self.total_steps = B.integer(who, "total_steps", opts.total_steps, 1)
  if self.total_steps <= self.warmup_steps then
    B.fail("%s: total_steps (%d) must be greater than warmup_steps (%d)", who, self.total_steps,
           self.warmup_steps)
  end
  self.eta_min = B.number(who, "eta_min", opts.eta_min or 0)
  self.warmup_start_factor = B.number(who, "warmup_start_factor", opts.warmup_start_factor or 0)
  LRScheduler.init(self, optimizer, opts)
end

function WarmupCosineLR:get_lr()
  local t, w, T, f, eta = self.last_epoch, self.warmup_steps, self.total_steps,
                          self.warmup_start_factor, self.eta_min
  local out = {}
  for i, lr0 in ipairs(self.base_lrs) do
    if t < w then
      out[i] = lr0 * (f + (1 - f) * t / w)
    elseif t > T then
      out[i] = eta
    else
      out[i] = eta + (lr0 - eta) * (1 + math.cos(math.pi * (t - w) / (T - w))) / 2
    end
  end
  return out
end
WarmupCosineLR._get_closed_form_lr = WarmupCosineLR.get_lr

return WarmupCosineLR
