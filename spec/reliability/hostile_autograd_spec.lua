-- Hostile input against autograd (issue #17): class 4, lifetimes (no coroutine's state kept
-- past its call; hooks and Function state that capture their own tensor are collectable).
local crater = require "crater"
local memcheck = require "spec.helpers.memcheck"

local function raises(fn, msg)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error containing: " .. msg)
  assert.truthy(tostring(err):find(msg, 1, true), "error was: " .. tostring(err))
end

local function leaf(t) return crater.tensor(t):requires_grad_() end

-- x -> x^2, its backward written in Lua; ctx keeps the input (and the forward's result)
local Square = crater.autograd.Function("Square", {
  forward = function(ctx, x)
    local r = x * x
    ctx:save_for_backward(x, r)
    return r
  end,
  backward = function(ctx, g) return g * 2 * ctx.saved_tensors[1] end,
})

describe("class 4, lifetimes: backward in a coroutine", function()
  it("keeps no state of the coroutine: hooks freed after it died touch no freed memory", function()
    local x = leaf({1, 2, 3})
    x:register_hook(function(g) return g * 2 end)
    do
      local co = coroutine.create(function() (x * 1):sum():backward() end)
      assert(coroutine.resume(co))
      assert.equal("dead", coroutine.status(co))
    end
    collectgarbage()
    collectgarbage()
    -- strings of about a coroutine's size take the freed memory back; a drop that used the
    -- dead coroutine's state wrote through them (a segfault, before)
    local fill = {}
    for i = 1, 2000 do fill[i] = string.rep(string.char(65 + i % 26), 180 + i % 64) end
    for _ = 1, 20 do
      local t = leaf({1, 2})
      t:register_hook(function() end)
      local y = Square(t)   -- a Function node, freed below too
      assert.equal("SquareBackward", y.grad_fn)
    end
    collectgarbage()
    collectgarbage()
    assert.same({2, 2, 2}, x.grad:totable())
    fill = nil   -- luacheck: ignore 311
  end)

  it("runs hooks and Lua backwards on the coroutine that calls backward", function()
    local x = leaf({1, 2})
    local seen
    x:register_hook(function(g) seen = coroutine.running(); return g end)
    local co = coroutine.create(function() Square(x):sum():backward() end)
    assert(coroutine.resume(co))
    assert.equal(co, seen)
    assert.same({2, 4}, x.grad:totable())
  end)
end)

describe("class 4, lifetimes: register_hook", function()
  it("a hook capturing its own leaf tensor, registered 10,000 times, leaves no live bytes", memcheck.wrap(function()
    for _ = 1, 10000 do
      local t = crater.ones(3):requires_grad_()
      t:register_hook(function() return t end)
    end
  end))

  it("a hook capturing its own non-leaf tensor, 10,000 times, leaves no live bytes", memcheck.wrap(function()
    for _ = 1, 10000 do
      local x = crater.ones(3):requires_grad_()
      local y = x * 2
      y:register_hook(function() return y end)
    end
  end))

  it("keeps hooks while a graph holds their tensor, after its Lua value is gone", memcheck.wrap(function()
    local z, x
    do
      local a = leaf({1, 1, 1})
      local y = a * 2
      y:register_hook(function(g) return g * 10 end)
      a:register_hook(function(g) return g + 1 end)
      z, x = y:sum(), a
    end
    collectgarbage()
    collectgarbage()
    z:backward()
    assert.same({21, 21, 21}, x.grad:totable())
  end))
end)

describe("class 4, lifetimes: autograd.Function", function()
  it("contexts saving their inputs, with hooks capturing the output, 10,000 times, leave no live bytes",
    memcheck.wrap(function()
      for _ = 1, 10000 do
        local x = crater.ones(3):requires_grad_()
        local y = Square(x)
        y:register_hook(function() return y end)
      end
    end))

  it("runs the backward of a node whose output's Lua value is gone", memcheck.wrap(function()
    local z, x
    do
      local a = leaf({1, 2})
      z, x = Square(a):sum(), a
    end
    collectgarbage()
    collectgarbage()
    z:backward()
    assert.same({2, 4}, x.grad:totable())
  end))

  it("keeps the op's name as long as the node, after the Function itself is gone", function()
    local y
    do
      local Id = crater.autograd.Function("Ident", {
        forward = function(_, x) return x * 1 end, backward = function(_, g) return g end })
      y = Id(leaf({1, 2}))
      y:sum():backward()
    end
    collectgarbage()
    collectgarbage()
    assert.equal("IdentBackward", y.grad_fn)
    raises(function() y:sum():backward() end, "IdentBackward's saved tensors were freed")
  end)
end)
