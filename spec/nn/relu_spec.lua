-- core.internal._relu, which F.relu and nn.ReLU take for float tensors, against x:relu() (the op
-- of the tensor table, with its own specs): the same values and gradients, bit for bit,
-- on special values, on 1 to 3 threads, and to second order.
local crater = require "crater"
local core = require "crater.core"
local nn, F = crater.nn, crater.nn.functional

local function same_bits(a, b)   -- equal, NaN where the other is NaN
  local ta, tb = a:reshape(-1):totable(), b:reshape(-1):totable()
  assert.equal(#tb, #ta)
  for i = 1, #ta do
    local x, y = ta[i], tb[i]
    assert.is_true(x == y and 1 / x == 1 / y or (x ~= x and y ~= y), "element " .. i .. ": " .. x .. " vs " .. y)
  end
end

describe("core.internal._relu", function()
  after_each(function() crater.set_num_threads(2) end)

  it("gives x:relu()'s values and gradients on special values (by hand)", function()
    local inf, nan = math.huge, 0 / 0
    for _, dt in ipairs({ "float32", "float64" }) do
      local v = { -2, -0.0, 0, 1.5, inf, -inf, nan }
      local x = crater.tensor(v, { dtype = dt, requires_grad = true })
      local y = F.relu(x)
      same_bits(y, crater.tensor({ 0, 0, 0, 1.5, inf, 0, 0 }, { dtype = dt }))
      -- the gradient is [y > 0] g: a product, so an infinite g gives NaN where y <= 0
      local g = crater.tensor({ 1, 2, 3, 4, 5, inf, 7 }, { dtype = dt })
      y:backward(g)
      same_bits(x.grad, crater.tensor({ 0, 0, 0, 4, 5, nan, 0 }, { dtype = dt }))
      local x2 = crater.tensor(v, { dtype = dt, requires_grad = true })   -- and so does x:relu()
      local y2 = x2:relu()
      y2:backward(g)
      same_bits(y2, y)
      same_bits(x2.grad, x.grad)
    end
  end)

  it("matches x:relu() bit for bit on 1, 2 and 3 threads, views included", function()
    crater.manual_seed(1)
    local base = crater.randn(700, 1100)   -- past the size that is split over threads
    local g = crater.randn(1100, 700)
    local want_x = base:t():clone():requires_grad_()
    local want = want_x:relu()
    want:backward(g)
    for _, nt in ipairs({ 1, 2, 3 }) do
      crater.set_num_threads(nt)
      local x = base:t():clone():requires_grad_()
      local y = core.internal._relu(x:t():t())   -- a non-contiguous view of x
      y:backward(g)
      assert.equal(0, (y - want):abs():max():item())   -- randn: no NaN, no -0
      assert.equal(0, (x.grad - want_x.grad):abs():max():item())
    end
  end)

  it("is the layer's and the functional's op, and int64 keeps x:relu()", function()
    local x = crater.tensor({ -1, 2 }, { requires_grad = true })
    assert.equal("ReluBackward", nn.ReLU()(x).grad_fn)
    assert.same({ 0, 2 }, F.relu(crater.tensor({ -1, 2 }, { dtype = "int64" })):totable())
    assert.equal("int64", F.relu(crater.tensor({ -1, 2 }, { dtype = "int64" })):dtype())
    assert.error_matches(function() core.internal._relu(crater.tensor({ 1 }, { dtype = "int64" })) end,
      "relu: expected a float tensor, got int64", 1, true)
  end)

  -- The backward writes [y > 0] g into g itself when nobody else holds g (here mul's
  -- gradient); a gradient kept by retain_grad or by a hook stays as it came.
  it("masks a private gradient in place, and leaves one that others hold as it was", function()
    local inf, nan = math.huge, 0 / 0
    for _, dt in ipairs({ "float32", "float64" }) do
      local v = { -2, -0.0, 0, 1.5, inf, -inf, nan }
      local w = crater.tensor({ 1, -2, nan, 4, -5, inf, 7 }, { dtype = dt })
      local want = crater.tensor({ 0, -0.0, nan, 4, -5, nan, 0 }, { dtype = dt })
      local x = crater.tensor(v, { dtype = dt, requires_grad = true })
      F.relu(x):mul(w):sum():backward()
      same_bits(x.grad, want)
      local x2 = crater.tensor(v, { dtype = dt, requires_grad = true })
      local y2 = F.relu(x2)
      y2:retain_grad()
      local seen
      y2:register_hook(function(g) seen = g end)
      y2:mul(w):sum():backward()
      same_bits(x2.grad, want)
      same_bits(y2.grad, w)
      same_bits(seen, w)
    end
  end)

  it("is differentiable twice, as x:relu()", function()
    local x = crater.tensor({ -1.5, 0.5, 2 }, { dtype = "float64", requires_grad = true })
    assert.is_true(crater.autograd.gradgradcheck(function(t) return (F.relu(t) ^ 3):sum() end, { x }))
    -- d/dx of sum(relu(x)^2)' = 2 relu(x) [x > 0]: the Hessian's diagonal is 2 [x > 0]
    local g = crater.grad((F.relu(x) ^ 2):sum(), { x }, { create_graph = true })[1]
    assert.same({ 0, 1, 4 }, g:totable())
    assert.same({ 0, 2, 2 }, crater.grad(g:sum(), { x })[1]:totable())
  end)
end)
