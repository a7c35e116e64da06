--- ReduceLROnPlateau: multiplies each group's lr by `factor` (down to min_lr) when a
-- watched metric, such as the validation loss, has not improved for more than `patience`
-- steps. It is driven by the metric: `s:step(val_loss)`.
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.ReduceLROnPlateau.html
-- @usage local s = lr_scheduler.ReduceLROnPlateau(opt, {factor = 0.5, patience = 3})
-- for epoch = 1, 50 do train() ; s:step(validate()) end
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"
local fail, show = B.fail, B.show

local ReduceLROnPlateau = LRScheduler:extend("ReduceLROnPlateau")
ReduceLROnPlateau.field_rules = {factor = {"number", 0, 1, open = "hi"},
  min_lrs = {"per_group", {"number"}}, patience = {"integer", 0}, cooldown = {"integer", 0},
  cooldown_counter = {"integer", 0}, num_bad_epochs = {"integer", 0}, eps = {"number", 0},
  threshold = {"number"}, mode = {"choice", "min", "max"}, threshold_mode = {"choice", "rel", "abs"},
  best = {"number", inf = true}, mode_worse = {"number", inf = true}}

--- Builds a ReduceLROnPlateau; it changes no lr until a plateau.
-- @param optimizer the optimizer
-- @tparam[opt="min"] string mode "min" (the metric should fall) or "max" (it should rise)
-- @tparam[opt=0.1] number factor new_lr = lr * factor, below 1
-- @tparam[opt=10] number patience bad steps tolerated before reducing (an integer >= 0)
-- @tparam[opt=1e-4] number threshold the least change that counts as an improvement
-- @tparam[opt="rel"] string threshold_mode "rel": better than best*(1 -/+ threshold);
--   "abs": better than best -/+ threshold
-- @tparam[opt=0] number cooldown steps to wait after a reduction before counting again
-- @tparam[opt=0] number|{number,...} min_lr lower bound on the lr (a number or one per group)
-- @tparam[opt=1e-8] number eps reductions smaller than eps are skipped
-- @tparam[opt=false] boolean verbose print each reduction
function ReduceLROnPlateau:init(optimizer, opts)
  local who = "ReduceLROnPlateau"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"mode", "factor", "patience", "threshold", "threshold_mode",
                               "cooldown", "min_lr", "eps"})
  if opts.last_epoch ~= nil then fail("%s: unknown option \"last_epoch\"", who) end
  local factor = B.number(who, "factor", opts.factor or 0.1)
  if factor >= 1.0 then fail("%s: factor must be < 1.0, got %s", who, show(factor)) end
  self.factor = factor
  self.optimizer = B.optimizer(who, optimizer)
  self.min_lrs = B.per_group(who, "min_lr", opts.min_lr or 0, optimizer)
  self.patience = B.integer(who, "patience", opts.patience or 10, 0)
  self.verbose = opts.verbose and true or false
  self.cooldown = B.integer(who, "cooldown", opts.cooldown or 0, 0)
  self.cooldown_counter = 0
  self.eps = B.number(who, "eps", opts.eps or 1e-8)
  self.last_epoch = 0
  self:_init_is_better(opts.mode or "min", B.number(who, "threshold", opts.threshold or 1e-4),
                       opts.threshold_mode or "rel")
  self:_reset()
  self:_record_last_lr()
end

function ReduceLROnPlateau:_reset()
  self.best = self.mode_worse
  self.cooldown_counter = 0
  self.num_bad_epochs = 0
end

function ReduceLROnPlateau:_init_is_better(mode, threshold, threshold_mode)
  B.choice("ReduceLROnPlateau", "mode", mode, {"min", "max"})
  B.choice("ReduceLROnPlateau", "threshold_mode", threshold_mode, {"rel", "abs"})
  self.mode_worse = mode == "min" and math.huge or -math.huge
  self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
end

--- Whether metric a improves on best under the mode and threshold.
function ReduceLROnPlateau:is_better(a, best)
  if self.mode == "min" and self.threshold_mode == "rel" then
    return a < best * (1. - self.threshold)
  elseif self.mode == "min" then
    return a < best - self.threshold
  elseif self.threshold_mode == "rel" then
    return a > best * (self.threshold + 1.)
  end
  return a > best + self.threshold
end

--- Whether the scheduler is waiting out a cooldown.
function ReduceLROnPlateau:in_cooldown()
  return self.cooldown_counter > 0
end

--- Records one value of the watched metric and reduces the lr if it has plateaued.
-- @param metrics a number (or a 0-d tensor: anything with `:item()`)
-- @param[opt] epoch the epoch number to record (deprecated in PyTorch)
function ReduceLROnPlateau:step(metrics, epoch)
  local current = metrics
  if type(metrics) ~= "number" then
    local ok, v = pcall(function() return metrics:item() end)
    if not ok or type(v) ~= "number" then
      fail("ReduceLROnPlateau:step: metrics must be a number, got %s", show(metrics))
    end
    current = v
  end
  if epoch == nil then epoch = self.last_epoch + 1 else B.epoch("ReduceLROnPlateau", epoch) end
  self.last_epoch = epoch
  if self:is_better(current, self.best) then
    self.best = current
    self.num_bad_epochs = 0
  else
    self.num_bad_epochs = self.num_bad_epochs + 1
  end
  if self:in_cooldown() then
    self.cooldown_counter = self.cooldown_counter - 1
    self.num_bad_epochs = 0          -- bad epochs in cooldown do not count
  end
  if self.num_bad_epochs > self.patience then
    self:_reduce_lr(epoch)
    self.cooldown_counter = self.cooldown
    self.num_bad_epochs = 0
  end
  self:_record_last_lr()
end

function ReduceLROnPlateau:_reduce_lr(epoch)
  for i, g in ipairs(self.optimizer.param_groups) do
    local old_lr = g.lr
    local new_lr = math.max(old_lr * self.factor, self.min_lrs[i])
    if old_lr - new_lr > self.eps then
      g.lr = new_lr
      if self.verbose then
        local e = math.type(epoch) == "float" and string.format("%.2f", epoch) or string.format("%.5d", epoch)
        print(string.format("Epoch %s: reducing learning rate of group %d to %.4e.", e, i, new_lr))
      end
    end
  end
end

--- Restores a state from `state_dict()`.
function ReduceLROnPlateau:load_state_dict(sd)
  LRScheduler.load_state_dict(self, sd)
  self:_init_is_better(self.mode, self.threshold, self.threshold_mode)
end

return ReduceLROnPlateau
