-- The tape itself: .grad accumulation, the errors it must raise, hooks, crater.grad with
-- create_graph, anomaly mode, grad mode, and memory staying flat over a training loop.
local crater = require "crater"
local H = dofile("spec/core/helpers.lua")
local memcheck = require "spec.helpers.memcheck"
local d, i64 = H.d, H.i

describe("backward", function()
  it("accumulates into leaves' .grad, which is nil until then", function()
    local x = d({ 1, 2, 3 }, true)
    assert.is_nil(x.grad)
    local y = (x * x):sum()
    assert.is_true(x.is_leaf)
    assert.is_false(y.is_leaf)
    assert.equal("SumBackward", y.grad_fn)
    assert.is_nil(x.grad_fn)
    y:backward()
    assert.same({ 2, 4, 6 }, x.grad:totable())
    ;(x * 3):sum():backward()
    assert.same({ 5, 7, 9 }, x.grad:totable())
  end)

  it("names nodes as PyTorch does", function()
    local x = d({ 1, 2 }, true)
    assert.equal("MulBackward", (x * x).grad_fn)
    assert.equal("AddBackward", (x + 1).grad_fn)
    assert.equal("ExpBackward", x:exp().grad_fn)
    assert.equal("LeakyReluBackward", x:leaky_relu().grad_fn)
    assert.equal("MmBackward", x:view(1, 2):matmul(x:view(2, 1)).grad_fn)
    assert.equal("LogSoftmaxBackward", x:log_softmax(1).grad_fn)
  end)

  it("takes an explicit gradient for a non-scalar output", function()
    local x = d({ 1, 2, 3 }, true)
    ;(x * x):backward(d({ 1, 0, 2 }))
    assert.same({ 2, 0, 12 }, x.grad:totable())
  end)

  it("sums gradients of a tensor used twice and of broadcast operands", function()
    local a, b = d({ { 1, 2 }, { 3, 4 } }, true), d({ 10, 20 }, true)
    ;((a * b) + a):sum():backward()
    assert.same({ { 11, 21 }, { 11, 21 } }, a.grad:totable())
    assert.same({ 4, 6 }, b.grad:totable())
  end)

  -- a select's gradient goes straight into the sum of its input's gradients when that sum
  -- is private (src/ops/shape.c, select_backward_into): every case below takes that path
  describe("of selects (x[1], x[2], x[1]: each row's gradient added where it belongs)", function()
    it("into a leaf, as the Rosenbrock function's gradient by hand", function()
      local x = d({ -1.5, 2 }, true)
      local f = (1 - x[1]) ^ 2 + 100 * (x[2] - x[1] ^ 2) ^ 2
      f:backward()   -- df/dx1 = -2(1 - x1) - 400 x1 (x2 - x1^2) = -5 - 150; df/dx2 = 200 (x2 - x1^2)
      assert.same({ -155, -50 }, x.grad:totable())
      f = (1 - x[1]) ^ 2 + 100 * (x[2] - x[1] ^ 2) ^ 2
      f:backward()   -- into the existing .grad: summed
      assert.same({ -310, -100 }, x.grad:totable())
    end)

    it("into a leaf whose hook runs once, on the sum", function()
      local x = d({ -1.5, 2 }, true)
      local calls, seen = 0, nil
      x:register_hook(function(g) calls = calls + 1; seen = g:totable(); return g * 2 end)
      ;((1 - x[1]) ^ 2 + 100 * (x[2] - x[1] ^ 2) ^ 2):backward()
      assert.equal(1, calls)
      assert.same({ -155, -50 }, seen)
      assert.same({ -310, -100 }, x.grad:totable())
    end)

    it("into a non-leaf (retain_grad sees the sum), rows of a matrix, float32", function()
      local x = d({ -1.5, 2 }, true)
      local y = x * 2   -- (-3, 4)
      y:retain_grad()
      ;(y[1] * y[2] + y[1]):backward()   -- dz/dy = (y2 + 1, y1); dz/dx = 2 dz/dy
      assert.same({ 5, -3 }, y.grad:totable())
      assert.same({ 10, -6 }, x.grad:totable())
      local m = crater.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, { requires_grad = true })
      local w1, w2 = crater.tensor({ 0.5, -1, 2 }), crater.tensor({ 3, 0.25, -4 })
      ;((m[1] * w1):sum() + (m[2] * w2):sum() + m[1]:sum() + m[2][3]):backward()
      assert.same({ { 1.5, 0, 3 }, { 3, 0.25, -3 } }, m.grad:totable())
    end)

    it("and with create_graph, through the ops: a second derivative by hand", function()
      local x = d({ 3, -2 }, true)
      local f = x[1] ^ 2 * x[2] + x[1] * x[2]   -- df/dx1 = 2 x1 x2 + x2, df/dx2 = x1^2 + x1
      local g = crater.grad(f, { x }, { create_graph = true })[1]
      assert.same({ -14, 12 }, g:totable())
      local h = crater.grad(g[1], { x })[1]   -- d(2 x1 x2 + x2)/dx = (2 x2, 2 x1 + 1)
      assert.same({ -4, 7 }, h:totable())
    end)
  end)

  it("retain_graph allows a second backward, which accumulates", function()
    local x = d({ 2 }, true)
    local y = (x * x * x):sum()
    y:backward(nil, { retain_graph = true })
    y:backward()
    assert.same({ 24 }, x.grad:totable())
  end)

  it("refuses a second backward through a freed graph", function()
    local x = d({ 1, 2 }, true)
    local y = (x * x):sum()
    y:backward()
    assert.error_matches(function() y:backward() end,
      "backward: trying to backward through the graph a second time", 1, true)
    assert.error_matches(function() y:backward() end, "pass retain_graph=true to the first backward", 1, true)
  end)

  it("refuses a non-scalar output without a gradient", function()
    local x = d({ 1, 2 }, true)
    assert.error_matches(function() (x * 2):backward() end,
      "backward: grad can be implicitly created only for scalar outputs", 1, true)
    assert.error_matches(function() (x * 2):backward(d({ 1, 2, 3 })) end,
      "backward: gradient of shape {3} does not match the output's shape {2}", 1, true)
  end)

  it("refuses a tensor that does not require grad", function()
    assert.error_matches(function() d({ 1 }):sum():backward() end,
      "backward: element 1 of tensors does not require grad and does not have a grad_fn", 1, true)
  end)

  it("refuses a saved tensor modified in place, naming the op", function()
    local x = d({ 1, 2 }, true)
    local h = x * 1
    local y = h:sin()
    h:mul_(2)
    assert.error_matches(function() y:sum():backward() end,
      "backward: one of the tensors needed by SinBackward for the gradient was modified by an in-place operation", 1, true)
    local e = x:exp()
    e:add_(1)   -- exp saved its result
    assert.error_matches(function() e:sum():backward() end, "needed by ExpBackward", 1, true)
  end)

  it("sums the gradients of a tensor's several consumers (a gradient written in place is never shared)", function()
    local x = d({ 1, 2 }, true)
    local y = x * 2
    -- consumers of y: *3, -, /4, ^2 and a plain add; one gradient tensor reaches them all
    local loss = (y * 3 + (-y) + y / 4 + y ^ 2 + y):sum()
    loss:backward()
    -- d/dy = 3 - 1 + 0.25 + 2y + 1 = 3.25 + 2y, and dy/dx = 2
    assert.same({ 2 * (3.25 + 4), 2 * (3.25 + 8) }, x.grad:totable())
  end)

  it("crater.grad runs only what leads to its inputs, as PyTorch", function()
    local x = d({ 1, 2 }, true)
    local y = x * 2
    y:sum():backward()                  -- frees y's own history
    local z = y * 3 - y
    assert.same({ 2, 2 }, crater.grad({ z:sum() }, { y }, { retain_graph = true })[1]:totable())
    -- the part above y was not run, so it is still there for a second crater.grad
    assert.same({ 2, 2 }, crater.grad({ z:sum() }, { y })[1]:totable())
    -- through y's freed history, it cannot
    assert.error_matches(function() crater.grad({ (y * y):sum() }, { x }) end, "a second time", 1, true)
    -- two inputs, one above the other: both paths run
    local w = d({ 3 }, true)
    local u = w * 2
    local gs = crater.grad({ (u * u):sum() }, { u, w })
    assert.same({ 12 }, gs[1]:totable())          -- 2u
    assert.same({ 24 }, gs[2]:totable())          -- 2u * 2
  end)

  it("lets a linear op's input change in place afterwards: it saved nothing (as PyTorch)", function()
    local x = d({ 1, 2 }, true)
    local h = x * 1
    local y = (h * 3 + 1 - h / 2):neg()   -- MulBackward, AddBackward, SubBackward, DivBackward, NegBackward
    h:mul_(5)
    y:sum():backward()
    assert.same({ -2.5, -2.5 }, x.grad:totable())   -- d/dh of -(3h + 1 - h/2) = -2.5, and h:mul_ came after
  end)

  it("an in-place op on a non-leaf records and differentiates correctly", function()
    local x = d({ 1, 2 }, true)
    local h = x * 1
    h:mul_(3):add_(x)
    h:sum():backward()
    assert.same({ 4, 4 }, x.grad:totable())
  end)

  it("refuses requires_grad on int64", function()
    assert.error_matches(function() crater.tensor({ 1 }, { dtype = "int64", requires_grad = true }) end,
      "only floating point tensors can require gradients (got int64)", 1, true)
    local t = i64({ 1 })
    assert.error_matches(function() t.requires_grad = true end,
      "requires_grad: only floating point tensors can require gradients (got int64)", 1, true)
  end)

  it("refuses in-place on a leaf that requires grad, and on its views", function()
    local w = d({ 1, 2 }, true)
    assert.error_matches(function() w:add_(1) end,
      "add_: a leaf tensor that requires grad is used in an in-place operation", 1, true)
    assert.error_matches(function() w[1] = 0 end,
      "a view of a leaf tensor that requires grad is used in an in-place operation", 1, true)
    assert.same({ 1, 2 }, w:totable())
  end)

  it("retain_grad keeps a non-leaf's gradient, as PyTorch (values worked by hand)", memcheck.wrap(function()
    local x = d({ 1, 2 }, true)
    local y = x * 2
    assert.equal(y, y:retain_grad())
    assert.is_true(y.retains_grad)
    local s = (y * y):sum()
    s:backward({ retain_graph = true })
    assert.same({ 4, 8 }, y.grad:totable())          -- 2 y
    s:backward()
    assert.same({ 8, 16 }, y.grad:totable())         -- summed, as a leaf's
    -- the latest version after an in-place op; crater.grad fills it too
    local z = x * 2
    z:retain_grad()
    z:mul_(3)
    crater.grad({ (z * z):sum() }, { x })
    assert.same({ 12, 24 }, z.grad:totable())        -- 2 * (6 x)
    local root = (x * 2):sum()
    root:retain_grad()
    root:backward()
    assert.equal(1, root.grad:item())
    x:retain_grad()                                   -- a leaf: nothing to do
    assert.is_false(x.retains_grad)
    assert.error_matches(function() d({ 1 }):retain_grad() end, "doesn't require grad", 1, true)
  end))

  it("only leaves' requires_grad can be switched off", function()
    local x = d({ 1 }, true)
    assert.error_matches(function() (x * 2).requires_grad = false end,
      "requires_grad: can only change the flag of leaf tensors", 1, true)
    x.requires_grad = false
    assert.is_false((x * 2).requires_grad)
  end)

  it("detach cuts the graph", function()
    local x = d({ 3 }, true)
    local y = (x * x:detach()):sum()
    y:backward()
    assert.same({ 3 }, x.grad:totable())
  end)

  it("x.grad can be assigned and cleared", function()
    local x = d({ 1, 2 }, true)
    x.grad = d({ 5, 5 })
    ;(x * 1):sum():backward()
    assert.same({ 6, 6 }, x.grad:totable())
    x.grad = nil
    assert.is_nil(x.grad)
    assert.error_matches(function() x.grad = d({ 1 }) end,
      "grad: assigned grad has shape {1}, but the tensor has shape {2}", 1, true)
  end)
