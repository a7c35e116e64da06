--- crater.lab.contestants: turns the lab's optimizer specs into optimizers.
-- A spec is a name ("adam"), a name with options ({"adam", lr = 0.01, label = "adam-hi"}),
-- an optimizer class made with `crater.optim.Optimizer:extend` ({Lion, lr = 3e-4} or
-- Lion), or an optimizer instance, used as a template: its class and its defaults.
-- Names and their presets:
--   sgd, momentum (SGD momentum 0.9), nag (SGD Nesterov 0.9), adagrad, rmsprop, adadelta,
--   adam, adamw, amsgrad, nadam, radam, adamax, asgd, rprop, lbfgs, adamwschedulefree,
--   sgdschedulefree, prodigy, muon (matrix parameters only), muon_adam (Muon on a
--   model's matrices, its Adam-style rule on the rest), lion, lamb, lars, adabelief,
--   adan, adafactor, and Torch7's cg, fista, cmaes, de.
-- Without an lr, a contestant takes the surface's suggested lr for its kind (`fn.lr.gradient`
-- for the SGD family, `fn.lr.step` for the adaptive ones), else the preset's.
local check_list = require "crater.list"
local crater = require "crater"
local M = {}

-- kind: "gradient" when the step is lr * gradient, "step" when it is about lr, "free" when
-- lr is only a scale (Adadelta, LBFGS): these keep their own default.
local presets = {
  sgd      = {class = "SGD", kind = "gradient", opts = {lr = 1e-3}},
  momentum = {class = "SGD", kind = "gradient", opts = {lr = 1e-3, momentum = 0.9}},
  nag      = {class = "SGD", kind = "gradient", opts = {lr = 1e-3, momentum = 0.9, nesterov = true}},
  asgd     = {class = "ASGD", kind = "gradient", opts = {lr = 1e-2}},
  adagrad  = {class = "Adagrad", kind = "step", opts = {lr = 1e-2}},
  rmsprop  = {class = "RMSprop", kind = "step", opts = {lr = 1e-2}},
  adadelta = {class = "Adadelta", kind = "free", opts = {lr = 1.0}},
  adam     = {class = "Adam", kind = "step", opts = {lr = 1e-3}},
  adamw    = {class = "AdamW", kind = "step", opts = {lr = 1e-3}},
  amsgrad  = {class = "Adam", kind = "step", opts = {lr = 1e-3, amsgrad = true}},
  nadam    = {class = "NAdam", kind = "step", opts = {lr = 2e-3}},
  radam    = {class = "RAdam", kind = "step", opts = {lr = 1e-3}},
  adamax   = {class = "Adamax", kind = "step", opts = {lr = 2e-3}},
  rprop    = {class = "Rprop", kind = "step", opts = {lr = 1e-2}},
  -- One LBFGS step is one iteration with a strong-Wolfe line search, not PyTorch's 20.
  -- schedule-free: built in train mode (contestants.build calls opt:train())
  adamwschedulefree = {class = "AdamWScheduleFree", kind = "step", opts = {lr = 2.5e-3}},
  sgdschedulefree   = {class = "SGDScheduleFree", kind = "gradient", opts = {lr = 1e-3}},
  -- Prodigy learns its own step size (lr is a multiplier); Muon needs matrix parameters
  prodigy  = {class = "Prodigy", kind = "free", opts = {lr = 1.0}},
  muon     = {class = "Muon", kind = "step", opts = {lr = 0.02}},
  -- on a model: Muon on the weight matrices, the Adam rule on the rest (see build)
  muon_adam = {class = "MuonWithAuxAdam", kind = "free", opts = {}},
  -- Lion's step is lr on every coordinate: give it a few times less lr than Adam's
  lion     = {class = "Lion", kind = "step", opts = {lr = 1e-4}},
  lamb     = {class = "LAMB", kind = "step", opts = {lr = 1e-3}},
  -- LARS leaves vectors (a surface's point) unscaled: there it is SGD with momentum
  lars     = {class = "LARS", kind = "gradient", opts = {lr = 1e-3}},
  adabelief = {class = "AdaBelief", kind = "step", opts = {lr = 1e-3}},
  adan     = {class = "Adan", kind = "step", opts = {lr = 1e-3}},
  -- Adafactor's relative step sets its own size (lr unset)
  adafactor = {class = "Adafactor", kind = "none", opts = {}},
  lbfgs    = {class = "LBFGS", kind = "free", opts = {lr = 1, max_iter = 1, line_search_fn = "strong_wolfe"}},
  -- Torch7's: one CG step is a run of at most 8 closure calls (a line search or two);
  -- FISTA one iteration; CMA-ES and DE one generation, the path their best point so far
  cg       = {class = "CG", kind = "free", opts = {maxEval = 8}},
  fista    = {class = "FISTA", kind = "free", opts = {maxiter = 1, L = 1}},
  cmaes    = {class = "CMAES", kind = "free", opts = {sigma = 0.5}},
  de       = {class = "DE", kind = "free", opts = {}},
}
local names = {"sgd", "momentum", "nag", "adagrad", "rmsprop", "adadelta", "adam", "adamw",
               "amsgrad", "nadam", "radam", "adamax", "asgd", "rprop", "lbfgs", "adamwschedulefree",
               "sgdschedulefree", "prodigy", "muon", "muon_adam", "lion", "lamb", "lars", "adabelief", "adan",
               "adafactor", "cg", "fista", "cmaes", "de"}

--- The known optimizer names, in a stable order.
function M.names() return {table.unpack(names)} end

--- The built-in names used by "all" (every preset but lbfgs and amsgrad, which is Adam).
function M.all() return {"sgd", "momentum", "nag", "adagrad", "rmsprop", "adadelta", "adam", "adamw",
  "nadam", "radam", "adamax", "asgd", "rprop"} end

local function is_class(v)
  return type(v) == "table" and type(v.update) == "function" and type(v.defaults) == "table"
end

local function unknown(who, name)
  error(string.format("%s: unknown optimizer '%s' (known: %s; or an optimizer class made with "
    .. "crater.optim.Optimizer:extend)", who, tostring(name), table.concat(names, ", ")), 0)
end

--- Resolves one spec into `{label=, class=, opts=, kind=}` without building anything.
-- Options other than `label` and `schedule` (this contestant's own lr schedule, see
-- crater.lab.schedule) are passed to the optimizer; an unknown option is the optimizer's
-- own error when it is built.
-- @param spec a name, `{name_or_class, opt = value, ...}`, a class or an instance
-- @param fn the test function (for its suggested lrs), may be nil
-- @param who the function name to put in errors
function M.resolve(spec, fn, who)
  who = who or "race"
  local head, extra = spec, {}
  if type(spec) == "table" and not is_class(spec) and getmetatable(spec) == nil then
    head = spec[1]
    for k, v in pairs(spec) do
      if type(k) == "string" then extra[k] = v end
    end
    if head == nil then error(who .. ": an optimizer spec table needs its name or class first: {\"adam\", lr = 0.01}", 0) end
  end
  local label, class, opts, kind = extra.label, nil, {}, "step"
  local explicit, schedule = extra.label ~= nil, extra.schedule
  extra.label, extra.schedule = nil, nil
  if type(head) == "string" then
    local p = presets[head:lower()]
    if not p then unknown(who, head) end
    class, kind, label = crater.optim[p.class], p.kind, label or head:lower()
    for k, v in pairs(p.opts) do opts[k] = v end
  elseif is_class(head) then
    local mt = getmetatable(head)
    if mt and mt.__index == head then     -- an instance: its class and its options
      class = mt
      for k, v in pairs(head.defaults) do opts[k] = v end
    else
      class = head
    end
    label = label or tostring(class.__name):lower()
  else
    error(string.format("%s: an optimizer must be a name, {name, options...}, or an optimizer class; got %s",
      who, type(head)), 0)
  end
  local user_lr = extra.lr ~= nil or (type(head) ~= "string" and opts.lr ~= nil)
  for k, v in pairs(extra) do opts[k] = v end
  if not user_lr and fn and fn.lr and fn.lr[kind] then opts.lr = fn.lr[kind] end
  if opts.lr ~= nil and type(opts.lr) ~= "number" then
    error(string.format("%s: %s's lr must be a number, got %s", who, label, type(opts.lr)), 0)
  end
  local c = {label = label, class = class, opts = opts, kind = kind,
             preset = type(head) == "string" and head:lower() or nil}
  if schedule ~= nil then
    c.schedule = require("crater.lab.schedule").resolve(schedule, who)
    if not explicit and c.schedule then c.label = label .. "+" .. c.schedule.label end
  end
  return c
end

--- Resolves a list of specs and makes the labels unique ("adam", "adam#2", ...).
-- A string "a,b,c" is split at commas; "all" stands for M.all().
function M.resolve_all(specs, fn, who)
  if type(specs) == "string" then
    local list = {}
    for w in specs:gmatch("[^,%s]+") do
      if w == "all" then for _, n in ipairs(M.all()) do list[#list + 1] = n end
      else list[#list + 1] = w end
    end
    specs = list
  end
  if type(specs) ~= "table" or check_list(specs, who or "race", "optimizers", nil, 0) == 0 then
    error((who or "race") .. ": optimizers must be a non-empty list, e.g. {\"sgd\", {\"adam\", lr = 0.01}}", 0)
  end
  local out, seen = {}, {}
  for i, s in ipairs(specs) do
    local c = M.resolve(s, fn, who)
    if seen[c.label] then
      seen[c.label] = seen[c.label] + 1
      c.label = c.label .. "#" .. seen[c.label]
    else
      seen[c.label] = 1
    end
    out[i] = c
  end
  return out
end

--- Builds the optimizer of a resolved contestant over params.
-- MuonWithAuxAdam given a plain list: its matrices in a Muon group, the rest in the other
local function muon_groups(params)
  local mats, rest = {}, {}
  for _, p in ipairs(params) do
    if type(p) ~= "userdata" then return params end   -- already groups
    table.insert(p:dim() >= 2 and mats or rest, p)
  end
  local groups = {}
  if #mats > 0 then groups[#groups + 1] = {params = mats, use_muon = true} end
  if #rest > 0 then groups[#groups + 1] = {params = rest, use_muon = false} end
  return groups
end

function M.build(c, params, who)
  if c.class == crater.optim.MuonWithAuxAdam and type(params) == "table" then params = muon_groups(params) end
  local ok, opt = pcall(c.class, params, c.opts)
  if not ok then
    error(string.format("%s: %s: %s", who or "race", c.label, (tostring(opt):gsub("^[^:]*:%d+: ", ""))), 0)
  end
  -- Schedule-free optimizers start in eval mode; a race trains them.
  if type(opt.train) == "function" then opt:train() end
  -- Record every option the optimizer ended up with (the defaults it filled in too),
  -- not the keys it keeps for itself in its groups (group_keys).
  local g, own = opt.param_groups[1], opt.group_keys or {}
  c.settings = {}
  for k, v in pairs(g) do
    if k ~= "params" and k ~= "initial_lr" and not own[k] then c.settings[k] = v end
  end
  return opt
end

local function lua_value(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "number" then      -- the shortest text that reads back as the same number
    local t = string.format("%.15g", v)
    return tonumber(t) == v and t or string.format("%.17g", v)
  end
  if type(v) == "table" then
    local s = {}
    for i, x in ipairs(v) do s[i] = lua_value(x) end
    return "{" .. table.concat(s, ", ") .. "}"
  end
  return tostring(v)
end

--- A contestant record as the Lua spec that rebuilds it, e.g. `{"adam", lr = 0.02, ...}`.
function M.spec_string(rec)
  local keys = {}
  for k in pairs(rec.settings or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {rec.preset and string.format("%q", rec.preset) or (rec.class_name .. " --[[ your Lua class ]]")}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. " = " .. lua_value(rec.settings[k]) end
  parts[#parts + 1] = "label = " .. string.format("%q", rec.label)
  return "{" .. table.concat(parts, ", ") .. "}"
end

--- A one-line, sorted "k=v" description of options.
function M.describe(opts)
  local keys = {}
  for k in pairs(opts or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = opts[k]
    if type(v) == "table" then
      local s = {}
      for i, x in ipairs(v) do s[i] = tostring(x) end
      v = "{" .. table.concat(s, ",") .. "}"
    elseif type(v) == "number" then
      v = string.format("%.6g", v)
    end
    parts[#parts + 1] = k .. "=" .. tostring(v)
  end
  return table.concat(parts, " ")
end

return M
