-- The Transformer's learning-rate schedule ("Attention Is All You Need", section 5.3),
-- written two ways: as a LambdaLR function and as a subclass of LRScheduler.
--   lr(step) = d_model^-0.5 * min(step^-0.5, step * warmup_steps^-1.5),  step = t + 1
-- It rises linearly for warmup_steps steps, then decays as 1/sqrt(step).
-- Run: lua5.4 examples/custom_schedule.lua   (or: build/crater examples/custom_schedule.lua)
if not package.path:find("lua/?.lua;", 1, true) then
  package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
end
local lr_scheduler = require "crater.optim.lr_scheduler"

local d_model, warmup = 512, 4000

-- 1. A function of the epoch (PyTorch counts from 0, the paper from 1), scaling the
--    optimizer's lr, which we set to 1 so the factor is the lr.
local function noam(epoch)
  local step = epoch + 1
  return d_model ^ -0.5 * math.min(step ^ -0.5, step * warmup ^ -1.5)
end

-- 2. A scheduler class: options with defaults, and get_lr() giving one lr per group.
local NoamLR = lr_scheduler.LRScheduler:extend("NoamLR", {d_model = 512, warmup_steps = 4000})
function NoamLR:get_lr()
  local step = self.last_epoch + 1
  local f = self.d_model ^ -0.5 * math.min(step ^ -0.5, step * self.warmup_steps ^ -1.5)
  local lrs = {}
  for i, base in ipairs(self.base_lrs) do lrs[i] = base * f end
  return lrs
end

-- trace() runs each schedule on a stand-in optimizer and returns the lr of every step.
local steps = 20000
local a = lr_scheduler.trace(function(opt) return lr_scheduler.LambdaLR(opt, noam) end, steps, {lr = 1})
local b = lr_scheduler.trace(function(opt)
  return NoamLR(opt, {d_model = d_model, warmup_steps = warmup})
end, steps, {lr = 1})

print(string.format("%6s  %-14s %-14s", "step", "LambdaLR", "NoamLR"))
for _, t in ipairs {1, 2, 3, 4, 5, 10, 100, 1000, 2000, 4000, 8000, 16000, 20000} do
  print(string.format("%6d  %-14.6e %-14.6e", t, a[t], b[t]))
end

-- On a real run, build NoamLR on your optimizer and call s:step() after each opt:step().
