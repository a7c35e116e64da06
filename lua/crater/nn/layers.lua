--- crater.nn layers: Linear, Conv2d, pooling, Flatten, activations, Dropout, BatchNorm,
-- LayerNorm, Embedding and Sequential, with PyTorch 1.13's default initialisation.
local crater = require "crater"
local Module = require "crater.nn.module"
local F = require "crater.nn.functional"
local init = require "crater.nn.init_"
local list = require "crater.list"

local shape_str = F._shape_str
local L = {}

local function opts(o, fn)
  if o ~= nil and type(o) ~= "table" then error(fn .. ": options must be a table, got " .. type(o), 3) end
  return o or {}
end

local function check_pos_int(v, what, fn)
  if math.type(v) ~= "integer" or v <= 0 then
    error(fn .. ": " .. what .. " must be a positive integer, got " .. tostring(v), 3)
  end
end

local pair = F._pair

-- The {dtype =} option of a layer with parameters: a float dtype, by default crater's
-- default dtype (crater.set_default_dtype), as PyTorch's factory_kwargs.
local function param_dtype(o, fn)
  if o.dtype == nil then return { dtype = crater.get_default_dtype() } end
  local dt = Module.float_dtype(o.dtype)
  if dt == nil then
    error(fn .. ": dtype must be float32 or float64 (parameters are floating point), got " .. tostring(o.dtype), 3)
  end
  return { dtype = dt }
end

-- --------------------------------------------------------------- Linear

--- Linear(in_features, out_features, {bias=true}): y = x W^T + b over the last dim.
-- Weight and bias start as U(-1/sqrt(in), 1/sqrt(in)), as PyTorch.
-- @tparam[opt=true] boolean bias whether to learn an additive bias
-- @usage fc = crater.nn.Linear(784, 10)
L.Linear = Module:extend("Linear")
function L.Linear:__init(n_in, n_out, o)
  o = opts(o, "Linear")
  check_pos_int(n_in, "in_features", "Linear")
  check_pos_int(n_out, "out_features", "Linear")
  self.in_features, self.out_features = n_in, n_out
  local f = param_dtype(o, "Linear")
  self:register_parameter("weight", crater.empty({ n_out, n_in }, f))
  self:register_parameter("bias", o.bias ~= false and crater.empty({ n_out }, f) or nil)
  self:reset_parameters()
end
function L.Linear:reset_parameters()
  init.kaiming_uniform_(self.weight, { a = math.sqrt(5) })
  if self.bias ~= nil then
    local b = 1 / math.sqrt(self.in_features)
    init.uniform_(self.bias, -b, b)
  end
end
function L.Linear:forward(x)
  if x:dim() == 0 or x:size(x:dim()) ~= self.in_features then
    error("Linear: input " .. shape_str(x) .. " does not match weight " .. shape_str(self.weight)
      .. " (expected last size " .. self.in_features .. ")", 2)
  end
  return F.linear(x, self.weight, self.bias)
end
function L.Linear:extra_repr()
  return string.format("in_features=%d, out_features=%d, bias=%s", self.in_features,
    self.out_features, tostring(self.bias ~= nil))
end

-- --------------------------------------------------------------- Conv2d

--- Conv2d(in_channels, out_channels, kernel_size, {stride=1, padding=0, bias=true}) on
-- (B,C,H,W) inputs; kernel_size, stride and padding are numbers or {h, w}.  Default init
-- as PyTorch: kaiming_uniform_(a = sqrt(5)), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
-- @tparam[opt=1] number stride
-- @tparam[opt=0] number padding zeros added on each side
-- @tparam[opt=true] boolean bias
-- @usage conv = crater.nn.Conv2d(1, 32, 3, {padding = 1})
L.Conv2d = Module:extend("Conv2d")
function L.Conv2d:__init(cin, cout, k, o)
  o = opts(o, "Conv2d")
  check_pos_int(cin, "in_channels", "Conv2d")
  check_pos_int(cout, "out_channels", "Conv2d")
  local kh, kw = pair(k, "Conv2d", "kernel_size")
  check_pos_int(kh, "kernel_size", "Conv2d")
  check_pos_int(kw, "kernel_size", "Conv2d")
  self.in_channels, self.out_channels, self.kernel_size = cin, cout, { kh, kw }
  self.stride = { pair(o.stride or 1, "Conv2d", "stride") }
  self.padding = { pair(o.padding or 0, "Conv2d", "padding") }
  local f = param_dtype(o, "Conv2d")
  self:register_parameter("weight", crater.empty({ cout, cin, kh, kw }, f))
  self:register_parameter("bias", o.bias ~= false and crater.empty({ cout }, f) or nil)
  self:reset_parameters()
