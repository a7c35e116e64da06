--- CosineAnnealingWarmRestarts (SGDR): cosine annealing from each group's initial lr to
-- eta_min over T_i epochs, then a restart at the initial lr; T_0 is the first period and
-- each next one is T_mult times longer,
--   lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2.
-- `step(epoch)` takes fractional epochs, to anneal within an epoch (`epoch + i / iters`).
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.CosineAnnealingWarmRestarts.html
-- @usage local s = lr_scheduler.CosineAnnealingWarmRestarts(opt, {T_0 = 10, T_mult = 2})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local CosineAnnealingWarmRestarts = LRScheduler:extend("CosineAnnealingWarmRestarts")
CosineAnnealingWarmRestarts.field_rules = {T_0 = {"integer", 1}, T_i = {"number", 0, open = "lo"},
  T_mult = {"integer", 1}, T_cur = {"number", -1}, eta_min = {"number"}}

--- Builds a CosineAnnealingWarmRestarts.
-- @param optimizer the optimizer
-- @tparam number T_0 the length of the first period (a positive integer)
-- @tparam[opt=1] number T_mult the growth of the period at each restart (an integer >= 1)
-- @tparam[opt=0] number eta_min the minimum learning rate
-- @tparam[opt=-1] number last_epoch the index of the last epoch, to resume
function CosineAnnealingWarmRestarts:init(optimizer, opts)
  local who = "CosineAnnealingWarmRestarts"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"T_0", "T_mult", "eta_min"})
  self.T_0 = B.integer(who, "T_0", opts.T_0, 1)
  self.T_i = self.T_0
  self.T_mult = B.integer(who, "T_mult", opts.T_mult or 1, 1)
  self.eta_min = B.number(who, "eta_min", opts.eta_min or 0)
  self.T_cur = B.integer(who, "last_epoch", opts.last_epoch or -1, -1)
  LRScheduler.init(self, optimizer, opts)
end

function CosineAnnealingWarmRestarts:get_lr()
  local out = {}
  for i, base in ipairs(self.base_lrs) do
    out[i] = self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
  end
  return out
end

--- Advances one epoch, or jumps to `epoch` (fractional epochs allowed).
-- @param[opt] epoch the epoch to jump to, >= 0
function CosineAnnealingWarmRestarts:step(epoch)
  if epoch == nil and self.last_epoch < 0 then epoch = 0 end
  if epoch == nil then
    epoch = self.last_epoch + 1
    self.T_cur = self.T_cur + 1
    if self.T_cur >= self.T_i then
      self.T_cur = self.T_cur - self.T_i
      self.T_i = self.T_i * self.T_mult
    end
  else
    B.epoch("CosineAnnealingWarmRestarts", epoch)
    local T_0, T_mult = self.T_0, self.T_mult
    if epoch >= T_0 then
      if T_mult == 1 then
        self.T_cur = epoch % T_0
      else
        -- log(x)/log(b), as Python's math.log(x, b) computes it (Lua's math.log(x, 2) is log2)
        local n = math.floor(math.log(epoch / T_0 * (T_mult - 1) + 1) / math.log(T_mult))
        self.T_cur = epoch - T_0 * (T_mult ^ n - 1) / (T_mult - 1)
        self.T_i = T_0 * T_mult ^ n
      end
    else
      self.T_i = T_0
      self.T_cur = epoch
    end
  end
  self.last_epoch = math.floor(epoch)
  self:_set_lrs(self:get_lr(), epoch)
end

return CosineAnnealingWarmRestarts
