-- Hostile input against autograd (issue #17): class 4, lifetimes (no coroutine's state kept
-- past its call; hooks and Function state that capture their own tensor are collectable),
-- and class 6, the autograd contract (hook results checked, every .grad sum kept, saved
-- tensors of a Function version-checked, misspelt options refused).
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
    assert.equal(2000, #fill)
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

describe("class 6, autograd contract: register_hook results", function()
  it("refuses a hook result of another shape, on a leaf, naming register_hook and the shapes", function()
    local x = leaf({1, 2, 3})
    x:register_hook(function() return crater.ones(2) end)
    raises(function() x:sum():backward() end,
      "register_hook: a hook returned a gradient of shape {2} (float32) for a gradient of shape {3} (float32)")
    assert.is_nil(x.grad)
  end)

  it("refuses a hook result of another dtype", function()
    local x = leaf({1, 2, 3})
    x:register_hook(function(g) return g:to("float64") end)
    raises(function() x:sum():backward() end, "shape {3} (float64) for a gradient of shape {3} (float32)")
    assert.is_nil(x.grad)
  end)

  it("refuses a broadcastable result on a non-leaf, and with crater.grad", function()
    local x = leaf({1, 2, 3})
    local y = x * 2
    y:register_hook(function() return crater.ones(1) end)
    raises(function() y:sum():backward() end, "register_hook: a hook returned a gradient of shape {1}")
    local w = leaf({1, 2})
    w:register_hook(function() return crater.ones(2, 1) end)
    raises(function() crater.grad((w * 3):sum(), w) end, "grad: register_hook: a hook returned a gradient of shape {2,1}")
  end)

  it("takes a result of the same shape and dtype", function()
    local x = leaf({1, 2, 3})
    x:register_hook(function(g) return g * 3 end)
    x:sum():backward()
    assert.same({3, 3, 3}, x.grad:totable())
  end)
end)

describe("class 6, autograd contract: accumulating into .grad", function()
  it("sums into an expanded .grad (as a new tensor) instead of dropping the gradient", function()
    local x = leaf({1, 1, 1})
    x.grad = crater.ones(1):expand(3)
    local w = crater.tensor({1, 2, 3})
    local loss = (x * w):sum()
    loss:backward({retain_graph = true})
    assert.same({2, 3, 4}, x.grad:totable())
    loss:backward()
    assert.same({3, 5, 7}, x.grad:totable())
  end)

  it("sums in place into a transposed .grad, which keeps its identity and strides", function()
    local x = crater.ones(2, 3):requires_grad_()
    local g = crater.zeros(3, 2):t()
    x.grad = g
    local loss = (x * crater.arange(6):view(2, 3)):sum()
    loss:backward()
    assert.same({{0, 1, 2}, {3, 4, 5}}, g:totable())
    assert.same({1, 2}, x.grad:stride())
  end)

  it("sums a hook's result that shares memory with .grad", function()
    local x = leaf({{1, 2}, {3, 4}})
    x.grad = crater.tensor({{10, 20}, {30, 40}})
    x:register_hook(function() return x.grad:t() end)
    x:sum():backward()
    assert.same({{20, 50}, {50, 80}}, x.grad:totable())
  end)
end)

describe("class 6, autograd contract: autograd.Function backward and saved tensors", function()
  it("refuses a backward after a saved input was modified in place, as PyTorch", function()
    local a = leaf({1, 2, 3})
    local b = a * 1
    local y = Square(b)
    b:add_(1)
    raises(function() y:sum():backward() end, "SquareBackward: one of the variables needed for gradient "
      .. "computation has been modified by an inplace operation: saved tensor 1 of shape {3} is at version 1; "
      .. "expected version 0 instead")
    assert.is_nil(a.grad)
  end)

  it("names the op and the input when its backward returns a gradient that does not fit", function()
    local F = crater.autograd.Function("Wrong", {
      forward = function(_, x) return x * 1 end, backward = function() return crater.ones(2) end })
    raises(function() F(leaf({1, 2, 3})):sum():backward() end,
      "WrongBackward: the gradient of input 1: cannot sum shape {2} to {3}")
  end)

  it("refuses it for a saved intermediate too, and passes when nothing changed", function()
    local a = leaf({1, 2})
    local keep
    local F = crater.autograd.Function("Keep", {
      forward = function(ctx, x) local r = x * 3; ctx:save_for_backward(r); keep = r; return r end,
      backward = function(ctx, g) return g * ctx.saved_tensors[1] end })
    local y = F(a)
    keep:mul_(2)
    raises(function() y:sum():backward() end, "KeepBackward: one of the variables needed for gradient computation")
    F(a):sum():backward()
    assert.same({3, 6}, a.grad:totable())
  end)
end)

describe("class 6, autograd contract: options of backward and crater.grad", function()
  it("backward refuses an unknown option key, naming it", function()
    local x = leaf({1, 2})
    raises(function() x:sum():backward({retain_grpah = true}) end, "backward: unknown option 'retain_grpah'")
    raises(function() x:sum():backward(nil, {[1] = true}) end, "backward: option keys are names")
    raises(function() x:sum():backward({retain_graph = "yes"}) end, "backward: option retain_graph must be a boolean")
    assert.is_nil(x.grad)
  end)

  it("crater.grad refuses an unknown option key and a grad_outputs that is not tensors", function()
    local x = leaf({1, 2})
    raises(function() crater.grad(x:sum(), x, {creat_graph = true}) end, "grad: unknown option 'creat_graph'")
    raises(function() crater.grad(x:sum(), x, {grad_outputs = {"one"}}) end,
      "grad: grad_outputs[1] must be a tensor or nil, got string")
    raises(function() crater.grad(x:sum(), x, {grad_outputs = 1}) end, "grad: grad_outputs must be a tensor")
    assert.same({1, 1}, crater.grad(x:sum(), x, {retain_graph = false, allow_unused = true})[1]:totable())
  end)

  it("crater.grad refuses lists whose length is not a count of tensors, naming the argument", function()
    local x = leaf({1, 2})
    local function len(n, t) return setmetatable(t or {}, {__len = function() return n end}) end
    raises(function() crater.grad(x:sum(), len(-1)) end, "grad: inputs has length -1 (expected 0 to 256)")
    raises(function() crater.grad(len(2 ^ 32 + 1, {x:sum()}), x) end, "grad: outputs has length 4294967297 (expected 0 to 64)")
    raises(function() crater.grad({}, x) end, "(its length is 0)")
    raises(function() crater.grad({x:sum(), nil, x:sum()}, x) end, "grad: outputs has a hole: element 2 is nil")
    raises(function() crater.grad(len(2, {x:sum()}), x) end, "grad: outputs[2] must be a tensor, got nil")
    raises(function() crater.grad(x:sum(), {x, "x"}) end, "grad: inputs[2] must be a tensor, got string")
  end)
end)

describe("class 6, autograd contract: backward inside a hook", function()
  it("refuses a backward through the graph being walked, and leaves that walk whole", function()
    local x = leaf({1, 2})
    local y = x * 3
    local z = (y * y):sum()
    local inner
    y:register_hook(function(g)
      inner = select(2, pcall(function() z:backward({retain_graph = true}) end))
      return g
    end)
    z:backward()
    assert.truthy(tostring(inner):find("reentrant backward is not supported", 1, true), tostring(inner))
    assert.same({18, 36}, x.grad:totable())   -- d/dx sum(9 x^2) = 18 x, once
  end)

  it("runs a backward of another graph inside a hook", function()
    local a = leaf({1, 2})
    local w = leaf({5})
    local b = a * 2
    b:register_hook(function(g)
      crater.enable_grad(function() (w * w):sum():backward() end)
      return g
    end)
    b:sum():backward()
    assert.same({2, 2}, a.grad:totable())
    assert.same({10}, w.grad:totable())
  end)
end)

describe("class 6, autograd contract: a backward that runs out of memory", function()
  it("leaves the graph ready for the next backward", function()
    local x = leaf({1, 2})
    local y = x
    for _ = 1, 100 do y = y * 1 end   -- more nodes than the walk's first list holds
    local loss = y:sum()
    crater.core.internal.fail_alloc(0)
    local ok, err = pcall(function() loss:backward({retain_graph = true}) end)
    crater.core.internal.fail_alloc(nil)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("not enough memory", 1, true), tostring(err))
    assert.is_nil(x.grad)
    loss:backward()
    assert.same({1, 1}, x.grad:totable())
  end)
end)

describe("gradcheck on hostile arguments", function()
  it("refuses a non-function and restores the input when fn raises mid-perturbation", function()
    local x = crater.tensor({{1, 2, 3}}, {dtype = "float64", requires_grad = true})
    assert.has_error(function() crater.autograd.gradcheck(x, x) end, "gradcheck: fn must be a function, got userdata")
    assert.has_error(function() crater.autograd.gradgradcheck({}, {x}) end, "gradgradcheck: fn must be a function, got table")
    local calls = 0
    assert.has_error(function()
      crater.autograd.gradcheck(function(a) calls = calls + 1; if calls == 2 then error("boom", 0) end; return a:sum() end, {x})
    end, "boom")
    assert.are.same({{1, 2, 3}}, x:totable())
  end)
end)