end
function L.Conv2d:reset_parameters()
  init.kaiming_uniform_(self.weight, { a = math.sqrt(5) })
  if self.bias ~= nil then
    local b = 1 / math.sqrt(self.in_channels * self.kernel_size[1] * self.kernel_size[2])
    init.uniform_(self.bias, -b, b)
  end
end
function L.Conv2d:forward(x)
  if x:dim() ~= 4 or x:size(2) ~= self.in_channels then
    error("Conv2d: input " .. shape_str(x) .. " does not match weight " .. shape_str(self.weight)
      .. " (expected (B," .. self.in_channels .. ",H,W))", 2)
  end
  return F.conv2d(x, self.weight, self.bias, { stride = self.stride, padding = self.padding })
end
function L.Conv2d:extra_repr()
  return string.format("%d, %d, kernel_size={%d,%d}, stride={%d,%d}, padding={%d,%d}, bias=%s",
    self.in_channels, self.out_channels, self.kernel_size[1], self.kernel_size[2], self.stride[1],
    self.stride[2], self.padding[1], self.padding[2], tostring(self.bias ~= nil))
end

-- --------------------------------------------------------------- pooling

local function pool_class(name, fn)
  local P = Module:extend(name)
  function P:__init(k, o)
    o = opts(o, name)
    local kh, kw = pair(k, name, "kernel_size")
    check_pos_int(kh, "kernel_size", name)
    check_pos_int(kw, "kernel_size", name)
    self.kernel_size = { kh, kw }
    self.stride = { pair(o.stride or k, name, "stride") }
    self.padding = { pair(o.padding or 0, name, "padding") }
  end
  function P:forward(x)
    if x:dim() ~= 4 then
      error(name .. ": expected a 4-D input (B,C,H,W), got " .. shape_str(x), 2)
    end
    return fn(x, self.kernel_size, { stride = self.stride, padding = self.padding })
  end
  function P:extra_repr()
    return string.format("kernel_size={%d,%d}, stride={%d,%d}, padding={%d,%d}", self.kernel_size[1],
      self.kernel_size[2], self.stride[1], self.stride[2], self.padding[1], self.padding[2])
  end
  return P
end

--- MaxPool2d(kernel_size, {stride=kernel_size, padding=0}): the maximum of each window.
-- @tparam[opt=kernel_size] number stride
-- @tparam[opt=0] number padding
L.MaxPool2d = pool_class("MaxPool2d", F.max_pool2d)

--- AvgPool2d(kernel_size, {stride=kernel_size, padding=0}): the mean of each window
-- (padding counts as zeros).
-- @tparam[opt=kernel_size] number stride
-- @tparam[opt=0] number padding
L.AvgPool2d = pool_class("AvgPool2d", F.avg_pool2d)

-- --------------------------------------------------------------- Flatten

--- Flatten({start_dim=2, end_dim=-1}): merges dims start_dim..end_dim (1-based, negative
-- counts from the end).
-- @tparam[opt=2] number start_dim
-- @tparam[opt=-1] number end_dim
L.Flatten = Module:extend("Flatten")
function L.Flatten:__init(o)
  o = opts(o, "Flatten")
  self.start_dim, self.end_dim = o.start_dim or 2, o.end_dim or -1
