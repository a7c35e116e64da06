-- Issue #17, class 3: list arguments read from Lua.  A list whose __len is negative,
-- huge or not an integer, or a plain table with a hole (nil in the middle), is refused
-- with an error naming the function and the argument; before, a negative __len reached
-- C as a count (crater.stack read uninitialised memory) and a hole silently shortened
-- the list (an optimizer dropped the parameters after it).  One check serves every entry
-- point: ct_lua_list in the binding, crater.core.internal.check_list (crater.list) in Lua.
local crater = require "crater"

local function len(v) return setmetatable({}, { __len = function() return v end }) end
local function holed(a, b) local t = { a }; t[3] = b; return t end   -- {a, nil, b}

local function err(f, ...)
  local ok, e = pcall(f)
  assert.is_false(ok, "expected an error")
  for _, msg in ipairs { ... } do assert.truthy(tostring(e):find(msg, 1, true), tostring(e)) end
end

-- the four hostile shapes of a list, each with the words its error must hold
local function hostile(fn, what, max)
  return {
    { len(-1), fn .. ": " .. what .. " has length -1 (expected 0 to " .. max .. ")" },
    { len(math.maxinteger), fn .. ": " .. what .. " has length " .. math.maxinteger },
    { len(1.5), fn .. ": the length of " .. what .. " is not an integer (got 1.5)" },
    { len("2"), fn .. ": the length of " .. what .. " is not an integer (got string)" },
  }
end

describe("lists: crater.stack and crater.cat", function()
  local t = crater.ones(2)
  for _, fn in ipairs { "stack", "cat" } do
    it(fn .. " refuses a bad __len", function()
      for _, c in ipairs(hostile(fn, "the list of tensors", 256)) do
        err(function() return crater[fn](c[1]) end, c[2])
      end
    end)
    it(fn .. " refuses a list with a hole, whatever # says", function()
      err(function() return crater[fn]({ t, nil, t }) end, fn .. ": the list of tensors has a hole: element 2 is nil")
      err(function() return crater[fn](holed(t, t)) end, "element 2 is nil (a list needs elements 1 to 3)")
    end)
  end
  it("a whole list still works, and extra string keys are ignored", function()
    assert.are.same({ 2, 2 }, crater.stack({ t, t, name = "x" }):shape())
  end)
end)

describe("lists: size lists (zeros, full, randint, view, reshape, expand, permute)", function()
  local calls = {
    zeros = function(l) return crater.zeros(l) end,
    ones = function(l) return crater.ones(l) end,
    rand = function(l) return crater.rand(l) end,
    full = function(l) return crater.full(l, 1) end,
    randint = function(l) return crater.randint(0, 3, l) end,
    view = function(l) return crater.ones(2):view(l) end,
    reshape = function(l) return crater.ones(2):reshape(l) end,
    expand = function(l) return crater.ones(2):expand(l) end,
    permute = function(l) return crater.ones(2):permute(l) end,
  }
  for fn, call in pairs(calls) do
    it(fn .. " refuses a bad __len and a hole", function()
      for _, c in ipairs(hostile(fn, "the size list", 8)) do err(function() return call(c[1]) end, c[2]) end
      err(function() return call(holed(2, 2)) end, fn .. ": the size list has a hole: element 2 is nil")
    end)
  end
  it("a shape table still works", function()
    assert.are.same({ 2, 3 }, crater.zeros({ 2, 3 }):shape())
    assert.are.same({ 3, 2 }, crater.ones(2, 3):permute({ 2, 1 }):shape())
  end)
end)

