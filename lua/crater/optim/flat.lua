--- crater.optim.flat: a list of parameters seen as one flat vector, for the optimizers that
-- work on the whole vector x (LBFGS, CG, FISTA, CMAES, DE).  Every function moves data with
-- tensor operations, one per parameter; `out` buffers are 1-D tensors of numel(params)
-- elements, reused between calls so a step allocates no vector.
local M = {}

local crater = require "crater"

--- The total element count of the parameters.
function M.numel(params)
  local n = 0
  for _, p in ipairs(params) do n = n + p:numel() end
  return n
end

--- A new zero vector of numel(params) elements in the parameters' dtype.
function M.zeros(params)
  return crater.zeros(M.numel(params), {dtype = params[1]:dtype()})
end

-- Calls fn(p, slice) for each parameter p and its slice of the flat vector v.
local function each(params, v, fn)
  local offset = 0
  for _, p in ipairs(params) do
    local n = p:numel()
    fn(p, v:narrow(1, offset + 1, n))
    offset = offset + n
  end
end

--- The gradients as one vector (zeros where a grad is nil): into out, or a new vector.
function M.grads(params, out)
  out = out or M.zeros(params)
  each(params, out, function(p, slice)
    if p.grad then slice:copy_(p.grad:reshape(-1)) else slice:zero_() end
  end)
  return out
end

--- The parameters' values as one vector: into out, or a new vector.
function M.get(params, out)
  out = out or M.zeros(params)
  each(params, out, function(p, slice) slice:copy_(p:reshape(-1)) end)
  return out
end

--- Sets the parameters from the vector v.
function M.set(params, v)
  each(params, v, function(p, slice) p:view(-1):copy_(slice) end)
end

--- x = x + t * d over the parameters.
function M.add(params, t, d)
  each(params, d, function(p, slice) p:view(-1):add_(slice, t) end)
end

--- Runs fn(...) with gradient recording off (the parameters are written in place).
function M.no_grad(fn, ...) return crater.no_grad(fn, ...) end

--- Runs fn(...) under no_grad as one step of opt: when it raises (a closure that fails or
-- returns no loss halfway through a line search or a generation), the parameters go back
-- to where the step found them before the error reaches the caller's caller, so a failed
-- step changes none of them. The copy lives in a buffer kept on opt.
function M.guarded(opt, fn, ...)
  local params = opt.param_groups[1].params
  local entry = opt._step_entry
  if entry == nil or entry:numel() ~= M.numel(params) or entry:dtype() ~= params[1]:dtype() then
    entry = M.zeros(params)
    opt._step_entry = entry
  end
  M.no_grad(M.get, params, entry)
  local res = table.pack(pcall(M.no_grad, fn, ...))
  if not res[1] then
    M.no_grad(M.set, params, entry)
    error(res[2], 3)
  end
  return table.unpack(res, 2, res.n)
end

--- Runs the closure with gradients enabled; returns its loss as a number.
function M.evaluate(closure)
  local loss = crater.enable_grad(closure)
  if type(loss) == "number" then return loss end
  if loss == nil then error("the closure must return the loss", 0) end
  return loss:item()
end

--- f at the point v (flat) for the gradient-free searches: the parameters are set to v
-- and the closure run; a NaN counts as the worst value (+inf).
function M.value_at(params, v, closure)
  M.set(params, v)
  local f = M.evaluate(closure)
  if f ~= f then return math.huge end
  return f
end

--- Refuses parameter lists the flat view cannot hold: several groups or mixed dtypes.
function M.check(opt)
  local name = opt.__name
  if #opt.param_groups ~= 1 then
    error(string.format("%s: doesn't support per-parameter options (parameter groups): got %d groups", name,
      #opt.param_groups), 0)
  end
  local params = opt.param_groups[1].params
  for i, p in ipairs(params) do
    if p:dtype() ~= params[1]:dtype() then
      error(string.format("%s: all parameters must have one dtype (parameter 1 is %s, parameter %d is %s)", name,
        params[1]:dtype(), i, p:dtype()), 0)
    end
  end
  return params
end

return M
