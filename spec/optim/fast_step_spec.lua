-- Optimizer:step's one-call path (core.internal.fast_step, for updates declared with their
-- kernel): a step with nothing new takes it, anything new falls back to the Lua step, and
-- both give the same numbers and the same errors.  Expected values come from the Lua step
-- (the path every other spec and the PyTorch fixtures check) and from hand calculation.
local crater = require "crater"
local optim = crater.optim
local internal = crater.core.internal

local function param(values)
  return crater.tensor(values, { dtype = "float64", requires_grad = true })
end

-- A subclass with a begin_step that does nothing: the same update, always the Lua step.
local function lua_stepped(cls)
  local sub = cls:extend(cls.__name, cls.defaults)
  function sub.begin_step() end
  return sub
end

-- n steps of cls from x0 with gradient 2x (the gradient of sum x^2); returns x and the state.
local function run(cls, opts, n)
  local x = param({ 1.5, -0.25, 3 })
  local opt = cls({ x }, opts)
  for _ = 1, n do
    x.grad = x:detach() * 2
    opt:step()
  end
  return x:totable(), opt.state[x]
end

describe("the one-call step", function()
  it("is taken by a step with nothing new, and not by a first step", function()
    local x = param({ 1, 2 })
    local opt = optim.Adam({ x }, { lr = 0.1 })
    x.grad = crater.tensor({ 1, 1 }, { dtype = "float64" })
    assert.is_false(internal.fast_step(opt, internal.adam_step))   -- no options test, no state yet
    assert.same({ 1, 2 }, x:totable())                               -- and nothing changed
    opt:step()
    assert.is_true(internal.fast_step(opt, internal.adam_step))
    assert.equal(2, opt.state[x].step)
    local sub = lua_stepped(optim.Adam)({ x }, { lr = 0.1 })      -- a begin_step: never
    sub:step()
    assert.is_false(internal.fast_step(sub, internal.adam_step))
    assert.equal(1, sub.state[x].step)
  end)

  for _, case in ipairs({
    { "Adam", { lr = 0.1, weight_decay = 0.01, amsgrad = true } }, { "AdamW", { lr = 0.1 } },
    { "Adadelta", {} }, { "Adagrad", { lr = 0.1 } }, { "Adamax", { lr = 0.1 } }, { "RAdam", { lr = 0.1 } },
    { "RMSprop", { lr = 0.01, momentum = 0.9, centered = true } }, { "Rprop", {} },
    { "SGD", { lr = 0.1 } }, { "SGD", { lr = 0.1, momentum = 0.9, dampening = 0.5 } },
    { "SGD", { lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.01 } },
    { "Lion", { lr = 0.01, weight_decay = 0.1 } },
  }) do
    it(case[1] .. " gives the Lua step's numbers to the last bit", function()
      local fast, fast_state = run(optim[case[1]], case[2], 6)
      local slow, slow_state = run(lua_stepped(optim[case[1]]), case[2], 6)
      assert.same(slow, fast)
      if slow_state.step then
        assert.equal(6, fast_state.step)
        assert.equal(math.type(slow_state.step), math.type(fast_state.step))
      end
    end)
  end

  it("gives SGD a new buffer's first step when momentum comes on between steps", function()
    -- PyTorch: a new momentum buffer starts as the gradient itself, even with dampening
    local function sgd(cls)
      local x = param({ 1, -2 })
      local opt = cls({ x }, { lr = 0.1, dampening = 0.5 })
      for k = 1, 4 do
        if k == 3 then opt.param_groups[1].momentum = 0.9 end
        x.grad = x:detach() * 2
        opt:step()
      end
      return x:totable()
    end
    assert.same(sgd(lua_stepped(optim.SGD)), sgd(optim.SGD))
    -- by hand for the first coordinate: 1 -> 0.8 -> 0.64; buffer b = 1.28, x = 0.512;
    -- b = 0.9 * 1.28 + 0.5 * 1.024 = 1.664, x = 0.512 - 0.1664 = 0.3456
    assert.is_true(math.abs(sgd(optim.SGD)[1] - 0.3456) < 1e-12)
  end)

  it("runs a variant only when its ready test says so", function()
    local x = param({ 1, 2 })
    local opt = optim.SGD({ x }, { lr = 0.5 })
    x.grad = crater.tensor({ 1, 1 }, { dtype = "float64" })
    opt:step()                                                       -- x = {0.5, 1.5}
    local function variant(ready) return { internal.sgd_step, false, { first = false }, ready } end
    assert.is_false(internal.fast_step(opt, variant(function() return false end)))
    assert.same({ 0.5, 1.5 }, x:totable())
    assert.is_true(internal.fast_step(opt, variant(function() return true end)))
    assert.same({ 0, 1 }, x:totable())
    assert.is_true(internal.fast_step(opt, variant(nil)))
    assert.same({ -0.5, 0.5 }, x:totable())
  end)

  it("counts a float step as a float (a loaded state's), as state.step + 1 does", function()
    local x = param({ 1 })
    local opt = optim.Adam({ x }, { lr = 0.1 })
    x.grad = crater.tensor({ 1 }, { dtype = "float64" })
    opt:step()
    opt.state[x].step = 3.0
    opt:step()
    assert.equal("float", math.type(opt.state[x].step))
    assert.equal(4, opt.state[x].step)
  end)

  it("falls back to the Lua step, which refuses, when an option changed", function()
    local a, b = param({ 1 }), param({ 2 })
    local opt = optim.Adam({ { params = { a } }, { params = { b } } }, { lr = 0.1 })
    a.grad = crater.tensor({ 1 }, { dtype = "float64" })
    b.grad = crater.tensor({ 1 }, { dtype = "float64" })
    opt:step()
    local a1, b1 = a:item(), b:item()
    opt.param_groups[2].lr = -1
    assert.error_matches(function() opt:step() end, "lr", 1, true)
    assert.equal(a1, a:item())                                       -- group 1 untouched too
    assert.equal(b1, b:item())
    opt.param_groups[2].lr = 0.5                                     -- a new valid value takes effect
    opt:step()
    assert.is_true(b:item() < b1 - 0.4)                              -- Adam moves by about lr
  end)

  it("falls back when a gradient does not fit, and the Lua step names it", function()
    local x = param({ 1, 2 })
    local opt = optim.Adam({ x }, { lr = 0.1 })
    x.grad = crater.tensor({ 1, 1 }, { dtype = "float64" })
    opt:step()
    local before = x:totable()
    x.grad = crater.tensor({ 1, 1 }, { dtype = "float32" })
    assert.error_matches(function() opt:step() end, "the gradient of params[1] is float32", 1, true)
    assert.same(before, x:totable())
  end)

  it("falls back when a parameter has no state yet, and the Lua step makes it", function()
    local a, b = param({ 1 }), param({ 2 })
    local opt = optim.Adam({ a }, { lr = 0.1 })
    a.grad = crater.tensor({ 1 }, { dtype = "float64" })
    opt:step()
    opt:add_param_group({ params = { b } })
    b.grad = crater.tensor({ 1 }, { dtype = "float64" })
    opt:step()
    assert.equal(2, opt.state[a].step)
    assert.equal(1, opt.state[b].step)
    assert.is_true(math.abs(b:item() - 1.9) < 1e-8)   -- Adam's first step: lr g / (|g| + eps)
  end)

  it("skips a parameter without a gradient, as the Lua step does", function()
    local a, b = param({ 1 }), param({ 2 })
    local opt = optim.Adam({ a, b }, { lr = 0.1 })
    a.grad = crater.tensor({ 1 }, { dtype = "float64" })
    b.grad = crater.tensor({ 1 }, { dtype = "float64" })
    opt:step()
    b.grad = nil
    opt:step()
    assert.equal(2, opt.state[a].step)
    assert.equal(1, opt.state[b].step)
  end)

  -- The one-call step keeps each group's options as its kernel read them, per options test
  -- (optimizer.lua's step cache): these change an option between steps and compare with the
  -- Lua step, which reads every option at every step.
  local function mutated(cls, opts, change)
    local x = param({ 1.5, -0.25, 3 })
    local opt = cls({ x }, opts)
    for k = 1, 6 do
      change(k, opt.param_groups[1])
      x.grad = x:detach() * 2
      opt:step()
    end
    return x:totable()
  end

  it("reads an option anew after it changed, at the next one-call steps too", function()
    local function change(k, group) if k == 3 then group.lr = 0.5 end end
    local fast, slow = mutated(optim.Adam, { lr = 0.1 }, change), mutated(lua_stepped(optim.Adam), { lr = 0.1 }, change)
    assert.same(slow, fast)
    assert.not_same(mutated(optim.Adam, { lr = 0.1 }, function() end), fast)
  end)

  it("reads at every step an option that the options test does not check", function()
    -- a class without maximize among its defaults: its test cannot see group.maximize change
    local defaults = {}
    for k, v in pairs(optim.Adam.defaults) do if k ~= "maximize" then defaults[k] = v end end
    local A = optim.Adam:extend("NoMaximizeAdam", defaults)
    local function change(k, group) if k == 4 then group.maximize = true end end
    local fast, slow = mutated(A, { lr = 0.1 }, change), mutated(lua_stepped(A), { lr = 0.1 }, change)
    assert.same(slow, fast)
    assert.not_same(mutated(A, { lr = 0.1 }, function() end), fast)
  end)

  it("gives the Lua step's numbers over several groups and parameters", function()
    local function steps(cls)
      local a, b, c = param({ 1, -2 }), param({ 0.5 }), param({ 3, 4, -1 })
      local opt = cls({ { params = { a, b } }, { params = { c }, lr = 0.3, weight_decay = 0.1 } }, { lr = 0.1 })
      for k = 1, 5 do
        for _, x in ipairs({ a, b, c }) do x.grad = x:detach() * 2 end
        if k == 2 then b.grad = nil end
        if k == 4 then opt.param_groups[2].lr = 0.05 end
        opt:step()
      end
      return { a:totable(), b:totable(), c:totable() }
    end
    assert.same(steps(lua_stepped(optim.Adam)), steps(optim.Adam))
  end)

  -- from the third step on, the one-call step runs the kernel itself (its block is filled):
  -- it must still read the state's tensors at every step, and refuse as the kernel does
  it("reads the state's tensors anew at each step, and refuses a bad one as the Lua step does", function()
    local function steps(cls, swap)
      local x = param({ 1, -2, 0.5 })
      local opt = cls({ x }, { lr = 0.1 })
      for k = 1, 6 do
        x.grad = x:detach() * 2
        if k == 4 then opt.state[x].exp_avg = swap(opt.state[x].exp_avg) end
        local ok, err = pcall(opt.step, opt)
        if not ok then return (tostring(err):gsub("^[^:]*:%d+: ", "")) end   -- the message, not where
      end
      return { x:totable(), opt.state[x].exp_avg:totable() }
    end
    local function halved(m) return m * 0.5 end
    local fast, slow = steps(optim.Adam, halved), steps(lua_stepped(optim.Adam), halved)
    assert.same(slow, fast)
    assert.not_same(steps(optim.Adam, function(m) return m end), fast)
    for _, bad in ipairs({ function() return crater.zeros(2, { dtype = "float64" }) end,
                           function() return crater.zeros(3) end, function() return "m" end }) do
      local msg = steps(optim.Adam, bad)
      assert.is_string(msg)
      assert.equal(steps(lua_stepped(optim.Adam), bad), msg)
      assert.truthy(msg:find("state.exp_avg", 1, true), msg)
    end
  end)

  it("gives the Lua step's numbers for one group of several parameters", function()
    local function steps(cls)   -- one group: its reads are kept between the passes, its params' not
      local a, b = param({ 1, -2 }), param({ 0.5 })
      local opt = cls({ a, b }, { lr = 0.1, weight_decay = 0.05 })
      for k = 1, 5 do
        a.grad, b.grad = a:detach() * 2, k ~= 3 and b:detach() * 2 or nil
        opt:step()
      end
      return { a:totable(), b:totable(), opt.state[a].step, opt.state[b].step }
    end
    assert.same(steps(lua_stepped(optim.Adam)), steps(optim.Adam))
  end)
end)
