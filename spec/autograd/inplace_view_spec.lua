-- In-place writes through views, with PyTorch's semantics: writing into a view of a tensor
-- with a history rewrites the base's history (CopySlices), and a view taken before its
-- base changed in place is given a view of the base's new history when next used
-- (AsStridedBackward). Expected gradients are worked by hand in each spec; gradcheck and
-- gradgradcheck compare the analytic gradients with finite differences.
local crater = require "crater"
local H = dofile("spec/core/helpers.lua")
local memcheck = require "spec.helpers.memcheck"
local d = H.d

local weights = function() return d({ 1, 10, 100 }) end

describe("in-place writes through views", function()
  memcheck.hooks(before_each, after_each)

  it("a view taken before its base changed in place follows the base's new history", function()
    local x = d({ 1, 2, 3 }, true)
    local b = x * 1
    local v = b[2]
    b:mul_(2)                         -- v is now 2 * x[2], and its gradient says so
    assert.equal(4, v:item())
    assert.equal("AsStridedBackward", v.grad_fn)
    ;(v * 1):backward()
    assert.same({ 0, 2, 0 }, x.grad:totable())
  end)

  it("multiplies a slice of a non-leaf in place: the base's grad_fn is CopySlices", function()
    local x, z = d({ 1, 2, 3 }, true), d({ 5 }, true)
    local y = x * 2
    y:narrow(1, 2, 1):mul_(z)         -- y = {2, 4z, 6}
    assert.equal("CopySlices", y.grad_fn)
    assert.same({ 2, 20, 6 }, y:totable())
    ;(y * weights()):sum():backward()
    -- dL/dx = {1*2, 10*2z, 100*2}, dL/dz = 10 * 2 x[2]
    assert.same({ 2, 100, 200 }, x.grad:totable())
    assert.same({ 40 }, z.grad:totable())
  end)

  it("assigns into an element of a non-leaf: the old value gets no gradient", function()
    local x, w = d({ 1, 2, 3 }, true), d({ 7 }, true)
    local y = x ^ 2
    y[1] = w[1] * 3                   -- y = {3w, x2^2, x3^2}
    assert.same({ 21, 4, 9 }, y:totable())
    ;(y * weights()):sum():backward()
    assert.same({ 0, 40, 600 }, x.grad:totable())
    assert.same({ 3 }, w.grad:totable())
  end)

  it("writes a number into a row of a non-leaf matrix (fill_ through a view)", function()
    local x = d({ { 1, 2 }, { 3, 4 } }, true)
    local y = x * 3
    y[2] = 0
    assert.same({ { 3, 6 }, { 0, 0 } }, y:totable())
    y:sum():backward()
    assert.same({ { 3, 3 }, { 0, 0 } }, x.grad:totable())
  end)

  it("chains writes through two views of the same base", function()
    local x = d({ 1, 2, 3, 4 }, true)
    local y = x * 1
    local a, b = y:narrow(1, 1, 2), y:narrow(1, 3, 2)
    a:mul_(3)                          -- y = {3, 6, 3, 4}
    b:add_(a)                          -- reads a after its write: y = {3, 6, 6, 10}
    assert.same({ 3, 6, 6, 10 }, y:totable())
    ;(y * d({ 1, 10, 100, 1000 })):sum():backward()
    -- y = {3 x1, 3 x2, x3 + 3 x1, x4 + 3 x2}
    assert.same({ 303, 3030, 100, 1000 }, x.grad:totable())
  end)

  it("refuses a source that partly overlaps the written tensor, as PyTorch", function()
    local m = d({ { 1, 2 }, { 3, 4 } })
    assert.error_matches(function() m:add_(m:t()) end,
      "some elements of the input tensor and the written-to tensor refer to a single memory location", 1, true)
    local t = d({ 1, 2, 3 })
    assert.error_matches(function() t:narrow(1, 2, 2):copy_(t:narrow(1, 1, 2)) end,
      "refer to a single memory location", 1, true)
    assert.same({ 1, 2, 3 }, t:totable())
    t:add_(t)                          -- the very same elements: fine
    assert.same({ 2, 4, 6 }, t:totable())
  end)

  it("multiplies by another element of the same base, which the backward then refuses", function()
    local x = d({ 3, 2, 5 }, true)
    local y = x * 1
    y[1]:mul_(y[2])                    -- the value is right: y[1] = x1 x2
    assert.same({ 6, 2, 5 }, y:totable())
    -- MulBackward saved y[2], whose storage the write changed: PyTorch refuses it too
    assert.error_matches(function() y:sum():backward() end,
      "needed by MulBackward for the gradient was modified by an in-place operation", 1, true)
  end)

  it("matches finite differences, to first and second order", function()
    local function f(x, z)
      local y = x ^ 2 + x              -- AddBackward saves nothing: y may be written
      y:narrow(1, 2, 2):mul_(z)
      y[1] = y[3] + z[1] * z[2]        -- reads y after the first write; add saves nothing
      return (y * y):sum()
    end
    local x, z = d({ 0.3, -0.2, 0.5 }, true), d({ 1.5, -0.7 }, true)
    assert.is_true(crater.autograd.gradcheck(f, { x, z }))
    assert.is_true(crater.autograd.gradgradcheck(f, { x, z }))
  end)

  it("passes gradcheck on random sequences of writes through random views", function()
    -- y starts as a function of x; each step writes through a view of y (an element, a
    -- slice, a column of a reshaped y, or y itself) a value made from x and z, so every
    -- gradient path through CopySlices and regenerated views is exercised
    local function program(seed)
      local rng = { seed = seed }
      local function pick(n)   -- a small LCG: the programs do not depend on math.random
        rng.seed = (rng.seed * 1103515245 + 12345) % 2147483648
        return rng.seed % n + 1
      end
      local steps = {}
      for k = 1, 4 do steps[k] = { view = pick(4), op = pick(3), a = pick(6), b = pick(3) } end
      return function(x, z)
        local y = x * 1.5 + x * x
        for _, st in ipairs(steps) do
          local v
          if st.view == 1 then v = y[st.a]
          elseif st.view == 2 then v = y:narrow(1, st.b, 3)
          elseif st.view == 3 then v = y:view(3, 2):select(2, (st.a - 1) % 2 + 1)
          else v = y end
          local src = (x[st.b] * z[(st.a - 1) % 2 + 1] + 0.5):expand(v:shape())
          if st.op == 1 then v:mul_(src)
          elseif st.op == 2 then v:add_(src, -0.7)
          else v:copy_(src) end
        end
        return (y * y):sum()
      end
    end
    for seed = 1, 12 do
      local x = d({ 0.3, -0.6, 0.9, 0.2, -0.4, 0.7 }, true)
      local z = d({ 1.3, -0.8 }, true)
      assert.is_true(crater.autograd.gradcheck(program(seed), { x, z }), "seed " .. seed)
    end
  end)

  it("a second backward through CopySlices needs retain_graph", function()
    local x = d({ 1, 2 }, true)
    local y = x * x
    y[1]:mul_(3)
    local s = y:sum()
    s:backward({ retain_graph = true })
    s:backward()
    assert.same({ 12, 8 }, x.grad:totable())   -- twice {6 x1, 2 x2}
    assert.error_matches(function() s:backward() end, "backward through the graph a second time", 1, true)
  end)

  it("refuses writes into an expanded view, and into a view of a leaf that requires grad", function()
    local x = d({ 1, 2 }, true)
    local b = x * 1
    local e = b:view(2, 1):expand(2, 3)
    assert.error_matches(function() e:mul_(2) end,
      "more than one element of the written-to tensor refers to a single memory location", 1, true)
    assert.error_matches(function() d({ 1 }):expand(3):fill_(0) end, "single memory location", 1, true)
    assert.error_matches(function() x[1] = 0 end, "a view of a leaf tensor that requires grad", 1, true)
    assert.same({ 1, 2 }, x:totable())
    b:mul_(2)                          -- e was taken before: it cannot follow, and says so
    assert.error_matches(function() return e * 1 end, "expand it again", 1, true)
  end)

  it("says so when a changed base is gone before its old view is used", function()
    local x = d({ 1, 2, 3 }, true)
    local v
    do
      local b = x * 1
      v = b[2]
      b:mul_(2)
    end
    collectgarbage()
    collectgarbage()
    assert.error_matches(function() return v * 1 end, "has no history left", 1, true)
  end)
end)
