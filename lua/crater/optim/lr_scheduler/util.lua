--- Helpers the schedulers share: argument checks that raise sentences naming the
-- scheduler and the argument, and small pieces of PyTorch (bisect_right, _format_param).
local B = {}

local THIS_FILE = "crater/optim/lr_scheduler"

--- Raises `msg` at the first stack frame outside the scheduler files, so the
-- position names the user's line, not ours.
local function fail(msg, ...)
  if select("#", ...) > 0 then msg = string.format(msg, ...) end
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if info == nil then error(msg, 0) end
    if info.what ~= "C" and not info.source:find(THIS_FILE, 1, true) then
      error(msg, level)
    end
    level = level + 1
  end
end
B.fail = fail

--- #v for a list argument `name` (crater.core.internal.check_list: no hole, a sane __len), raised
-- at the user's line as fail does.
function B.list(who, name, v)
  local ok, n = pcall(require("crater.core").internal.check_list, v, who, name)
  if not ok then fail(n) end
  return n
end

--- A short printable form of a value for error messages.
local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if v ~= v then return "nan" end
  if type(v) == "number" or type(v) == "boolean" or v == nil then return tostring(v) end
  return type(v)
end
B.show = show

local function is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end
B.is_callable = is_callable

local function is_integer(v)
  return math.type(v) == "integer" or (math.type(v) == "float" and v == math.floor(v))
end

--- Checks that `v` is a finite number; returns it.
function B.number(who, name, v)
  if type(v) ~= "number" then fail("%s: %s must be a number, got %s", who, name, show(v)) end
  if v ~= v or v == math.huge or v == -math.huge then
    fail("%s: %s must be a finite number, got %s", who, name, v ~= v and "nan" or tostring(v))
  end
  return v
end

--- Checks that `v` is an integer >= `min` (integral floats are accepted); returns it as an integer.
function B.integer(who, name, v, min)
  if type(v) ~= "number" or not is_integer(v) or math.tointeger(v) == nil then   -- inf is no integer
    fail("%s: %s must be an integer, got %s", who, name, show(v))
  end
  if v < min then
    fail("%s: %s must be %s, got %s", who, name,
         min == 1 and "positive" or ">= " .. min, show(v))
  end
  return math.tointeger(v)
end

--- Checks the epoch given to `step(epoch)`: a finite number >= 0 (PyTorch's deprecated
-- form; floats allowed, as there).
function B.epoch(who, v)
  B.number(who .. ":step", "epoch", v)
  if v < 0 then fail("%s:step: expected a non-negative epoch, got %s", who, show(v)) end
  return v
end

--- Checks that `v` is a number > 0; returns it.
function B.positive(who, name, v)
  B.number(who, name, v)
  if v ~= v or v <= 0 then fail("%s: %s must be positive, got %s", who, name, show(v)) end
  return v
end

--- Checks that `v` is one of the strings in `choices`; returns it.
function B.choice(who, name, v, choices)
  for _, c in ipairs(choices) do if v == c then return v end end
  fail("%s: %s must be one of '%s', got %s", who, name, table.concat(choices, "', '"), show(v))
end

local function known(set)
  local names = {}
  for k in pairs(set) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ", ")
end
B.known = known

