-- crater.nn.utils (lua/crater/nn/utils.lua): gradient clipping against values worked by hand.
local crater = require "crater"
local utils = crater.nn.utils

local function with_grad(v, g)
  local p = crater.tensor(v, {dtype = "float64", requires_grad = true})
  p.grad = crater.tensor(g, {dtype = "float64"})
  return p
end

describe("clip_grad_norm_", function()
  it("returns the joint 2-norm and scales the gradients to max_norm", function()
    local a, b = with_grad({0, 0}, {3, 0}), with_grad({0}, {-4})
    local n = utils.clip_grad_norm_({a, b}, 1)
    assert.equal(5, n)
    local c = 1 / (5 + 1e-6)
    assert.near(3 * c, a.grad:get(1), 1e-15)
    assert.near(-4 * c, b.grad:get(1), 1e-15)
  end)

  it("leaves gradients alone when the norm is below max_norm", function()
    local a = with_grad({0, 0}, {3, 4})
    assert.equal(5, utils.clip_grad_norm_(a, 10))
    assert.same({3, 4}, a.grad:totable())
  end)

  it("supports norm_type 1 and inf, and skips tensors without grad", function()
    local a, b = with_grad({0, 0}, {1, -2}), with_grad({0}, {-3})
    local none = crater.tensor({1}, {requires_grad = true})
    assert.equal(6, utils.clip_grad_norm_({a, b, none}, 100, 1))
    assert.equal(3, utils.clip_grad_norm_({a, b, none}, 100, math.huge))
    assert.equal(3, utils.clip_grad_norm_({a, b}, 1.5, math.huge))
    assert.near(-1.5, b.grad:get(1), 1e-6)
    assert.equal(0, utils.clip_grad_norm_({none}, 1))
  end)

  it("makes gradients NaN on a non-finite norm, or raises with error_if_nonfinite", function()
    local a = with_grad({0, 0}, {math.huge, 1})
    assert.error_matches(function() utils.clip_grad_norm_(a, 1, 2, true) end,
      "clip_grad_norm_: the total norm of order 2 of the gradients is non-finite", 1, true)
    assert.same({math.huge, 1}, a.grad:totable())
    -- as PyTorch: the coefficient 1/(inf + 1e-6) is 0, and inf * 0 is NaN
    local n = utils.clip_grad_norm_(a, 1)
    assert.equal(math.huge, n)
    assert.is_true(a.grad:get(1) ~= a.grad:get(1))
    assert.equal(0, a.grad:get(2))
  end)
end)

describe("clip_grad_value_", function()
  it("clamps every gradient into [-v, v]", function()
    local a, b = with_grad({0, 0}, {3, -0.2}), with_grad({0}, {-4})
    utils.clip_grad_value_({a, b}, 0.5)
    assert.same({0.5, -0.2}, a.grad:totable())
    assert.same({-0.5}, b.grad:totable())
    assert.error_matches(function() utils.clip_grad_value_(a, -1) end,
      "clip_grad_value_: clip_value must be a non-negative number", 1, true)
  end)
end)
