-- Tensor boxes without finalisers (src/lua/ltensor.c, "boxes without finalisers"): a box's
-- tensor is released when Lua frees the box, a box holding hooks hands them over through
-- its guard, and a script that ends with live tensors, graphs and hooks exits cleanly,
-- under lua5.4 (which unloads the library at exit) as under the crater executable.
local crater = require "crater"
local memcheck = require "spec.helpers.memcheck"
local internal = crater.core.internal

local function live() return memcheck.snapshot().tensors end

describe("a tensor box", function()
  memcheck.hooks(before_each, after_each)

  it("has no finaliser when crater owns the state's allocator", function()
    assert.is_nil(rawget(internal.Tensor_mt, "__gc"))
    assert.is_function(rawget(internal.Tensor_mt, "__close"))
  end)

  it("gets crater's metatable in every thread, made in turn by coroutines and the main one", function()
    local mt = internal.Tensor_mt
    local co = coroutine.wrap(function()
      while true do coroutine.yield(crater.ones(2) + 1) end
    end)
    local co2 = coroutine.wrap(function()
      while true do coroutine.yield(crater.ones(2) * 3) end
    end)
    for _ = 1, 3 do
      local a, b, c = co(), crater.ones(2) - 1, co2()
      assert.equal(mt, getmetatable(a)); assert.equal(mt, getmetatable(b)); assert.equal(mt, getmetatable(c))
      assert.same({ 2, 2 }, a:totable()); assert.same({ 0, 0 }, b:totable()); assert.same({ 3, 3 }, c:totable())
    end
  end)

  it("releases its tensor once Lua frees it, for every box of a loop", function()
    local before = live()
    for _ = 1, 5000 do local _ = crater.ones(3) * 2 end
    assert.equal(before, live())
  end)

  it("lets its tensor go at once when closed", function()
    local before = crater.memory().tensors
    do
      local t <close> = crater.zeros(4)
      assert.equal(before + 1, crater.memory().tensors, tostring(t))
    end
    assert.equal(before, crater.memory().tensors)
  end)

  it("goes while a graph still holds its tensor, and backward still works", function()
    local x = crater.tensor({ 1, 2 }, { requires_grad = true, dtype = "float64" })
    local z = (function()                          -- y's box goes with this frame
      local y = x * 3
      return (y * y):sum()                         -- z = 9 x^2
    end)()
    collectgarbage()
    collectgarbage()
    z:backward()
    assert.same({ 18, 36 }, x.grad:totable())        -- 18 x
  end)

  it("hands its hooks over through its guard when it goes before its tensor", function()
    -- x.grad (made with create_graph) is a new box at each read: a hook registered through
    -- one box belongs to the tensor, and must outlive that box
    local x = crater.tensor({ 1, 2 }, { requires_grad = true, dtype = "float64" })
    ;(x * x):sum():backward(nil, { create_graph = true })  -- x.grad = 2x, with a graph
    local seen
    ;(function()
      local g = x.grad
      g:register_hook(function(v) seen = v:totable() return v * 10 end)
    end)()
    collectgarbage()
    collectgarbage()
    local h = crater.grad(x.grad:sum(), { x })[1]   -- d(sum 2x)/dx = 2, times the hook's 10
    assert.same({ 1, 1 }, seen)
    assert.same({ 20, 20 }, h:totable())
    x.grad = nil                                     -- x -> grad -> graph -> x: PyTorch's cycle too
  end)

  it("is freed with a hook that captures it (a cycle through the guard)", function()
    local before = live()
    for _ = 1, 200 do
      local x = crater.ones(2, { requires_grad = true })
      x:register_hook(function(g) return x * 0 + g end)
    end
    assert.equal(before, live())
  end)
end)

describe("a script that exits with live tensors, graphs and hooks", function()
  local script = table.concat({
    "local crater = require 'crater'",
    "local x = crater.ones(3, { requires_grad = true })",
    "local y = x * 2",
    "y:register_hook(function(g) return g * 2 end)",
    "local keep = { y:sum(), x:exp(), crater.randn(100) }",
    "local Sq = crater.autograd.Function('Sq', { forward = function(ctx, a) ctx:save_for_backward(a) return a * a end,",
    "  backward = function(ctx, g) return g * 2 * ctx.saved_tensors[1] end })",
    "keep[#keep + 1] = Sq(x):sum()",
    "print('done')",
  }, "\n")

  local function run(cmd)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(script)
    f:close()
    local p = io.popen(cmd .. " " .. path .. " 2>&1; echo rc=$?")
    local out = p:read("a")
    p:close()
    os.remove(path)
    return out
  end

  it("exits 0 under lua5.4, which unloads crater's library at close", function()
    local paths = string.format("LUA_PATH='%s' LUA_CPATH='%s'", package.path, package.cpath)
    assert.equal("done\nrc=0\n", run(paths .. " lua5.4"))
  end)

  it("exits 0 under the crater executable", function()
    local exe = (os.getenv("CRATER_BUILD") or "build") .. "/crater"
    assert.equal("done\nrc=0\n", run(exe))
  end)
end)

describe("several Lua states opening crater", function()
  it("wrap one at a time; one opened beside a wrapped one keeps __gc boxes", function()
    local build = os.getenv("CRATER_BUILD") or "build"
    local exe = os.tmpname()
    assert(os.execute("cc -o " .. exe .. " spec/fixtures/c/lua_states.c $(pkg-config --cflags --libs lua5.4)"))
    local p = io.popen(exe .. " lua " .. build .. "/lib 2>&1")
    local out = p:read("a")
    p:close()
    os.remove(exe)
    assert.equal(table.concat({
      "first: no finaliser", "second: no finaliser", "a: no finaliser", "b, a open: __gc boxes",
      "c, a closed, b open: no finaliser", "closed", "" }, "\n"), out)
  end)
end)
