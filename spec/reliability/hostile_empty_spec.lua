-- Issue #17, class 2: empty dimensions.  Every reduction, the softmax family and every
-- loss gives PyTorch 1.13's result on a size-0 dim (values below are torch's, noted from
-- running it), or a Lua error naming the function where torch raises, and reads no
-- element (the suite runs under ASan in `make asan`).  Gradients through them are empty
-- tensors of the input's shape, or zeros for the parameters.
local crater = require "crater"
local F = require "crater.nn.functional"
local H = require "spec.core.helpers"

local nan, inf = 0 / 0, math.huge

-- x (0,3) and y (3,0), fresh each time, requiring grad
local function e03() return crater.zeros(0, 3, { requires_grad = true }) end
local function e30() return crater.zeros(3, 0, { requires_grad = true }) end
local function no_labels() return crater.zeros(0, { dtype = "int64" }) end

local function shape(t) return table.concat(t:shape(), ",") end

-- r is the result of f(x); its shape is want_shape and, when it has elements, its
-- values are want (a flat list); then backward through r:sum() leaves x.grad empty
-- of x's shape.
local function check(make, f, want_shape, want)
  local x = make()
  local r = f(x)
  assert.are.equal(want_shape, shape(r))
  if want then H.close(r:reshape(-1), want) end
  r:sum():backward()
  assert.are.equal(shape(x), shape(x.grad))
end

local function err(f, msg)
  local ok, e = pcall(f)
  assert.is_false(ok)
  assert.truthy(tostring(e):find(msg, 1, true), tostring(e))
end