end)

describe("hooks", function()
  it("a leaf hook sees the gradient and can replace it", function()
    local x = d({ 1, 2 }, true)
    local seen
    x:register_hook(function(g) seen = g:totable() end)
    x:register_hook(function(g) return g * 10 end)
    ;(x * x):sum():backward()
    assert.same({ 2, 4 }, seen)
    assert.same({ 20, 40 }, x.grad:totable())
  end)

  it("a hook on an intermediate changes what flows further back", function()
    local x = d({ 1, 2 }, true)
    local h = x * 3
    h:register_hook(function(g) return g:zero_():add_(1) end)
    ;(h * h):sum():backward()
    assert.same({ 3, 3 }, x.grad:totable())
  end)

  it("a hook goes with its tensor: registering one each step keeps Lua's memory flat", function()
    local x = d({ 1, 2 }, true)
    local function steps(n)
      for _ = 1, n do
        local y = x * 2
        y:register_hook(function(g) return g end)
        y:sum():backward()
        local leaf = d({ 1 }, true)
        leaf:register_hook(function(g) return g end)
      end
      collectgarbage()
      collectgarbage()
      return collectgarbage("count")
    end
    -- the warm-up as long as the run: the tables that find hooks grow once, to as many as
    -- live between two collections (more in a bigger heap), and stay
    local base = steps(3000)
    local after = steps(3000)   -- kept hooks would take well over 100 KB here
    assert.is_true(after - base < 50, string.format("grew by %.0f KB", after - base))
  end)

  it("a failing hook is an error naming the hook", function()
    local x = d({ 1 }, true)
    x:register_hook(function() error("boom") end)
    assert.error_matches(function() (x * 1):sum():backward() end, "backward: hook failed:", 1, true)
    local y = d({ 1 }, true)
    y:register_hook(function() return "no" end)
    assert.error_matches(function() (y * 1):sum():backward() end, "hook must return nil or a tensor, got string", 1, true)
  end)

  it("refuses a hook on a tensor that does not require grad", function()
    assert.error_matches(function() d({ 1 }):register_hook(function() end) end,
      "register_hook: cannot register a hook on a tensor that doesn't require grad", 1, true)
  end)
end)

