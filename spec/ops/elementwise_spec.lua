-- Elementwise ops: unary math against Lua's math library, binary ops with broadcasting
-- and PyTorch's dtype promotion, comparisons, allclose, and every in-place method.
local crater = require "crater"
local H = dofile("spec/core/helpers.lua")
local d, i64 = H.d, H.i

local xs = { -2, -0.5, 0, 0.5, 3 }
local pos = { 0.25, 0.5, 1, 2, 4 }

local function map(t, f)
  local r = {}
  for k, v in ipairs(t) do r[k] = f(v) end
  return r
end

local function erf(x)   -- Abramowitz-Stegun 7.1.26 is too coarse; use the series/continued fraction
  local s, term, n = x, x, 0
  if math.abs(x) > 3 then return x > 0 and 1 - 2.2e-5 or -(1 - 2.2e-5) end
  repeat
    n = n + 1
    term = -term * x * x / n
    s = s + term / (2 * n + 1)
  until math.abs(term) < 1e-17
  return 2 / math.sqrt(math.pi) * s
end

describe("unary ops", function()
  local cases = {
    { "neg", xs, function(v) return -v end },
    { "abs", xs, math.abs },
    { "sign", xs, function(v) return v > 0 and 1 or (v < 0 and -1 or 0) end },
    { "exp", xs, math.exp },
    { "log", pos, math.log },
    { "log1p", pos, function(v) return math.log(1 + v) end },
    { "sqrt", pos, math.sqrt },
    { "rsqrt", pos, function(v) return 1 / math.sqrt(v) end },
    { "sin", xs, math.sin },
    { "cos", xs, math.cos },
    { "tanh", xs, function(v) return (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1) end },
    { "sigmoid", xs, function(v) return 1 / (1 + math.exp(-v)) end },
    { "relu", xs, function(v) return math.max(v, 0) end },
    { "gelu", { -1, 0, 0.5, 2 }, function(v) return 0.5 * v * (1 + erf(v / math.sqrt(2))) end },
    { "softplus", xs, function(v) return math.log(1 + math.exp(v)) end },
  }
  for _, c in ipairs(cases) do
    local name, input, f = c[1], c[2], c[3]
    it(name .. " matches the closed form in float64 (method and function forms)", function()
      local x = d(input)
      H.close(x[name](x), map(input, f), 1e-12)
      H.close(crater[name](x), map(input, f), 1e-12)
    end)
    it(name .. " works in float32 to single precision", function()
      H.close(crater.tensor(input)[name](crater.tensor(input)), map(input, f), 1e-6)
    end)
  end

  it("leaky_relu takes the negative slope, 0.01 by default", function()
    H.close(d({ -2, 3 }):leaky_relu(0.2), { -0.4, 3 }, 1e-15)
    H.close(d({ -2, 3 }):leaky_relu(), { -0.02, 3 }, 1e-15)
  end)

  it("softplus takes beta and threshold (linear above the threshold)", function()
    H.close(d({ 1 }):softplus(2), { math.log(1 + math.exp(2)) / 2 }, 1e-14)
    H.close(d({ 30 }):softplus(1, 20), { 30 }, 0)
  end)

  it("clamp takes min, max or both", function()
    assert.same({ 1.5, 2, 3 }, d({ 1, 2, 3 }):clamp(1.5):totable())
    assert.same({ 1, 2, 2.5 }, d({ 1, 2, 3 }):clamp(nil, 2.5):totable())
    assert.same({ 2, 2, 2.5 }, d({ 1, 2, 3 }):clamp(2, 2.5):totable())
    assert.error_matches(function() d({ 1 }):clamp() end, "clamp: at least one of min and max must be given", 1, true)
    assert.error_matches(function() d({ 1 }):clamp_() end, "clamp_: at least one of min and max must be given", 1, true)
  end)

  it("keeps int64 for neg, abs, sign, relu; other ops give float32", function()
    local x = i64({ -2, 3 })
    assert.equal("int64", x:neg():dtype())
    assert.same({ 2, 3 }, x:abs():totable())
    assert.same({ -1, 1 }, x:sign():totable())
    assert.equal("int64", x:relu():dtype())
    assert.equal("float32", x:exp():dtype())
    H.close(x:exp(), { math.exp(-2), math.exp(3) }, 1e-6)
  end)

  it("works on strided views", function()
    local x = d({ { 1, 2 }, { 3, 4 } }):t()
    H.close(x:exp(), { { math.exp(1), math.exp(3) }, { math.exp(2), math.exp(4) } }, 1e-14)
  end)
end)

