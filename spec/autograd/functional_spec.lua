-- crater.autograd.jacobian, hessian and hvp: derivatives of a function at a point, checked
-- against derivatives worked by hand.
local crater = require "crater"
local H = dofile("spec/core/helpers.lua")
local memcheck = require "spec.helpers.memcheck"
local A = crater.autograd
local d = H.d

-- f(x, y) = (1 - x)^2 + 100 (y - x^2)^2
local function rosen(v) return (1 - v[1]) ^ 2 + 100 * (v[2] - v[1] ^ 2) ^ 2 end

describe("crater.autograd.jacobian, hessian, hvp", function()
  memcheck.hooks(before_each, after_each)

  it("jacobian: shape of the output then of the input, entries d out_i / d x_j", function()
    local x = d({ 1, 2, 3 })
    local J = A.jacobian(function(v) return v * v end, x)
    assert.same({ { 2, 0, 0 }, { 0, 4, 0 }, { 0, 0, 6 } }, J:totable())
    -- a 2x2 output of a 3-vector: out[i][j] = x[i] * x[j + 1], so out[1][1] = x1 x2,
    -- out[1][2] = x1 x3, out[2][1] = x2^2, out[2][2] = x2 x3
    J = A.jacobian(function(v) return v:narrow(1, 1, 2):view(2, 1) * v:narrow(1, 2, 2):view(1, 2) end, x)
    assert.same({ 2, 2, 3 }, J:shape())
    assert.same({ { { 2, 1, 0 }, { 3, 0, 1 } }, { { 0, 4, 0 }, { 0, 3, 2 } } }, J:totable())
    -- an output that does not depend on x: zeros
    assert.same({ { 0, 0, 0 } }, A.jacobian(function() return d({ 5 }) end, x):totable())
    assert.is_false(x.requires_grad)   -- x itself is left alone
  end)

  it("hessian of Rosenbrock at (-1.5, 2)", function()
    -- d2f/dx2 = 2 - 400 y + 1200 x^2, d2f/dxdy = -400 x, d2f/dy2 = 200
    local Hm = A.hessian(rosen, d({ -1.5, 2 }))
    assert.same({ { 1902, 600 }, { 600, 200 } }, Hm:totable())
    assert.same({ { 0, 0 }, { 0, 0 } }, A.hessian(function(v) return v:sum() end, d({ 1, 2 })):totable())
  end)

  it("hvp: H v without forming H, and the value", function()
    local f, hv = A.hvp(rosen, d({ -1.5, 2 }), d({ 1, 2 }))
    assert.equal(12.5, f:item())           -- 2.5^2 + 100 * 0.25^2
    assert.same({ 3102, 1000 }, hv:totable())
  end)

  it("jacobian with create_graph is differentiable again", function()
    local x = d({ 1, 2 }, true)
    local J = A.jacobian(function(v) return v ^ 3 end, x, { create_graph = true })
    assert.same({ { 3, 0 }, { 0, 12 } }, J:totable())
    -- the copy of x is what J depends on, so x itself gets no gradient
    assert.is_nil(x.grad)
  end)

  it("says what is wrong with its arguments", function()
    assert.error_matches(function() A.hessian(function(v) return v end, d({ 1, 2 })) end,
      "hessian: fn must return a tensor of one element", 1, true)
    assert.error_matches(function() A.hvp(rosen, d({ 1, 2 }), d({ 1 })) end,
      "hvp: v has shape {1} but x has {2}", 1, true)
    assert.error_matches(function() A.jacobian(function(v) return v end, 3) end,
      "jacobian: x must be a tensor", 1, true)
  end)
end)
