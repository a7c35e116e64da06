-- Optimizer:fused_update: an optimizer class whose update is a crater.fuse program.
local crater = require "crater"
local Optimizer = crater.optim.Optimizer
local ex = loadfile("examples/custom_optimizer.lua")("--define-only")

local adam_fn = dofile("spec/fuse/updates.lua").adam
local function adam_scalars(group, state)
  local b1, b2, t = group.betas[1], group.betas[2], state.step
  return group.lr, b1, b2, group.eps, 1 - b1 ^ t, 1 - b2 ^ t
end
local LuaAdam = Optimizer:extend("LuaAdam", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, maximize = false})
LuaAdam:fused_update(adam_fn, {state = {"exp_avg", "exp_avg_sq"}, scalars = adam_scalars})

local function param(v, dtype) return crater.tensor(v, {dtype = dtype or "float64", requires_grad = true}) end

-- p's steps with grads gs, op by op: the reference for the fused class
local function by_hand(p0, gs, lr, maximize)
  local p, m, v = p0:detach():clone(), crater.zeros_like(p0), crater.zeros_like(p0)
  for t, g in ipairs(gs) do
    if maximize then g = -g end
    p, m, v = adam_fn(p, g, m, v, lr, 0.9, 0.999, 1e-8, 1 - 0.9 ^ t, 1 - 0.999 ^ t)
  end
  return p, m, v
end

local function same_bits(a, b)
  assert.equal(a:numel(), crater.eq(a, b):sum():item())
end

