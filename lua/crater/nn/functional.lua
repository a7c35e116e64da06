--- crater.nn.functional: layers and losses as plain functions of tensors.
-- Losses follow torch.nn.functional (PyTorch 1.13) with 1-based int64 class targets and
-- reduction = "mean" (default) | "sum" | "none".
local crater = require "crater"
local internal = require("crater.core").internal
local list = require "crater.list"

local F = {}

local shape_str = require("crater.pretty").shape_str
F._shape_str = shape_str

-- A size given as a number or a pair {h, w} (a list checked as every list is), as h, w.
local function pair(v, fn, what)
  if type(v) ~= "table" then return v, v end
  local n = list(v, fn, what, nil, 3)
  if n ~= 2 then error(string.format("%s: %s must be a number or a pair {h, w}, got %d values", fn, what, n), 4) end
  return v[1], v[2]
end
F._pair = pair

local function opts(o, fn)
  if o ~= nil and type(o) ~= "table" then error(fn .. ": options must be a table, got " .. type(o), 3) end
  return o or {}
end

local function reduce(loss, reduction, fn)
  if reduction == nil or reduction == "mean" then return loss:mean() end
  if reduction == "sum" then return loss:sum() end
  if reduction == "none" then return loss end
  error(fn .. ": reduction must be 'mean', 'sum' or 'none', got '" .. tostring(reduction) .. "'", 3)
end

local function same_shape(a, b, fn)
  if shape_str(a) ~= shape_str(b) then
    error(fn .. ": input " .. shape_str(a) .. " and target " .. shape_str(b) .. " have different shapes", 3)
  end
end

-- ---------------------------------------------------------------- layers

--- y = x W^T + b for x (..., in) and weight (out, in); a 2-D x of the weight's dtype
-- takes one fused GEMM (internal.linear).
function F.linear(x, weight, bias)
  if x:dim() == 2 and x:dtype() == weight:dtype() and (bias == nil or bias:dtype() == x:dtype()) then
    return internal.linear(x, weight, bias)
  end
  local y = x:matmul(weight:t())
  if bias ~= nil then y = y + bias end
  return y
end

--- 2-D convolution (cross-correlation) of x (B,Cin,H,W) with weight (Cout,Cin,kh,kw):
-- im2col and one product per image, in cache (core._conv2d), when the operands share a
-- dtype; else im2col of the batch, then one product W (Cout, Cin*kh*kw) x cols.
-- @tparam[opt=1] number stride
-- @tparam[opt=0] number padding
function F.conv2d(x, weight, bias, o)
  o = opts(o, "conv2d")
  local sh, sw = pair(o.stride or 1, "conv2d", "stride")
  local ph, pw = pair(o.padding or 0, "conv2d", "padding")
  if x:dim() ~= 4 or x:size(2) ~= weight:size(2) then
    error("conv2d: input " .. shape_str(x) .. " does not match weight " .. shape_str(weight)
      .. " (expected (B," .. weight:size(2) .. ",H,W))", 2)
  end
  local cout, kh, kw = weight:size(1), weight:size(3), weight:size(4)
  local b, h, w = x:size(1), x:size(3), x:size(4)
  -- images' sizes (every product of them fits) take the per-image kernel; hostile sizes
  -- and mixed dtypes the batch path, whose ops report them
  local M = 1 << 16
  if x:dtype() == weight:dtype() and (bias == nil or bias:dtype() == x:dtype()) and x:size(2) > 0
      and h <= M and w <= M and kh <= M and kw <= M and ph <= M and pw <= M and x:size(2) * kh * kw <= M * M then
    return internal._conv2d(x, weight, bias, sh, sw, ph, pw)
  end
  local cols = internal.im2col(x, kh, kw, sh, sw, ph, pw, "conv2d") -- (Cin*kh*kw, B*L)
  local ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
  local y = weight:view(cout, -1):matmul(cols)                  -- (Cout, B*L): one GEMM
  if bias ~= nil and bias:dtype() ~= y:dtype() then   -- promotes, as PyTorch
    y, bias = y + bias:view(cout, 1), nil
  end
  return internal._conv_out(y, bias, b, ho, wo)                     -- (B, Cout, Ho, Wo) + bias
