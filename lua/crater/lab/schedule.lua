--- crater.lab.schedule: the lab's schedule specs, stepped once per optimizer step.
-- A schedule is one of
--   "cosine"         CosineAnnealingLR to 0 over the run
--   "step"           StepLR: lr x 0.1 after each third of the run
--   "exponential"    ExponentialLR with gamma such that lr ends 100x smaller
--   "warmup_cosine"  WarmupCosineLR: 10% linear warm-up, then cosine to 0
--   "onecycle"       OneCycleLR peaking at the optimizer's lr
--   {"StepLR", step_size = 100, gamma = 0.5}   any crater.optim.lr_scheduler class by name
--   function(opt, total_steps) return scheduler end
-- @usage crater.lab.race{fn = "rosenbrock", optimizers = {"sgd"}, schedule = "cosine"}
local crater = require "crater"
local M = {}


local short = {
  cosine = function(opt, n) return crater.optim.lr_scheduler.CosineAnnealingLR(opt, {T_max = n}) end,
  step = function(opt, n) return crater.optim.lr_scheduler.StepLR(opt, {step_size = math.max(1, n // 3), gamma = 0.1}) end,
  exponential = function(opt, n) return crater.optim.lr_scheduler.ExponentialLR(opt, {gamma = 0.01 ^ (1 / n)}) end,
  warmup_cosine = function(opt, n)
    return crater.optim.lr_scheduler.WarmupCosineLR(opt, {warmup_steps = math.max(1, n // 10), total_steps = n + 1})
  end,
  onecycle = function(opt, n)
    return crater.optim.lr_scheduler.OneCycleLR(opt, {max_lr = opt.param_groups[1].lr, total_steps = n + 1})
  end,
}

--- The short schedule names.
function M.names() return {"cosine", "step", "exponential", "warmup_cosine", "onecycle"} end

--- Resolves a schedule spec into `{label=, make=function(opt, total_steps)}` (nil for none).
-- @param spec see the module comment
-- @param who function name for errors
function M.resolve(spec, who)
  who = who or "race"
  if spec == nil or spec == false or spec == "none" then return nil end
  if type(spec) == "string" then
    local f = short[spec]
    if not f then
      error(string.format("%s: unknown schedule '%s' (known: %s, none; or {\"ClassName\", opts...} "
        .. "or a function(opt, total_steps))", who, spec, table.concat(M.names(), ", ")), 0)
    end
    return {label = spec, make = f}
  elseif type(spec) == "function" then
    return {label = "custom function", make = spec}
  elseif type(spec) == "table" and type(spec[1]) == "string" then
    local cls = crater.optim.lr_scheduler[spec[1]]
    if type(cls) ~= "table" then
      error(string.format("%s: crater.optim.lr_scheduler has no class '%s'", who, spec[1]), 0)
    end
    local opts = {}
    for k, v in pairs(spec) do if type(k) == "string" then opts[k] = v end end
    local label = spec[1] .. "(" .. require("crater.lab.contestants").describe(opts) .. ")"
    return {label = label, make = function(opt) return cls(opt, opts) end}
  end
  error(string.format("%s: schedule must be a name, {\"ClassName\", opts...} or a function, got %s",
    who, type(spec)), 0)
end

return M
