-- The Lua optimizers of examples/custom_optimizer.lua against steps worked by hand.
local crater = require "crater"
local ex = loadfile("examples/custom_optimizer.lua")("--define-only")

local function param(v) return crater.tensor(v, {dtype = "float64", requires_grad = true}) end

describe("custom optimizers written in Lua", function()
  it("Lion: three steps worked by hand", function()
    local p = param({1, -2})
    local opt = ex.Lion({p}, {lr = 0.1, betas = {0.9, 0.99}, weight_decay = 0.1})
    -- step 1: m = 0, c = 0.1 g -> sign +1;  p = 0.99 p - 0.1;  m = 0.01 g
    p.grad = crater.tensor({0.5, 0.5}, {dtype = "float64"})
    opt:step()
    assert.near(0.89, p:get(1), 1e-12); assert.near(-2.08, p:get(2), 1e-12)
    -- step 2: c = 0.9 {0.005, 0.005} + 0.1 {-1, 0} = {-0.0955, 0.0045}
    p.grad = crater.tensor({-1, 0}, {dtype = "float64"})
    opt:step()
    assert.near(0.9811, p:get(1), 1e-12); assert.near(-2.1592, p:get(2), 1e-12)
    assert.near(-0.00505, opt.state[p].exp_avg:get(1), 1e-15)
    assert.near(0.00495, opt.state[p].exp_avg:get(2), 1e-15)
    -- step 3: g = 0, c = 0.9 m = {-0.004545, 0.004455}: the momentum alone moves p
    p.grad = crater.tensor({0, 0}, {dtype = "float64"})
    opt:step()
    assert.near(1.071289, p:get(1), 1e-12); assert.near(-2.237608, p:get(2), 1e-12)
  end)

  it("AdaBelief: one step worked by hand", function()
    local p = param({1})
    local opt = ex.AdaBelief({p}, {lr = 0.01})
    -- m = 0.2, s = 0.001 * 1.8^2 (+1e-16); corrected: m/0.1 = 2, s/0.001 = 3.24
    p.grad = crater.tensor({2}, {dtype = "float64"})
    opt:step()
    assert.near(1 - 0.01 * 2 / 1.8, p:get(1), 1e-12)
  end)

  it("saves and restores a Lua optimizer's state through state_dict", function()
    local p = param({1, -2})
    local opt = ex.Lion({p}, {lr = 0.1})
    p.grad = crater.tensor({0.5, -0.5}, {dtype = "float64"})
    opt:step()
    local q = param(p:totable())
    local opt2 = ex.Lion({q}, {lr = 0.1})
    opt2:load_state_dict(opt:state_dict())
    p.grad = crater.tensor({-0.01, 0.3}, {dtype = "float64"})
    q.grad = crater.tensor({-0.01, 0.3}, {dtype = "float64"})
    opt:step(); opt2:step()
    assert.same(p:totable(), q:totable())
  end)
end)
