--- crater.nn.init: in-place initialisers with PyTorch's gains and fan rules
-- (https://pytorch.org/docs/1.13/nn.init.html).  Each fills a tensor without recording
-- autograd and returns it.
local crater = require "crater"

local init = {}


local function opt(o, key, dflt)
  if type(o) == "table" and o[key] ~= nil then return o[key] end
  return dflt
end

--- The recommended gain for a nonlinearity: 1 for linear, conv and sigmoid, 5/3 for tanh,
-- sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu, 3/4 for selu.
-- @param nonlinearity a name such as "relu"
-- @param param the leaky_relu negative slope (default 0.01)
-- @usage crater.nn.init.calculate_gain("tanh")  -- 5/3
function init.calculate_gain(nonlinearity, param)
  local linear = { linear = true, conv1d = true, conv2d = true, conv3d = true, conv_transpose1d = true,
                   conv_transpose2d = true, conv_transpose3d = true, sigmoid = true }
  if linear[nonlinearity] then return 1 end
  if nonlinearity == "tanh" then return 5 / 3 end
  if nonlinearity == "relu" then return math.sqrt(2) end
  if nonlinearity == "selu" then return 3 / 4 end
  if nonlinearity == "leaky_relu" then
    local slope = param == nil and 0.01 or param
    if type(slope) ~= "number" then error("calculate_gain: negative slope " .. tostring(slope) .. " is not a number", 2) end
    return math.sqrt(2 / (1 + slope * slope))
  end
  error("calculate_gain: unsupported nonlinearity " .. tostring(nonlinearity), 2)
end

--- fan_in and fan_out of a weight: dims 2 and 1 times the receptive field (dims 3...).
-- @return fan_in, fan_out
function init.calculate_fan_in_and_fan_out(t)
  local d = t:dim()
  if d < 2 then
    error("calculate_fan_in_and_fan_out: fan in and fan out can not be computed for a tensor with fewer than 2 dimensions", 2)
  end
  local rf = 1
  for i = 3, d do rf = rf * t:size(i) end
  return t:size(2) * rf, t:size(1) * rf
end

--- Fills t with values drawn uniformly from [a, b).
-- @param a lower bound (default 0)
-- @param b upper bound (default 1)
-- (as PyTorch, through the tensor's own method: its checks - a <= b, std >= 0, all
-- finite - run before anything is written)
function init.uniform_(t, a, b)
  crater.no_grad(function() t:uniform_(a or 0, b or 1) end)
  return t
end

--- Fills t with normal values of the given mean (default 0) and std (default 1).
function init.normal_(t, mean, std)
  crater.no_grad(function() t:normal_(mean or 0, std or 1) end)
  return t
end

--- Fills t with val.
function init.constant_(t, val)
  crater.no_grad(function() t:fill_(val) end)
  return t
end

--- Fills t with 0.
function init.zeros_(t) return init.constant_(t, 0) end

--- Fills t with 1.
function init.ones_(t) return init.constant_(t, 1) end

--- Xavier/Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).
-- @param gain a number or {gain=1}
function init.xavier_uniform_(t, gain)
  gain = type(gain) == "number" and gain or opt(gain, "gain", 1)
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
  local a = math.sqrt(3) * gain * math.sqrt(2 / (fan_in + fan_out))
  return init.uniform_(t, -a, a)
end

--- Xavier/Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
-- @param gain a number or {gain=1}
function init.xavier_normal_(t, gain)
  gain = type(gain) == "number" and gain or opt(gain, "gain", 1)
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
  return init.normal_(t, 0, gain * math.sqrt(2 / (fan_in + fan_out)))
end

local function kaiming_std(t, o, fn)
  local a = opt(o, "a", 0)
  local mode = opt(o, "mode", "fan_in")
  local nonlin = opt(o, "nonlinearity", "leaky_relu")
  if mode ~= "fan_in" and mode ~= "fan_out" then
    error(fn .. ": mode must be 'fan_in' or 'fan_out', got '" .. tostring(mode) .. "'", 3)
  end
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
  local fan = mode == "fan_in" and fan_in or fan_out
  return init.calculate_gain(nonlin, a) / math.sqrt(fan)
end

--- He/Kaiming uniform: U(-b, b) with b = gain * sqrt(3 / fan).
-- @tparam[opt=0] number a the leaky_relu negative slope
-- @tparam[opt="fan_in"] string mode "fan_in" or "fan_out"
-- @tparam[opt="leaky_relu"] string nonlinearity passed to calculate_gain
-- @usage crater.nn.init.kaiming_uniform_(w, {nonlinearity = "relu"})
function init.kaiming_uniform_(t, o)
  local bound = math.sqrt(3) * kaiming_std(t, o, "kaiming_uniform_")
  return init.uniform_(t, -bound, bound)
end

--- He/Kaiming normal: N(0, std^2) with std = gain / sqrt(fan); options as kaiming_uniform_.
-- @tparam[opt=0] number a the leaky_relu negative slope
-- @tparam[opt="fan_in"] string mode "fan_in" or "fan_out"
-- @tparam[opt="leaky_relu"] string nonlinearity passed to calculate_gain
function init.kaiming_normal_(t, o)
  return init.normal_(t, 0, kaiming_std(t, o, "kaiming_normal_"))
end

return init