describe("binary ops", function()
  it("add sub mul div pow on equal shapes", function()
    local a, b = d({ 1, 2, 3 }), d({ 4, 5, 6 })
    assert.same({ 5, 7, 9 }, (a + b):totable())
    assert.same({ -3, -3, -3 }, (a - b):totable())
    assert.same({ 4, 10, 18 }, (a * b):totable())
    H.close(a / b, { 0.25, 0.4, 0.5 }, 1e-15)
    assert.same({ 1, 32, 729 }, (a ^ b):totable())
    assert.same({ 5, 7, 9 }, crater.add(a, b):totable())
    assert.same({ 4, 10, 18 }, a:mul(b):totable())
    assert.same({ 1, 32, 729 }, crater.pow(a, b):totable())
  end)

  it("squares and cubes by multiplying, like PyTorch: exactly x*x and x*x*x", function()
    local vals = { 0.1, -1.7, 3.3, 1e-3, 123.456 }
    for _, dt in ipairs({ "float32", "float64" }) do
      local x = crater.tensor(vals, { dtype = dt })
      local sq, cu, given = (x ^ 2):totable(), (x ^ 3):totable(), x:totable()
      for i, v in ipairs(given) do
        local want2, want3 = v * v, v * v * v
        if dt == "float32" then   -- rounded to float after each product, as the kernel does
          want2 = string.unpack("f", string.pack("f", v * v))
          want3 = string.unpack("f", string.pack("f", want2 * v))
        end
        assert.equal(want2, sq[i])
        assert.equal(want3, cu[i])
      end
    end
  end)

  it("takes Lua numbers on either side", function()
    local a = d({ 1, 2, 4 })
    assert.same({ 3, 4, 6 }, (a + 2):totable())
    assert.same({ 3, 4, 6 }, (2 + a):totable())
    assert.same({ -1, 0, 2 }, (a - 2):totable())
    assert.same({ 1, 0, -2 }, (2 - a):totable())
    assert.same({ 2, 4, 8 }, (2 * a):totable())
    assert.same({ 0.5, 1, 2 }, (a / 2):totable())
    assert.same({ 4, 2, 1 }, (4 / a):totable())
    assert.same({ 1, 4, 16 }, (a ^ 2):totable())
    assert.same({ 2, 4, 16 }, (2 ^ a):totable())
    assert.same({ -1, -2, -4 }, (-a):totable())
  end)

  it("add and sub take alpha", function()
    assert.same({ 7, 9 }, crater.add(d({ 1, 1 }), d({ 3, 4 }), 2):totable())
    assert.same({ -5, -7 }, crater.sub(d({ 1, 1 }), d({ 3, 4 }), 2):totable())
  end)

  it("minimum and maximum, propagating NaN", function()
    local a, b = d({ 1, 5, 0 / 0 }), d({ 2, 3, 1 })
    H.close(crater.minimum(a, b), { 1, 3, 0 / 0 })
    H.close(crater.maximum(a, b), { 2, 5, 0 / 0 })
  end)

  it("broadcasts trailing dims and size-1 dims", function()
    local m = d({ { 1, 2, 3 }, { 4, 5, 6 } })
    assert.same({ { 11, 22, 33 }, { 14, 25, 36 } }, (m + d({ 10, 20, 30 })):totable())
    assert.same({ { 2, 3, 4 }, { 6, 7, 8 } }, (m + d({ { 1 }, { 2 } })):totable())
    assert.same({ { 11, 21 }, { 12, 22 } }, (d({ { 1 }, { 2 } }) + d({ 10, 20 })):totable())
    local r = d({ 1, 2 }):view(1, 2, 1) * d({ 1, 10, 100 }):view(3, 1, 1, 1)
    assert.same({ 3, 1, 2, 1 }, r:shape())
    assert.same({ { { 100 }, { 200 } } }, r[3]:totable())
    assert.same({ 0, 3 }, (crater.zeros(0, 3) + d({ 1, 2, 3 })):shape())
  end)

  it("names both shapes when they cannot broadcast", function()
    assert.error_matches(function() return d({ 1, 2, 3 }) + d({ 1, 2 }) end,
      "add: shapes {3} and {2} cannot be broadcast (size 3 vs 2 at dim 1)", 1, true)
    assert.error_matches(function() return crater.mul(crater.zeros(2, 3), crater.zeros(3, 2)) end,
      "mul: shapes {2,3} and {3,2} cannot be broadcast", 1, true)
  end)

  it("refuses wrong operand types", function()
    assert.error_matches(function() return d({ 1 }) + "a" end, "crater.Tensor or number expected, got string", 1, true)
    assert.error_matches(function() return d({ 1 }) + {} end, "crater.Tensor or number expected, got table", 1, true)
    assert.error_matches(function() return crater.add(1, 2) end, "crater.Tensor expected, got number", 1, true)
  end)
end)

