--- crater.nn losses as modules: each stores its options and calls crater.nn.functional.
-- Every loss takes reduction = "mean" (default) | "sum" | "none".
local Module = require "crater.nn.module"
local F = require "crater.nn.functional"

local losses = {}

-- fname is the functional's name: its errors are re-raised under the module's name.
local function loss_class(name, fname, keys)
  local fn = F[fname]
  local C = Module:extend(name)
  function C:__init(o)
    if o ~= nil and type(o) ~= "table" then error(name .. ": options must be a table, got " .. type(o), 3) end
    o = o or {}
    local r = o.reduction or "mean"
    if r ~= "mean" and r ~= "sum" and r ~= "none" then
      error(name .. ": reduction must be 'mean', 'sum' or 'none', got '" .. tostring(r) .. "'", 3)
    end
    self.options = { reduction = r }
    for _, k in ipairs(keys) do self.options[k] = o[k] end
  end
  function C:forward(input, target)
    local ok, res = pcall(fn, input, target, self.options)
    if not ok then
      local msg = tostring(res):gsub("^[^:]*:%d+: ", "")
      if msg:sub(1, #fname + 1) == fname .. ":" then msg = name .. msg:sub(#fname + 1) end
      error(msg, 2)
    end
    return res
  end
  function C:extra_repr()
    local parts = { "reduction=" .. self.options.reduction }
    for _, k in ipairs(keys) do
      local v = self.options[k]
      if type(v) == "number" or type(v) == "boolean" then parts[#parts + 1] = k .. "=" .. tostring(v) end
    end
    return table.concat(parts, ", ")
  end
  losses[name] = C
end

--- MSELoss({reduction="mean"}): mean squared error.
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
-- @function MSELoss
loss_class("MSELoss", "mse_loss", {})
--- L1Loss({reduction="mean"}): mean absolute error.
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
-- @function L1Loss
loss_class("L1Loss", "l1_loss", {})
--- SmoothL1Loss({beta=1, reduction="mean"}).
-- @tparam[opt=1] number beta where the loss turns from quadratic to linear
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
-- @function SmoothL1Loss
loss_class("SmoothL1Loss", "smooth_l1_loss", { "beta" })
--- HuberLoss({delta=1, reduction="mean"}).
-- @tparam[opt=1] number delta where the loss turns from quadratic to linear
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
-- @function HuberLoss
loss_class("HuberLoss", "huber_loss", { "delta" })
--- CrossEntropyLoss({weight=, ignore_index=-100, label_smoothing=0, reduction="mean"}): logits
-- (N,C) against 1-based int64 targets (N), or against class probabilities.
-- @tparam[opt=nil] Tensor weight per-class weights (C)
-- @tparam[opt=-100] number ignore_index class target that contributes nothing
-- @tparam[opt=0] number label_smoothing mixes the target with the uniform distribution
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
-- @usage loss = crater.nn.CrossEntropyLoss()(logits, labels)
-- @function CrossEntropyLoss
loss_class("CrossEntropyLoss", "cross_entropy", { "weight", "ignore_index", "label_smoothing" })
--- NLLLoss({weight=, ignore_index=-100, reduction="mean"}): log-probabilities against 1-based targets.
-- @tparam[opt=nil] Tensor weight per-class weights (C)
-- @tparam[opt=-100] number ignore_index class target that contributes nothing
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
-- @function NLLLoss
loss_class("NLLLoss", "nll_loss", { "weight", "ignore_index" })
--- BCELoss({weight=, reduction="mean"}): binary cross-entropy of probabilities.
-- @tparam[opt=nil] Tensor weight per-element weights (broadcast)
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
-- @function BCELoss
loss_class("BCELoss", "binary_cross_entropy", { "weight" })
--- BCEWithLogitsLoss({weight=, pos_weight=, reduction="mean"}): sigmoid + BCE, computed stably.
-- @tparam[opt=nil] Tensor weight per-element weights (broadcast)
-- @tparam[opt=nil] Tensor pos_weight weight of positive examples per class
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
-- @function BCEWithLogitsLoss
loss_class("BCEWithLogitsLoss", "binary_cross_entropy_with_logits", { "weight", "pos_weight" })

return losses
