-- Modules in any float dtype (issue #22, item 1): m:to / double / float convert in
-- place, as PyTorch's module.to swaps .data; {dtype =} on every layer with parameters;
-- crater.set_default_dtype; every layer and loss runs in float64.
local crater = require "crater"
local nn, F = crater.nn, crater.nn.functional

local function all_dtypes(m)
  local seen = {}
  for name, t in pairs(m:state_dict()) do seen[name] = t:dtype() end
  return seen
end

describe("Module:to", function()
  it("converts the same tensor objects, their gradients and the float buffers", function()
    crater.manual_seed(1)
    local m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))
    local opt = crater.optim.Adam(m:parameters(), {lr = 0.01})
    local w, b = m[1].weight, m[1].bias
    local w_values = w:totable()
    m(crater.randn(5, 3)):sum():backward()
    local g32 = w.grad:totable()
    assert.are.equal(m, m:double())
    assert.is_true(rawequal(w, m[1].weight) and rawequal(b, m[1].bias))
    assert.is_true(rawequal(w, opt.param_groups[1].params[1]))
    assert.are.same({["0.weight"] = "float64", ["0.bias"] = "float64", ["1.weight"] = "float64",
      ["1.bias"] = "float64", ["1.running_mean"] = "float64", ["1.running_var"] = "float64",
      ["1.num_batches_tracked"] = "int64", ["3.weight"] = "float64", ["3.bias"] = "float64"}, all_dtypes(m))
    assert.is_true(w.requires_grad)
    assert.are.equal("float64", w.grad:dtype())
    -- float32 values widen exactly
    for i, row in ipairs(w:totable()) do
      for j, v in ipairs(row) do
        assert.are.equal(w_values[i][j], v)
        assert.are.equal(g32[i][j], w.grad:totable()[i][j])
      end
    end
    -- the optimizer made before steps the converted parameters
    opt:zero_grad()
    local x = crater.randn(5, 3, {dtype = "float64"})
    m(x):sum():backward()
    local before = w:clone()
    opt:step()
    assert.is_true((w - before):abs():max():item() > 0)
    assert.are.equal("float64", m(x):dtype())
    -- and back
    m:float()
    assert.are.equal("float32", w:dtype())
    assert.are.equal("float32", m[2].running_var:dtype())
    assert.are.equal("int64", m[2].num_batches_tracked:dtype())
  end)

  it("refuses a non-float dtype, naming it, and changes nothing", function()
    local m = nn.Linear(2, 2)
    assert.has_error(function() m:to("int64") end,
      "Linear:to: dtype must be float32 or float64 (a module's parameters are floating point), got int64")
    assert.has_error(function() m:to("float16") end,
      "Linear:to: dtype must be float32 or float64 (a module's parameters are floating point), got float16")
    assert.are.equal("float32", m.weight:dtype())
  end)

  it("changes nothing when a conversion runs out of memory halfway (found by the API fuzzer)", function()
    local failed = 0
    for n = 0, 40 do
      local m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
      m(crater.randn(5, 3)):sum():backward()
      crater.core.internal.fail_alloc(n)
      local ok = pcall(m.double, m)
      crater.core.internal.fail_alloc()
      if ok then break end
      failed = failed + 1
      for name, dt in pairs(all_dtypes(m)) do
        assert.are.equal(name:match("num_batches") and "int64" or "float32", dt, name .. " after failure " .. n)
      end
      assert.are.equal("float32", m[1].weight.grad:dtype())
    end
    assert.is_true(failed > 3)   -- the sweep reached conversions after the first
  end)

  it("refuses a field that is no tensor before converting anything", function()
    local m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    table.insert(m[2]._buffer_names, "junk")
    rawset(m[2], "junk", 5)
    assert.has_error(function() m:double() end, "Sequential:to: junk is a number, not a tensor")
    assert.are.equal("float32", m[1].weight:dtype())
  end)

  it("replaces a buffer that is an op's result (found by the API fuzzer), keeps leaves", function()
    local m = nn.Linear(2, 2)
    m:register_buffer("scaled", m.weight * 2)   -- a non-leaf: its data cannot be swapped
    local w = m.weight
    m:double()
    assert.are.equal("float64", m.scaled:dtype())
    assert.is_true(rawequal(w, m.weight))
    assert.are.same((w:detach() * 2):totable(), m.scaled:totable())
    assert.has_error(function() m:register_parameter("p2", m.weight * 3) end,
      "Linear:register_parameter: parameter p2 must be a leaf tensor, not an op's result (register x:detach())")
  end)

  it("register_parameter and register_buffer take a tensor or nil only", function()
    local m = nn.Linear(2, 2)
    assert.has_error(function() m:register_parameter("w2", 5) end,
      "Linear:register_parameter: parameter w2 must be a tensor or nil, got number")
    assert.has_error(function() m:register_buffer("b2", true) end,
      "Linear:register_buffer: buffer b2 must be a tensor or nil, got boolean")
    assert.is_nil(rawget(m, "w2"))
  end)

  it("a graph recorded before the conversion refuses backward", function()
    local m = nn.Linear(2, 1)
    local y = m(crater.randn(3, 2)):sum()
    m:double()
    assert.has_error(function() y:backward() end)
  end)

  it("keeps a parameter shared by two modules one tensor", function()
    local a = nn.Linear(2, 2)
    local b = nn.Linear(2, 2)
    b.weight = a.weight
    local s = nn.Sequential(a, b)
    s:double()
    assert.is_true(rawequal(a.weight, b.weight))
    assert.are.equal("float64", b.weight:dtype())
  end)