describe("dtype promotion (PyTorch's rules)", function()
  local f = crater.tensor({ 1, 2 })
  local dd = d({ 1, 2 })
  local i = i64({ 1, 2 })
  it("float64 beats float32, any float beats int64", function()
    assert.equal("float64", (f + dd):dtype())
    assert.equal("float32", (i + f):dtype())
    assert.equal("float64", (i * dd):dtype())
    assert.equal("int64", (i + i):dtype())
  end)

  it("int64 divided is true division in float32", function()
    assert.equal("float32", (i / i):dtype())
    H.close(i64({ 1, 3 }) / i64({ 2, 2 }), { 0.5, 1.5 })
    assert.equal("float32", (i / 2):dtype())
  end)

  it("integer Lua numbers keep int64; fractional ones give float32", function()
    assert.equal("int64", (i + 2):dtype())
    assert.equal("int64", (2 * i):dtype())
    assert.equal("int64", (i ^ 2):dtype())
    assert.equal("float32", (i + 1.5):dtype())
    H.close(i + 1.5, { 2.5, 3.5 })
  end)

  it("a Lua number does not widen a float32 tensor", function()
    assert.equal("float32", (f * 1e-3):dtype())
  end)

  it("a 0-d tensor decides only when its category is higher", function()
    assert.equal("float32", (f + crater.tensor(2, { dtype = "float64" })):dtype())
    assert.equal("float64", (i + crater.tensor(2, { dtype = "float64" })):dtype())
    assert.equal("float64", (crater.tensor(2) + dd):dtype())
  end)
end)

describe("comparisons", function()
  local a, b = d({ 1, 2, 3 }), d({ 3, 2, 1 })
  it("give int64 0/1", function()
    assert.same({ 0, 1, 0 }, crater.eq(a, b):totable())
    assert.same({ 1, 0, 1 }, crater.ne(a, b):totable())
    assert.same({ 1, 0, 0 }, crater.lt(a, b):totable())
    assert.same({ 1, 1, 0 }, crater.le(a, b):totable())
    assert.same({ 0, 0, 1 }, crater.gt(a, b):totable())
    assert.same({ 0, 1, 1 }, crater.ge(a, b):totable())
    assert.equal("int64", a:lt(b):dtype())
  end)

  it("compare with numbers and broadcast", function()
    assert.same({ 0, 0, 1 }, a:gt(2):totable())
    assert.same({ 0, 1, 1 }, i64({ 1, 2, 3 }):ge(1.5):totable())
    assert.same({ { 1, 1 }, { 1, 0 } }, crater.le(d({ { 1 }, { 2 } }), d({ 2, 1.5 })):totable())
  end)

  it("NaN compares unequal to everything", function()
    assert.same({ 0, 1, 0 }, { crater.eq(d({ 0 / 0 }), d({ 0 / 0 })):item(),
      crater.ne(d({ 0 / 0 }), d({ 0 / 0 })):item(), crater.lt(d({ 0 / 0 }), d({ 1 })):item() })
  end)
end)