end

local function win(k, o, fn)
  o = opts(o, fn)
  local kh, kw = pair(k, fn, "kernel_size")
  local sh, sw = pair(o.stride or k, fn, "stride")
  local ph, pw = pair(o.padding or 0, fn, "padding")
  return kh, kw, sh, sw, ph, pw
end

--- Max pooling over kernel windows of x (B,C,H,W).
-- @tparam[opt=kernel_size] number stride
-- @tparam[opt=0] number padding
function F.max_pool2d(x, kernel_size, o)
  return internal.max_pool2d(x, win(kernel_size, o, "max_pool2d"))
end

--- Average pooling over kernel windows of x (B,C,H,W) (padding counted as zeros).
-- @tparam[opt=kernel_size] number stride
-- @tparam[opt=0] number padding
function F.avg_pool2d(x, kernel_size, o)
  return internal.avg_pool2d(x, win(kernel_size, o, "avg_pool2d"))
end

function F.relu(x)   -- a float tensor in one pass each way over the threads (internal._relu)
  if crater.is_tensor(x) and x:dtype() ~= "int64" then return internal._relu(x) end
  return x:relu()
end
function F.leaky_relu(x, slope) return x:leaky_relu(slope or 0.01) end
function F.sigmoid(x) return x:sigmoid() end
function F.tanh(x) return x:tanh() end
function F.gelu(x) return x:gelu() end
function F.softmax(x, dim) return x:softmax(dim) end
function F.log_softmax(x, dim) return x:log_softmax(dim) end

--- Zeroes elements with probability p and scales the rest by 1/(1-p) when training.
-- @param p drop probability (default 0.5)
-- @param training boolean (default true)
function F.dropout(x, p, training)
  p = p or 0.5
  if p < 0 or p > 1 then error("dropout: probability must be between 0 and 1, got " .. p, 2) end
  if training == false or p == 0 then return x end
  if p == 1 then return x * 0 end
  local keep = crater.rand(x:shape(), { dtype = x:dtype() }):ge(p)
  return x * (keep * (1 / (1 - p)))
end

-- ---------------------------------------------------------------- losses

--- Mean squared error.
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
function F.mse_loss(input, target, o)
  o = opts(o, "mse_loss")
  same_shape(input, target, "mse_loss")
  local d = input - target
  return reduce(d * d, o.reduction, "mse_loss")
end

--- Mean absolute error.
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
function F.l1_loss(input, target, o)
  o = opts(o, "l1_loss")
  same_shape(input, target, "l1_loss")
  return reduce((input - target):abs(), o.reduction, "l1_loss")
end

-- 0.5 min(d, delta)^2 + delta (d - min(d, delta)) for d = |x - y|: quadratic near 0, linear beyond.
local function huber(input, target, delta)
  local d = (input - target):abs()
  local m = d:clamp(0, delta)
  return m * m * 0.5 + (d - m) * delta
end

--- Smooth L1: 0.5 d^2 / beta when |d| < beta, else |d| - beta / 2.
-- @tparam[opt=1] number beta
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
function F.smooth_l1_loss(input, target, o)
  o = opts(o, "smooth_l1_loss")
  same_shape(input, target, "smooth_l1_loss")
  local beta = o.beta or 1
  if beta < 0 then error("smooth_l1_loss: beta must be non-negative, got " .. beta, 2) end
  if beta == 0 then return reduce((input - target):abs(), o.reduction, "smooth_l1_loss") end
  return reduce(huber(input, target, beta) * (1 / beta), o.reduction, "smooth_l1_loss")
end

--- Huber loss: 0.5 d^2 when |d| < delta, else delta (|d| - delta / 2).
-- @tparam[opt=1] number delta
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
function F.huber_loss(input, target, o)
  o = opts(o, "huber_loss")
  same_shape(input, target, "huber_loss")
  local delta = o.delta or 1
  if delta <= 0 then error("huber_loss: delta must be positive, got " .. delta, 2) end
  return reduce(huber(input, target, delta), o.reduction, "huber_loss")
