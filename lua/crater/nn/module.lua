--- crater.nn.Module: the base class of every layer and model.
-- A module holds parameters (tensors that require grad), buffers (state that is saved
-- but not trained, such as BatchNorm's running statistics) and child modules, each in
-- registration order.  Names follow PyTorch, so a Sequential's first layer is "0" and
-- its weight is "0.weight", and state dicts line up key for key with torch's.
local crater = require "crater"

local Module = {}
Module.__index = Module
Module.__name = "Module"

local function instantiate(cls, ...)
  local self = setmetatable({ _param_names = {}, _buffer_names = {}, _child_names = {},
                              _children = {}, training = true }, cls)
  self:__init(...)
  return self
end

--- Makes a subclass: `local MyNet = nn.Module:extend("MyNet")`, then define
-- `MyNet:__init(...)` and `MyNet:forward(x)`.
-- Instances are made by calling the class, `MyNet(...)`, and called like functions.
-- @param name the class name shown by tostring
-- @return the new class
function Module:extend(name)
  local cls = setmetatable({}, { __index = self, __call = instantiate })
  cls.__index = cls
  cls.__name = name
  cls.__call = function(m, ...) return m:forward(...) end
  cls.__tostring = Module.__tostring
  return cls
end

setmetatable(Module, { __call = instantiate })
Module.__call = function(m, ...) return m:forward(...) end

function Module:__init() end

--- Computes the module's output; every layer overrides it.
function Module:forward()
  error(self.__name .. ": forward is not implemented", 2)
end

--- Registers t (a tensor, made to require grad) as parameter `name`, reachable as self[name].
-- @param name the parameter's name
-- @param t a float tensor, or nil for an absent parameter (a Linear without bias)
function Module:register_parameter(name, t)
  if t ~= nil and not crater.is_tensor(t) then
    error(string.format("%s:register_parameter: parameter %s must be a tensor or nil, got %s", self.__name,
      tostring(name), type(t)), 2)
  end
  if t ~= nil and not t.is_leaf then
    error(string.format("%s:register_parameter: parameter %s must be a leaf tensor, not an op's result "
      .. "(register x:detach())", self.__name, tostring(name)), 2)
  end
  if t ~= nil then t.requires_grad = true end
  local known = false
  for _, n in ipairs(self._param_names) do if n == name then known = true end end
  if not known then table.insert(self._param_names, name) end
  rawset(self, name, t)
  return t
end

--- Registers t as buffer `name` (saved in state_dict, not trained).
function Module:register_buffer(name, t)
  if t ~= nil and not crater.is_tensor(t) then
    error(string.format("%s:register_buffer: buffer %s must be a tensor or nil, got %s", self.__name,
      tostring(name), type(t)), 2)
  end
  local known = false
  for _, n in ipairs(self._buffer_names) do if n == name then known = true end end
  if not known then table.insert(self._buffer_names, name) end
  rawset(self, name, t)
  return t
end

--- Registers m as child module `name`, reachable as self[name].
function Module:add_module(name, m)
  name = tostring(name)
  if self._children[name] == nil then table.insert(self._child_names, name) end
  self._children[name] = m
  if rawget(self, name) == nil and not tonumber(name) then rawset(self, name, m) end
  return m
end

--- The child modules in registration order, and their names.
-- @return list of modules, list of names
function Module:children()
  local list = {}
  for i, n in ipairs(self._child_names) do list[i] = self._children[n] end
  return list, { table.unpack(self._child_names) }
end

--- This module and every descendant, depth first, as a list (self first).
function Module:modules()
  local list = { self }
  for _, n in ipairs(self._child_names) do
    for _, m in ipairs(self._children[n]:modules()) do list[#list + 1] = m end
  end
  return list
end

local function walk(m, prefix, kind, names, map)
  local own = kind == "param" and m._param_names or m._buffer_names
  for _, n in ipairs(own) do
    local t = m[n]
    if t ~= nil then
      names[#names + 1] = prefix .. n
      map[prefix .. n] = t
    end
  end
  for _, c in ipairs(m._child_names) do walk(m._children[c], prefix .. c .. ".", kind, names, map) end
end

--- Every parameter with its dotted name, e.g. `{["0.weight"] = t, ["0.bias"] = b}`.
-- @return a table name -> tensor, and the list of names in registration order
function Module:named_parameters()
  local names, map = {}, {}
  walk(self, "", "param", names, map)
  return map, names
end

--- Every buffer with its dotted name, as named_parameters.
function Module:named_buffers()
  local names, map = {}, {}
  walk(self, "", "buffer", names, map)
  return map, names
end

--- Every parameter as a flat list, in registration order (what an optimizer takes).
function Module:parameters()
  local map, names = self:named_parameters()
  local list = {}
  for i, n in ipairs(names) do list[i] = map[n] end
  return list
end

--- Sets training mode (Dropout active, BatchNorm uses batch statistics) here and below.
-- @param mode boolean, default true
-- @return self
function Module:train(mode)
  if mode == nil then mode = true end
  for _, m in ipairs(self:modules()) do m.training = mode end
  return self
end

--- Sets evaluation mode: `m:train(false)`.
function Module:eval() return self:train(false) end

--- Zeroes the gradient of every parameter that has one.
function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do
    local g = p.grad
    if g ~= nil then crater.no_grad(function() g:zero_() end) end
  end
end

local FLOAT_DTYPES = { float32 = "float32", float64 = "float64", float = "float32", double = "float64" }
--- The float dtype a name stands for ("float32", "float64", or Torch7's "float", "double"), or nil.
function Module.float_dtype(name) return FLOAT_DTYPES[name] end

--- Converts every parameter and float buffer to dtype, in place: the same tensor objects
-- (an optimizer built before still holds them), as PyTorch's `module.to` swaps `.data`.
-- Gradients are converted with their parameters; int64 buffers (num_batches_tracked) stay.
-- Graphs recorded before refuse to run backward afterwards (their saved tensors changed).
-- @param dtype "float32" or "float64" ("float", "double")
-- @return self
function Module:to(dtype)
  local dt = FLOAT_DTYPES[dtype]
  if dt == nil then
    error(string.format("%s:to: dtype must be float32 or float64 (a module's parameters are floating point), got %s",
      self.__name, tostring(dtype)), 2)
  end
  -- every converted copy first, then the swaps (which cannot fail): a conversion that
  -- runs out of memory, or a field that is no tensor, changes nothing
  local todo, done = {}, {}
  crater.no_grad(function()
    for _, m in ipairs(self:modules()) do
      for _, kind in ipairs({ m._param_names, m._buffer_names }) do
        for _, n in ipairs(kind) do
          local t = rawget(m, n)
          if t ~= nil and not crater.is_tensor(t) then
            error(string.format("%s:to: %s is a %s, not a tensor", self.__name, n, type(t)), 0)
          end
          if t ~= nil and not done[t] and t:dtype() ~= "int64" and t:dtype() ~= dt then
            done[t] = true
            local g = t.grad
            -- a leaf keeps its identity; a buffer that is an op's result is replaced, as
            -- PyTorch's module._apply replaces buffers
            todo[#todo + 1] = { t, t:detach():to(dt), g and g:to(dt), m, n, t.is_leaf }
          end
        end
      end
    end
  end)
  for _, c in ipairs(todo) do
    if c[6] then
      crater.core.internal.set_data(c[1], c[2])
      if c[3] ~= nil then c[1].grad = c[3] end
    else
      for _, m in ipairs(self:modules()) do   -- every module that holds it
        for _, kind in ipairs({ m._param_names, m._buffer_names }) do
          for _, n in ipairs(kind) do
            if rawequal(rawget(m, n), c[1]) then rawset(m, n, c[2]) end
          end
        end
      end
    end
  end
  return self
end

--- `m:to("float64")`.
function Module:double() return self:to("float64") end
--- `m:to("float32")`.
function Module:float() return self:to("float32") end

--- The module's state: parameters and buffers by dotted name, as detached tensors sharing
-- storage with the module (save it with crater.save).
function Module:state_dict()
  local sd = {}
  local p, pn = self:named_parameters()
  for _, n in ipairs(pn) do sd[n] = p[n]:detach() end
  local b, bn = self:named_buffers()
  for _, n in ipairs(bn) do sd[n] = b[n]:detach() end
  return sd
end

local function shape_str(t)
  return "{" .. table.concat(t:shape(), ",") .. "}"
end

-- A PyTorch state dict's names as crater's: crater names Sequential children "0", "1", ...
-- and every parameter and buffer as PyTorch does, so a name maps to itself once the
-- prefixes of PyTorch's wrappers are gone ("module." from DataParallel and DDP,
-- "_orig_mod." from torch.compile).  Two keys that map to one name are an error.
local function from_torch_names(sd, cls)
  local out, from = {}, {}
  for k, v in pairs(sd) do
    local n = k
    if type(k) == "string" then n = k:gsub("^module%.", ""):gsub("^_orig_mod%.", "") end
    if from[n] ~= nil then
      error(string.format("%s: load_state_dict: keys %s and %s both name %s", cls, tostring(from[n]), tostring(k),
        tostring(n)), 3)
    end
    out[n], from[n] = v, k
  end
  return out
end

--- Copies a state dict into the module's parameters and buffers.  With strict (the
-- default) the keys must match exactly; shapes must always match.  Checks everything
-- before copying anything.
-- @param sd table name -> tensor
-- @param strict boolean, default true; or options `{strict = true, torch_names = false}`,
--   torch_names taking the names of a PyTorch state dict (crater.safetensors.load of a
--   file torch wrote) to crater's
function Module:load_state_dict(sd, strict)
  if type(sd) ~= "table" then error("load_state_dict: expected a table, got " .. type(sd), 2) end
  if type(strict) == "table" then
    if strict.torch_names then sd = from_torch_names(sd, self.__name) end
    strict = strict.strict
  end
  if strict == nil then strict = true end
  local own = {}
  local p, pn = self:named_parameters()
  local b, bn = self:named_buffers()
  for _, n in ipairs(pn) do own[n] = p[n] end
  for _, n in ipairs(bn) do own[n] = b[n] end
  local missing, unexpected = {}, {}
  for _, n in ipairs(pn) do if sd[n] == nil then missing[#missing + 1] = n end end
  for _, n in ipairs(bn) do if sd[n] == nil then missing[#missing + 1] = n end end
  for k in pairs(sd) do if own[k] == nil then unexpected[#unexpected + 1] = tostring(k) end end
  table.sort(unexpected)
  if strict and (#missing > 0 or #unexpected > 0) then
    local parts = {}
    if #missing > 0 then parts[#parts + 1] = "missing keys: " .. table.concat(missing, ", ") end
    if #unexpected > 0 then parts[#parts + 1] = "unexpected keys: " .. table.concat(unexpected, ", ") end
    error(self.__name .. ": load_state_dict: " .. table.concat(parts, "; "), 2)
  end
  local bad = {}   -- every mismatch, in registration order, in one message
  for _, names in ipairs({pn, bn}) do
    for _, n in ipairs(names) do
      local v, t = sd[n], own[n]
      if v ~= nil then
        if getmetatable(v) ~= getmetatable(t) then
          error(self.__name .. ": load_state_dict: " .. n .. " is not a tensor", 2)
        end
        if shape_str(v) ~= shape_str(t) then
          bad[#bad + 1] = string.format("size mismatch for %s: checkpoint %s, model %s", n, shape_str(v), shape_str(t))
        end
      end
    end
  end
  if #bad > 0 then error(self.__name .. ": load_state_dict: " .. table.concat(bad, "; "), 2) end
  crater.no_grad(function()
    for n, t in pairs(own) do
      if sd[n] ~= nil then t:copy_(sd[n]) end
    end
  end)
  return missing, unexpected
end

--- A one-line description of the layer's settings, shown by tostring (override it).
function Module:extra_repr() return "" end

function Module:__tostring()
  local head = self.__name .. "(" .. self:extra_repr()
  if #self._child_names == 0 then return head .. ")" end
  local lines = { head }
  for _, n in ipairs(self._child_names) do
    local s = tostring(self._children[n]):gsub("\n", "\n  ")
    lines[#lines + 1] = "  (" .. n .. "): " .. s
  end
  return table.concat(lines, "\n") .. "\n)"
end

return Module