describe("allclose", function()
  it("uses |a - b| <= atol + rtol |b| with rtol 1e-5, atol 1e-8", function()
    assert.is_true(crater.allclose(d({ 1, 100 }), d({ 1, 100.0009 })))
    assert.is_false(crater.allclose(d({ 1, 100 }), d({ 1, 100.0011 })))
    assert.is_true(crater.allclose(d({ 1 }), d({ 1.1 }), 0.1))
    assert.is_true(crater.allclose(d({ 0 }), d({ 0.01 }), 0, 0.01))
    assert.is_false(crater.allclose(d({ 0 / 0 }), d({ 0 / 0 })))
    assert.is_true(crater.allclose(d({ 0 / 0 }), d({ 0 / 0 }), 1e-5, 1e-8, true))
    assert.is_true(crater.allclose(d({ { 1, 1 } }), d({ 1 })))
  end)

  it("compares hugely expanded views by their one row, and still sees each difference", function()
    local row = d({ { 1, 2, 3 } })
    local huge = row:expand(2 ^ 61, 3)                  -- 2^61 x 3 elements, stride 0 in dim 1
    assert.is_true(crater.allclose(huge, d({ 1, 2, 3 })))
    assert.is_false(crater.allclose(huge, d({ 1, 2, 3.1 })))
    assert.is_true(huge:allclose(row:expand(2 ^ 61, 3)))
    -- only one side broadcast: every row is compared (4 rows, the third differs)
    local rows = d({ { 1, 2, 3 }, { 1, 2, 3 }, { 1, 2, 4 }, { 1, 2, 3 } })
    assert.is_false(crater.allclose(row:expand(4, 3), rows))
  end)
end)