describe("empty dims: reductions", function()
  local cases = {
    -- name, input, function, shape, values (PyTorch 1.13)
    { "sum()", e03, function(x) return x:sum() end, "", { 0 } },
    { "sum(1) over the empty dim", e03, function(x) return x:sum(1) end, "3", { 0, 0, 0 } },
    { "sum(2) of an empty tensor", e03, function(x) return x:sum(2) end, "0" },
    { "sum(1) of (3,0)", e30, function(x) return x:sum(1) end, "0" },
    { "sum(2, keepdim) of (3,0)", e30, function(x) return x:sum(2, true) end, "3,1", { 0, 0, 0 } },
    { "mean()", e03, function(x) return x:mean() end, "", { nan } },
    { "mean(1)", e03, function(x) return x:mean(1) end, "3", { nan, nan, nan } },
    { "mean(2)", e03, function(x) return x:mean(2) end, "0" },
    { "prod()", e03, function(x) return x:prod() end, "", { 1 } },
    { "prod(1)", e03, function(x) return x:prod(1) end, "3", { 1, 1, 1 } },
    { "prod(1) of (3,0)", e30, function(x) return x:prod(1) end, "0" },
    { "max(2) over a non-empty dim", e03, function(x) return x:max(2) end, "0" },
    { "min(1) of (3,0)", e30, function(x) return x:min(1) end, "0" },
    { "var()", e03, function(x) return x:var() end, "", { nan } },
    { "var(1)", e03, function(x) return x:var(1) end, "3", { nan, nan, nan } },
    { "var(1, unbiased=false)", e03, function(x) return x:var(1, { unbiased = false }) end, "3", { nan, nan, nan } },
    { "var(2)", e03, function(x) return x:var(2) end, "0" },
    { "std()", e03, function(x) return x:std() end, "", { nan } },
    { "std(2) of (3,0)", e30, function(x) return x:std(2) end, "3", { nan, nan, nan } },
    { "norm()", e03, function(x) return x:norm() end, "", { 0 } },
    { "norm(2, 1)", e03, function(x) return x:norm(2, 1) end, "3", { 0, 0, 0 } },
    { "norm(1)", e03, function(x) return x:norm(1) end, "", { 0 } },
    { "norm(3)", e03, function(x) return x:norm(3) end, "", { 0 } },
    { "norm(0)", e03, function(x) return x:norm(0) end, "", { 0 } },
    { "norm(0, 1)", e03, function(x) return x:norm(0, 1) end, "3", { 0, 0, 0 } },
    { "norm('inf')", e03, function(x) return x:norm("inf") end, "", { 0 } },
    { "norm('-inf')", e03, function(x) return x:norm("-inf") end, "", { 0 } },
    { "norm('inf', 1)", e03, function(x) return x:norm("inf", 1) end, "3", { 0, 0, 0 } },
    { "norm('inf', 2)", e03, function(x) return x:norm("inf", 2) end, "0" },
    { "logsumexp(1)", e03, function(x) return x:logsumexp(1) end, "3", { -inf, -inf, -inf } },
    { "logsumexp(2)", e03, function(x) return x:logsumexp(2) end, "0" },
    { "logsumexp(2) of (3,0)", e30, function(x) return x:logsumexp(2) end, "3", { -inf, -inf, -inf } },
  }
  for _, c in ipairs(cases) do
    it(c[1], function() check(c[2], c[3], c[4], c[5]) end)
  end

  it("argmax/argmin over a non-empty dim give empty indices", function()
    assert.are.equal("0", shape(crater.zeros(0, 3):argmax(2)))
    assert.are.equal("0", shape(crater.zeros(3, 0):argmin(1)))
    local v, i = crater.zeros(0, 3):max(2)
    assert.are.equal("0", shape(v))
    assert.are.equal("0", shape(i))
  end)

  -- found on the way: |x|^0 summed gave inf for the 0-norm (torch: 3, NaN counts)
  it("norm(0) counts the non-zeros", function()
    H.close(crater.tensor({ 1, 0, -2, nan }):norm(0), 3)
    H.close(crater.tensor({ { 1, 0 }, { 0, 0 } }):norm(0, 2), { 1, 0 })
    local x = crater.tensor({ 1, 0, 3 }, { requires_grad = true })
    x:norm(0):backward()
    assert.are.same({ 0, 0, 0 }, x.grad:totable())
  end)

  it("int64 sum and prod use their identities", function()
    local z = crater.zeros(0, 3, { dtype = "int64" })
    assert.are.equal(0, z:sum():item())
    assert.are.same({ 1, 1, 1 }, z:prod(1):totable())
  end)

  it("max/min/argmax/argmin without a dim refuse an empty tensor, as PyTorch", function()
    for _, f in ipairs { "max", "min", "argmax", "argmin" } do
      err(function() return crater.zeros(0, 3)[f](crater.zeros(0, 3)) end,
        f .. ": cannot take the " .. f .. " of an empty tensor (shape {0,3})")
    end
  end)

  it("max/min/argmax/argmin over an empty dim are refused, naming the dim", function()
    err(function() return crater.zeros(0, 3):max(1) end, "max: cannot take the max over dim 1 of size 0 (shape {0,3})")
    err(function() return crater.zeros(3, 0):min(2) end, "min: cannot take the min over dim 2 of size 0")
    err(function() return crater.zeros(0, 3):argmax(1) end, "argmax: cannot take the argmax over dim 1 of size 0")
    err(function() return crater.zeros(0, 0):argmin(2) end, "argmin: cannot take the argmin over dim 2 of size 0")
  end)

  it("a reduction over a non-empty dim of a (3,0) tensor reads nothing (it divided by zero)", function()
    assert.are.equal("0", shape(crater.zeros(3, 0):sum(1)))
    assert.are.equal("0", shape(crater.zeros(3, 0):mean(1)))
    assert.are.equal("0", shape(crater.zeros(3, 0, { dtype = "float64" }):prod(1)))
  end)
end)

describe("empty dims: softmax family", function()
  for _, fn in ipairs { "softmax", "log_softmax" } do
    for _, c in ipairs { { e03, 1, "0,3" }, { e03, 2, "0,3" }, { e30, 1, "3,0" }, { e30, 2, "3,0" } } do
      it(fn .. " of {" .. shape(c[1]()) .. "} over dim " .. c[2] .. " is empty", function()
        check(c[1], function(x) return x[fn](x, c[2]) end, c[3])
      end)
    end
  end
  it("softmax of a 1-D empty tensor, and of float64", function()
    assert.are.equal("0", shape(crater.zeros(0):softmax(1)))
    assert.are.equal("0,3", shape(crater.zeros(0, 3, { dtype = "float64" }):log_softmax(1)))
  end)
end)

