--- ChainedScheduler: steps every scheduler in a list at each step, so their effects
-- compose (a ConstantLR warm-up times an ExponentialLR decay, say). The parts must be
-- chainable, as PyTorch's recursive forms are.
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.ChainedScheduler.html
-- @usage local s = lr_scheduler.ChainedScheduler(opt, {schedulers = {
--   lr_scheduler.ConstantLR(opt, {factor = 0.1, total_iters = 2}),
--   lr_scheduler.ExponentialLR(opt, {gamma = 0.9})}})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local ChainedScheduler = LRScheduler:extend("ChainedScheduler")

--- Builds a ChainedScheduler: `ChainedScheduler(opt, {schedulers = {...}})`, or
-- PyTorch's `ChainedScheduler({s1, s2})`.
-- @param optimizer the optimizer all the schedulers drive
-- @tparam {scheduler,...} schedulers the schedulers
function ChainedScheduler:init(optimizer, opts)
  local who = "ChainedScheduler"
  if opts == nil and type(optimizer) == "table" and optimizer.param_groups == nil then
    opts, optimizer = {schedulers = optimizer}, nil
  end
  if optimizer ~= nil then B.optimizer(who, optimizer) end
  opts = B.options(who, opts, {"schedulers"})
  optimizer = B.schedulers(who, opts.schedulers, optimizer)
  self._schedulers = {}
  for i, s in ipairs(opts.schedulers) do self._schedulers[i] = s end
  self.optimizer = optimizer
  self:_record_last_lr()
end

--- Steps every scheduler, in order.
function ChainedScheduler:step(epoch)
  if epoch ~= nil then B.fail("ChainedScheduler:step: takes no epoch (got %s)", B.show(epoch)) end
  for _, s in ipairs(self._schedulers) do s:step() end
  self:_record_last_lr()
end

return ChainedScheduler
