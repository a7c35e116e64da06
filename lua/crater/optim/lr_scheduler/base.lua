--- LRScheduler (PyTorch's _LRScheduler), the base class of every scheduler.
-- A scheduler reads and writes `optimizer.param_groups[i].lr` (and, for the cyclic ones,
-- `momentum` or `betas[1]`); it needs nothing from the C core, so any table shaped like
-- an optimizer will do. On construction it records each group's `initial_lr` (unless
-- already set), keeps them as `base_lrs`, and takes the first step, to `last_epoch` 0.
-- A custom schedule is a subclass that overrides `get_lr()`, which returns the lrs for
-- `self.last_epoch`, one per group; see `extend`.
-- https://pytorch.org/docs/1.13/optim.html#how-to-adjust-learning-rate
-- @usage local Warm = lr_scheduler.LRScheduler:extend("Warm", {warmup = 10})
-- function Warm:get_lr()
--   local lrs = {}
--   for i, base in ipairs(self.base_lrs) do
--     lrs[i] = base * math.min(1, (self.last_epoch + 1) / self.warmup)
--   end
--   return lrs
-- end
local B = require "crater.optim.lr_scheduler.util"
local rules = require "crater.optim.rules"
local fail, show, deepcopy = B.fail, B.show, B.deepcopy

local LRScheduler = {__name = "LRScheduler", _is_lr_scheduler = true}
LRScheduler.__index = LRScheduler

--- What the fields of a scheduler must hold (crater.optim.rules), checked when it is
-- built and, on the state it would have, by load_state_dict.  A class adds its own in
-- `field_rules`; these are every scheduler's.
local LR = {"number", inf = true}   -- a lambda may make an lr infinite, never NaN
LRScheduler.field_rules = {
  last_epoch = {"number", -1, nil_ok = true}, _step_count = {"integer", 0, nil_ok = true},
  verbose = {"boolean", nil_ok = true},
  base_lrs = {"per_group", LR, nil_ok = true}, _last_lr = {"per_group", LR, nil_ok = true},
}

local function check_fields(self, view)
  local groups = #self.optimizer.param_groups
  local cls = getmetatable(self)
  while cls do
    local own = rawget(cls, "field_rules")
    if own then rules.check_all(self.__name, view, own, groups) end
    cls = rawget(cls, "super")
  end
end

-- Builds an instance. If init fails (a bad option, a lambda that raises), the param
-- groups it may have begun to change are put back as they were, and the error re-raised.
local function construct(cls, optimizer, ...)
  local self = setmetatable({}, cls)
  local saved = {}
  if type(optimizer) == "table" and type(optimizer.param_groups) == "table" then
    for i, g in ipairs(optimizer.param_groups) do
      if type(g) == "table" then
        saved[i] = {}
        for k, v in pairs(g) do saved[i][k] = v end
      end
    end
  end
  local ok, err = pcall(self.init, self, optimizer, ...)
  if ok then ok, err = pcall(check_fields, self, self) end
  if not ok then
    for i, copy in pairs(saved) do
      local g = optimizer.param_groups[i]
      for k in pairs(g) do g[k] = nil end
      for k, v in pairs(copy) do g[k] = v end
    end
    error(err, 0)
  end
  return self
end
setmetatable(LRScheduler, {__call = construct})

--- Makes a subclass. Override `get_lr()` (and, for a closed form usable with
-- `step(epoch)`, `_get_closed_form_lr()`); with `defaults`, the constructor accepts
-- those options, checks their types against the defaults and stores them on the
-- scheduler, so a subclass needs no `init` of its own.
-- @param name the class name (used in errors and state dicts)
-- @param[opt] defaults table of option names and default values
-- @usage local Warm = lr_scheduler.LRScheduler:extend("Warm", {warmup = 10})
-- function Warm:get_lr()
--   local f = math.min(1, (self.last_epoch + 1) / self.warmup)
--   local lrs = {}
--   for i, base in ipairs(self.base_lrs) do lrs[i] = base * f end
--   return lrs
-- end
-- local s = Warm(opt, {warmup = 5})
function LRScheduler:extend(name, defaults)
  if type(name) ~= "string" then fail("extend: name must be a string, got %s", show(name)) end
  if defaults ~= nil and type(defaults) ~= "table" then
    fail("extend: defaults must be a table, got %s", show(defaults))
  end
  local cls = {__name = name, __tostring = self.__tostring, super = self}
  cls.__index = cls
  if defaults then
    local merged = deepcopy(self._defaults or {})
    for k, v in pairs(defaults) do merged[k] = v end
    cls._defaults = merged
  end
  return setmetatable(cls, {__index = self, __call = construct})
end

