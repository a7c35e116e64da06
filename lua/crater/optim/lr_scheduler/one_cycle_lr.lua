--- OneCycleLR, the 1cycle policy (Smith & Topin, "Super-Convergence"): each group's lr
-- rises from max_lr/div_factor to max_lr over the first pct_start of total_steps, then
-- anneals (cosine or linear) to max_lr/(div_factor*final_div_factor), while the momentum
-- (or Adam's betas[1]) moves the opposite way. Call `step()` after every batch; stepping
-- past total_steps is an error, as in PyTorch. three_phase gives the paper's shape.
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.OneCycleLR.html
-- @usage local s = lr_scheduler.OneCycleLR(opt, {max_lr = 0.1, total_steps = 1000})
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local OneCycleLR = LRScheduler:extend("OneCycleLR")
OneCycleLR.field_rules = {total_steps = {"integer", 1}, anneal_strategy = {"choice", "cos", "linear"},
  cycle_momentum = {"boolean"}, use_beta1 = {"boolean"}}

--- Builds a OneCycleLR; it sets each group's initial_lr, max_lr and min_lr (and
-- max_momentum, base_momentum), as PyTorch does.
-- @param optimizer the optimizer
-- @tparam number|{number,...} max_lr peak lr (required; a number or one per group)
-- @tparam[opt] number total_steps length of the cycle; or give epochs and steps_per_epoch
-- @tparam[opt] number epochs with steps_per_epoch, total_steps = epochs * steps_per_epoch
-- @tparam[opt] number steps_per_epoch
-- @tparam[opt=0.3] number pct_start fraction of the cycle spent raising the lr
-- @tparam[opt="cos"] string anneal_strategy "cos" or "linear"
-- @tparam[opt=true] boolean cycle_momentum cycle momentum (or betas[1]) inversely to the lr
-- @tparam[opt=0.85] number base_momentum momentum at the lr peak (number or one per group)
-- @tparam[opt=0.95] number max_momentum momentum at the start and end (number or one per group)
-- @tparam[opt=25] number div_factor initial_lr = max_lr / div_factor
-- @tparam[opt=1e4] number final_div_factor min_lr = initial_lr / final_div_factor
-- @tparam[opt=false] boolean three_phase rise, fall back to initial_lr, then annihilate
--   (the paper's shape) instead of fastai's two phases
-- @tparam[opt=-1] number last_epoch the index of the last batch, to resume
function OneCycleLR:init(optimizer, opts)
  local who = "OneCycleLR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"max_lr", "total_steps", "epochs", "steps_per_epoch", "pct_start",
                               "anneal_strategy", "cycle_momentum", "base_momentum",
                               "max_momentum", "div_factor", "final_div_factor", "three_phase"})
  local last_epoch = B.integer(who, "last_epoch", opts.last_epoch or -1, -1)
  local total_steps
  if opts.total_steps == nil and opts.epochs == nil and opts.steps_per_epoch == nil then
    B.fail("%s: define either total_steps or (epochs and steps_per_epoch)", who)
  elseif opts.total_steps ~= nil then
    total_steps = B.integer(who, "total_steps", opts.total_steps, 1)
  else
    total_steps = B.integer(who, "epochs", opts.epochs, 1)
                * B.integer(who, "steps_per_epoch", opts.steps_per_epoch, 1)
  end
  local pct_start = B.number(who, "pct_start", opts.pct_start or 0.3)
  if pct_start < 0 or pct_start > 1 then
    B.fail("%s: pct_start must be a number between 0 and 1, got %s", who, B.show(pct_start))
  end
  local strategy = B.choice(who, "anneal_strategy", opts.anneal_strategy or "cos", {"cos", "linear"})
  local max_lrs = B.per_group(who, "max_lr", opts.max_lr, optimizer)
  local div_factor = B.number(who, "div_factor", opts.div_factor or 25.)
  local final_div_factor = B.number(who, "final_div_factor", opts.final_div_factor or 1e4)
  local cycle_momentum = opts.cycle_momentum ~= false
  local kind, max_ms, base_ms
  if cycle_momentum then
    kind = B.momentum_kind(optimizer, "betas")
    if kind == nil then
      B.fail("%s: the optimizer has no momentum or betas; pass cycle_momentum = false", who)
    end
    max_ms = B.per_group(who, "max_momentum", opts.max_momentum or 0.95, optimizer)
    base_ms = B.per_group(who, "base_momentum", opts.base_momentum or 0.85, optimizer)
    if kind == "betas" then
      for i, g in ipairs(optimizer.param_groups) do
        if type(g.betas) ~= "table" then B.fail("%s: param_groups[%d].betas is not a table", who, i) end
      end
    end
  end
  if last_epoch ~= -1 then
    local need = cycle_momentum and {"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"}
                 or {"initial_lr", "max_lr", "min_lr"}
    for i, g in ipairs(optimizer.param_groups) do
      for _, k in ipairs(need) do
        if g[k] == nil then B.fail("%s: param_groups[%d].%s is needed to resume", who, i, k) end
      end
    end
  end

  self.total_steps = total_steps
  if opts.three_phase then
    self._schedule_phases = {
      {end_step = pct_start * total_steps - 1, start_lr = "initial_lr", end_lr = "max_lr",
       start_momentum = "max_momentum", end_momentum = "base_momentum"},
      {end_step = 2 * pct_start * total_steps - 2, start_lr = "max_lr", end_lr = "initial_lr",
       start_momentum = "base_momentum", end_momentum = "max_momentum"},
      {end_step = total_steps - 1, start_lr = "initial_lr", end_lr = "min_lr",
       start_momentum = "max_momentum", end_momentum = "max_momentum"},
    }
  else
    self._schedule_phases = {
      {end_step = pct_start * total_steps - 1, start_lr = "initial_lr", end_lr = "max_lr",
       start_momentum = "max_momentum", end_momentum = "base_momentum"},
      {end_step = total_steps - 1, start_lr = "max_lr", end_lr = "min_lr",
       start_momentum = "base_momentum", end_momentum = "max_momentum"},
    }
  end
  self.anneal_strategy = strategy
  self.cycle_momentum = cycle_momentum
  self.use_beta1 = kind == "betas"
  if last_epoch == -1 then
    for i, g in ipairs(optimizer.param_groups) do
      g.initial_lr = max_lrs[i] / div_factor
      g.max_lr = max_lrs[i]
      g.min_lr = g.initial_lr / final_div_factor
      if cycle_momentum then
        B.set_momentum(g, max_ms[i], self.use_beta1)
        g.max_momentum = max_ms[i]
        g.base_momentum = base_ms[i]
      end
    end
  end
  LRScheduler.init(self, optimizer, opts)
