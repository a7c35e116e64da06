--- crater.autograd: gradient checking, anomaly detection and derivatives of functions on
-- top of the C tape. `crater.grad`, `crater.no_grad` and `x:backward()` live in C; this
-- module adds `gradcheck`, `gradgradcheck`, `detect_anomaly`, and `jacobian`, `hessian`
-- and `hvp` (PyTorch's torch.autograd.functional, for one input tensor).
-- @module crater.autograd
local crater = require "crater"
local core = crater.core
local internal = core.internal
local list = require "crater.list"

local M = {}

M.grad = core.grad
M.backward = function(t, g, opts) return t:backward(g, opts) end
M.no_grad = core.no_grad
M.enable_grad = core.enable_grad
--- From a hook during `x:backward()`, queues fn() to run once that backward has
-- accumulated every gradient (PyTorch's engine queue_callback); DistributedDataParallel
-- reduces its gradients there.  Outside a backward it is an error.
M.queue_callback = internal.queue_callback
--- True while `x:backward()` runs (in its hooks); false elsewhere, including inside
-- crater.grad, which fills no .grad.
M.backward_running = internal.backward_running

local function as_list(v)
  if crater.is_tensor(v) then return { v } end
  return v
end

-- Flattened float64 copy of every output of fn(inputs).
local function outputs_of(fn, inputs)
  local out = as_list(fn(table.unpack(inputs)))
  local flat = {}
  for i, o in ipairs(out) do flat[i] = o:detach():to("float64"):clone():reshape(-1) end
  return out, flat
end

--- Compares analytic gradients with central finite differences, in float64.
-- Every input that requires grad is perturbed element by element; for each output
-- element the analytic row comes from crater.grad with a one-hot grad_output.
-- Raises an error naming the input, the element and both values on mismatch; returns true.
-- @param fn function of the inputs returning a tensor or a list of tensors
-- @param inputs list of float64 tensors (those with requires_grad are checked)
-- @tparam[opt] table opts `{eps=1e-6, atol=1e-5, rtol=1e-3}`
-- @usage crater.autograd.gradcheck(function(x) return x:exp():sum() end, {crater.randn(3, {dtype="float64", requires_grad=true})})
local function callable(f)
  local mt = getmetatable(f)
  return type(f) == "function" or (type(mt) == "table" and mt.__call ~= nil)
end

function M.gradcheck(fn, inputs, opts)
  if not callable(fn) then error("gradcheck: fn must be a function, got " .. type(fn), 2) end
  opts = opts or {}
  local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3
  inputs = as_list(inputs)
  list(inputs, "gradcheck", "inputs")
  for i, x in ipairs(inputs) do
    if crater.is_tensor(x) and x.requires_grad and x:dtype() ~= "float64" then
      error(string.format("gradcheck: input %d is %s; gradcheck needs float64 inputs", i, x:dtype()), 2)
    end
  end
  for i, x in ipairs(inputs) do
    if crater.is_tensor(x) and x.requires_grad then
      local n = x:numel()
      local xf = x:detach():view(-1)   -- shares storage with x: perturbing it perturbs x
      -- numerical jacobian column by column: d out / d x[k]
      local numeric = {}
      for k = 1, n do
        local orig = xf:get(k)
        local function at(v)   -- fn's outputs with x[k] = v; x[k] is restored even when fn raises
          xf[k] = v
          local ok, res, flat = pcall(outputs_of, fn, inputs)
          xf[k] = orig
          if not ok then error(res, 0) end
          return flat
        end
        local plus, minus = at(orig + eps), at(orig - eps)
        numeric[k] = {}
        for o = 1, #plus do numeric[k][o] = ((plus[o] - minus[o]) / (2 * eps)) end
      end
      -- analytic: a fresh graph (perturbing x bumped its version), one vector-Jacobian
      -- product per output element
      local out = outputs_of(fn, inputs)
      for o, y in ipairs(out) do
        if y.requires_grad then
          local m = y:numel()
          for j = 1, m do
            local go = crater.zeros(y:shape(), { dtype = y:dtype() })
            go:view(-1)[j] = 1
            local g = crater.grad({ y }, { x }, { grad_outputs = { go }, retain_graph = true, allow_unused = true })[1]
            local gf = g and g:to("float64"):reshape(-1)
            for k = 1, n do
              local a = gf and gf:get(k) or 0
              local num = numeric[k][o]:get(j)
              if math.abs(a - num) > atol + rtol * math.abs(num) then
                error(string.format("gradcheck: Jacobian mismatch for output %d element %d with respect to "
                  .. "input %d element %d: numerical %.10g, analytical %.10g", o, j, i, k, num, a), 2)
              end
            end
          end
        end
      end
    end
  end
  return true
end

--- gradcheck of the gradient: checks second derivatives (Hessian-vector products).
-- fn's output must be a scalar; the gradient is taken with create_graph=true and
-- then checked like any function of the inputs.
-- @param fn scalar function of the inputs
-- @param inputs list of float64 tensors
-- @tparam[opt] table opts as gradcheck
function M.gradgradcheck(fn, inputs, opts)
  if not callable(fn) then error("gradgradcheck: fn must be a function, got " .. type(fn), 2) end
  inputs = as_list(inputs)
  list(inputs, "gradgradcheck", "inputs")
  local wrt = {}
  for _, x in ipairs(inputs) do if crater.is_tensor(x) and x.requires_grad then wrt[#wrt + 1] = x end end
  return M.gradcheck(function(...)
    local y = fn(...)
    return crater.grad(y, wrt, { create_graph = true, allow_unused = true })
  end, inputs, opts)
end

-- x as a fresh leaf that requires grad (the functions below differentiate with respect to
-- a copy, so the caller's tensor and its graph are left alone)
local function leaf_copy(x, who)
  if not crater.is_tensor(x) then error(who .. ": x must be a tensor, got " .. type(x), 3) end
  if x:dtype() == "int64" then error(who .. ": x must be float32 or float64, got int64", 3) end
  local c = x:detach():clone()
  c.requires_grad = true
  return c
end

-- y's shape followed by x's: the shape of a Jacobian
local function joined_shape(y, x)
  local shape = y:shape()
  for _, n in ipairs(x:shape()) do shape[#shape + 1] = n end
  return shape
end

-- The Jacobian of y with respect to x: one backward per element of y (a row), stacked.
-- Zeros when y does not depend on x.
local function jacobian_of(y, x, create_graph)
  local m = y:numel()
  if m == 0 or not y.requires_grad then return crater.zeros(joined_shape(y, x), { dtype = x:dtype() }) end
  local rows = {}
  for k = 1, m do
    local onehot = crater.zeros(m, { dtype = y:dtype() })
    onehot[k] = 1
    local g = crater.grad({ y }, { x }, { grad_outputs = { onehot:view(y:shape()) }, retain_graph = true,
      create_graph = create_graph, allow_unused = true })[1]
    rows[k] = g or crater.zeros_like(x)
  end
  return crater.stack(rows, 1):view(joined_shape(y, x))
end

--- The Jacobian of fn at x: a tensor of shape fn(x):shape() followed by x:shape(), whose
-- entry [i..., j...] is d fn(x)[i...] / d x[j...]. One backward per output element.
-- @param fn function of one tensor returning a tensor
-- @param x the point (not modified; its own graph is not extended)
-- @tparam[opt] table opts `{create_graph=false}`: make the result differentiable in x
-- @usage crater.autograd.jacobian(function(v) return v * v end, crater.tensor({1, 2}))  -- diag(2, 4)
function M.jacobian(fn, x, opts)
  local xc = leaf_copy(x, "jacobian")
  local y = crater.enable_grad(fn, xc)
  if not crater.is_tensor(y) then error("jacobian: fn must return a tensor, got " .. type(y), 2) end
  return jacobian_of(y, xc, opts and opts.create_graph or false)
end

--- The Hessian of a scalar fn at x: shape x:shape() followed by x:shape(), built from
-- a gradient with create_graph and one backward per element of x.
-- @param fn function of one tensor returning a one-element tensor
-- @param x the point (not modified)
-- @usage crater.autograd.hessian(function(v) return (v ^ 3):sum() end, crater.tensor({1, 2}))  -- diag(6, 12)
function M.hessian(fn, x)
  local xc = leaf_copy(x, "hessian")
  local g = crater.enable_grad(function()
    local f = fn(xc)
    if not crater.is_tensor(f) or f:numel() ~= 1 then
      error("hessian: fn must return a tensor of one element", 0)
    end
    return crater.grad({ f }, { xc }, { create_graph = true, allow_unused = true })[1] or crater.zeros_like(xc)
  end)
  return jacobian_of(g, xc, false)
end

--- The Hessian-vector product of a scalar fn at x with v, without forming the Hessian:
-- two backward passes. Returns fn(x) (detached) and H v (x's shape).
-- @param fn function of one tensor returning a one-element tensor
-- @param x the point (not modified)
-- @param v a tensor of x's shape
-- @usage local f, hv = crater.autograd.hvp(function(w) return (w ^ 3):sum() end, w, crater.ones(2))
function M.hvp(fn, x, v)
  local xc = leaf_copy(x, "hvp")
  if not crater.is_tensor(v) then error("hvp: v must be a tensor, got " .. type(v), 2) end
  if table.concat(v:shape(), ",") ~= table.concat(x:shape(), ",") then
    error(string.format("hvp: v has shape {%s} but x has {%s}", table.concat(v:shape(), ","),
      table.concat(x:shape(), ",")), 2)
  end
  return crater.enable_grad(function()
    local f = fn(xc)
    if not crater.is_tensor(f) or f:numel() ~= 1 then error("hvp: fn must return a tensor of one element", 0) end
    local g = crater.grad({ f }, { xc }, { create_graph = true, allow_unused = true })[1]
    if g == nil or not g.requires_grad then return f:detach(), crater.zeros_like(x) end
    local hv = crater.grad({ (g * v):sum() }, { xc }, { allow_unused = true })[1]
    return f:detach(), hv or crater.zeros_like(x)
  end)
end

-- ctx of a Function: what forward leaves for backward
local Ctx = {}
Ctx.__index = Ctx
-- ctx -> {tensors, versions}: each saved tensor with its version when saved (weak keys: it
-- goes with its ctx)
local saved = setmetatable({}, { __mode = "k" })

--- Keeps tensors for backward, as `ctx.saved_tensors` (a list). Like a built-in op's, they
-- must not be modified in place before backward: backward then raises.
function Ctx:save_for_backward(...)
  local tensors, versions = table.pack(...), {}
  for i = 1, tensors.n do
    if crater.is_tensor(tensors[i]) then versions[i] = internal.version(tensors[i]) end
  end
  self.saved_tensors = tensors
  saved[self] = { tensors = tensors, versions = versions }
end

-- Raises, as PyTorch does, when a tensor ctx saved was modified in place since.
local function check_saved(ctx, opname)
  local s = saved[ctx]
  if s == nil then return end
  for i, v in pairs(s.versions) do
    local t = s.tensors[i]
    if internal.version(t) ~= v then
      error(string.format("%s: one of the variables needed for gradient computation has been modified by an "
        .. "inplace operation: saved tensor %d of shape {%s} is at version %d; expected version %d instead",
        opname, i, table.concat(t:shape(), ","), internal.version(t), v), 0)
    end
  end
end

--- Defines an op by its forward and its backward, both in Lua (PyTorch's
-- torch.autograd.Function). `forward(ctx, ...)` computes the result from the arguments
-- (tensors and anything else) with recording off and returns one tensor; `backward(ctx,
-- grad)` returns the gradient of each argument, in order (nil for those that are not
-- tensors or need none). `ctx:save_for_backward(...)` keeps tensors in
-- `ctx.saved_tensors`; any other field of ctx is kept too; `ctx.needs_input_grad[i]` says
-- whether argument i needs a gradient. The result's grad_fn is named "<name>Backward";
-- backward runs with recording on under create_graph, so it can be differentiated again.
-- Keep inputs or intermediates in ctx, not the result: a saved result keeps its graph alive
-- until a backward frees it.
-- @param name the op's name
-- @tparam table def `{forward = function(ctx, ...), backward = function(ctx, grad)}`
-- @return the op: call it as `op(...)` (or `op.apply(...)`)
-- @usage local Clip = crater.autograd.Function("Clip", {
--   forward = function(ctx, x) ctx:save_for_backward(x); return x:clamp(-1, 1) end,
--   backward = function(ctx, g) return g end })   -- a straight-through estimator
function M.Function(name, def)
  if type(name) ~= "string" then error("Function: name must be a string, got " .. type(name), 2) end
  if type(def) ~= "table" or type(def.forward) ~= "function" or type(def.backward) ~= "function" then
    error("Function: needs {forward = function(ctx, ...), backward = function(ctx, grad)}", 2)
  end
  local op = internal.function_op(name)
  local F = { name = name }
  function F.apply(...)
    local args = table.pack(...)
    local ctx = setmetatable({ needs_input_grad = {} }, Ctx)
    local inputs, positions, any = {}, {}, false
    for i = 1, args.n do
      local a = args[i]
      local needs = crater.is_tensor(a) and a.requires_grad and crater.is_grad_enabled()
      ctx.needs_input_grad[i] = needs or false
      if crater.is_tensor(a) then
        inputs[#inputs + 1], positions[#positions + 1] = a, i
        any = any or needs
      end
    end
    local out = crater.no_grad(def.forward, ctx, ...)
    if not crater.is_tensor(out) then
      error(string.format("%s: forward must return a tensor, got %s", name, type(out)), 2)
    end
    if not any then return out end
    out = out:detach()   -- its own tensor, even when forward returned an argument
    internal.function_record(out, inputs, op, function(grad)
      check_saved(ctx, name .. "Backward")
      local grads = table.pack(def.backward(ctx, grad))
      local picked = {}
      for j, i in ipairs(positions) do picked[j] = grads[i] end
      return table.unpack(picked, 1, #positions)
    end)
    return out
  end
  return setmetatable(F, { __call = function(_, ...) return F.apply(...) end,
    __tostring = function() return "crater.autograd.Function " .. name end })
end

--- Runs fn with anomaly detection on: the first op whose forward or backward produces
-- NaN or Inf raises an error naming the op ("anomaly: the backward of SqrtBackward produced Inf").
-- @param fn function to run
-- @param ... its arguments
-- @usage crater.autograd.detect_anomaly(function() loss:backward() end)
function M.detect_anomaly(fn, ...)
  local was = internal.set_anomaly(true)
  local res = table.pack(pcall(fn, ...))
  internal.set_anomaly(was)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

return M
