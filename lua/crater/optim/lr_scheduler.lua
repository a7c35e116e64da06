--- crater.optim.lr_scheduler: learning-rate schedulers, pure Lua.
-- PyTorch 1.13's set, with its names, arguments and numbers: LambdaLR, MultiplicativeLR,
-- StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR,
-- CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR (the 1cycle
-- policy), SequentialLR, ChainedScheduler, ReduceLROnPlateau; the classic schedules
-- PowerLR, ExponentialDecayLR, PiecewiseConstantLR, WarmupCosineLR; the base class
-- LRScheduler (alias _LRScheduler) for custom schedules; and `trace` for plotting.
--
-- Each is built as `S(opt, {...})` with PyTorch's argument names as keys and driven by
-- `s:step()` after each `opt:step()`; `s:get_last_lr()`, `s:state_dict()`,
-- `s:load_state_dict(sd)`.
-- @usage local lr_scheduler = crater.optim.lr_scheduler
-- local s = lr_scheduler.StepLR(opt, {step_size = 30, gamma = 0.1})
-- for epoch = 1, 100 do train(opt) ; s:step() end
local B = require "crater.optim.lr_scheduler.util"

local M = {}
M.LRScheduler = require "crater.optim.lr_scheduler.base"
M._LRScheduler = M.LRScheduler      -- PyTorch 1.13's name

-- One class per file, under lr_scheduler/.
for name, file in pairs {
  LambdaLR = "lambda_lr", MultiplicativeLR = "multiplicative_lr", StepLR = "step_lr",
  MultiStepLR = "multi_step_lr", ConstantLR = "constant_lr", LinearLR = "linear_lr",
  ExponentialLR = "exponential_lr", PolynomialLR = "polynomial_lr",
  CosineAnnealingLR = "cosine_annealing_lr",
  CosineAnnealingWarmRestarts = "cosine_annealing_warm_restarts", CyclicLR = "cyclic_lr",
  OneCycleLR = "one_cycle_lr", SequentialLR = "sequential_lr",
  ChainedScheduler = "chained_scheduler", ReduceLROnPlateau = "reduce_lr_on_plateau",
  PowerLR = "power_lr", ExponentialDecayLR = "exponential_decay_lr",
  PiecewiseConstantLR = "piecewise_constant_lr", WarmupCosineLR = "warmup_cosine_lr",
} do
  M[name] = require("crater.optim.lr_scheduler." .. file)
end

--- Makes a stand-in optimizer: `groups` param groups with lrs `lr` and SGD's momentum,
-- or Adam's betas when `betas` is given.
local function fake_optimizer(opts)
  local n = opts.groups ~= nil and B.integer("trace", "groups", opts.groups, 1)
            or (type(opts.lr) == "table" and B.list("trace", "lr", opts.lr)) or 1
  local groups = {}
  for i = 1, n do
    local lr = opts.lr or 0.1
    if type(lr) == "table" then lr = lr[i] end
    if type(lr) ~= "number" then B.fail("trace: lr must be a number or a list of %d numbers", n) end
    if opts.betas then
      groups[i] = {lr = lr, betas = {opts.betas[1], opts.betas[2]}}
    else
      groups[i] = {lr = lr, momentum = opts.momentum or 0.9}
    end
  end
  local defaults = opts.betas and {lr = groups[1].lr, betas = opts.betas}
                   or {lr = groups[1].lr, momentum = opts.momentum or 0.9}
  return {param_groups = groups, defaults = defaults}
end

--- Runs a schedule on a stand-in optimizer and returns the learning rates it sets, for
-- plotting. Entry i is the lr in effect during training step i: the lr after
-- construction and i - 1 calls of `s:step()` (the scheduler is stepped `steps` times).
-- Returns a flat list for one param group, else a list per group; and, as a second
-- result, the momentum (or betas[1]) in the same shape.
-- @param s_factory function(opt) returning a scheduler for the optimizer `opt`
-- @param steps the number of steps
-- @tparam[opt=0.1] number|{number,...} lr the initial lr (or one per group)
-- @tparam[opt=1] number groups the number of param groups (default: #lr for a list)
-- @tparam[opt=0.9] number momentum the groups' momentum
-- @tparam[opt] {number,number} betas make an Adam-like optimizer with these betas instead
-- @tparam[opt] function metric for ReduceLROnPlateau: metric(i) is passed to the i-th step
-- @usage local lrs = lr_scheduler.trace(function(opt)
--   return lr_scheduler.OneCycleLR(opt, {max_lr = 1, total_steps = 100}) end, 100)
function M.trace(s_factory, steps, opts)
  opts = opts or {}
  if not B.is_callable(s_factory) then
    B.fail("trace: s_factory must be a function(opt) returning a scheduler, got %s", B.show(s_factory))
  end
  steps = B.integer("trace", "steps", steps, 0)
  if opts.metric ~= nil and not B.is_callable(opts.metric) then
    B.fail("trace: metric must be a function, got %s", B.show(opts.metric))
  end
  local opt = fake_optimizer(opts)
  local s = s_factory(opt)
  if type(s) ~= "table" or not s._is_lr_scheduler then
    B.fail("trace: s_factory returned %s, not a scheduler", B.show(s))
  end
  local groups = opt.param_groups
  local lrs, moms = {}, {}
  for i = 1, #groups do lrs[i], moms[i] = {}, {} end
  for t = 1, steps do
    for i, g in ipairs(groups) do
      lrs[i][t] = g.lr
      moms[i][t] = g.betas and g.betas[1] or g.momentum
    end
    if opts.metric then s:step(opts.metric(t)) else s:step() end
  end
  if #groups == 1 then return lrs[1], moms[1] end
  return lrs, moms
end

return M