describe("crater.grad", function()
  it("returns gradients without touching .grad", function()
    local x, y = d({ 1, 2 }, true), d({ 3 }, true)
    local g = crater.grad((x * y):sum(), { x, y })
    assert.same({ 3, 3 }, g[1]:totable())
    assert.same({ 3 }, g[2]:totable())
    assert.is_nil(x.grad)
  end)

  it("takes grad_outputs and non-leaf inputs", function()
    local x = d({ 1, 2 }, true)
    local h = x * x
    local g = crater.grad(h * 3, { h, x }, { grad_outputs = { d({ 1, 2 }) } })
    assert.same({ 3, 6 }, g[1]:totable())
    assert.same({ 6, 24 }, g[2]:totable())
  end)

  it("with create_graph gives a Hessian-vector product (quadratic, by hand)", function()
    -- f(x) = 1/2 x'Ax + b'x with A = {{2,1},{1,3}}, b = {1,-1}: grad = Ax + b, Hv = Av
    local A, b = d({ { 2, 1 }, { 1, 3 } }), d({ 1, -1 })
    local x = d({ 0.5, -2 }, true)
    local f = x:matmul(A):matmul(x) * 0.5 + b:dot(x)
    local g = crater.grad(f, { x }, { create_graph = true })[1]
    assert.is_true(g.requires_grad)
    H.close(g, { 2 * 0.5 + 1 * -2 + 1, 1 * 0.5 + 3 * -2 - 1 }, 1e-15)
    local v = d({ 1, 2 })
    local hv = crater.grad(g:dot(v), { x })[1]
    assert.same({ 4, 7 }, hv:totable())
  end)

  it("third derivatives through repeated create_graph", function()
    local x = d({ 2 }, true)
    local y = (x * x * x * x):sum()   -- x^4: 4x^3, 12x^2, 24x
    local g1 = crater.grad(y, { x }, { create_graph = true })[1]
    local g2 = crater.grad(g1:sum(), { x }, { create_graph = true })[1]
    local g3 = crater.grad(g2:sum(), { x })[1]
    assert.same({ 32 }, g1:totable())
    assert.same({ 48 }, g2:totable())
    assert.same({ 48 }, g3:totable())
  end)

  it("refuses an unused input unless allow_unused", function()
    local x, z = d({ 1 }, true), d({ 1 }, true)
    assert.error_matches(function() crater.grad((x * 2):sum(), { x, z }) end,
      "grad: input 2 was not used in the graph (pass allow_unused=true)", 1, true)
    local g = crater.grad((x * 2):sum(), { x, z }, { allow_unused = true })
    assert.same({ 2 }, g[1]:totable())
    assert.is_nil(g[2])
    assert.error_matches(function() crater.grad((x * 2):sum(), { d({ 1 }) }) end, "grad: input 1 does not require grad", 1, true)
  end)

  it("backward with create_graph leaves a differentiable .grad", function()
    local x = d({ 3 }, true)
    ;(x * x * x):sum():backward(nil, { create_graph = true })
    assert.same({ 27 }, x.grad:totable())
    local gg = crater.grad(x.grad:sum(), { x })[1]
    assert.same({ 18 }, gg:totable())
  end)
end)