describe("empty dims: losses", function()
  local function pair(f) return function(x) return f(x, x:detach()) end end
  local cases = {
    { "mse_loss mean", pair(F.mse_loss), "", { nan } },
    { "mse_loss sum", function(x) return F.mse_loss(x, x:detach(), { reduction = "sum" }) end, "", { 0 } },
    { "mse_loss none", function(x) return F.mse_loss(x, x:detach(), { reduction = "none" }) end, "0,3" },
    { "l1_loss", pair(F.l1_loss), "", { nan } },
    { "smooth_l1_loss", pair(F.smooth_l1_loss), "", { nan } },
    { "huber_loss", pair(F.huber_loss), "", { nan } },
    { "binary_cross_entropy", function(x) return F.binary_cross_entropy(x:sigmoid(), x:detach()) end, "", { nan } },
    { "binary_cross_entropy weighted",
      function(x) return F.binary_cross_entropy(x:sigmoid(), x:detach(), { weight = crater.ones(3) }) end, "", { nan } },
    { "binary_cross_entropy_with_logits", pair(F.binary_cross_entropy_with_logits), "", { nan } },
    { "binary_cross_entropy_with_logits pos_weight",
      function(x) return F.binary_cross_entropy_with_logits(x, x:detach(), { pos_weight = crater.ones(3) }) end, "", { nan } },
    { "cross_entropy mean", function(x) return F.cross_entropy(x, no_labels()) end, "", { nan } },
    { "cross_entropy sum", function(x) return F.cross_entropy(x, no_labels(), { reduction = "sum" }) end, "", { 0 } },
    { "cross_entropy none", function(x) return F.cross_entropy(x, no_labels(), { reduction = "none" }) end, "0" },
    { "cross_entropy label_smoothing",
      function(x) return F.cross_entropy(x, no_labels(), { label_smoothing = 0.1 }) end, "", { nan } },
    { "cross_entropy weighted", function(x) return F.cross_entropy(x, no_labels(), { weight = crater.ones(3) }) end, "", { nan } },
    { "cross_entropy probabilities mean", pair(F.cross_entropy), "", { nan } },
    { "cross_entropy probabilities sum", function(x) return F.cross_entropy(x, x:detach(), { reduction = "sum" }) end, "", { 0 } },
    { "cross_entropy probabilities none", function(x) return F.cross_entropy(x, x:detach(), { reduction = "none" }) end, "0" },
    { "nll_loss mean", function(x) return F.nll_loss(x, no_labels()) end, "", { nan } },
    { "nll_loss sum", function(x) return F.nll_loss(x, no_labels(), { reduction = "sum" }) end, "", { 0 } },
    { "nll_loss none", function(x) return F.nll_loss(x, no_labels(), { reduction = "none" }) end, "0" },
    { "nll_loss weighted", function(x) return F.nll_loss(x, no_labels(), { weight = crater.ones(3) }) end, "", { nan } },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " of (0,3)", function() check(e03, c[2], c[3], c[4]) end)
  end

  it("cross_entropy of (0,3,4) logits against (0,4) labels is NaN", function()
    check(function() return crater.zeros(0, 3, 4, { requires_grad = true }) end,
      function(x) return F.cross_entropy(x, crater.zeros(0, 4, { dtype = "int64" })) end, "", { nan })
  end)

  it("cross_entropy of (2,0) logits against probabilities is NaN (no classes)", function()
    check(function() return crater.zeros(2, 0, { requires_grad = true }) end,
      function(x) return F.cross_entropy(x, x:detach()) end, "", { nan })
  end)

  it("cross_entropy of (2,0) logits against labels is refused: no class can be hit", function()
    err(function() return F.cross_entropy(crater.zeros(2, 0), crater.ones(2, { dtype = "int64" })) end,
      "cross_entropy: target 1 out of range for 0 classes")
  end)

  it("cross_entropy of (2,0) logits with every label ignored is NaN (torch), 0 summed", function()
    local x = crater.zeros(2, 0, { requires_grad = true })
    local t = crater.full({ 2 }, -100, { dtype = "int64" })
    H.close(F.cross_entropy(x, t), nan)
    H.close(F.nll_loss(x, t, { reduction = "sum" }), 0)
    F.cross_entropy(x, t, { label_smoothing = 0.2 }):backward()
    assert.are.equal("2,0", shape(x.grad))
  end)

  it("the loss modules agree", function()
    H.close(crater.nn.MSELoss()(crater.zeros(0, 3), crater.zeros(0, 3)), nan)
    H.close(crater.nn.CrossEntropyLoss({ reduction = "sum" })(crater.zeros(0, 3), no_labels()), 0)
  end)

  -- found on the way: the mean of a probability-target cross entropy divides by every
  -- position, N*d1*..., not N (torch: 1.0394542217254639 here, sum 4.1578168869018555)
  it("cross_entropy with (N,C,d) probability targets averages over N*d", function()
    local x = crater.tensor { { { 0.1, 0.5 }, { 0.2, -0.3 }, { 1.0, 0.0 } }, { { 0.3, 0.2 }, { -0.1, 0.4 }, { 0.5, 0.6 } } }
    local t = crater.tensor { { { 0.2, 0.5 }, { 0.3, 0.25 }, { 0.5, 0.25 } }, { { 1, 0 }, { 0, 0.5 }, { 0, 0.5 } } }
    H.close(F.cross_entropy(x, t), 1.0394542217254639, 1e-6)
    H.close(F.cross_entropy(x, t, { reduction = "sum" }), 4.1578168869018555, 1e-6)
  end)
end)

