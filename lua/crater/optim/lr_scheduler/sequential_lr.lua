--- SequentialLR: runs schedulers[1] until milestones[1], then schedulers[2], restarted at
-- its epoch 0 (by its closed form, where it has one), and so on; e.g. a linear warm-up
-- followed by cosine annealing.
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.SequentialLR.html
-- @usage local s = lr_scheduler.SequentialLR(opt, {
--   schedulers = {lr_scheduler.LinearLR(opt, {start_factor = 0.1, total_iters = 5}),
--                 lr_scheduler.CosineAnnealingLR(opt, {T_max = 95})},
--   milestones = {5}})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local SequentialLR = LRScheduler:extend("SequentialLR")
SequentialLR.field_rules = {_milestones = {"list_of", {"integer", 0}}}

--- Builds a SequentialLR from schedulers already built on `optimizer`; it resets the
-- lrs to initial_lr and restarts the first scheduler.
-- @param optimizer the optimizer all the schedulers drive
-- @tparam {scheduler,...} schedulers the schedulers, in order
-- @tparam {int,...} milestones the epochs at which to switch (increasing), one fewer than schedulers
-- @tparam[opt=-1] number last_epoch the index of the last epoch, to resume
function SequentialLR:init(optimizer, opts)
  local who = "SequentialLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"schedulers", "milestones"})
  local schedulers = opts.schedulers
  B.schedulers(who, schedulers, optimizer)
  local ms = opts.milestones
  if type(ms) ~= "table" then B.fail("%s: milestones must be a list of integers, got %s", who, B.show(ms)) end
  if B.list(who, "milestones", ms) ~= #schedulers - 1 then
    B.fail("%s: expected %d milestones (one fewer than the %d schedulers), got %d",
           who, #schedulers - 1, #schedulers, #ms)
  end
  local milestones = {}
  for i, m in ipairs(ms) do
    milestones[i] = B.integer(who, "milestones[" .. i .. "]", m, 0)
    if i > 1 and milestones[i] < milestones[i - 1] then
      B.fail("%s: milestones must be increasing, got %d after %d", who, milestones[i], milestones[i - 1])
    end
  end
  local last_epoch = B.integer(who, "last_epoch", opts.last_epoch or -1, -1)

  self._schedulers = {}
  for i, s in ipairs(schedulers) do self._schedulers[i] = s end
  self._milestones = milestones
  self.last_epoch = last_epoch + 1
  self.optimizer = optimizer
  -- Reset the lrs, undo the initial step of every part, and redo only the first one's.
  for _, g in ipairs(optimizer.param_groups) do g.lr = g.initial_lr end
  for _, s in ipairs(self._schedulers) do s.last_epoch = s.last_epoch - 1 end
  self._schedulers[1]:_initial_step()
  self._last_lr = self._schedulers[1]:get_last_lr()
end

--- Steps the scheduler whose turn it is; at a milestone the next one starts at its epoch 0.
function SequentialLR:step(epoch)
  if epoch ~= nil then B.fail("SequentialLR:step: takes no epoch (got %s)", B.show(epoch)) end
  self.last_epoch = self.last_epoch + 1
  local idx = B.bisect_right(self._milestones, self.last_epoch)
  local s = self._schedulers[idx + 1]
  if idx > 0 and self._milestones[idx] == self.last_epoch then
    s:step(0)
  else
    s:step()
  end
  self._last_lr = s:get_last_lr()
end

return SequentialLR