describe("Optimizer:fused_update", function()
  it("passes no state tensor, or more than three, in fn's order", function()
    local Plain = Optimizer:extend("Plain", {lr = 0.5})
    Plain:fused_update(function(p, g, lr) return p - lr * g end,
      {scalars = function(group) return group.lr end, step = false})
    -- four sums of g with weights 1..4, then p - lr * (a + 2b + 3c + 4d) / 30 over two steps
    local Four = Optimizer:extend("Four", {lr = 0.1})
    Four:fused_update(function(p, g, a, b, c, d, lr, n)
      a, b, c, d = a + g, b + 2 * g, c + 3 * g, d + 4 * g
      return p - lr * (a + 2 * b + 3 * c + 4 * d) / 30 * n, a, b, c, d
    end, {state = {"a", "b", "c", "d"}, scalars = function(group, state) return group.lr, state.step end})
    local x, y = param({1, 2}), param({1, 2})
    local plain, four = Plain({x}), Four({y})
    x.grad, y.grad = crater.tensor({2, -4}, {dtype = "float64"}), crater.tensor({1, -1}, {dtype = "float64"})
    plain:step()
    assert.same({0, 4}, x:detach():totable())   -- 1 - 0.5 * 2, 2 + 0.5 * 4
    four:step()   -- a = g, b = 2g, c = 3g, d = 4g: (1 + 4 + 9 + 16) g / 30 = g; p - 0.1 * g * 1
    four:step()   -- sums twice g: p - 0.1 * 2g * 2
    local st = four.state[y]
    assert.same({2, -2}, st.a:totable())
    assert.same({8, -8}, st.d:totable())
    local want = {1 - 0.1 - 0.4, 2 + 0.1 + 0.4}
    for i = 1, 2 do assert.is_true(math.abs(y:detach():totable()[i] - want[i]) < 1e-12) end
  end)

  local gs = {}
  crater.manual_seed(2)
  for i = 1, 4 do gs[i] = crater.randn(5, {dtype = "float64"}) end

  it("steps as the same function run op by op, per group, bit for bit", function()
    local a, b = param({1, 2, 3, 4, 5}), param({-1, 0, 1, 2, 3})
    local opt = LuaAdam({{params = {a}}, {params = {b}, lr = 0.1}}, {lr = 0.01})
    local a0, b0 = a:detach():clone(), b:detach():clone()
    for t = 1, 4 do
      a.grad, b.grad = gs[t]:clone(), (gs[t] * 2):clone()
      opt:step()
    end
    local twice = {}
    for t = 1, 4 do twice[t] = gs[t] * 2 end
    local pa, ma, va = by_hand(a0, gs, 0.01)
    same_bits(a:detach(), pa); same_bits(opt.state[a].exp_avg, ma); same_bits(opt.state[a].exp_avg_sq, va)
    same_bits(b:detach(), (by_hand(b0, twice, 0.1)))
    assert.equal(4, opt.state[a].step)
  end)

  it("is near the built-in Adam (same formula, other rounding)", function()
    local a, b = param({1, 2, 3, 4, 5}), param({1, 2, 3, 4, 5})
    local o1, o2 = LuaAdam({a}, {lr = 0.01}), crater.optim.Adam({b}, {lr = 0.01})
    for t = 1, 4 do
      a.grad, b.grad = gs[t]:clone(), gs[t]:clone()
      o1:step(); o2:step()
    end
    assert.is_true(crater.allclose(a, b, 1e-12, 1e-14))
  end)

  it("maximize negates the gradient inside the program", function()
    local a = param({1, 2, 3, 4, 5})
    local a0 = a:detach():clone()
    local opt = LuaAdam({a}, {lr = 0.01, maximize = true})
    for t = 1, 3 do a.grad = gs[t]:clone(); opt:step() end
    same_bits(a:detach(), (by_hand(a0, {gs[1], gs[2], gs[3]}, 0.01, true)))
  end)

  it("runs float32 parameters in float32", function()
    local a = param({1, 2, 3}, "float32")
    local opt = LuaAdam({a}, {lr = 0.1})
    a.grad = crater.tensor({1, -1, 0.5})
    opt:step()
    assert.equal("float32", opt.state[a].exp_avg:dtype())
    same_bits(a:detach(), (by_hand(crater.tensor({1, 2, 3}), {crater.tensor({1, -1, 0.5})}, 0.1)))
  end)

  it("state_dict and load_state_dict resume bit for bit, and declare the state", function()
    local a = param({1, 2, 3, 4, 5})
    local opt = LuaAdam({a}, {lr = 0.01})
    a.grad = gs[1]:clone(); opt:step()
    local sd = opt:state_dict()
    assert.same({"step", "exp_avg", "exp_avg_sq"}, LuaAdam.state_keys)
    assert.equal(1, sd.state[1].step)
    local b = param(a:totable())
    local opt2 = LuaAdam({b}, {lr = 0.01})
    opt2:load_state_dict(sd)
    a.grad, b.grad = gs[2]:clone(), gs[2]:clone()
    opt:step(); opt2:step()
    same_bits(a:detach(), b:detach())
    local bad = opt:state_dict()
    bad.state[1].exp_avg = crater.zeros(3, {dtype = "float64"})
    assert.has_error(function() opt2:load_state_dict(bad) end)
  end)

  it("a loaded state of another dtype is converted to the parameter's", function()
    local a = param({1, 2, 3}, "float32")
    local opt = LuaAdam({a}, {lr = 0.01})
    a.grad = crater.tensor({1, 1, 1}); opt:step()
    local sd = opt:state_dict()
    sd.state[1].exp_avg = sd.state[1].exp_avg:to("float64")
    opt:load_state_dict(sd)
    a.grad = crater.tensor({1, 1, 1}); opt:step()
    assert.equal("float32", opt.state[a].exp_avg:dtype())
  end)

  it("signSGD with momentum 0 moves each coordinate by lr (worked by hand)", function()
    local p = param({1, -2, 3})
    local opt = ex.SignSGD({p}, {lr = 0.1})
    p.grad = crater.tensor({0.5, -0.5, 0}, {dtype = "float64"})
    opt:step()
    assert.same({0.9, -1.9, 3}, p:totable())
  end)

  it("refuses a non-function update or scalars", function()
    local C = Optimizer:extend("C", {lr = 1})
    assert.has_error(function() C:fused_update(42) end, "C: fused_update: expected a function")
    assert.has_error(function() C:fused_update(function(p, g) return p - g end, {scalars = 1}) end,
      "C: fused_update: scalars must be a function of (group, state)")
  end)
end)