describe("empty dims: other ops", function()
  local Z = crater.zeros
  it("matmul with a 0 inner dim gives zeros, and zero gradients", function()
    local a, b = Z(2, 0, { requires_grad = true }), Z(0, 3, { requires_grad = true })
    local y = a:matmul(b)
    assert.are.same({ { 0, 0, 0 }, { 0, 0, 0 } }, y:totable())
    y:sum():backward()
    assert.are.equal("2,0", shape(a.grad))
    assert.are.equal("0,3", shape(b.grad))
    assert.are.same({ 0, 0, 0, 0 }, Z(0):matmul(Z(0, 4)):totable())
    assert.are.equal(0, Z(0):dot(Z(0)):item())
    assert.are.equal("2,3,4", shape(Z(2, 3, 0):bmm(Z(2, 0, 4))))
  end)

  it("cat and stack with empty parts", function()
    assert.are.same({ { 1, 1, 1 }, { 1, 1, 1 } }, crater.cat({ Z(0, 3), crater.ones(2, 3) }):totable())
    assert.are.equal("2,1", shape(crater.cat({ Z(2, 0), Z(2, 0), Z(2, 1) }, 2)))
    local a = Z(0, 3, { requires_grad = true })
    crater.stack({ a, a }, 2):sum():backward()
    assert.are.equal("0,3", shape(a.grad))
  end)

  it("indexing with and into empty tensors", function()
    local none = crater.zeros(0, { dtype = "int64" })
    assert.are.equal("2,0", shape(crater.ones(2, 3):index_select(2, none)))
    assert.are.equal("2,0", shape(crater.ones(2, 3):gather(2, crater.zeros(2, 0, { dtype = "int64" }))))
    assert.are.same({ { 0, 0, 0 }, { 0, 0, 0 } }, Z(2, 3):index_add(1, none, Z(0, 3)):totable())
    err(function() return Z(0, 3):index_select(1, crater.ones(1, { dtype = "int64" })) end, "out of range for size 0")
    err(function() return Z(0, 3)[1] end, "index 1 out of range for size 0")
  end)

  it("an empty tensor is contiguous whatever its strides: view, flatten, reshape", function()
    assert.are.equal("0", shape(Z(2, 0, 3):flatten()))
    assert.are.equal("3,0", shape(Z(0, 3):t():view(3, 0)))
    assert.are.equal("0,6", shape(Z(3, 0, 2):permute(2, 1, 3):reshape(0, 6)))
  end)

  it("conv2d and pooling of an empty batch", function()
    local w = crater.ones(2, 1, 3, 3, { requires_grad = true })
    local y = F.conv2d(Z(0, 1, 4, 4), w, crater.ones(2))
    assert.are.equal("0,2,2,2", shape(y))
    y:sum():backward()
    assert.are.same(crater.zeros(2, 1, 3, 3):totable(), w.grad:totable())
    assert.are.same({ { { { 1, 1 }, { 1, 1 } }, { { 1, 1 }, { 1, 1 } } } }, F.conv2d(Z(1, 0, 4, 4), Z(2, 0, 3, 3), crater.ones(2)):totable())
    assert.are.equal("0,1,2,2", shape(F.max_pool2d(Z(0, 1, 4, 4), 2)))
    assert.are.equal("0,1,2,2", shape(F.avg_pool2d(Z(0, 1, 4, 4), 2)))
  end)

  it("conv2d and pooling refuse an image of height or width 0, as PyTorch", function()
    err(function() return F.max_pool2d(Z(1, 1, 0, 4), 2, { padding = 1 }) end, "non-zero height and width, got shape {1,1,0,4}")
    err(function() return F.conv2d(Z(1, 1, 4, 0), crater.ones(2, 1, 1, 1), nil, { padding = 1 }) end, "non-zero height and width")
  end)

  it("clip_grad_norm_ of empty gradients: 0, and for the infinity norm PyTorch's refusal, by name", function()
    local p = e03()
    p:sum():backward()
    assert.are.equal(0, crater.nn.utils.clip_grad_norm_({ p }, 1))
    err(function() crater.nn.utils.clip_grad_norm_({ p }, 1, math.huge) end,
      "clip_grad_norm_: the infinity norm of an empty gradient {0,3} is undefined")
  end)

  it("optimizers step on empty parameters; LBFGS refuses them by name, as PyTorch", function()
    for _, name in ipairs { "SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop" } do
      local p = e03()
      local o = crater.optim[name]({ p }, { lr = 0.1 })
      p:sum():backward()
      o:step()
      o:step()
      assert.are.equal("0,3", shape(p))
    end
    local p = e03()
    local o = crater.optim.LBFGS({ p })
    err(function() o:step(function() o:zero_grad(); local l = p:sum(); l:backward(); return l end) end,
      "LBFGS: the parameters have no elements")
  end)

  it("BatchNorm of an empty batch is empty and leaves the running statistics, as PyTorch", function()
    local m = crater.nn.BatchNorm1d(3)
    local x = e03()
    m(x):sum():backward()
    assert.are.equal("0,3", shape(x.grad))
    assert.are.same({ 0, 0, 0 }, m.weight.grad:totable())
    assert.are.same({ 0, 0, 0 }, m.running_mean:totable())
    assert.are.same({ 1, 1, 1 }, m.running_var:totable())
    assert.are.equal(1, m.num_batches_tracked:item())
    assert.are.equal("0,3,2,2", shape(crater.nn.BatchNorm2d(3)(Z(0, 3, 2, 2))))
    err(function() return crater.nn.BatchNorm1d(3)(Z(1, 3)) end, "expected more than 1 value per channel")
  end)

  it("a product with an empty result does no work per batch (2^60 batches of 0 rows)", function()
    -- before, the batch loop ran 2^60 times over nothing (found by the API fuzzer)
    local x = Z(1, 0, 3):expand(2 ^ 60, 0, 3)
    assert.are.equal(string.format("%d,0,4", 2 ^ 60), shape(x:matmul(Z(3, 4))))
    assert.are.equal(string.format("%d,0,0", 2 ^ 60),
      shape(crater.nn.functional.linear(x, Z(0, 3), Z(0))))
  end)

  it("a reduction with an empty result does no work per row (2^62 rows of nothing)", function()
    local x = Z(1, 1, 0):expand(2 ^ 62, 1, 0)
    local e = string.format("%d,0", 2 ^ 62)
    assert.are.equal(e, shape(x:argmax(2)))
    assert.are.equal(e, shape(x:sum(2)))
    assert.are.equal(e, shape(x:max(2)))
    assert.are.equal(e, shape(x:mean(2)))
    assert.are.equal(string.format("%d,1,0", 2 ^ 62), shape(x:softmax(2)))
  end)
end)