describe("lists: crater.tensor nested tables", function()
  it("refuses a bad __len at any depth", function()
    err(function() return crater.tensor(len(-1)) end, "tensor: the nested table has length -1")
    err(function() return crater.tensor(len(math.maxinteger)) end, "tensor: expected numbers or nested tables, got nil")
    err(function() return crater.tensor(len("2")) end, "tensor: the length of the nested table is not an integer (got string)")
    err(function() return crater.tensor({ { 1, 2 }, len(2.5) }) end, "tensor: the length of the nested table is not an integer")
  end)
  it("refuses holes, at the top and nested", function()
    err(function() return crater.tensor({ 1, nil, 3 }) end, "tensor: the nested table has a hole: element 2 is nil")
    err(function() return crater.tensor({ { 1, 2 }, holed(1, 3) }) end, "tensor: the nested table has a hole")
    err(function() return crater.tensor(holed({ 1 }, { 2 })) end, "element 2 is nil")
  end)
  it("a __len that lies about elements is a ragged table", function()
    err(function() return crater.tensor({ { 1, 2 }, len(2) }) end, "tensor: ragged nested table")
  end)
  it("nested tables still work", function()
    assert.are.same({ { 1, 2 }, { 3, 4 } }, crater.tensor({ { 1, 2 }, { 3, 4 } }):totable())
  end)
end)

describe("lists: index lists x[{i, j}]", function()
  local x = crater.ones(2, 2)
  it("refuses a bad __len and a hole", function()
    for _, c in ipairs(hostile("index", "the index list", 8)) do err(function() return x[c[1]] end, c[2]) end
    err(function() return x[{ nil, 1 }] end, "index: the index list has a hole: element 1 is nil")
    err(function() x[holed(1, 1)] = 0 end, "index: the index list has a hole")
  end)
end)

describe("lists: crater.grad outputs and inputs", function()
  it("refuses a bad __len and a hole", function()
    local p = crater.ones(2, { requires_grad = true })
    for _, c in ipairs(hostile("grad", "outputs", 64)) do err(function() return crater.grad(c[1], { p }) end, c[2]) end
    for _, c in ipairs(hostile("grad", "inputs", 256)) do err(function() return crater.grad(p:sum(), c[1]) end, c[2]) end
    local y = p:sum()
    err(function() return crater.grad({ y, nil, y }, { p }) end, "grad: outputs has a hole")
    err(function() return crater.grad(y, { p, nil, p }) end, "grad: inputs has a hole")
  end)
end)

describe("lists: the byte readers' size lists", function()
  it("refuses a bad __len", function()
    err(function() return crater.core.internal.from_bytes("", "float32", len(-1)) end, "from_bytes: the size list has length -1")
  end)
end)

describe("lists: optimizer params", function()
  local p, q = crater.ones(2, { requires_grad = true }), crater.ones(3, { requires_grad = true })
  it("a hole in params is refused (it dropped every parameter after it)", function()
    err(function() return crater.optim.SGD(holed(p, q), { lr = 0.1 }) end, "SGD: params has a hole: element 2 is nil")
    err(function() return crater.optim.Adam({ { params = { p, nil, q } } }) end, "Adam: params has a hole")
    err(function() return crater.optim.SGD(holed({ params = { p } }, { params = { q } }), { lr = 0.1 }) end, "SGD: params has a hole")
  end)
  it("a bad __len is refused", function()
    err(function() return crater.optim.SGD(len(-1), { lr = 0.1 }) end, "SGD: params has length -1")
    err(function() return crater.optim.SGD(len(0.5), { lr = 0.1 }) end, "SGD: the length of params is not an integer")
  end)
  it("add_param_group checks its list too", function()
    local o = crater.optim.SGD({ p }, { lr = 0.1 })
    err(function() o:add_param_group({ params = holed(q, q) }) end, "SGD: params has a hole")
  end)
end)