end
function L.Flatten:forward(x)
  local s, n = x:shape(), x:dim()
  local a = self.start_dim < 0 and n + 1 + self.start_dim or self.start_dim
  local b = self.end_dim < 0 and n + 1 + self.end_dim or self.end_dim
  if a < 1 or b > n or a > b then
    error("Flatten: dims " .. self.start_dim .. ".." .. self.end_dim .. " out of range for input " .. shape_str(x), 2)
  end
  local out, m = {}, 1
  for i = 1, a - 1 do out[#out + 1] = s[i] end
  for i = a, b do m = m * s[i] end
  out[#out + 1] = m
  for i = b + 1, n do out[#out + 1] = s[i] end
  return x:reshape(table.unpack(out))
end
function L.Flatten:extra_repr() return "start_dim=" .. self.start_dim .. ", end_dim=" .. self.end_dim end

-- --------------------------------------------------------------- activations

local function activation(name, fn, arg_repr)
  local A = Module:extend(name)
  function A:forward(x) return fn(self, x) end
  if arg_repr then A.extra_repr = arg_repr end
  return A
end

--- ReLU(): max(x, 0).
L.ReLU = activation("ReLU", function(_, x) return F.relu(x) end)
--- Sigmoid(): 1 / (1 + e^-x).
L.Sigmoid = activation("Sigmoid", function(_, x) return x:sigmoid() end)
--- Tanh(): the hyperbolic tangent.
L.Tanh = activation("Tanh", function(_, x) return x:tanh() end)
--- GELU(): x * Phi(x) (the exact, erf form).
L.GELU = activation("GELU", function(_, x) return x:gelu() end)

--- LeakyReLU(negative_slope=0.01): x for x >= 0, slope * x otherwise.
L.LeakyReLU = activation("LeakyReLU", function(self, x) return x:leaky_relu(self.negative_slope) end,
  function(self) return "negative_slope=" .. self.negative_slope end)
function L.LeakyReLU:__init(a) self.negative_slope = a or 0.01 end

--- Softmax(dim): exp(x) / sum(exp(x)) over dim (1-based).
L.Softmax = activation("Softmax", function(self, x) return x:softmax(self.dim) end,
  function(self) return "dim=" .. self.dim end)
function L.Softmax:__init(dim)
  if math.type(dim) ~= "integer" then error("Softmax: dim must be an integer, got " .. tostring(dim), 3) end
  self.dim = dim
end

--- LogSoftmax(dim): x - logsumexp(x) over dim (1-based).
L.LogSoftmax = activation("LogSoftmax", function(self, x) return x:log_softmax(self.dim) end,
  function(self) return "dim=" .. self.dim end)
function L.LogSoftmax:__init(dim)
  if math.type(dim) ~= "integer" then error("LogSoftmax: dim must be an integer, got " .. tostring(dim), 3) end
  self.dim = dim
end

--- Dropout(p=0.5): in training, zeroes each element with probability p and scales the rest
-- by 1/(1-p); the identity in eval mode.
L.Dropout = Module:extend("Dropout")
function L.Dropout:__init(p)
  p = p or 0.5
  if type(p) ~= "number" or p < 0 or p > 1 then
    error("Dropout: probability must be between 0 and 1, got " .. tostring(p), 3)
  end
  self.p = p
end
function L.Dropout:forward(x) return F.dropout(x, self.p, self.training) end
function L.Dropout:extra_repr() return "p=" .. self.p end

--- Identity(): returns its input.
L.Identity = activation("Identity", function(_, x) return x end)

-- --------------------------------------------------------------- normalisation

local function batchnorm_class(name, ndims)
  local B = Module:extend(name)
  function B:__init(n, o)
    o = opts(o, name)
    check_pos_int(n, "num_features", name)
    self.num_features, self.eps = n, o.eps or 1e-5
    self.momentum = o.momentum == nil and 0.1 or o.momentum
    self.affine = o.affine ~= false
    self.track_running_stats = o.track_running_stats ~= false
    local f = param_dtype(o, name)
    if self.affine then
      self:register_parameter("weight", crater.ones({ n }, f))
      self:register_parameter("bias", crater.zeros({ n }, f))
    end
    if self.track_running_stats then
      self:register_buffer("running_mean", crater.zeros({ n }, f))
      self:register_buffer("running_var", crater.ones({ n }, f))
      self:register_buffer("num_batches_tracked", crater.zeros({}, { dtype = "int64" }))
    end
  end
  function B:forward(x)
    local ok = false
    for _, d in ipairs(ndims) do if x:dim() == d then ok = true end end
    if not ok or x:size(2) ~= self.num_features then
      error(string.format("%s: input %s does not match num_features %d (expected %s)", name,
        shape_str(x), self.num_features, name == "BatchNorm2d" and "(B,C,H,W)" or "(B,C) or (B,C,L)"), 2)
    end
    local c = self.num_features
    local bshape = { 1, c }
    for _ = 3, x:dim() do bshape[#bshape + 1] = 1 end
    local mean, var
    if self.training or not self.track_running_stats then
      -- statistics over every dim but the channel: channels first, then (C, rest)
      local xc = x:transpose(1, 2):reshape(c, -1)
      local n = xc:size(2)
      if n == 1 then
        error(name .. ": expected more than 1 value per channel when training, got input " .. shape_str(x), 2)
      end
      if n == 0 then   -- an empty batch: an empty result; PyTorch leaves the statistics be
        mean, var = crater.zeros(c, { dtype = x:dtype() }), crater.ones(c, { dtype = x:dtype() })
        if self.training and self.track_running_stats then self.num_batches_tracked:add_(1) end
      else
        mean = xc:mean(2)
        var = xc:var(2, { unbiased = false })
      end
      if n > 0 and self.training and self.track_running_stats then
        local m = self.momentum
        crater.no_grad(function()
          self.num_batches_tracked:add_(1)
          -- momentum false (PyTorch's None): the cumulative average, as update_bn uses
          if m == false then m = 1 / self.num_batches_tracked:item() end
          self.running_mean:mul_(1 - m):add_(mean:detach(), m)
          self.running_var:mul_(1 - m):add_(var:detach() * (n / (n - 1)), m)
        end)
      end
    else
      mean, var = self.running_mean, self.running_var
    end
    local y = (x - mean:view(table.unpack(bshape))) * (var + self.eps):rsqrt():view(table.unpack(bshape))
    if self.affine then
      y = y * self.weight:view(table.unpack(bshape)) + self.bias:view(table.unpack(bshape))
    end
    return y
  end
  function B:extra_repr()
    return string.format("%d, eps=%g, momentum=%s, affine=%s, track_running_stats=%s", self.num_features,
      self.eps, tostring(self.momentum), tostring(self.affine), tostring(self.track_running_stats))
  end
  return B
end

--- BatchNorm1d(num_features, {eps=1e-5, momentum=0.1, affine=true, track_running_stats=true})
-- on (B,C) or (B,C,L): normalises each channel with the batch statistics in training
-- (updating running_mean and the unbiased running_var) and the running ones in eval.
-- @tparam[opt=1e-5] number eps added to the variance
-- @tparam[opt=0.1] number momentum weight of the new batch in the running statistics
--   (false: PyTorch's None, the cumulative average of every batch so far)
-- @tparam[opt=true] boolean affine learn a per-channel scale (weight) and shift (bias)
-- @tparam[opt=true] boolean track_running_stats keep running statistics for eval mode
L.BatchNorm1d = batchnorm_class("BatchNorm1d", { 2, 3 })

--- BatchNorm2d(num_features, {eps=1e-5, momentum=0.1, affine=true, track_running_stats=true})
-- on (B,C,H,W); as BatchNorm1d.
-- @tparam[opt=1e-5] number eps added to the variance
-- @tparam[opt=0.1] number momentum weight of the new batch in the running statistics
-- @tparam[opt=true] boolean affine learn a per-channel scale and shift
-- @tparam[opt=true] boolean track_running_stats keep running statistics for eval mode
L.BatchNorm2d = batchnorm_class("BatchNorm2d", { 4 })

--- LayerNorm(normalized_shape, {eps=1e-5, elementwise_affine=true}): normalises over the
-- last dims (a size or a shape table) with the biased variance.
-- @tparam[opt=1e-5] number eps
-- @tparam[opt=true] boolean elementwise_affine learn weight (ones) and bias (zeros) of normalized_shape
L.LayerNorm = Module:extend("LayerNorm")
function L.LayerNorm:__init(shape, o)
  o = opts(o, "LayerNorm")
  if type(shape) == "number" then shape = { shape } end
  for i = 1, list(shape, "LayerNorm", "normalized_shape", nil, 3) do check_pos_int(shape[i], "normalized_shape", "LayerNorm") end
  self.normalized_shape, self.eps = shape, o.eps or 1e-5
  self.elementwise_affine = o.elementwise_affine ~= false
  if self.elementwise_affine then
    local f = param_dtype(o, "LayerNorm")
    self:register_parameter("weight", crater.ones(shape, f))
    self:register_parameter("bias", crater.zeros(shape, f))
  end
end
function L.LayerNorm:forward(x)
  local k, n, s = #self.normalized_shape, x:dim(), x:shape()
  local ok, m = n >= k, 1
  for i = 1, k do
    if not ok or s[n - k + i] ~= self.normalized_shape[i] then ok = false break end
    m = m * self.normalized_shape[i]
  end
  if not ok then
    error("LayerNorm: input " .. shape_str(x) .. " does not end in normalized_shape {"
      .. table.concat(self.normalized_shape, ",") .. "}", 2)
  end
  local rows = x:reshape(-1, m)
  local mean = rows:mean(2, { keepdim = true })
  local var = rows:var(2, { keepdim = true, unbiased = false })
  local y = ((rows - mean) * (var + self.eps):rsqrt()):view(table.unpack(s))
  if self.elementwise_affine then y = y * self.weight + self.bias end
  return y
end
function L.LayerNorm:extra_repr()
  return string.format("{%s}, eps=%g, elementwise_affine=%s", table.concat(self.normalized_shape, ","),
    self.eps, tostring(self.elementwise_affine))
end

--- Embedding(num_embeddings, embedding_dim, {dtype}): a lookup table; input int64 indices
-- (1-based) of any shape give (..., embedding_dim).  Weight starts N(0, 1), as PyTorch.
-- @usage emb = crater.nn.Embedding(10, 3); emb(crater.tensor({1, 5}, {dtype = "int64"}))
L.Embedding = Module:extend("Embedding")
function L.Embedding:__init(n, d, o)
  o = opts(o, "Embedding")
  check_pos_int(n, "num_embeddings", "Embedding")
  check_pos_int(d, "embedding_dim", "Embedding")
  self.num_embeddings, self.embedding_dim = n, d
  self:register_parameter("weight", init.normal_(crater.empty({ n, d }, param_dtype(o, "Embedding"))))
end
function L.Embedding:forward(idx)
  if idx:dtype() ~= "int64" then error("Embedding: indices must be int64, got " .. idx:dtype(), 2) end
  local flat = idx:reshape(-1)
  if flat:numel() > 0 then
    local lo, hi = flat:min():item(), flat:max():item()
    if lo < 1 or hi > self.num_embeddings then
      error(string.format("Embedding: index %d out of range for %d embeddings (indices are 1-based)",
        lo < 1 and lo or hi, self.num_embeddings), 2)
    end
  end
  local out = idx:shape()
  out[#out + 1] = self.embedding_dim
  return self.weight:index_select(1, flat):view(table.unpack(out))
end
function L.Embedding:extra_repr() return self.num_embeddings .. ", " .. self.embedding_dim end

-- --------------------------------------------------------------- Sequential

--- Sequential(m1, m2, ...): applies its modules in order.  Children are named "0", "1", ...
-- as PyTorch (so "0.weight" in a state dict); seq[i] is the i-th module (1-based).
-- @usage net = crater.nn.Sequential(crater.nn.Linear(4, 8), crater.nn.ReLU(), crater.nn.Linear(8, 1))
L.Sequential = Module:extend("Sequential")
function L.Sequential:__init(...)
  for i = 1, select("#", ...) do self:add(select(i, ...)) end
end
--- Appends module m; returns the Sequential.
function L.Sequential:add(m)
  if type(m) ~= "table" or type(m.forward) ~= "function" then
    error("Sequential: argument #" .. (#self + 1) .. " is not a module", 3)
  end
  self:add_module(tostring(#self), m)
  rawset(self, #self + 1, m)
  return self
end
function L.Sequential:forward(x)
  for i = 1, #self do x = self[i](x) end
  return x
end

return L
