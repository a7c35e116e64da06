--- Optimizer, the base class of every optimizer, built in or written in Lua.
-- An optimizer holds `param_groups` (each a table of hyper-parameters plus `params`, a
-- list of tensors), `state` (a table per parameter, keyed by the tensor) and `defaults`.
-- `step()` checks every group and gradient, then, under `crater.no_grad`, calls
-- `update(p, grad, state, group)` for each parameter that has a gradient. The built-ins
-- are classes made with `extend` whose `update` calls one fused C kernel; a new optimizer
-- is the same thing with an `update` written with in-place tensor methods.
-- Hyper-parameters are read from the group at every step, so a scheduler (or you) can
-- change `group.lr` or `group.betas` between steps.
-- https://pytorch.org/docs/1.13/optim.html
-- @usage local Sign = crater.optim.Optimizer:extend("SignSGD", {lr = 0.01})
-- function Sign:update(p, g, state, group) p:add_(g:sign(), -group.lr) end
-- local opt = Sign(model:parameters(), {lr = 0.1})

local core = require "crater.core"
local internal = core.internal
local rules = require "crater.optim.rules"
local step_cache = require "crater.optim.step_cache"
local list = require "crater.list"
local no_grad, checked_grad, clear_grads = core.no_grad, internal.checked_grad, internal.clear_grads
local fast_step = internal.fast_step

local Optimizer = {__name = "Optimizer", defaults = {}}
Optimizer.__index = Optimizer

--- Marks a default that the user must give (SGD's lr, as PyTorch 1.13's `required`).
Optimizer.required = setmetatable({}, {__tostring = function() return "<required>" end})

local crater = require "crater"

local is_tensor = require("crater.core").is_tensor
Optimizer.is_tensor = is_tensor

-- Copies plain tables (betas, etas) so groups never share them; tensors and tables
-- with a metatable (Optimizer.required) are kept.
local function copy(v)
  if type(v) ~= "table" or getmetatable(v) ~= nil then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end
Optimizer.copy = copy

local show, finite = rules.show, rules.finite

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  return table.concat(keys, ", ")
end

local shape_str = require("crater.pretty").shape_str

local function same_shape(a, b)
  if a:dim() ~= b:dim() then return false end
  for d = 1, a:dim() do
    if a:size(d) ~= b:size(d) then return false end
  end
  return true
end
Optimizer.same_shape = same_shape

local add_group   -- defined below, used by new

-- Option rules (crater.optim.rules): a class's `rules` maps each option to a rule that
-- `validate` checks at construction, in add_param_group and load_state_dict, and at the
-- first step after an option changed.  An option without a rule gets one from its
-- default: a finite number, a boolean, or a list of as many finite numbers.
local BETA = {"number", 0, 1, open = "hi", what = "beta parameter"}
Optimizer.BETAS = {"list", BETA, BETA}
Optimizer.rules = {lr = {"number", 0, what = "learning rate"}, eps = {"number", 0, what = "epsilon value"},
  weight_decay = {"number", 0, what = "weight_decay value"}}

local function default_rule(d)
  if type(d) == "number" then return {"number"} end
  if type(d) == "boolean" then return {"boolean"} end
  if type(d) == "table" and getmetatable(d) == nil and #d > 0 then
    local r = {"list"}
    for i = 1, #d do
      if type(d[i]) ~= "number" then return nil end
      r[i + 1] = {"number"}
    end
    return r
  end
end

--- Raises "<Class>: <label> must be ..., got <v>" unless v satisfies `rule`.
function Optimizer:check_option(label, v, rule) rules.check(self.__name, label, v, rule) end