describe("lists: schedulers", function()
  local function opt() return crater.optim.SGD({ crater.ones(1, { requires_grad = true }) }, { lr = 1 }) end
  it("MultiStepLR milestones with a hole (the milestones after it were dropped)", function()
    err(function() return crater.optim.lr_scheduler.MultiStepLR(opt(), { milestones = holed(2, 5) }) end,
      "MultiStepLR: milestones has a hole: element 2 is nil")
  end)
  it("SequentialLR and ChainedScheduler scheduler lists, and milestones", function()
    local o = opt()
    local a = crater.optim.lr_scheduler.ConstantLR(o)
    err(function() return crater.optim.lr_scheduler.SequentialLR(o, { schedulers = holed(a, a), milestones = { 1, 2 } }) end,
      "SequentialLR: schedulers has a hole")
    err(function() return crater.optim.lr_scheduler.SequentialLR(o, { schedulers = { a, a }, milestones = len(-1) }) end,
      "SequentialLR: milestones has length -1")
    err(function() return crater.optim.lr_scheduler.ChainedScheduler({ a, nil, a }) end, "ChainedScheduler: schedulers has a hole")
  end)
  it("trace's lr list and group count", function()
    local S = crater.optim.lr_scheduler
    local function f(o) return S.StepLR(o, { step_size = 1 }) end
    err(function() return S.trace(f, 2, { lr = len(-1) }) end, "trace: lr has length -1")
    err(function() return S.trace(f, 2, { lr = { 0.1, nil, 0.2 } }) end, "trace: lr has a hole")
    err(function() return S.trace(f, 2, { groups = -1 }) end, "trace: groups must be positive")
  end)
  it("PiecewiseConstantLR boundaries and values", function()
    err(function() return crater.optim.lr_scheduler.PiecewiseConstantLR(opt(), { boundaries = holed(1, 3), values = { 1, 2, 3, 4 } }) end,
      "PiecewiseConstantLR: boundaries has a hole")
  end)
end)

describe("lists: nn and autograd", function()
  local p = crater.ones(2, { requires_grad = true })
  it("clip_grad_norm_ and clip_grad_value_ parameters", function()
    p:sum():backward()
    err(function() crater.nn.utils.clip_grad_norm_(holed(p, p), 1) end, "clip_grad_norm_: parameters has a hole")
    err(function() crater.nn.utils.clip_grad_value_(len(-1), 1) end, "clip_grad_value_: parameters has length -1")
    err(function() crater.nn.utils.clip_grad_norm_({ p, 3 }, 1) end, "clip_grad_norm_: parameters[2] is a number, not a tensor")
  end)
  it("LayerNorm normalized_shape", function()
    err(function() return crater.nn.LayerNorm(holed(2, 3)) end, "LayerNorm: normalized_shape has a hole")
  end)
  it("gradcheck inputs", function()
    local x = crater.ones(2, { dtype = "float64", requires_grad = true })
    err(function() crater.autograd.gradcheck(function(a) return a:sum() end, holed(x, x)) end, "gradcheck: inputs has a hole")
  end)
end)

describe("lists: kernel_size, stride and padding pairs", function()
  local x = crater.ones(1, 1, 4, 4)
  local F = crater.nn.functional
  it("a pair with a hole, a bad __len or the wrong count is refused", function()
    err(function() return F.max_pool2d(x, holed(2, 2)) end, "max_pool2d: kernel_size has a hole")
    err(function() return F.avg_pool2d(x, 2, { stride = len(-1) }) end, "avg_pool2d: stride has length -1")
    err(function() return F.max_pool2d(x, { 2, 2, 2 }) end, "max_pool2d: kernel_size must be a number or a pair {h, w}, got 3 values")
    err(function() return F.conv2d(x, crater.ones(1, 1, 1, 1), nil, { padding = { 1 } }) end,
      "conv2d: padding must be a number or a pair {h, w}, got 1 values")
    err(function() return crater.nn.Conv2d(1, 1, { 3, nil, 3 }) end, "Conv2d: kernel_size has a hole")
    err(function() return crater.nn.MaxPool2d(2, { padding = holed(0, 0) }) end, "MaxPool2d: padding has a hole")
  end)
  it("pairs still work", function()
    assert.are.same({ 1, 1, 2, 1 }, F.max_pool2d(x, { 2, 4 }):shape())
  end)
end)

describe("lists: lab", function()
  it("race start and optimizers, sweep seeds", function()
    local lab = crater.lab
    err(function() lab.race({ fn = "rosenbrock", start = { 1, nil, 2 }, optimizers = { "sgd" }, steps = 1 }) end,
      "race: start has a hole")
    err(function() lab.race({ fn = "rosenbrock", optimizers = holed("sgd", "adam"), steps = 1 }) end,
      "race: optimizers has a hole")
    err(function() lab.sweep({ fn = "rosenbrock", grid = { lr = { 0.1 } }, seeds = len(-1), steps = 1 }) end,
      "sweep: seeds has length -1")
  end)
end)
