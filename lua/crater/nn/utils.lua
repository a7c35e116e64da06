--- crater.nn.utils: gradient clipping, as torch.nn.utils.
-- https://pytorch.org/docs/1.13/generated/torch.nn.utils.clip_grad_norm_.html
-- luacheck: ignore 581 (the "not (a <= b)" tests are there to treat NaN as PyTorch does)
local M = {}

local crater = require "crater"
local list = require "crater.list"

-- The parameters (a tensor or a list of tensors) that have a gradient.
local function with_grads(parameters, fn)
  local mt = getmetatable(parameters)
  if type(parameters) == "userdata" and type(mt) == "table" and mt.__name == "crater.Tensor" then
    parameters = {parameters}
  end
  if type(parameters) ~= "table" then
    error(fn .. ": parameters must be a tensor or a list of tensors, got " .. type(parameters), 3)
  end
  local grads = {}
  for i = 1, list(parameters, fn, "parameters", nil, 3) do
    local p = parameters[i]
    if not crater.is_tensor(p) then error(string.format("%s: parameters[%d] is a %s, not a tensor", fn, i, type(p)), 3) end
    local g = p.grad
    if g ~= nil then grads[#grads + 1] = g end
  end
  return grads
end

--- Scales the gradients so that their joint norm is at most max_norm, in place.
-- The norm is taken over all gradients together, as if concatenated into one vector;
-- the gradients are multiplied by min(1, max_norm / (total_norm + 1e-6)). Returns the
-- total norm before clipping (a number; 0 when no parameter has a gradient). A NaN or
-- infinite norm makes every gradient NaN, as in PyTorch, unless error_if_nonfinite.
-- @param parameters a tensor or a list of tensors (those without .grad are skipped)
-- @param max_norm the largest norm allowed
-- @param norm_type (default 2) the p of the p-norm: 1, 2, any p > 0, or math.huge
-- @param error_if_nonfinite (default false) raise instead when the norm is NaN or inf
-- @usage local norm = crater.nn.utils.clip_grad_norm_(model:parameters(), 1.0)
function M.clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite)
  local grads = with_grads(parameters, "clip_grad_norm_")
  if type(max_norm) ~= "number" then
    error("clip_grad_norm_: max_norm must be a number, got " .. type(max_norm), 2)
  end
  norm_type = norm_type or 2
  if type(norm_type) ~= "number" or not (norm_type > 0) then
    error("clip_grad_norm_: norm_type must be a positive number or math.huge, got " .. tostring(norm_type), 2)
  end
  if #grads == 0 then return 0.0 end
  local total
  if norm_type == math.huge then
    total = -math.huge
    for _, g in ipairs(grads) do
      if g:numel() == 0 then   -- max has no identity: PyTorch refuses it as well
        error("clip_grad_norm_: the infinity norm of an empty gradient " .. "{" .. table.concat(g:shape(), ",") .. "}" .. " is undefined", 2)
      end
      local m = g:abs():max():item()
      if m ~= m or m > total then total = m end
      if total ~= total then break end
    end
  else
    local acc = 0
    for _, g in ipairs(grads) do acc = acc + g:norm(norm_type):item() ^ norm_type end
    total = acc ^ (1 / norm_type)
  end
  if error_if_nonfinite and (total ~= total or total == math.huge) then
    error(string.format("clip_grad_norm_: the total norm of order %s of the gradients is non-finite "
      .. "(%s), so it cannot be clipped", tostring(norm_type), tostring(total)), 2)
  end
  local coef = max_norm / (total + 1e-6)
  if not (coef >= 1) then   -- NaN stays NaN, as torch.clamp(max=1)
    crater.no_grad(function()
      for _, g in ipairs(grads) do g:mul_(coef) end
    end)
  end
  return total
end

--- Clamps every gradient into [-clip_value, clip_value], in place.
-- @param parameters a tensor or a list of tensors (those without .grad are skipped)
-- @param clip_value the largest magnitude allowed (non-negative)
-- @usage crater.nn.utils.clip_grad_value_(model:parameters(), 0.5)
function M.clip_grad_value_(parameters, clip_value)
  local grads = with_grads(parameters, "clip_grad_value_")
  if type(clip_value) ~= "number" or not (clip_value >= 0) then
    error("clip_grad_value_: clip_value must be a non-negative number, got " .. tostring(clip_value), 2)
  end
  crater.no_grad(function()
    for _, g in ipairs(grads) do g:clamp_(-clip_value, clip_value) end
  end)
end

return M