describe("grad mode", function()
  it("no_grad records nothing and returns fn's results; enable_grad turns it back on", function()
    local x = d({ 1 }, true)
    local a, b = crater.no_grad(function(k) return x * k, 7 end, 2)
    assert.is_false(a.requires_grad)
    assert.equal(7, b)
    local c = crater.no_grad(function() return crater.enable_grad(function() return x * 2 end) end)
    assert.is_true(c.requires_grad)
    assert.is_true((x * 2).requires_grad)
  end)

  it("restores the mode when fn raises", function()
    local x = d({ 1 }, true)
    assert.error_matches(function() crater.no_grad(function() error("inside") end) end, "inside", 1, true)
    assert.is_true((x * 2).requires_grad)
  end)
end)

describe("detect_anomaly", function()
  local ag = crater.autograd
  it("names the op whose forward produced NaN", function()
    local x = d({ -1 }, true)
    assert.error_matches(function() ag.detect_anomaly(function() return x:sqrt() end) end,
      "anomaly: the forward of SqrtBackward produced NaN", 1, true)
  end)

  it("names the op whose backward produced Inf", function()
    local x = d({ 0 }, true)
    assert.error_matches(function() ag.detect_anomaly(function() x:sqrt():sum():backward() end) end,
      "anomaly: the backward of SqrtBackward produced Inf", 1, true)
  end)

  it("is off outside and returns fn's results inside", function()
    local x = d({ -1 }, true)
    assert.equal(42, ag.detect_anomaly(function() return 42 end))
    assert.is_true(x:sqrt():item() ~= x:sqrt():item())   -- NaN, no error
  end)
end)

