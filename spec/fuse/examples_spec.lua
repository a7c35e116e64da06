-- The optimizers written in Lua with crater.fuse in examples/: AdaBelief against the
-- built-in crater.optim.AdaBelief (the same formula in the same order: the same bits) and
-- signSGD against steps worked by hand.
local crater = require "crater"
local LuaAdaBelief = assert(loadfile("examples/fuse_adabelief.lua"))("--define-only")
local SignSGD = assert(loadfile("examples/fuse_signsgd.lua"))("--define-only")

local function same_bits(a, b, what)
  assert.equal(a:numel(), crater.eq(a, b):sum():item(), what)
end

describe("examples/fuse_adabelief.lua", function()
  -- 30 steps of each on the same parameters and gradients; every step's p, m and s compared
  local function race(opts, dtype)
    crater.manual_seed(11)
    local p0 = crater.randn(1000, {dtype = dtype})
    local a = p0:clone():requires_grad_()
    local b = p0:clone():requires_grad_()
    local oa, ob = LuaAdaBelief({a}, opts), crater.optim.AdaBelief({b}, opts)
    for t = 1, 30 do
      local g = crater.randn(1000, {dtype = dtype}) * (t % 3 + 1)
      a.grad, b.grad = g, g:clone()
      oa:step(); ob:step()
      same_bits(a:detach(), b:detach(), "p at step " .. t)
      same_bits(oa.state[a].exp_avg, ob.state[b].exp_avg, "m at step " .. t)
      same_bits(oa.state[a].exp_avg_var, ob.state[b].exp_avg_var, "s at step " .. t)
    end
    assert.equal(30, oa.state[a].step)
  end
  for _, dtype in ipairs({"float32", "float64"}) do
    for what, opts in pairs({
      ["the defaults (SGD steps, then rectified ones)"] = {lr = 1e-2},
      ["rectify = false"] = {lr = 1e-2, rectify = false, weight_decay = 0.1},
      ["coupled weight decay"] = {lr = 1e-2, weight_decouple = false, weight_decay = 0.1},
      ["fixed_decay"] = {lr = 1e-2, fixed_decay = true, weight_decay = 0.01},
      ["no step while rho < 5 (degenerated_to_sgd = false)"] = {lr = 1e-2, degenerated_to_sgd = false},
      ["betas {0.5, 0.9}: rectified from step 6"] = {lr = 1e-2, betas = {0.5, 0.9}},
    }) do
      it(what .. ", " .. dtype .. ": the built-in's bits at every step", function() race(opts, dtype) end)
    end
  end
  it("refuses amsgrad, which it leaves out, naming the option", function()
    assert.has_error(function() LuaAdaBelief({crater.zeros(2, {requires_grad = true})}, {amsgrad = true}) end,
      "LuaAdaBelief: unknown option 'amsgrad' (the options are betas, degenerated_to_sgd, eps, fixed_decay, "
      .. "lr, maximize, rectify, weight_decay, weight_decouple)")
  end)
end)

describe("examples/fuse_signsgd.lua", function()
  it("two Signum steps with weight decay (worked by hand)", function()
    local p = crater.tensor({1, -2, 3}, {dtype = "float64", requires_grad = true})
    local opt = SignSGD({p}, {lr = 0.1, momentum = 0.5, weight_decay = 0.1})
    p.grad = crater.tensor({0.5, -0.5, 0}, {dtype = "float64"})
    opt:step()
    -- m = 0.5 g = {0.25, -0.25, 0}; p = 0.99 p - 0.1 sign(m)
    assert.same({0.25, -0.25, 0}, opt.state[p].momentum_buffer:totable())
    local want = {0.89, -1.88, 2.97}
    for i = 1, 3 do assert.near(want[i], p:get(i), 1e-15) end
    p.grad = crater.tensor({-1, -1, 2}, {dtype = "float64"})
    opt:step()
    -- m = {0.125 - 0.5, -0.125 - 0.5, 0 + 1}; p = 0.99 p - 0.1 sign(m)
    assert.same({-0.375, -0.625, 1}, opt.state[p].momentum_buffer:totable())
    want = {0.8811 + 0.1, -1.8612 + 0.1, 2.9403 - 0.1}
    for i = 1, 3 do assert.near(want[i], p:get(i), 1e-15) end
  end)
  it("plain signSGD moves every coordinate by lr, a zero gradient by nothing; maximize climbs", function()
    local p = crater.tensor({1, -2, 3}, {requires_grad = true})
    local opt = SignSGD({p}, {lr = 0.25})
    p.grad = crater.tensor({1e-6, -3, 0})
    opt:step()
    assert.same({0.75, -1.75, 3}, p:totable())
    local q = crater.tensor({1}, {requires_grad = true})
    local up = SignSGD({q}, {lr = 0.25, maximize = true})
    q.grad = crater.tensor({2})
    up:step()
    assert.same({1.25}, q:totable())
  end)
  it("refuses a momentum of 1, naming it", function()
    local ok, err = pcall(SignSGD, {crater.zeros(1, {requires_grad = true})}, {momentum = 1})
    assert.is_false(ok)
    assert.truthy(err:find("SignSGD: momentum must be in [0, 1), got 1", 1, true), err)
  end)
end)

describe("examples/demo.lua's Lion (the lab's Lua contestant)", function()
  -- the class's source, cut from the demo (which races it, so it is not loaded whole)
  local src = assert(io.open("examples/demo.lua")):read("a")
  local cls = src:match("(local Lion = crater.optim.Optimizer:extend.-end%}%)\n)")
  local Lion = assert(load("local crater = ...\n" .. cls .. "\nreturn Lion", "=demo Lion"))(crater)
  for _, dtype in ipairs({"float32", "float64"}) do
    it("gives the built-in Lion's bits over 20 steps, " .. dtype, function()
      crater.manual_seed(4)
      local p0 = crater.randn(500, {dtype = dtype})
      local a, b = p0:clone():requires_grad_(), p0:clone():requires_grad_()
      local oa = Lion({a}, {lr = 0.01, weight_decay = 0.1})
      local ob = crater.optim.Lion({b}, {lr = 0.01, weight_decay = 0.1})
      for t = 1, 20 do
        local g = crater.randn(500, {dtype = dtype})
        a.grad, b.grad = g, g:clone()
        oa:step(); ob:step()
        same_bits(a:detach(), b:detach(), "p at step " .. t)
        same_bits(oa.state[a].exp_avg, ob.state[b].exp_avg, "m at step " .. t)
      end
    end)
  end
end)
