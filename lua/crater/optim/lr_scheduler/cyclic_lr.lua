--- CyclicLR: cycles each group's lr between base_lr and max_lr (Smith, "Cyclical Learning
-- Rates for Training Neural Networks"), one cycle every step_size_up + step_size_down steps;
-- call `step()` after every batch. Modes: "triangular" (constant amplitude), "triangular2"
-- (amplitude halved each cycle), "exp_range" (amplitude times gamma^iteration), or any
-- `scale_fn` of the cycle number or the iteration. With cycle_momentum the momentum (or
-- Adam's betas[1], an addition of later PyTorch versions) cycles the opposite way.
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.CyclicLR.html
-- @usage local s = lr_scheduler.CyclicLR(opt, {base_lr = 0.01, max_lr = 0.1, step_size_up = 20})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local CyclicLR = LRScheduler:extend("CyclicLR")
CyclicLR.field_rules = {max_lrs = {"per_group", {"number"}}, total_size = {"number", 0, open = "lo"},
  step_ratio = {"number", 0, 1, open = "lo"}, mode = {"choice", "triangular", "triangular2", "exp_range"},
  gamma = {"number", 0, open = "lo"}, scale_mode = {"choice", "cycle", "iterations"},
  cycle_momentum = {"boolean"}, use_beta1 = {"boolean"},
  base_momentums = {"per_group", {"number"}, nil_ok = true}, max_momentums = {"per_group", {"number"}, nil_ok = true}}

--- Builds a CyclicLR; it sets each group's lr to base_lr (and momentum to base_momentum).
-- @param optimizer the optimizer
-- @tparam number|{number,...} base_lr lower lr bound (required; a number or one per group)
-- @tparam number|{number,...} max_lr upper lr bound (required)
-- @tparam[opt=2000] number step_size_up steps in the increasing half of a cycle
-- @tparam[opt=step_size_up] number step_size_down steps in the decreasing half
-- @tparam[opt="triangular"] string mode "triangular", "triangular2" or "exp_range"
-- @tparam[opt=1] number gamma the exp_range factor
-- @tparam[opt] function scale_fn custom scaling x -> [0, 1]; overrides mode
-- @tparam[opt="cycle"] string scale_mode "cycle" or "iterations": what scale_fn receives
-- @tparam[opt=true] boolean cycle_momentum cycle momentum (or betas[1]) inversely to the lr
-- @tparam[opt=0.8] number base_momentum lower momentum bound (number or one per group)
-- @tparam[opt=0.9] number max_momentum upper momentum bound (number or one per group)
-- @tparam[opt=-1] number last_epoch the index of the last batch, to resume
function CyclicLR:init(optimizer, opts)
  local who = "CyclicLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"base_lr", "max_lr", "step_size_up", "step_size_down", "mode",
                               "gamma", "scale_fn", "scale_mode", "cycle_momentum",
                               "base_momentum", "max_momentum"})
  local last_epoch = B.integer(who, "last_epoch", opts.last_epoch or -1, -1)
  -- Check everything before touching the optimizer.
  local base_lrs = B.per_group(who, "base_lr", opts.base_lr, optimizer)
  local max_lrs = B.per_group(who, "max_lr", opts.max_lr, optimizer)
  local up = B.positive(who, "step_size_up", opts.step_size_up or 2000) + 0.0
  local down = opts.step_size_down ~= nil and B.positive(who, "step_size_down", opts.step_size_down) + 0.0 or up
  local scale_fn = opts.scale_fn
  if scale_fn ~= nil and not B.is_callable(scale_fn) then
    B.fail("%s: scale_fn must be a function, got %s", who, B.show(scale_fn))
  end
  local mode = opts.mode or "triangular"
  if scale_fn == nil then B.choice(who, "mode", mode, {"triangular", "triangular2", "exp_range"}) end
  local gamma = B.number(who, "gamma", opts.gamma or 1.0)
  local scale_mode
  if scale_fn == nil then
    scale_mode = mode == "exp_range" and "iterations" or "cycle"
  else
    scale_mode = B.choice(who, "scale_mode", opts.scale_mode or "cycle", {"cycle", "iterations"})
  end
  local cycle_momentum = opts.cycle_momentum ~= false
  local kind, base_ms, max_ms
  if cycle_momentum then
    kind = B.momentum_kind(optimizer, "momentum")
    if kind == nil then
      B.fail("%s: the optimizer has no momentum or betas; pass cycle_momentum = false", who)
    end
    base_ms = B.per_group(who, "base_momentum", opts.base_momentum or 0.8, optimizer)
    max_ms = B.per_group(who, "max_momentum", opts.max_momentum or 0.9, optimizer)
  end
  if kind == "betas" then
    for i, g in ipairs(optimizer.param_groups) do
      if type(g.betas) ~= "table" then B.fail("%s: param_groups[%d].betas is not a table", who, i) end
    end
  end

  self.max_lrs = max_lrs
  self.total_size = up + down
  self.step_ratio = up / self.total_size
  self.mode, self.gamma, self.scale_mode = mode, gamma, scale_mode
  self._scale_fn_custom = scale_fn
  self.cycle_momentum = cycle_momentum
  self.use_beta1 = kind == "betas"
  local groups = optimizer.param_groups
  if last_epoch == -1 then
    for i, g in ipairs(groups) do g.lr = base_lrs[i] end
  end
  if cycle_momentum then
    if last_epoch == -1 then
      for i, g in ipairs(groups) do B.set_momentum(g, base_ms[i], self.use_beta1) end
    end
    self.base_momentums = {}
    for i, g in ipairs(groups) do
      self.base_momentums[i] = self.use_beta1 and g.betas[1] or g.momentum
    end
    self.max_momentums = max_ms
  end
  LRScheduler.init(self, optimizer, opts)
  self.base_lrs = base_lrs
end

--- The scale applied to the amplitude at x (a cycle number or an iteration).
function CyclicLR:scale_fn(x)
  if self._scale_fn_custom then return self._scale_fn_custom(x) end
  if self.mode == "triangular" then return 1. end
  if self.mode == "triangular2" then return 1 / (2. ^ (x - 1)) end
  return self.gamma ^ x
end

function CyclicLR:get_lr()
  local cycle = math.floor(1 + self.last_epoch / self.total_size)
  local x = 1. + self.last_epoch / self.total_size - cycle
  local scale_factor
  if x <= self.step_ratio then
    scale_factor = x / self.step_ratio
  else
    scale_factor = (x - 1) / (self.step_ratio - 1)
  end
  local at = self.scale_mode == "cycle" and cycle or self.last_epoch
  local s = self:scale_fn(at)
  if type(s) ~= "number" then
    B.fail("CyclicLR: scale_fn returned %s for %s; expected a number", B.show(s), tostring(at))
  end
  local lrs = {}
  for i, base_lr in ipairs(self.base_lrs) do
    local base_height = (self.max_lrs[i] - base_lr) * scale_factor
    lrs[i] = base_lr + base_height * s
  end
  if self.cycle_momentum then
    for i, g in ipairs(self.optimizer.param_groups) do
      local base_height = (self.max_momentums[i] - self.base_momentums[i]) * scale_factor
      B.set_momentum(g, self.max_momentums[i] - base_height * s, self.use_beta1)
    end
  end
  return lrs
end

return CyclicLR
