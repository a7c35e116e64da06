--- Tensor sugar written in Lua: Torch7-style printing, the *_like constructors and small
-- conveniences.  Everything numeric happens in C; printing reads at most a few hundred
-- elements because large tensors are elided.  Requiring it adds the methods to every
-- tensor; the table it returns holds the functions that crater (init.lua) exports:
-- zeros_like and the other *_like constructors, Tensor, neg, no_grad, enable_grad.  It
-- needs only crater.core, so any module may require it at its top.
-- @module crater.tensor
local core = require "crater.core"
local internal = core.internal

local crater = {}               -- what this module adds to crater's table
do
  local T = core.Tensor          -- the method table of every tensor
  local mt = internal.Tensor_mt

  local SUMMARY = 1000           -- beyond this many elements, print the edges only
  local EDGE = 3

  -- Indices shown along a dim of size n: all, or the edges with a gap (false).
  local function shown(n, summarise)
    local idx = {}
    if summarise and n > 2 * EDGE then
      for i = 1, EDGE do idx[#idx + 1] = i end
      idx[#idx + 1] = false
      for i = n - EDGE + 1, n do idx[#idx + 1] = i end
    else
      for i = 1, n do idx[i] = i end
    end
    return idx
  end

  -- One number format for a set of values, as Torch7 picks it.
  local function formatter(values, dtype)
    if dtype == "int64" then return function(v) return string.format("%d", v) end end
    local maxabs, minabs, allint = 0, math.huge, true
    for _, v in ipairs(values) do
      if v == v and v ~= math.huge and v ~= -math.huge then
        local a = math.abs(v)
        if a > maxabs then maxabs = a end
        if a > 0 and a < minabs then minabs = a end
        if v ~= math.floor(v) then allint = false end
      end
    end
    local function special(v)
      if v ~= v then return "nan" elseif v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
    end
    if allint and maxabs < 1e9 then
      return function(v) return special(v) or string.format("%d", math.floor(v)) end
    end
    if maxabs >= 1e5 or (minabs < 1e-4 and minabs ~= math.huge) then
      return function(v) return special(v) or string.format("%.4e", v) end
    end
    return function(v) return special(v) or string.format("%.4f", v) end
  end

  local function size_string(shape)
    local parts = {}
    for i, s in ipairs(shape) do parts[i] = tostring(s) end
    return table.concat(parts, "x")
  end

  local function format_tensor(x)
    local dtype, shape = x:dtype(), x:shape()
    local nd = #shape
    if nd == 0 then return formatter({ x:item() }, dtype)(x:item()) end
    local footer = string.format("[%s tensor of size %s]", dtype, size_string(shape))
    if x:numel() == 0 then return "[" .. dtype .. " tensor with no elements of size " .. size_string(shape) .. "]" end
    local summarise = x:numel() > SUMMARY
    -- the matrices to print: every combination of leading indices (a 1-D tensor is a column)
    local rows_dim, cols_dim = nd - 1, nd
    if nd == 1 then rows_dim, cols_dim = 1, nil end
    local lead = {}
    local function walk(d, prefix)
      if d > nd - 2 then lead[#lead + 1] = prefix return end
      for _, i in ipairs(shown(shape[d], summarise)) do
        local p = { table.unpack(prefix) }
        p[#p + 1] = i
        walk(d + 1, p)
      end
    end
    walk(1, {})
    local rows = shown(shape[rows_dim], summarise)
    local cols = cols_dim and shown(shape[cols_dim], summarise) or { 1 }
    -- gather the shown values once, to pick one format for all
    local values, blocks = {}, {}
    for b, prefix in ipairs(lead) do
      local block = {}
      if prefix[#prefix] ~= false and not (function() for _, v in ipairs(prefix) do if v == false then return true end end end)() then
        for r, i in ipairs(rows) do
          block[r] = {}
          for c, j in ipairs(cols) do
            if i and j then
              local idx = { table.unpack(prefix) }
              idx[#idx + 1] = i
              if cols_dim then idx[#idx + 1] = j end
              local v = x:get(table.unpack(idx))
              block[r][c] = v
              values[#values + 1] = v
            end
          end
        end
      else
        block = false
      end
      blocks[b] = block
    end
    local fmt = formatter(values, dtype)
    local width = 1
    for _, v in ipairs(values) do width = math.max(width, #fmt(v)) end
    local out = {}
    for b, prefix in ipairs(lead) do
      local block = blocks[b]
      if block == false then
        out[#out + 1] = "..."
      else
        if nd > 2 then
          local p = {}
          for k, v in ipairs(prefix) do p[k] = tostring(v) end
          out[#out + 1] = "(" .. table.concat(p, ",") .. ",.,.) = "
        end
        for r, i in ipairs(rows) do
          if not i then
            out[#out + 1] = " ..."
          else
            local line = {}
            for c, j in ipairs(cols) do
              line[#line + 1] = j and string.format("%" .. width .. "s", fmt(block[r][c])) or "..."
            end
            out[#out + 1] = " " .. table.concat(line, "  ")
          end
        end
        if nd > 2 and b < #lead then out[#out + 1] = "" end
      end
    end
    out[#out + 1] = footer
    return table.concat(out, "\n")
  end
  mt.__tostring = format_tensor
  mt.__methods = T   -- for the REPL's completion: __index is a C function

  -- crater.is_tensor(v) is core.is_tensor, the one tensor test

  local function like(fn)
    return function(x, opts)
      opts = opts or {}
      local o = { dtype = opts.dtype or x:dtype(), requires_grad = opts.requires_grad }
      return fn(x:shape(), o)
    end
  end
  --- A tensor of zeros with x's shape and dtype. @param x a tensor @param opts `{dtype=, requires_grad=}`
  crater.zeros_like = like(core.zeros)
  --- A tensor of ones with x's shape and dtype. @param x a tensor @param opts `{dtype=, requires_grad=}`
  crater.ones_like = like(core.ones)
  --- Standard normal samples with x's shape. @param x a tensor @param opts `{dtype=, requires_grad=}`
  crater.randn_like = like(core.randn)
  --- Uniform [0,1) samples with x's shape. @param x a tensor @param opts `{dtype=, requires_grad=}`
  crater.rand_like = like(core.rand)
  --- An uninitialised (zeroed) tensor with x's shape. @param x a tensor @param opts `{dtype=}`
  crater.empty_like = like(core.empty)
  --- A tensor filled with v with x's shape and dtype.
  -- @param x a tensor @param v the value @param opts `{dtype=, requires_grad=}`
  function crater.full_like(x, v, opts)
    opts = opts or {}
    return core.full(x:shape(), v, { dtype = opts.dtype or x:dtype(), requires_grad = opts.requires_grad })
  end
  T.zeros_like, T.ones_like = crater.zeros_like, crater.ones_like

  --- A tensor's type name as Torch7 gives it, e.g. "crater.float32".
  function T.type(x) return "crater." .. x:dtype() end

  --- Runs backward from this tensor. See crater.backward.
  T.backward = internal.backward

  --- Registers fn(grad) to run when the gradient of this tensor is computed; a returned tensor replaces it.
  T.register_hook = core.register_hook

  --- Switches requires_grad on or off in place and returns the tensor (PyTorch's requires_grad_).
  -- @param flag boolean, default true
  function T.requires_grad_(x, flag)
    if flag == nil then flag = true end
    if type(flag) ~= "boolean" then error("requires_grad_: flag must be a boolean, got " .. type(flag), 2) end
    x.requires_grad = flag
    return x
  end

  --- Returns x:detach() as a new leaf that requires grad when flag is true.
  function T.numpy_like(x) return x:totable() end

  --- Uniform reals in [lo, hi) written in place. @function uniform_
  --- Normal samples written in place. @function normal_

  -- operators on the crater table for functional use
  crater.Tensor = T
  crater.neg = core.neg or T.neg
  crater.no_grad = core.no_grad
  crater.enable_grad = core.enable_grad
end

return crater