end)

describe("the {dtype =} option", function()
  local layers = {
    {"Linear", function(o) return nn.Linear(3, 4, o) end},
    {"Conv2d", function(o) return nn.Conv2d(2, 3, 3, o) end},
    {"BatchNorm1d", function(o) return nn.BatchNorm1d(3, o) end},
    {"BatchNorm2d", function(o) return nn.BatchNorm2d(3, o) end},
    {"LayerNorm", function(o) return nn.LayerNorm(4, o) end},
    {"Embedding", function(o) return nn.Embedding(5, 3, o) end},
  }
  for _, l in ipairs(layers) do
    it(l[1] .. " makes its parameters and float buffers in that dtype, and refuses int64", function()
      for name, dt in pairs(all_dtypes(l[2]({dtype = "float64"}))) do
        assert.are.equal(name == "num_batches_tracked" and "int64" or "float64", dt, name)
      end
      for name, dt in pairs(all_dtypes(l[2]())) do
        assert.are.equal(name == "num_batches_tracked" and "int64" or "float32", dt, name)
      end
      assert.has_error(function() l[2]({dtype = "int64"}) end,
        l[1] .. ": dtype must be float32 or float64 (parameters are floating point), got int64")
    end)
  end
end)

describe("crater.set_default_dtype", function()
  after_each(function() crater.set_default_dtype("float32") end)

  it("sets the dtype of new float tensors and layers", function()
    assert.are.equal("float32", crater.get_default_dtype())
    crater.set_default_dtype("float64")
    assert.are.equal("float64", crater.get_default_dtype())
    for _, t in ipairs({crater.zeros(2), crater.ones(2), crater.empty(2), crater.rand(2), crater.randn(2),
                        crater.tensor({1.5, 2}), crater.full({2}, 3), crater.eye(2), crater.linspace(0, 1, 3),
                        crater.arange(0, 1, 0.5)}) do
      assert.are.equal("float64", t:dtype())
    end
    assert.are.equal("float64", nn.Linear(2, 2).weight:dtype())
    assert.are.equal("int64", crater.randint(0, 3, {2}):dtype())
    assert.are.equal("float32", crater.zeros(2, {dtype = "float32"}):dtype())
  end)

  it("refuses int64 and unknown names, naming them", function()
    assert.has_error(function() crater.set_default_dtype("int64") end,
      "set_default_dtype: only floating dtypes are supported (float32 or float64), got int64")
    assert.has_error(function() crater.set_default_dtype("half") end)
    assert.are.equal("float32", crater.get_default_dtype())
  end)
end)