describe("in-place methods", function()
  it("return the tensor they changed", function()
    local x = d({ 1, 2 })
    assert.equal(x, x:add_(1))
    assert.equal(x, x:zero_())
  end)

  it("zero_ fill_ copy_", function()
    local x = d({ { 1, 2 }, { 3, 4 } })
    assert.same({ { 0, 0 }, { 0, 0 } }, x:zero_():totable())
    assert.same({ { 7, 7 }, { 7, 7 } }, x:fill_(7):totable())
    assert.same({ { 1, 2 }, { 1, 2 } }, x:copy_(d({ 1, 2 })):totable())
    assert.same({ { 5, 6 }, { 7, 8 } }, x:copy_(crater.tensor({ { 5, 6 }, { 7, 8 } })):totable())
    assert.same({ { 5, 6 }, { 7, 8 } }, x:totable())
  end)

  it("add_ sub_ mul_ div_ with tensors, numbers and alpha", function()
    local x = d({ 1, 2 })
    assert.same({ 7, 10 }, x:add_(d({ 3, 4 }), 2):totable())
    assert.same({ 4, 6 }, x:sub_(d({ 3, 4 })):totable())
    assert.same({ 3, 5 }, x:sub_(1):totable())
    assert.same({ 6, 10 }, x:mul_(2):totable())
    assert.same({ 6, 20 }, x:mul_(d({ 1, 2 })):totable())
    assert.same({ 3, 10 }, x:div_(2):totable())
    assert.same({ 1, 2.5 }, x:div_(d({ 3, 4 })):totable())
    assert.same({ 3, 2.5 }, x:add_(d({ 1, 0 }), 2):totable())
    assert.same({ 13, 12.5 }, x:add_(5, 2):totable())
    assert.same({ 11, 10.5 }, x:sub_(1, 2):totable())
  end)

  it("addcmul_ addcdiv_ lerp_", function()
    local x = d({ 1, 1 })
    assert.same({ 7, 13 }, x:addcmul_(d({ 1, 2 }), d({ 3, 3 }), 2):totable())
    assert.same({ 8, 14 }, x:addcmul_(d({ 1, 1 }), d({ 1, 1 })):totable())
    assert.same({ 10, 15 }, x:addcdiv_(d({ 4, 2 }), d({ 2, 2 })):totable())
    assert.same({ 12, 16 }, x:addcdiv_(d({ 4, 2 }), d({ 2, 2 }), 1):totable())
    assert.same({ 9, 12 }, x:lerp_(d({ 0, 0 }), 0.25):totable())
    assert.same({ 3, 3 }, x:lerp_(d({ 1, 0 }), 0.75):totable())
  end)

  it("softplus_ and leaky_relu_ take the same defaults and arguments as their out-of-place forms", function()
    -- softplus(x) = log(1 + e^x), and x itself past the threshold 20 (beta = 1)
    H.close(d({ 0, 1, 30 }):softplus_(), { math.log(2), math.log(1 + math.exp(1)), 30 }, 1e-15)
    -- beta = 2: log(1 + e^(2x)) / 2; threshold 1 makes x = 1 (2x = 2 > 1) come out as itself
    H.close(d({ 0, 1 }):softplus_(2), { math.log(2) / 2, math.log(1 + math.exp(2)) / 2 }, 1e-15)
    H.close(d({ 0.25, 1 }):softplus_(2, 1), { math.log(1 + math.exp(0.5)) / 2, 1 }, 1e-15)
    H.close(d({ -2, 3 }):leaky_relu_(), { -0.02, 3 }, 1e-15)
    assert.has_error(function() d({ 1 }):softplus_(1, 20, 3) end,
      "softplus_: expected at most 2 arguments after the tensor, got 3")
  end)

  it("sqrt_ clamp_ maximum_ sign_ neg_ exp_", function()
    assert.same({ 2, 3 }, d({ 4, 9 }):sqrt_():totable())
    assert.same({ 0, 1, 2 }, d({ -1, 1, 5 }):clamp_(0, 2):totable())
    assert.same({ 2, 3 }, d({ 1, 3 }):maximum_(d({ 2, 2 })):totable())
    assert.same({ -1, 0, 1 }, d({ -3, 0, 2 }):sign_():totable())
    assert.same({ -1, 2 }, d({ 1, -2 }):neg_():totable())
    H.close(d({ 0, 1 }):exp_(), { 1, math.exp(1) }, 1e-15)
  end)

  it("broadcast the other operand into the tensor's shape", function()
    local x = d({ { 1, 2 }, { 3, 4 } })
    assert.same({ { 11, 22 }, { 13, 24 } }, x:add_(d({ 10, 20 })):totable())
  end)

  it("write through views into the base", function()
    local x = d({ { 1, 2 }, { 3, 4 } })
    x:t()[1]:mul_(10)
    assert.same({ { 10, 2 }, { 30, 4 } }, x:totable())
    x:select(2, 2):add_(1)
    assert.same({ { 10, 3 }, { 30, 5 } }, x:totable())
  end)

  it("refuse an operand that would grow the tensor, leaving it unchanged", function()
    local x = d({ 1, 2 })
    assert.error_matches(function() x:add_(crater.zeros(2, 2, { dtype = "float64" })) end,
      "add_: output with shape {2} doesn't match the broadcast shape {2,2}", 1, true)
    assert.error_matches(function() x:mul_(d({ 1, 2, 3 })) end, "mul_: shapes {2} and {3} cannot be broadcast", 1, true)
    assert.error_matches(function() x:copy_(d({ 1, 2, 3 })) end, "copy_: shapes {2} and {3} cannot be broadcast", 1, true)
    assert.error_matches(function() x:addcmul_(d({ 1, 2, 3 }), d({ 1 })) end, "addcmul_: shapes {2} and {3} cannot be broadcast", 1, true)
    assert.same({ 1, 2 }, x:totable())
  end)

  it("refuse to write floats into int64", function()
    local x = i64({ 1, 2 })
    assert.error_matches(function() x:add_(crater.ones(2)) end,
      "add_: result type float32 can't be cast to the desired output type int64", 1, true)
    assert.error_matches(function() x:sqrt_() end,
      "sqrt_: result type float32 can't be cast to the desired output type int64", 1, true)
    assert.error_matches(function() x:div_(i64({ 1, 1 })) end,
      "div_: result type float32 can't be cast to the desired output type int64", 1, true)
    assert.same({ 1, 2 }, x:totable())
    assert.same({ 3, 4 }, x:add_(2):totable())
  end)

  it("refuse a leaf that requires grad outside no_grad", function()
    local w = d({ 1, 2 }, true)
    for _, f in ipairs({
      function() w:add_(1) end, function() w:mul_(2) end, function() w:zero_() end,
      function() w:fill_(1) end, function() w:copy_(d({ 1, 1 })) end, function() w:exp_() end,
      function() w:clamp_(0, 1) end, function() w:addcmul_(d({ 1, 1 }), d({ 1, 1 })) end,
      function() w:lerp_(d({ 0, 0 }), 0.5) end, function() w:masked_fill_(i64({ 1, 0 }), 0) end,
    }) do
      assert.error_matches(f, "a leaf tensor that requires grad is used in an in-place operation", 1, true)
    end
    assert.same({ 1, 2 }, w:totable())
    for _, f in ipairs({ function() w[1] = 3 end, function() w:narrow(1, 1, 1):zero_() end,
      function() w:view(2, 1):t()[1]:mul_(2) end, function() w[1]:copy_(d(5)) end }) do
      assert.error_matches(f, "a view of a leaf tensor that requires grad is used in an in-place operation", 1, true)
    end
    assert.same({ 1, 2 }, w:totable())
    crater.no_grad(function() w:add_(1) end)
    assert.same({ 2, 3 }, w:totable())
  end)
end)