end

-- Moves the class dim of (N,C,d1,...) to the end and flattens to rows (M, C); (C) is one row.
local function as_rows(x)
  if x:dim() == 1 then return x:view(1, -1), x:size(1) end
  local c = x:size(2)
  if x:dim() > 2 then
    local perm = { 1 }
    for i = 3, x:dim() do perm[#perm + 1] = i end
    perm[#perm + 1] = 2
    x = x:permute(table.unpack(perm)):reshape(-1, c)
  end
  return x, c
end

local function check_target(input, target, fn)
  if target:dtype() ~= "int64" then
    error(fn .. ": class targets must be int64, got " .. target:dtype(), 3)
  end
  local expect = input:shape()
  if #expect > 1 then table.remove(expect, 2) else expect = {} end
  if "{" .. table.concat(expect, ",") .. "}" ~= shape_str(target) then
    error(fn .. ": input " .. shape_str(input) .. " and target " .. shape_str(target)
      .. " do not match (expected target {" .. table.concat(expect, ",") .. "})", 3)
  end
end

-- Negative log-likelihood of rows logp (M,C) at 1-based targets t (M): per-row losses
-- (weighted, 0 where ignored) and the per-row weights (0 where ignored).
local function nll_rows(logp, t, c, weight, ignore_index, fn)
  local valid = t:ne(ignore_index)
  local safe = t * valid - valid + 1          -- ignored targets point at class 1, weighted 0
  if c == 0 and valid:sum():item() == 0 then  -- no classes, every target ignored: 0 each, as PyTorch
    return logp:sum(2), valid:to(logp:dtype())
  end
  if safe:numel() > 0 then
    local lo, hi = safe:min():item(), safe:max():item()
    if lo < 1 or hi > c then
      error(string.format("%s: target %d out of range for %d classes (targets are 1-based)", fn,
        (lo < 1 and lo or hi), c), 3)
    end
  end
  local picked = logp:gather(2, safe:view(-1, 1)):view(-1)
  local w = valid:to(logp:dtype())
  if weight ~= nil then
    if weight:dim() ~= 1 or weight:size(1) ~= c then
      error(fn .. ": weight " .. shape_str(weight) .. " must have one entry per class (" .. c .. ")", 3)
    end
    w = w * weight:index_select(1, safe)
  end
  return -(picked * w), w
end

local function nll_reduce(loss, w, shape, reduction, fn)
  if reduction == nil or reduction == "mean" then return loss:sum() / w:sum() end
  if reduction == "sum" then return loss:sum() end
  if reduction == "none" then
    if #shape == 0 then return loss:sum() end    -- one sample: a 0-d loss
    return loss:view(table.unpack(shape))
  end
  error(fn .. ": reduction must be 'mean', 'sum' or 'none', got '" .. tostring(reduction) .. "'", 3)
end

local function target_shape(target) return target:shape() end

--- Negative log-likelihood of log-probabilities input (N,C) or (N,C,d...) at 1-based int64
-- class targets (N) or (N,d...); the mean divides by the total weight of the counted targets.
-- @tparam[opt=nil] Tensor weight per-class weights (C)
-- @tparam[opt=-100] number ignore_index target value that contributes nothing
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
function F.nll_loss(input, target, o)
  o = opts(o, "nll_loss")
  check_target(input, target, "nll_loss")
  local rows, c = as_rows(input)
  local t = target:reshape(-1)
  local loss, w = nll_rows(rows, t, c, o.weight, o.ignore_index or -100, "nll_loss")
  return nll_reduce(loss, w, target_shape(target), o.reduction, "nll_loss")
end

--- Cross-entropy of logits input (N,C) or (N,C,d...) against 1-based int64 class targets, or
-- against class probabilities of input's shape (float target).
-- @tparam[opt=nil] Tensor weight per-class weights (C)
-- @tparam[opt=-100] number ignore_index class target that contributes nothing
-- @tparam[opt=0] number label_smoothing mixes the target with the uniform distribution
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
-- @usage loss = crater.nn.functional.cross_entropy(logits, labels, {label_smoothing = 0.1})
function F.cross_entropy(input, target, o)
  o = opts(o, "cross_entropy")
  local eps = o.label_smoothing or 0
  if eps < 0 or eps > 1 then error("cross_entropy: label_smoothing must be between 0 and 1, got " .. eps, 2) end
  if target:dtype() ~= "int64" then           -- class probabilities
    same_shape(input, target, "cross_entropy")
    local rows, c = as_rows(input)
    local p = as_rows(target)
    if eps > 0 then p = p * (1 - eps) + eps / c end
    local logp = rows:log_softmax(2)
    if o.weight ~= nil then logp = logp * o.weight end
    local loss = -(logp * p):sum(2)
    local r = o.reduction
    -- PyTorch divides by the number of rows (N*d1*...); no rows (or classes) gives NaN
    if r == nil or r == "mean" then return loss:sum() / (input:numel() / c) end
    if r == "none" then
      local s = input:shape()
      if #s == 1 then return loss:sum() end
      table.remove(s, 2)
      return loss:view(table.unpack(s))
    end
    return reduce(loss, r, "cross_entropy")
  end
  check_target(input, target, "cross_entropy")
  local rows, c = as_rows(input)
  local t = target:reshape(-1)
  local logp = rows:log_softmax(2)
  local ignore = o.ignore_index or -100
  local loss, w = nll_rows(logp, t, c, o.weight, ignore, "cross_entropy")
  local shape, r = target_shape(target), o.reduction
  if eps == 0 then return nll_reduce(loss, w, shape, r, "cross_entropy") end
  -- PyTorch 1.13: (1 - eps) * nll + eps / C * smooth, smooth = -sum_c weight_c logp_c
  local lw = o.weight ~= nil and logp * o.weight or logp
  local smooth = -(lw:sum(2) * t:ne(ignore):to(logp:dtype()))
  local nll_part = nll_reduce(loss, w, shape, r, "cross_entropy")
  local smooth_part
  if r == nil or r == "mean" then
    smooth_part = smooth:sum() / (o.weight ~= nil and w:sum() or t:ne(ignore):sum():to(logp:dtype()))
  elseif r == "sum" then
    smooth_part = smooth:sum()
  else
    smooth_part = #shape == 0 and smooth:sum() or smooth:view(table.unpack(shape))
  end
  return nll_part * (1 - eps) + smooth_part * (eps / c)
end

--- Binary cross-entropy of probabilities input and targets in [0, 1]; each log is clamped
-- at -100 as in PyTorch.
-- @tparam[opt=nil] Tensor weight rescales each element's loss (broadcast)
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
function F.binary_cross_entropy(input, target, o)
  o = opts(o, "binary_cross_entropy")
  same_shape(input, target, "binary_cross_entropy")
  local loss = -(target * input:log():clamp(-100) + (1 - target) * (1 - input):log():clamp(-100))
  if o.weight ~= nil then loss = loss * o.weight end
  return reduce(loss, o.reduction, "binary_cross_entropy")
end

--- Binary cross-entropy on logits, computed stably:
-- (1 - t) x + (1 + (pw - 1) t) softplus(-x), softplus(z) = log(1 + e^z).
-- @tparam[opt=nil] Tensor weight rescales each element's loss (broadcast)
-- @tparam[opt=nil] Tensor pos_weight weight of positive examples, per class (broadcast over the last dim)
-- @tparam[opt="mean"] string reduction "mean", "sum" or "none"
function F.binary_cross_entropy_with_logits(input, target, o)
  o = opts(o, "binary_cross_entropy_with_logits")
  same_shape(input, target, "binary_cross_entropy_with_logits")
  local softplus_neg = (-input):softplus()   -- log(1 + e^-x), stable (linear beyond 20)
  local loss
  if o.pos_weight ~= nil then
    loss = (1 - target) * input + ((o.pos_weight - 1) * target + 1) * softplus_neg
  else
    loss = (1 - target) * input + softplus_neg
  end
  if o.weight ~= nil then loss = loss * o.weight end
  return reduce(loss, o.reduction, "binary_cross_entropy_with_logits")
end

return F