--- Makes a new optimizer class: the defaults table lists every option with its default.
-- The class is called as `Class(params, opts)`; give it an `update(p, grad, state, group)`
-- method, and optionally `validate(group)` (call the parent's first), `init_state(p,
-- state, group)` (makes what update needs before any parameter of the step changes; it
-- runs while a parameter has no state, after its group's options changed and after
-- load_state_dict) and `state_keys` (the state entries a saved state must have, for
-- `load_state_dict`).  A class whose step needs work across parameters gives
-- `begin_step(grads)`: it runs after the states are made and before the first update
-- (grads as check_step returns them), and returning false skips the updates (Prodigy
-- reduces over every parameter there; the schedule-free classes set per-group scalars).
-- @param name the class name, used in error messages ("Lion: lr must be ...")
-- @param defaults table of option = default value (`Optimizer.required` for none)
-- @param[opt] own_rules table of option = rule (see crater.optim.rules), added to the parent's
-- @usage local Lion = crater.optim.Optimizer:extend("Lion", {lr = 1e-4, betas = {0.9, 0.99}, weight_decay = 0})
function Optimizer:extend(name, defaults, own_rules)
  assert(type(name) == "string", "extend: name must be a string")
  local cls = {}
  for k, v in pairs(self) do
    if type(k) == "string" and k:sub(1, 2) == "__" then cls[k] = v end
  end
  cls.__index, cls.__name, cls.super = cls, name, self
  cls.defaults = copy(defaults or {})
  local merged = {}
  for k, r in pairs(self.rules or {}) do merged[k] = r end
  for k, r in pairs(own_rules or {}) do merged[k] = r end
  for k, d in pairs(cls.defaults) do
    if merged[k] == nil then merged[k] = default_rule(d) end
  end
  cls.rules = merged
  return setmetatable(cls, {
    __index = self,
    __call = function(c, ...) return c.new(c, ...) end,
    __tostring = function() return "optimizer class " .. name end,
  })
end

--- Builds an optimizer (usually called as `Class(params, opts)`).
-- @param params a list of tensors, or a list of groups `{ {params = {...}, lr = ...}, ... }`
-- @param opts options overriding the class defaults (unknown names are an error)
function Optimizer.new(cls, params, opts)
  local name = cls.__name
  opts = opts or {}
  if type(opts) ~= "table" then error(name .. ": options must be a table, got " .. type(opts), 3) end
  local defaults = copy(cls.defaults)
  for k, v in pairs(opts) do
    if defaults[k] == nil then
      error(string.format("%s: unknown option '%s' (the options are %s)", name, tostring(k),
        sorted_keys(cls.defaults)), 3)
    end
    defaults[k] = copy(v)
  end
  local self = setmetatable({defaults = defaults, param_groups = {}, state = {}}, cls)
  if is_tensor(params) then params = {params} end
  if type(params) ~= "table" then
    error(name .. ": params must be a list of tensors or of param groups, got " .. type(params), 3)
  end
  local n = list(params, name, "params", nil, 3)
  if n == 0 then error(name .. ": got an empty parameter list", 3) end
  if is_tensor(params[1]) then params, n = {{params = params}}, 1 end
  for i = 1, n do
    local ok, err = pcall(add_group, self, params[i])
    if not ok then error(err, 3) end
  end
  if cls.init then
    local ok, err = pcall(cls.init, self)
    if not ok then error(err, 3) end
  end
  return self
end

function add_group(self, group)
  local name = self.__name
  if type(group) ~= "table" then error(name .. ": a param group must be a table", 0) end
  local params = group.params
  if is_tensor(params) then params = {params} end
  if type(params) ~= "table" then error(name .. ": param group has no params list", 0) end
  local g = {}
  for k, v in pairs(group) do
    if k ~= "params" then
      if self.defaults[k] == nil and not Optimizer.scheduler_keys[k] and not self.group_keys[k] then
        error(string.format("%s: param group has unknown option '%s' (the options are %s)", name,
          tostring(k), sorted_keys(self.defaults)), 0)
      end
      g[k] = copy(v)
    end
  end
  for k, v in pairs(self.defaults) do
    if g[k] == nil then g[k] = copy(v) end
  end
  for k, init in pairs(self.group_keys) do
    if g[k] == nil then g[k] = init(g) end
  end
  local seen = {}
  for _, other in ipairs(self.param_groups) do
    for _, p in ipairs(other.params) do seen[p] = true end
  end
  g.params = {}
  for i = 1, list(params, name, "params") do
    local p = params[i]
    if not is_tensor(p) then
      error(string.format("%s: params[%d] is a %s, not a tensor", name, i, type(p)), 0)
    end
    if not p.is_leaf then error(string.format("%s: can't optimize a non-leaf tensor (params[%d])", name, i), 0) end
    if not p.requires_grad then
      error(string.format("%s: params[%d] does not require grad", name, i), 0)
    end
    local dt = p:dtype()
    if dt ~= "float32" and dt ~= "float64" then
      error(string.format("%s: params[%d] is %s; optimizers need float32 or float64", name, i, dt), 0)
    end
    if seen[p] then
      error(string.format("%s: params[%d] appears more than once in the optimizer's groups", name, i), 0)
    end
    seen[p] = true
    g.params[i] = p
  end
  self:validate(g)
  self.param_groups[#self.param_groups + 1] = g
  return g
end

--- Adds a parameter group; options it does not give take the optimizer's defaults.
-- Raises if a tensor is not a leaf requiring grad or already belongs to a group, or if
-- an option is out of range.
-- @param group `{params = {t1, t2, ...}, lr = ..., ...}` (params may be a single tensor)
function Optimizer:add_param_group(group)
  local ok, g = pcall(add_group, self, group)
  if not ok then error(g, 2) end
  return g
end

--- Keys a scheduler keeps in a param group next to the options (PyTorch's names): a
-- group given to the optimizer or found in a state_dict may hold them.
Optimizer.scheduler_keys = {initial_lr = true, max_lr = true, min_lr = true, max_momentum = true,
  base_momentum = true}

--- Keys an optimizer keeps in its param groups beside the options (Prodigy's `d`, the
-- schedule-free step count `k`), as the reference implementations do: key -> a function
-- of the new group returning its first value (nil: the key appears at the first step).
-- A group given to the optimizer or found in a state_dict may hold them.
Optimizer.group_keys = {}

--- Raises unless every option of the group satisfies its rule (see `rules`) and nothing
-- is still required.  Subclasses with options that constrain each other call it first,
-- then check those.
function Optimizer:validate(group)
  for k, v in pairs(group) do
    if v == Optimizer.required then error(string.format("%s: %s is required", self.__name, tostring(k)), 0) end
  end
  local own, keys = self.rules, {}
  for k in pairs(self.defaults) do keys[#keys + 1] = k end
  table.sort(keys)   -- the first bad option in name order: the same message every run
  for _, k in ipairs(keys) do
    if own[k] then rules.check(self.__name, k, group[k], own[k]) end
  end
end

--- Raises "<Name>: <key> must be in [lo, hi], got v" (hi excluded when open_hi) unless
-- group[key] (or its entry `index`) is a finite number in range.
function Optimizer:check_range(group, key, lo, hi, open_hi, index)
  local v = group[key]
  if index then v = type(v) == "table" and v[index] or nil end
  self:check_option(index and string.format("%s[%d]", key, index) or key, v,
    {"number", lo, hi ~= math.huge and hi or nil, open = open_hi and "hi" or nil})
end

--- Raises unless group.betas is a list of two numbers in [0, 1).
function Optimizer:check_betas(group)
  self:check_option("betas", group.betas, Optimizer.BETAS)
end

local function grad_error(self, i, g, p)
  if not same_shape(g, p) then
    return string.format("%s: the gradient of params[%d] has shape %s but the parameter has %s",
      self.__name, i, shape_str(g), shape_str(p))
  end
  return string.format("%s: the gradient of params[%d] is %s but the parameter is %s",
    self.__name, i, g:dtype(), p:dtype())
end

-- The update methods that hand their gradient straight to a fused kernel, which takes
-- `true` for "the parameter's .grad": their step makes no gradient boxes.  Keyed by the
-- function, so a subclass that overrides update gets real gradients again.
local reads_grad = setmetatable({}, {__mode = "k"})
-- The update methods that are exactly `state.step = state.step + 1; kernel(self, p, g, state,
-- group)` (or a variant: see kernel_update), with how to run them: their common step runs in
-- one C call (internal.fast_step).
local step_kernel = setmetatable({}, {__mode = "k"})

--- Declares that `update` passes its `g` only to a `crater.core.internal.*_step` kernel, as every
-- built-in does; the step then passes `true` for g and the kernel reads p.grad itself.
-- Give `kernel` when update is exactly `state.step = state.step + 1` then
-- `kernel(self, p, g, state, group)`: a step with nothing new to check then runs in one C call.
-- `opts` describes a variant: `step = false` (no state.step to count), `scalars` (a table passed
-- as the kernel's sixth argument, as the update would pass it), `ready` (a function of the
-- optimizer: false when the update would do more than that this step).
function Optimizer.kernel_update(update, kernel, opts)
  reads_grad[update] = true
  -- the plain form as the kernel itself, a variant as {kernel, count, scalars, ready}
  step_kernel[update] = opts and {kernel, opts.step ~= false, opts.scalars, opts.ready} or kernel
  return update
end

--- Checks every group's options and every gradient before a step changes anything.
-- Options are validated again only when one of the class's options changed since the
-- last step that passed (crater.optim.step_cache says how that is seen).
-- Returns the gradients it checked, one per parameter in group order (false for none,
-- true for one the kernel reads itself): each `p.grad` makes a new box, so the step reads
-- them once, here.  Raises at the caller of the function that called it (`step`), so call
-- it directly from a step.
function Optimizer:check_step()
  local checked, keys = self._checked, self._keys
  if checked == nil then
    checked, keys = setmetatable({}, {__mode = "k"}), step_cache.keys(self.defaults)
    self._checked, self._keys = checked, keys
  end
  local boxed = not reads_grad[self.update]
  -- booleans only when the kernels read the gradients: one table serves every step
  local grads = boxed and {} or self._flags
  if grads == nil then grads = {}; self._flags = grads end
  local n, groups, state = 0, self.param_groups, self.state
  for gi = 1, #groups do   -- numeric loops: ipairs cost more than the checks here
    local group = groups[gi]
    local unchanged = checked[group]
    if unchanged == nil or not unchanged(group) then
      local ok, err = pcall(self.validate, self, group)
      if not ok then error(err, 3) end
      checked[group] = step_cache.unchanged_test(group, keys)
      self._ready = nil   -- new options may need new state (amsgrad, momentum)
    end
    local params = group.params
    for i = 1, #params do
      local p = params[i]
      local g = checked_grad(p, boxed)
      if g == nil then error(grad_error(self, i, p.grad, p), 3) end
      if g and state[p] == nil then self._ready = nil end
      n = n + 1
      grads[n] = g
    end
  end
  return grads
end

-- Runs update on every parameter that has a gradient (called under no_grad).
-- With an `init_state(p, state, group)` method (every built-in has one), every
-- parameter's state is made first and the updates run after: the kernels allocate
-- nothing, so a step that runs out of memory changes no parameter (new states are kept
-- only when all of them were made).  init_state runs only when it may have work: while
-- a parameter with a gradient has no state, after a group's options changed, and after
-- the state table was replaced (load_state_dict); `_ready` holds the state table once
-- every parameter with a gradient has its state.
local function prepare(self, state, groups, grads)
  local fresh, n = nil, 0   -- made only at a first step: most steps have no new state
  for gi = 1, #groups do
    local params, group = groups[gi].params, groups[gi]
    for i = 1, #params do
      n = n + 1
      if grads[n] then
        local p = params[i]
        local st = state[p]
        if st == nil then
          st, fresh = {}, fresh or {}
          fresh[#fresh + 1] = p; fresh[p] = st
        end
        self:init_state(p, st, group)
      end
    end
  end
  if fresh then
    for i = 1, #fresh do state[fresh[i]] = fresh[fresh[i]] end
  end
  self._ready = state
end

local function apply(self, grads)
  local state, groups, n = self.state, self.param_groups, 0
  if self.init_state and self._ready ~= state then prepare(self, state, groups, grads) end
  if self.begin_step and self:begin_step(grads) == false then return end
  for gi = 1, #groups do
    local params, group = groups[gi].params, groups[gi]
    for i = 1, #params do
      n = n + 1
      local g = grads[n]
      if g then
        local p = params[i]
        local st = state[p]
        if st == nil then st = {}; state[p] = st end
        self:update(p, g, st, group)
      end
    end
  end
end

--- Performs one optimization step and returns the closure's loss (or nil).
-- @param closure optional function that recomputes the loss (called under enable_grad)
function Optimizer:step(closure)
  local loss
  if closure ~= nil then loss = crater.enable_grad(closure) end
  local k = self._ready == self.state and step_kernel[self.update]
  if k and fast_step(self, k) then return loss end   -- nothing new: checked and updated
  local grads = self:check_step()
  if grads == self._flags and self._ready == self.state then
    apply(self, grads)   -- kernels only, no state to make: nothing could record a graph
  else
    no_grad(apply, self, grads)   -- crater.no_grad is this function
  end
  return loss
end

--- Gives the class's update as one fused elementwise function (crater.fuse): a step then
-- makes one pass over each parameter's memory, as a built-in kernel does.
-- `fn(p, g, <state tensors>, <numbers>)` returns the new p and state tensors in that
-- order; they are written in place.  The class gets `init_state` (each state tensor starts
-- as zeros like p, and `state.step` at 0), `update` (counts `state.step` first, then calls
-- the program with the numbers `opts.scalars(group, state)` returns), `state_keys` and
-- `state_rules` (for load_state_dict), and `maximize` (when the group has it: g is
-- negated inside the program, at no extra pass).
-- An update whose formula changes with the step or an option (AdaBelief's rectification,
-- its coupled or decoupled decay) gives `fn` as a table of such functions, all with the same
-- parameters, and `opts.variant(group, state)` names the one a step runs; each is traced on
-- its first use (examples/fuse_adabelief.lua).
-- @param fn the update, traced by crater.fuse, or a table of them (with `opts.variant`)
-- @param opts `{state = {names of the state tensors, in fn's order}, scalars = function(group,
-- state) return ... end, step = false, variant = function(group, state) return key end}`
-- (step = false: no `state.step` count; variant: the key of `fn` to run, after scalars)
-- @usage local SignSGD = crater.optim.Optimizer:extend("SignSGD", {lr = 1e-2})
-- SignSGD:fused_update(function(p, g, lr) return p - lr * g:sign() end,
--   {scalars = function(group) return group.lr end, step = false})
function Optimizer:fused_update(fn, opts)
  opts = opts or {}
  local cls, fuse = self, require "crater.fuse"
  local names, scalars, counts, variant = opts.state or {}, opts.scalars, opts.step ~= false, opts.variant
  local fns = type(fn) == "table" and fn or {fn}
  if type(fn) == "table" and type(variant) ~= "function" then
    error(cls.__name .. ": fused_update: a table of updates needs variant = function(group, state)", 2)
  end
  if type(fn) ~= "table" and variant ~= nil then
    error(cls.__name .. ": fused_update: variant needs a table of updates", 2)
  end
  for k, f in pairs(fns) do
    if type(f) ~= "function" then
      error(cls.__name .. ": fused_update: expected a function" .. (type(fn) == "table" and
        " for variant '" .. tostring(k) .. "'" or ""), 2)
    end
  end
  if scalars ~= nil and type(scalars) ~= "function" then
    error(cls.__name .. ": fused_update: scalars must be a function of (group, state)", 2)
  end
  local nstate = #names
  local writes = {1}
  for i = 1, nstate do writes[i + 1] = i + 2 end
  local plain, negated = {}, {}   -- per variant; negated, for maximize, runs fn(p, -g, ...)
  for k, f in pairs(fns) do plain[k] = fuse(f, {writes = writes, name = cls.__name}) end
  local function maximizing(k)
    if negated[k] == nil then
      local f, params = fns[k], {}
      for i = 1, debug.getinfo(f, "u").nparams do params[i] = debug.getlocal(f, i) end
      local plist = table.concat(params, ", ")
      local call = plist:gsub("^([^,]+), ([^,]+)", "%1, -%2", 1)
      local src = "local fn = ... return function(" .. plist .. ") return fn(" .. call .. ") end"
      negated[k] = fuse(load(src, "=maximize", "t")(f), {writes = writes, name = cls.__name})
    end
    return negated[k]
  end
  local kinds = {}
  for _, k in ipairs(names) do kinds[k] = "param" end
  if counts then kinds.step = "count" end
  local keys = {}
  if counts then keys[1] = "step" end
  for _, k in ipairs(names) do keys[#keys + 1] = k end
  cls.state_keys, cls.state_rules = cls.state_keys or keys, cls.state_rules or kinds
  function cls.init_state(_, p, state)
    if counts and state.step == nil then state.step = 0 end
    for i = 1, nstate do
      local k, t = names[i], state[names[i]]
      if t == nil then
        state[k] = crater.zeros_like(p)
      elseif t:dtype() ~= p:dtype() or not t:is_contiguous() then   -- a loaded state
        state[k] = t:to(p:dtype()):contiguous()
      end
    end
  end
  -- f(p, g, <state tensors>, <scalars>): up to three state tensors in one call with the
  -- scalars' results passed straight through (a small problem's step is mostly this Lua);
  -- more go through a table
  local sc = scalars or function() end
  local n1, n2, n3 = names[1], names[2], names[3]
  local args = {}
  local function run(f, p, g, state, group)
    if nstate == 0 then return f(p, g, sc(group, state)) end
    if nstate == 1 then return f(p, g, state[n1], sc(group, state)) end
    if nstate == 2 then return f(p, g, state[n1], state[n2], sc(group, state)) end
    if nstate == 3 then return f(p, g, state[n1], state[n2], state[n3], sc(group, state)) end
    local extra = table.pack(sc(group, state))
    args[1], args[2] = p, g
    for i = 1, nstate do args[i + 2] = state[names[i]] end
    for i = 1, extra.n do args[nstate + 2 + i] = extra[i] end
    f(table.unpack(args, 1, nstate + 2 + extra.n))
    for i = 1, nstate + 2 + extra.n do args[i] = nil end   -- the optimizer, not this table, holds the tensors
  end
  function cls.update(_, p, g, state, group)
    if counts then state.step = state.step + 1 end
    local k = variant and variant(group, state) or 1
    local f = plain[k]
    if f == nil then error(string.format("%s: variant returned '%s', which names no update", cls.__name, tostring(k))) end
    if group.maximize then f = maximizing(k) end
    run(f, p, g, state, group)
  end
  return cls
end

--- Updates one parameter in place (every optimizer class defines it).
-- @param p the parameter, @param grad its gradient, @param state its state table
-- (empty at the first step), @param group its parameter group
function Optimizer:update(p, grad, state, group)
  error(self.__name .. ": update is not implemented", 2)
end

--- Clears the gradients of every parameter.
-- @param set_to_none (default true) set `.grad` to nil; false zeroes it in place
-- (also accepts `{set_to_none = false}`)
function Optimizer:zero_grad(set_to_none)
  if set_to_none == nil then return clear_grads(self.param_groups) end   -- the usual call
  if type(set_to_none) == "table" then
    set_to_none = set_to_none.set_to_none
    if set_to_none == nil then set_to_none = true end
  end
  if set_to_none then return clear_grads(self.param_groups) end
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      local g = p.grad
      if g ~= nil then g:zero_() end
    end
  end
end

--- Returns the optimizer's state in PyTorch's layout: `{state = {[i] = {...}},
-- param_groups = {{lr = ..., params = {1, 2}}, ...}}`, parameters numbered from 1 in
-- group order. State tensors are shared, not copied (as in PyTorch).
function Optimizer:state_dict()
  local index, n, groups = {}, 0, {}
  for gi, group in ipairs(self.param_groups) do
    local g = {}
    for k, v in pairs(group) do
      if k ~= "params" then g[k] = copy(v) end
    end
    g.params = {}
    for i, p in ipairs(group.params) do
      n = n + 1
      index[p] = n
      g.params[i] = n
    end
    groups[gi] = g
  end
  local state = {}
  for p, st in pairs(self.state) do
    local i = index[p]
    if i then
      local s = {}
      for k, v in pairs(st) do s[k] = v end
      state[i] = s
    end
  end
  return {state = state, param_groups = groups}
end

-- A private copy of a saved state value: tensors cloned into the parameter's dtype.
local function load_value(v, dtype)
  if is_tensor(v) then
    if v:dtype() ~= dtype and v:dtype() ~= "int64" then return v:to(dtype) end
    return v:clone()
  elseif type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do t[k] = load_value(x, dtype) end
    return t
  end
  return v
end

local function load(self, sd)
  local name = self.__name
  local function fail(fmt, ...) error(name .. ": load_state_dict: " .. string.format(fmt, ...), 0) end
  if type(sd) ~= "table" or type(sd.state) ~= "table" or type(sd.param_groups) ~= "table" then
    fail("expected a table with 'state' and 'param_groups'")
  end
  if #sd.param_groups ~= #self.param_groups then
    fail("the state_dict has %d param groups but the optimizer has %d", #sd.param_groups, #self.param_groups)
  end
  local byindex, groupof, newgroups = {}, {}, {}
  local unknown   -- reported after the state: a missing state entry says more
  for gi, group in ipairs(self.param_groups) do
    local saved = sd.param_groups[gi]
    if type(saved) ~= "table" or type(saved.params) ~= "table" then fail("param group %d has no params", gi) end
    if #saved.params ~= #group.params then
      fail("param group %d has %d parameters but the optimizer's has %d", gi, #saved.params, #group.params)
    end
    local keys = {}
    for k in pairs(self.defaults) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      if saved[k] == nil then
        fail("param group %d has no '%s' (a state_dict from another optimizer?)", gi, k)
      end
    end
    local g = {}
    for k, v in pairs(saved) do
      if k ~= "params" then
        if self.defaults[k] == nil and not Optimizer.scheduler_keys[k] and not self.group_keys[k]
            and unknown == nil then
          unknown = string.format("param group %d has unknown key '%s' (the options are %s)", gi,
            tostring(k), sorted_keys(self.defaults))
        end
        if Optimizer.scheduler_keys[k] and not (type(v) == "number" and finite(v)) then
          fail("param group %d: %s must be a finite number, got %s", gi, k, show(v))
        end
        g[k] = copy(v)
      end
    end
    g.params = group.params
    for k, init in pairs(self.group_keys) do
      if g[k] == nil then g[k] = init(g) end
    end
    local ok, err = pcall(self.validate, self, g)
    if not ok then fail("param group %d: %s", gi, err) end
    newgroups[gi] = g
    for i = 1, #saved.params do
      local idx = saved.params[i]
      if math.type(idx) ~= "integer" or byindex[idx] ~= nil then
        fail("param group %d: params[%d] must be a parameter number not used before, got %s", gi, i, show(idx))
      end
      byindex[idx] = group.params[i]
      groupof[idx] = g
    end
  end
  local newstate = {}
  for idx, s in pairs(sd.state) do
    local p = byindex[idx]
    if p == nil then fail("state entry %s belongs to no parameter", tostring(idx)) end
    if type(s) ~= "table" then fail("state entry %s is not a table", tostring(idx)) end
    if next(s) ~= nil then self:check_state(idx, s, p, groupof[idx], fail) end
    newstate[p] = load_value(s, p:dtype())
  end
  if unknown then fail("%s", unknown) end
  for gi, g in ipairs(newgroups) do self.param_groups[gi] = g end
  self.state = newstate
end

--- Loads a state_dict made by `state_dict()` (possibly saved and loaded with crater.save).
-- Everything is checked before anything changes: the number of groups and of parameters
-- in each, that every group has every option of this optimizer, that each state entry
-- has the entries this optimizer keeps, and their shapes.
function Optimizer:load_state_dict(sd)
  local ok, err = pcall(load, self, sd)
  if not ok then error(err, 2) end
end

-- What each kind of state entry (a class's `state_rules`) must be: nil when it is, else
-- what it must be.  n is the number of elements of all the group's parameters ("flat").
local function float_tensor(v)
  return is_tensor(v) and (v:dtype() == "float32" or v:dtype() == "float64")
end
local state_kinds = {
  count = function(v)   -- a step or evaluation count
    if not (type(v) == "number" and finite(v) and v >= 0 and v == math.floor(v)) then
      return "a whole number >= 0"
    end
  end,
  number = function(v) if not (type(v) == "number" and finite(v)) then return "a finite number" end end,
  param = function(v, p)   -- float32 or float64: it is converted to the parameter's dtype
    if not (float_tensor(v) and same_shape(v, p)) then
      return string.format("a float32 or float64 tensor of shape %s", shape_str(p))
    end
  end,
  flat = function(v, _, n)
    if not (float_tensor(v) and v:dim() == 1 and v:numel() == n) then
      return string.format("a float32 or float64 tensor of shape {%d}", n)
    end
  end,
  numbers = function(v)
    if type(v) ~= "table" or getmetatable(v) ~= nil then return "a list of finite numbers" end
    for k, x in pairs(v) do
      if math.type(k) ~= "integer" or type(x) ~= "number" or not finite(x) then return "a list of finite numbers" end
    end
  end,
}
-- any float tensor (Adafactor's row and column factors, whose shapes follow the parameter's)
state_kinds.float_tensor = function(v)
  if not float_tensor(v) then return "a float32 or float64 tensor" end
end
-- Prodigy's s (every slice_p-th element of p) and p0 (the same, or 0-d for a zero start)
local function slice_count(p, group) return (p:numel() + group.slice_p - 1) // group.slice_p end
state_kinds.sliced = function(v, p, _, group)
  local ns = slice_count(p, group)
  if not (float_tensor(v) and v:dim() == 1 and v:numel() == ns) then
    return string.format("a float32 or float64 tensor of shape {%d}", ns)
  end
end
state_kinds.sliced_or_zero = function(v, p, n, group)
  if not (float_tensor(v) and v:dim() == 0) and state_kinds.sliced(v, p, n, group) then
    return string.format("a float32 or float64 tensor of shape {%d} or a 0-d one", slice_count(p, group))
  end
end
state_kinds.flats = function(v, p, n)
  if type(v) ~= "table" or getmetatable(v) ~= nil then return "a list of tensors" end
  for k, x in pairs(v) do
    if math.type(k) ~= "integer" or state_kinds.flat(x, p, n) then
      return string.format("a list of float32 or float64 tensors of shape {%d}", n)
    end
  end
end

--- Checks one saved state entry against the class's `state_keys` (a list, or a function
-- of the group returning one: the entries that must be there) and `state_rules` (entry =
-- kind: "count", "number", "param" (a tensor of the parameter's shape), "flat" (one
-- element per element of the group's parameters), "numbers", "flats", "sliced" and
-- "sliced_or_zero" (every group.slice_p-th element; the latter also 0-d)); a class with
-- state_rules refuses entries it does not name.  Without state_rules, a tensor entry
-- named in state_keys must have the parameter's shape.
function Optimizer:check_state(idx, s, p, group, fail)
  local keys, kinds = self.state_keys, self.state_rules
  if type(keys) == "function" then keys = keys(group) end
  for _, k in ipairs(keys or {}) do
    local v = s[k]
    if v == nil then fail("state of parameter %s has no '%s' (a state_dict from another optimizer?)", idx, k) end
    if not kinds and is_tensor(v) and not same_shape(v, p) then
      fail("state '%s' of parameter %s has shape %s but the parameter has %s", k, idx, shape_str(v), shape_str(p))
    end
  end
  if not kinds then return end
  local n = 0
  for _, q in ipairs(group.params) do n = n + q:numel() end
  for k, v in pairs(s) do
    local kind = kinds[k]
    if kind == nil then
      fail("state of parameter %s has an unknown entry '%s' (%s keeps %s)", idx, tostring(k), self.__name, sorted_keys(kinds))
    end
    local must = state_kinds[kind](v, p, n, group)
    if must then
      local got = is_tensor(v) and string.format("a tensor of dtype %s and shape %s", v:dtype(), shape_str(v)) or show(v)
      fail("state '%s' of parameter %s must be %s, got %s", k, idx, must, got)
    end
  end
end

function Optimizer:__tostring()
  local lines = {self.__name .. " ("}
  for gi, group in ipairs(self.param_groups) do
    local keys = {}
    for k in pairs(group) do
      if k ~= "params" then keys[#keys + 1] = k end
    end
    table.sort(keys)
    lines[#lines + 1] = string.format("Parameter Group %d (%d tensors)", gi, #group.params)
    for _, k in ipairs(keys) do lines[#lines + 1] = string.format("    %s: %s", k, show(group[k])) end
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

return setmetatable(Optimizer, {
  __call = function(cls, params, defaults)
    local c = cls:extend("Optimizer", defaults)
    return c.new(c, params)
  end,
})