--- Attaches the scheduler to `optimizer` and takes the initial step (PyTorch's
-- `_LRScheduler.__init__`). Subclasses check their own options first, then call
-- `LRScheduler.init(self, optimizer, opts)`.
-- @param optimizer an optimizer (or any table with `param_groups`)
-- @tparam[opt=-1] number last_epoch index of the last epoch; not -1 resumes a run and
--   needs `initial_lr` in every param group
-- @tparam[opt=false] boolean verbose print each lr change
function LRScheduler:init(optimizer, opts)
  local who = self.__name
  B.optimizer(who, optimizer)
  opts = opts or {}
  if type(opts) ~= "table" then fail("%s: options must be a table, got %s", who, show(opts)) end
  local defaults = self._defaults
  if defaults then
    for k, v in pairs(opts) do
      local d = defaults[k]
      if d == nil and k ~= "last_epoch" and k ~= "verbose" then
        fail("%s: unknown option %s", who, show(k))
      end
      if d ~= nil and type(d) ~= type(v) then
        fail("%s: %s must be a %s, got %s", who, k, type(d), show(v))
      end
      if type(v) == "number" then B.number(who, k, v) end
    end
  end
  local last_epoch = B.integer(who, "last_epoch", opts.last_epoch or -1, -1)
  if last_epoch ~= -1 then
    for i, g in ipairs(optimizer.param_groups) do
      if g.initial_lr == nil then
        fail("%s: param_groups[%d].initial_lr is not set; it is needed to resume (last_epoch = %d)",
             who, i, last_epoch)
      end
    end
  end
  if defaults then
    for k, v in pairs(defaults) do
      if opts[k] ~= nil then self[k] = deepcopy(opts[k]) else self[k] = deepcopy(v) end
    end
  end
  self.optimizer = optimizer
  for _, g in ipairs(optimizer.param_groups) do
    if g.initial_lr == nil then g.initial_lr = g.lr end
  end
  self.base_lrs = {}
  for i, g in ipairs(optimizer.param_groups) do self.base_lrs[i] = g.initial_lr end
  self.last_epoch = last_epoch
  self.verbose = opts.verbose and true or false
  self:_initial_step()
end

function LRScheduler:_initial_step()
  self._step_count = 0
  self:step()
end

--- The learning rates for `self.last_epoch`, one per param group. Subclasses
-- override it; `step()` calls it after advancing `last_epoch`.
function LRScheduler:get_lr()
  fail("%s: get_lr() is not implemented; a subclass of LRScheduler must override it", self.__name)
end

