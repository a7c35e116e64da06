-- crater.autograd.Function: ops whose forward and backward are written in Lua, as PyTorch's
-- torch.autograd.Function. Expected values are worked by hand; gradcheck compares the Lua
-- backward with finite differences.
local crater = require "crater"
local H = dofile("spec/core/helpers.lua")
local memcheck = require "spec.helpers.memcheck"
local A = crater.autograd
local d = H.d

-- k x^3 with its gradient 3 k x^2; k is a number argument
local Cube = A.Function("Cube", {
  forward = function(ctx, x, k)
    ctx:save_for_backward(x)
    ctx.k = k
    return x ^ 3 * k
  end,
  backward = function(ctx, g)
    local x = ctx.saved_tensors[1]
    return g * 3 * ctx.k * x ^ 2, nil
  end,
})

describe("crater.autograd.Function", function()
  memcheck.hooks(before_each, after_each)

  it("records a node named after it, whose backward is the Lua one", function()
    local x = d({ 1, 2 }, true)
    local y = Cube(x, 2)
    assert.equal("CubeBackward", y.grad_fn)
    assert.same({ 2, 16 }, y:totable())
    y:sum():backward()
    assert.same({ 6, 24 }, x.grad:totable())          -- 3 * 2 * x^2
  end)

  it("passes gradcheck and, its backward being made of ops, gradgradcheck", function()
    local x = d({ 0.5, -1.2, 2 }, true)
    assert.is_true(A.gradcheck(function(v) return Cube(v, 1.5) end, { x }))
    assert.is_true(A.gradgradcheck(function(v) return Cube(v, 1.5):sum() end, { x }))
  end)

  it("takes several tensors, tells which need a gradient, and skips the others", function()
    local seen
    local Mul = A.Function("Mul2", {
      forward = function(ctx, a, b)
        ctx:save_for_backward(a, b)
        seen = ctx.needs_input_grad
        return a * b
      end,
      backward = function(ctx, g)
        local a, b = ctx.saved_tensors[1], ctx.saved_tensors[2]
        return g * b, g * a
      end,
    })
    local a, b = d({ 2, 3 }, true), d({ 5, 7 })
    local y = Mul(a, b)
    assert.same({ true, false }, seen)
    y:sum():backward()
    assert.same({ 5, 7 }, a.grad:totable())
    assert.is_nil(b.grad)
  end)

  it("makes a straight-through estimator in two lines", function()
    local Sign = A.Function("Sign", {
      forward = function(_, x) return x:sign() end,   -- its true gradient is 0 everywhere
      backward = function(_, g) return g end,
    })
    local x = d({ -0.3, 1.8 }, true)
    local y = Sign(x)
    assert.same({ -1, 1 }, y:totable())
    ;(y * d({ 3, 4 })):sum():backward()
    assert.same({ 3, 4 }, x.grad:totable())
  end)

  it("records nothing when no input needs a gradient, and never reuses an argument", function()
    assert.is_nil(Cube(d({ 2 }), 1).grad_fn)
    local Id = A.Function("Id", { forward = function(_, x) return x end, backward = function(_, g) return g end })
    local x = d({ 4 }, true)
    local y = Id(x)
    assert.is_true(x.is_leaf)
    assert.equal("IdBackward", y.grad_fn)
    crater.no_grad(function() assert.is_nil(Id(x).grad_fn) end)
  end)

  it("says what went wrong", function()
    local x = d({ 1 }, true)
    assert.error_matches(function() A.Function("Bad", { forward = function() end }) end,
      "Function: needs {forward", 1, true)
    local NoTensor = A.Function("NoTensor", { forward = function() return 3 end, backward = function() end })
    assert.error_matches(function() NoTensor(x) end, "NoTensor: forward must return a tensor, got number", 1, true)
    local Wrong = A.Function("Wrong", { forward = function(_, v) return v * 1 end, backward = function() return "g" end })
    assert.error_matches(function() Wrong(x):sum():backward() end,
      "WrongBackward: backward must return a tensor or nil for each tensor input, got string for input 1", 1, true)
    local Raises = A.Function("Raises", { forward = function(_, v) return v * 1 end, backward = function() error("no way") end })
    assert.error_matches(function() Raises(x):sum():backward() end, "no way", 1, true)
    local y = Cube(x, 1):sum()
    y:backward()
    assert.error_matches(function() y:backward() end, "backward through the graph a second time", 1, true)
  end)

  it("frees what its nodes keep, with or without a backward", function()
    local x = d({ 1, 2 }, true)
    for _ = 1, 50 do Cube(x, 2):sum():backward() end
    for _ = 1, 50 do local _ = Cube(x, 2) end   -- graphs dropped without a backward
    assert.same({ 300, 1200 }, x.grad:totable())   -- 50 * 3 * 2 * x^2
  end)
end)