--- Checks that every key of `opts` is in the list `allowed`.
function B.options(who, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then fail("%s: options must be a table, got %s", who, show(opts)) end
  local ok = {last_epoch = true, verbose = true}
  for _, k in ipairs(allowed) do ok[k] = true end
  for k in pairs(opts) do
    if not ok[k] then fail("%s: unknown option %s (the options are %s)", who, show(k), known(ok)) end
  end
  if opts.verbose ~= nil and type(opts.verbose) ~= "boolean" then
    fail("%s: verbose must be a boolean, got %s", who, show(opts.verbose))
  end
  return opts
end

--- Checks that `optimizer` looks like an optimizer: a non-empty list of param groups with numeric lr.
function B.optimizer(who, optimizer)
  if type(optimizer) ~= "table" or type(optimizer.param_groups) ~= "table" then
    fail("%s: expected an optimizer (a table with param_groups), got %s", who, show(optimizer))
  end
  local groups = optimizer.param_groups
  if #groups == 0 then fail("%s: the optimizer has no param groups", who) end
  for i, g in ipairs(groups) do
    if type(g) ~= "table" then fail("%s: param_groups[%d] must be a table, got %s", who, i, show(g)) end
    if type(g.lr) ~= "number" then
      fail("%s: param_groups[%d].lr must be a number, got %s", who, i, show(g.lr))
    end
  end
  return optimizer
end

--- A number, or a list with one number per param group, as a list per group
-- (PyTorch's `_format_param`).
function B.per_group(who, name, v, optimizer)
  local n = #optimizer.param_groups
  if type(v) == "table" then
    if #v ~= n then fail("%s: expected %d values for %s, got %d", who, n, name, #v) end
    local out = {}
    for i = 1, n do out[i] = B.number(who, name .. "[" .. i .. "]", v[i]) end
    return out
  end
  B.number(who, name, v)
  local out = {}
  for i = 1, n do out[i] = v end
  return out
end

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    if type(x) ~= "function" then out[k] = deepcopy(x) end
  end
  return out
end
B.deepcopy = deepcopy

--- The index of the first element of sorted list `a` greater than `x` minus one
-- (Python's `bisect_right`: how many elements are <= x).
function B.bisect_right(a, x)
  local lo, hi = 1, #a + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if x < a[mid] then hi = mid else lo = mid + 1 end
  end
  return lo - 1
end

--- The lr_lambda argument of LambdaLR and MultiplicativeLR: a function, a list of
-- functions (one per group), or an options table holding `lr_lambda`. Returns the list
-- of one function per group and the options table.
function B.lambdas(who, optimizer, arg, opts)
  local fn
  if B.is_callable(arg) or (type(arg) == "table" and arg[1] ~= nil) then
    fn = arg
  elseif type(arg) == "table" then
    opts, fn = arg, arg.lr_lambda
  else
    fail("%s: lr_lambda must be a function or a list of functions, got %s", who, show(arg))
  end
  B.options(who, opts, {"lr_lambda"})
  local n = #optimizer.param_groups
  local list = {}
  if B.is_callable(fn) then
    for i = 1, n do list[i] = fn end
  elseif type(fn) == "table" then
    if #fn ~= n then fail("%s: expected %d lr_lambdas, but got %d", who, n, #fn) end
    for i = 1, n do
      if not B.is_callable(fn[i]) then
        fail("%s: lr_lambda[%d] must be a function, got %s", who, i, show(fn[i]))
      end
      list[i] = fn[i]
    end
  else
    fail("%s: lr_lambda must be a function or a list of functions, got %s", who, show(fn))
  end
  return list, opts or {}
end

--- The value of group i's lambda at `epoch`, checked to be a number.
function B.call_lambda(self, i, epoch)
  local v = self.lr_lambdas[i](epoch)
  if type(v) ~= "number" then
    fail("%s: lr_lambda for group %d returned %s at epoch %s; expected a number",
         self.__name, i, show(v), tostring(epoch))
  end
  return v
end

--- Every group's lr times f (the chainable schedules' usual step), and every group's lr.
function B.scaled(self, f)
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do out[i] = g.lr * f end
  return out
end
function B.current(self)
  return B.scaled(self, 1)
end

--- Which momentum an optimizer has, judged by its defaults: "momentum", "betas" or nil.
-- `prefer` decides when it has both.
function B.momentum_kind(optimizer, prefer)
  local d = type(optimizer.defaults) == "table" and optimizer.defaults or {}
  local has_m = d.momentum ~= nil
  local has_b = type(d.betas) == "table"
  if has_m and has_b then return prefer end
  return has_m and "momentum" or has_b and "betas" or nil
end

--- Writes momentum m into group g: into a new betas list {m, betas[2], ...} when
-- `use_beta1` (PyTorch replaces the tuple; the old list may be shared with defaults).
function B.set_momentum(g, m, use_beta1)
  if use_beta1 then
    local betas = {m}
    for i = 2, #g.betas do betas[i] = g.betas[i] end
    g.betas = betas
  else
    g.momentum = m
  end
end

--- Checks a non-empty list of schedulers that must all drive `optimizer` (nil: the
-- first one's); returns that optimizer.
function B.schedulers(who, list, optimizer)
  if type(list) ~= "table" or B.list(who, "schedulers", list) == 0 then
    fail("%s: schedulers must be a non-empty list of schedulers, got %s", who, show(list))
  end
  for i = 1, #list do
    local s = list[i]
    if type(s) ~= "table" or not s._is_lr_scheduler then
      fail("%s: schedulers[%d] is not a scheduler (got %s)", who, i, show(s))
    end
    optimizer = optimizer or s.optimizer
    if s.optimizer ~= optimizer then
      fail("%s: schedulers[%d] belongs to a different optimizer; all must share one", who, i)
    end
  end
  return optimizer
end

return B