--- Advances the schedule by one step and writes the new lrs into the optimizer.
-- With `epoch`, jumps to that epoch instead, using the closed form where the
-- scheduler has one (PyTorch deprecates this use, but SequentialLR relies on it).
-- @param[opt] epoch the epoch to jump to
function LRScheduler:step(epoch)
  if epoch ~= nil then B.epoch(self.__name, epoch) end
  -- a get_lr that raises (a lambda's error) leaves the scheduler as it was
  local last_epoch, step_count = self.last_epoch, self._step_count
  self._step_count = step_count + 1
  local ok, err = pcall(function()
    local values
    if epoch == nil then
      self.last_epoch = last_epoch + 1
      values = self:get_lr()
    else
      self.last_epoch = epoch
      values = self._get_closed_form_lr and self:_get_closed_form_lr() or self:get_lr()
    end
    self:_set_lrs(values, epoch)
  end)
  if not ok then
    self.last_epoch, self._step_count = last_epoch, step_count
    error(err, 0)
  end
end

--- Writes `values` (one lr per group) into the optimizer after checking all of them.
function LRScheduler:_set_lrs(values, epoch)
  local groups = self.optimizer.param_groups
  if type(values) ~= "table" or #values ~= #groups then
    fail("%s: get_lr() must return a list of %d learning rates, got %s", self.__name, #groups,
         type(values) == "table" and #values .. " values" or show(values))
  end
  for i = 1, #groups do
    if type(values[i]) ~= "number" then
      fail("%s: get_lr() returned %s for param group %d; expected a number", self.__name,
           show(values[i]), i)
    end
  end
  for i, g in ipairs(groups) do
    g.lr = values[i]
    self:print_lr(self.verbose, i, values[i], epoch)
  end
  self:_record_last_lr()
end

function LRScheduler:_record_last_lr()
  local last = {}
  for i, g in ipairs(self.optimizer.param_groups) do last[i] = g.lr end
  self._last_lr = last
end

--- Prints the new lr of group `i` when `is_verbose` (PyTorch's message, groups 1-based).
function LRScheduler.print_lr(_, is_verbose, i, lr, epoch)
  if not is_verbose then return end
  if epoch == nil then
    print(string.format("Adjusting learning rate of group %d to %.4e.", i, lr))
  else
    local e = math.type(epoch) == "float" and string.format("%.2f", epoch) or string.format("%.5d", epoch)
    print(string.format("Epoch %s: adjusting learning rate of group %d to %.4e.", e, i, lr))
  end
end

--- The learning rates the last `step()` set, one per param group (a new list).
function LRScheduler:get_last_lr()
  local out = {}
  for i, v in ipairs(self._last_lr) do out[i] = v end
  return out
end

--- The scheduler's state as a plain table (numbers, strings, booleans, tables): every
-- field except the optimizer and functions, `_class` (the class name), and for a
-- scheduler made of schedulers, their state dicts as `_schedulers`.
function LRScheduler:state_dict()
  local sd = {}
  for k, v in pairs(self) do
    if k ~= "optimizer" and k ~= "_schedulers" and type(v) ~= "function" then sd[k] = deepcopy(v) end
  end
  sd._class = self.__name
  if self._schedulers then
    sd._schedulers = {}
    for i, s in ipairs(self._schedulers) do sd._schedulers[i] = s:state_dict() end
  end
  return sd
end

--- Restores a state from `state_dict()` of a scheduler of the same class (checked first;
-- nothing changes on a mismatch). The optimizer's lrs are restored by the optimizer's own
-- `load_state_dict`, as in PyTorch.
-- @param sd a table from `state_dict()`
-- Raises unless v is plain data (numbers that are not NaN, strings, booleans, and plain
-- tables of them): what state_dict makes.
local function check_plain(who, k, v, depth)
  local t = type(v)
  if t == "number" and v ~= v then fail("%s: %s holds nan", who, k) end
  if t == "table" then
    if getmetatable(v) ~= nil or depth > 8 then fail("%s: %s is not plain data", who, k) end
    for kk, x in pairs(v) do
      check_plain(who, k, kk, depth + 1)
      check_plain(who, k, x, depth + 1)
    end
  elseif t ~= "number" and t ~= "string" and t ~= "boolean" then
    fail("%s: %s holds a %s; a state dict holds plain data", who, k, t)
  end
end

--- Raises unless `sd` is a state dict this scheduler can load: from the same class, for
-- as many param groups, every entry a field the scheduler has, of the same type, and
-- the fields it would end with all within their rules.  Checks the parts' too.
function LRScheduler:check_state_dict(sd)
  local who = self.__name .. ":load_state_dict"
  if type(sd) ~= "table" then fail("%s: expected a state dict table, got %s", who, show(sd)) end
  if sd._class ~= self.__name then
    fail("%s: the state dict is from %s, not %s", who,
         sd._class and tostring(sd._class) or "no scheduler", self.__name)
  end
  local n = #self.optimizer.param_groups
  if type(sd.base_lrs) == "table" and #sd.base_lrs ~= n then
    fail("%s: the state dict has %d param groups, the optimizer has %d", who, #sd.base_lrs, n)
  end
  local parts = self._schedulers
  if parts then
    local saved = sd._schedulers
    if type(saved) ~= "table" or #saved ~= #parts then
      fail("%s: the state dict holds %s schedulers, this one has %d", who,
           type(saved) == "table" and #saved or "no", #parts)
    end
    for i, s in ipairs(parts) do
      if type(saved[i]) ~= "table" or saved[i]._class ~= s.__name then
        fail("%s: schedulers[%d] is a %s, the state dict has a %s", who, i, s.__name,
             type(saved[i]) == "table" and tostring(saved[i]._class) or show(saved[i]))
      end
    end
  end
  for k, v in pairs(sd) do
    if k ~= "_class" and k ~= "_schedulers" then
      local mine
      if type(k) == "string" and k ~= "optimizer" then mine = rawget(self, k) end
      if mine == nil or type(mine) == "function" then
        local names = {}
        for f, x in pairs(self) do
          if f ~= "optimizer" and f ~= "_schedulers" and type(x) ~= "function" then names[f] = true end
        end
        fail("%s: the state dict has an entry %s that %s does not keep (it keeps %s)", who, show(k),
             self.__name, B.known(names))
      end
      if type(v) ~= type(mine) then
        fail("%s: %s must be a %s, got %s", who, k, type(mine), show(v))
      end
      check_plain(who, k, v, 0)
    end
  end
  -- the fields as they would be after the load
  local view = setmetatable({}, {__index = function(_, k)
    if sd[k] ~= nil then return sd[k] end
    return self[k]
  end})
  local ok, err = pcall(check_fields, self, view)
  if not ok then fail("%s: %s", who, err) end
  for i, s in ipairs(parts or {}) do s:check_state_dict(sd._schedulers[i]) end
end

function LRScheduler:load_state_dict(sd)
  self:check_state_dict(sd)   -- everything, the parts' too, before anything changes
  for k, v in pairs(sd) do
    if k ~= "_class" and k ~= "_schedulers" then self[k] = deepcopy(v) end
  end
  for i, s in ipairs(self._schedulers or {}) do s:load_state_dict(sd._schedulers[i]) end
end

function LRScheduler:__tostring()
  local lrs = {}
  for i, v in ipairs(self._last_lr or {}) do lrs[i] = string.format("%.6g", v) end
  return string.format("%s(last_epoch=%s, lr={%s})", self.__name, tostring(self.last_epoch),
                       table.concat(lrs, ", "))
end

return LRScheduler