describe("memory", function()
  it("stays flat over thousands of forward+backward+update steps", function()
    local w = crater.randn(8, 4, { dtype = "float32", requires_grad = true })
    local b = crater.zeros(4, { requires_grad = true })
    local xb = crater.randn(16, 8)
    local yb = crater.randn(16, 4)
    local function step()
      local out = (xb:matmul(w) + b):tanh()
      local loss = ((out - yb) ^ 2):mean()
      loss:backward()
      crater.no_grad(function()
        w:add_(w.grad, -0.01)
        b:add_(b.grad, -0.01)
        w.grad:zero_()
        b.grad:zero_()
      end)
      return loss:item()
    end
    for _ = 1, 100 do step() end
    collectgarbage(); collectgarbage()
    local m0 = crater.memory()
    local first = step()
    local last
    for _ = 1, 3000 do last = step() end
    collectgarbage(); collectgarbage()
    local m1 = crater.memory()
    assert.equal(m0.tensors, m1.tensors)
    assert.equal(m0.bytes, m1.bytes)
    assert.is_true(last < first)
  end)

  it("frees the graph after backward and when the result is collected", function()
    collectgarbage(); collectgarbage()
    local m0 = crater.memory()
    do
      local x = d({ 1, 2, 3 }, true)
      local y = (x:exp() * x:sin()):sum()
      y:backward()
      local g = crater.grad((x * x):sum(), { x }, { create_graph = true })[1]
      crater.grad(g:sum(), { x })
    end
    collectgarbage(); collectgarbage()
    local m1 = crater.memory()
    assert.equal(m0.tensors, m1.tensors)
    assert.equal(m0.bytes, m1.bytes)
  end)

  it("gives x^2 the gradient (g x) 2, also when it writes into a gradient nobody holds", function()
    -- the mul's backward hands pow's a fresh gradient (3 everywhere), which pow's backward
    -- may overwrite; a view x, a float32 x and a gradient kept by retain_grad take the others
    local function f32(v) return (string.unpack("f", string.pack("f", v))) end
    local values = { 1.1, -0.7, 3.3, 1e-3 }
    for _, dtype in ipairs({ "float64", "float32" }) do
      local x = crater.tensor(values, { dtype = dtype, requires_grad = true })
      local xv = x:detach():totable()
      local loss = ((x ^ 2) * 3):sum()
      loss:backward()
      local want = {}
      for i, v in ipairs(xv) do want[i] = dtype == "float32" and f32(3 * v) * 2 or 3 * v * 2 end
      assert.same(want, x.grad:totable())
    end
    local base = crater.tensor({ 0, 1.5, 0, -2 }, { dtype = "float64", requires_grad = true })
    local y = base:view(2, 2):t()   -- not contiguous: the ops' path
    local loss = ((y ^ 2) * 3):sum()
    loss:backward()
    assert.same({ 0, 9, 0, -12 }, base.grad:totable())
    local x = crater.tensor({ 2, -1 }, { dtype = "float64", requires_grad = true })
    local s = x * 3
    s:retain_grad()
    loss = ((s ^ 2) * 1):sum()
    loss:backward()
    assert.same({ 12, -6 }, s.grad:totable())       -- 2 s, with s = {6, -3}
    assert.same({ 36, -18 }, x.grad:totable())
  end)
end)