end

-- Cosine anneal from start to end as pct goes from 0 to 1, and the linear one.
local function anneal_cos(start, stop, pct)
  local cos_out = math.cos(math.pi * pct) + 1
  return stop + (start - stop) / 2.0 * cos_out
end
local function anneal_linear(start, stop, pct)
  return (stop - start) * pct + start
end

--- Steps once; raises (leaving scheduler and optimizer untouched) past total_steps.
function OneCycleLR:step(epoch)
  if epoch ~= nil then B.epoch("OneCycleLR", epoch) end
  local next_epoch = epoch or self.last_epoch + 1
  if next_epoch > self.total_steps then
    B.fail("OneCycleLR: tried to step %d times; the specified number of total steps is %d",
         next_epoch + 1, self.total_steps)
  end
  LRScheduler.step(self, epoch)
end

function OneCycleLR:get_lr()
  local anneal = self.anneal_strategy == "cos" and anneal_cos or anneal_linear
  local step_num = self.last_epoch
  local phases = self._schedule_phases
  local lrs = {}
  for i, g in ipairs(self.optimizer.param_groups) do
    local start_step = 0
    local lr, momentum
    for p, phase in ipairs(phases) do
      local end_step = phase.end_step
      if step_num <= end_step or p == #phases then
        local pct = (step_num - start_step) / (end_step - start_step)
        lr = anneal(g[phase.start_lr], g[phase.end_lr], pct)
        if self.cycle_momentum then
          momentum = anneal(g[phase.start_momentum], g[phase.end_momentum], pct)
        end
        break
      end
      start_step = phase.end_step
    end
    lrs[i] = lr
    if self.cycle_momentum then B.set_momentum(g, momentum, self.use_beta1) end
  end
  return lrs
end

return OneCycleLR