describe("float64 through every layer and loss", function()
  it("gradcheck passes through a converted Sequential of every layer kind", function()
    crater.manual_seed(2)
    local net = nn.Sequential(nn.Conv2d(2, 3, 3, {padding = 1}), nn.BatchNorm2d(3), nn.ReLU(),
      nn.MaxPool2d(2), nn.AvgPool2d(1), nn.Flatten(), nn.Linear(12, 5), nn.LayerNorm(5), nn.GELU(),
      nn.Dropout(0), nn.Linear(5, 4), nn.Sigmoid(), nn.LeakyReLU(0.1), nn.Tanh(), nn.LogSoftmax(2))
    net:double()
    local x = crater.randn({2, 2, 4, 4}, {dtype = "float64", requires_grad = true})
    assert.is_true(crater.autograd.gradcheck(function(input) return net(input) end, {x}))
    -- a parameter's gradient too: the converted weight against central differences
    local w = net[7].weight
    local f = function() return net(x:detach()):pow(2):sum() end
    net:zero_grad()
    f():backward()
    local analytic, h = w.grad:clone(), 1e-6
    local base = w:detach():clone()
    for _, at in ipairs({{1, 1}, {3, 7}, {5, 12}}) do
      local i, j = at[1], at[2]
      local e = crater.zeros(5, 12, {dtype = "float64"})
      e[i][j] = h
      crater.no_grad(function() w:copy_(base + e) end)
      local up = f():item()
      crater.no_grad(function() w:copy_(base - e) end)
      local down = f():item()
      crater.no_grad(function() w:copy_(base) end)
      assert.is_true(math.abs((up - down) / (2 * h) - analytic[i][j]:item()) < 1e-6)
    end
    local emb = nn.Embedding(4, 3):double()
    assert.is_true(crater.autograd.gradcheck(function(t) return emb(crater.tensor({1, 4}, {dtype = "int64"})) * t end,
      {crater.randn(2, 3, {dtype = "float64", requires_grad = true})}))
  end)

  it("every loss gives float64 values and gradients on float64 inputs", function()
    crater.manual_seed(3)
    local x = function() return crater.randn({4, 3}, {dtype = "float64", requires_grad = true}) end
    local t = crater.randn({4, 3}, {dtype = "float64"})
    local p = crater.rand({4, 3}, {dtype = "float64"})
    local labels = crater.tensor({1, 3, 2, 1}, {dtype = "int64"})
    local cases = {
      {"mse_loss", function(a) return F.mse_loss(a, t) end},
      {"l1_loss", function(a) return F.l1_loss(a, t) end},
      {"smooth_l1_loss", function(a) return F.smooth_l1_loss(a, t) end},
      {"huber_loss", function(a) return F.huber_loss(a, t) end},
      {"cross_entropy", function(a) return F.cross_entropy(a, labels) end},
      {"nll_loss", function(a) return F.nll_loss(a:log_softmax(2), labels) end},
      {"binary_cross_entropy", function(a) return F.binary_cross_entropy(a:sigmoid(), p) end},
      {"binary_cross_entropy_with_logits", function(a) return F.binary_cross_entropy_with_logits(a, p) end},
    }
    for _, c in ipairs(cases) do
      local a = x()
      local l = c[2](a)
      assert.are.equal("float64", l:dtype(), c[1])
      l:backward()
      assert.are.equal("float64", a.grad:dtype(), c[1])
      assert.is_true(crater.autograd.gradcheck(c[2], {x()}), c[1])
    end
  end)
end)
