-- Every differentiable tensor method is gradchecked in float64 (central differences
-- against the tape), so a new op cannot slip through: a method of crater.Tensor that is
-- neither here nor in the list of non-differentiable ones fails the first spec.
-- Then second-order checks (gradgradcheck) and the subgradients at kinks and ties.
local crater = require "crater"
local H = dofile("spec/core/helpers.lua")
local d, i64 = H.d, H.i
local ag = crater.autograd

crater.manual_seed(2024)
local function r(...) return crater.randn({ ... }, { dtype = "float64", requires_grad = true }) end
-- values kept away from 0 and from each other, for ops with kinks or poles
local function away(...)
  local x = crater.rand({ ... }, { dtype = "float64" }):mul(1.5):add(0.5)
  local s = crater.randint(0, 2, { ... }, { dtype = "float64" }):mul(2):sub(1)
  local y = x * s
  y.requires_grad = true
  return y
end
local function positive(...)
  local x = crater.rand({ ... }, { dtype = "float64" }):add(0.5)
  x.requires_grad = true
  return x
end

local function shuffled(shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  local vals = {}
  for k = 1, n do vals[k] = k / 10 end
  for k = n, 2, -1 do
    local j = math.floor(crater.rand(1, { dtype = "float64" }):item() * k) + 1
    vals[k], vals[j] = vals[j], vals[k]
  end
  local x = crater.tensor(vals, { dtype = "float64" }):view(shape):clone()
  x.requires_grad = true
  return x
end

-- name -> list of {label, fn, inputs}
local cases = {}
local function case(name, label, fn, inputs, opts)
  cases[name] = cases[name] or {}
  table.insert(cases[name], { label = label, fn = fn, inputs = inputs, opts = opts })
end
local function unary(name, make, ...)
  local extra = table.pack(...)
  case(name, "2x3", function(x) return x[name](x, table.unpack(extra, 1, extra.n)) end, { make(2, 3) })
end

-- binary, with broadcasting in every direction and Lua numbers on either side
local function binary(name, make)
  case(name, "same shape", function(a, b) return a[name](a, b) end, { make(2, 3), make(2, 3) })
  case(name, "broadcast row", function(a, b) return a[name](a, b) end, { make(2, 3), make(3) })
  case(name, "broadcast both", function(a, b) return crater[name](a, b) end, { make(2, 1), make(1, 3) })
  case(name, "0-d", function(a, b) return crater[name](a, b) end, { make(2, 3), crater.tensor(0.7, { dtype = "float64", requires_grad = true }) })
end

-- every row of the op table (src/ops/ops.def) with a gradcheck domain: x:name() on a 2x3
-- input, or a binary op's broadcasts; the rows' cases needing other inputs below
local domain = { any = r, positive = positive, away = away, distinct = function(...) return shuffled({ ... }) end }
for _, op in ipairs(crater.core.internal.ops) do
  if op.grad ~= "" and op.grad ~= "none" then
    (op.family == "binary" and binary or unary)(op.name, (assert(domain[op.grad], op.grad)))
  end
end
unary("leaky_relu", away, 0.2); unary("softplus", r, 2, 1)
case("clamp", "min and max", function(x) return x:clamp(-0.5, 0.5) end, { away(3, 3) })
case("clamp", "min only", function(x) return x:clamp(0.25) end, { away(3, 3) })

case("div", "broadcast", function(a, b) return a:div(b) end, { r(2, 3), away(3) })
case("div", "broadcast both", function(a, b) return crater.div(a, b) end, { r(3, 1), away(1, 2) })
case("pow", "tensor^tensor", function(a, b) return a:pow(b) end, { positive(2, 3), r(3) })
case("pow", "tensor^number", function(a) return a:pow(3) end, { r(2, 3) })
case("pow", "number^tensor", function(a) return crater.pow(2, a) end, { r(2, 3) })
case("add", "alpha and scalars", function(a, b) return crater.add(a, b, 2) + 3 end, { r(2, 2), r(2) })
case("sub", "scalars", function(a) return 3 - a - 1 end, { r(2, 2) })
case("mul", "scalars", function(a) return 2 * a * 0.5 * a end, { r(2, 2) })
case("div", "scalars", function(a) return 2 / a / 3 end, { away(2, 2) })
case("minimum", "broadcast", function(a, b) return a:minimum(b) end, { shuffled({ 2, 3 }), crater.tensor({ 0.15, 0.35, 0.45 }, { dtype = "float64", requires_grad = true }) })
case("maximum", "broadcast", function(a, b) return crater.maximum(a, b) end, { shuffled({ 2, 3 }), crater.tensor({ { 0.25 }, { 0.45 } }, { dtype = "float64", requires_grad = true }) })
case("lerp", "weight", function(a, b) return a:lerp(b, 0.3) end, { r(2, 3), r(3) })
case("where", "broadcast", function(a, b) return crater.where(i64({ { 1, 0, 1 }, { 0, 1, 1 } }), a, b) end, { r(2, 3), r(3) })
case("where", "method form x:where(cond, y)", function(a) return a:where(i64({ 0, 1 }), 0) end, { r(2, 2) })
case("masked_fill", "broadcast mask", function(a) return a:masked_fill(i64({ 1, 0, 1 }), 2) end, { r(2, 3) })

-- reductions: every dim, with and without keepdim (all elements: the rows' cases)
for _, name in ipairs({ "sum", "mean", "prod", "logsumexp", "max", "min", "var", "std", "norm" }) do
  local make = (name == "max" or name == "min") and shuffled or function(s) return r(table.unpack(s)) end
  for dim = 1, 3 do
    for _, keep in ipairs({ false, true }) do
      local label = "dim " .. dim .. (keep and " keepdim" or "")
      if name == "max" or name == "min" then
        case(name, label, function(x) return (x[name](x, dim, keep)) end, { make({ 2, 3, 2 }) })
      elseif name == "var" or name == "std" then
        case(name, label, function(x) return x[name](x, dim, { keepdim = keep }) end, { make({ 2, 3, 2 }) })
      elseif name == "norm" then
        case(name, label, function(x) return x:norm(2, dim, keep) end, { make({ 2, 3, 2 }) })
        case(name, label .. " p=3", function(x) return x:norm(3, dim, keep) end, { away(2, 3, 2) })
      else
        case(name, label, function(x) return x[name](x, dim, keep) end, { make({ 2, 3, 2 }) })
      end
    end
  end
end
case("norm", "p=1 and inf", function(x) return x:norm(1) + x:norm("inf") end, { shuffled({ 3, 2 }) })
case("var", "biased", function(x) return x:var({ unbiased = false }) end, { r(4) })
for dim = 1, 3 do
  case("softmax", "dim " .. dim, function(x) return x:softmax(dim) end, { r(2, 3, 2) })
  case("log_softmax", "dim " .. dim, function(x) return x:log_softmax(dim) end, { r(2, 3, 2) })
end
case("softmax", "weighted", function(x) return (x:softmax(2) * d({ 1, 2, 3 })):sum() end, { r(2, 3) })

-- matrix products
case("matmul", "2-D", function(a, b) return a:matmul(b) end, { r(2, 3), r(3, 4) })
case("matmul", "1-D dot", function(a, b) return crater.matmul(a, b) end, { r(3), r(3) })
case("matmul", "matrix-vector", function(a, b) return a:matmul(b) end, { r(2, 3), r(3) })
case("matmul", "vector-matrix", function(a, b) return a:matmul(b) end, { r(3), r(3, 2) })
case("matmul", "batched", function(a, b) return a:matmul(b) end, { r(2, 2, 3), r(2, 3, 2) })
case("matmul", "batched by shared", function(a, b) return a:matmul(b) end, { r(2, 2, 3), r(3, 2) })
case("matmul", "shared by batched", function(a, b) return a:matmul(b) end, { r(2, 3), r(2, 3, 2) })
case("matmul", "transposed views", function(a, b) return a:t():matmul(b:t()) end, { r(3, 2), r(4, 3) })
case("mm", "2-D", function(a, b) return crater.mm(a, b) end, { r(2, 3), r(3, 2) })
case("bmm", "transposed batch", function(a, b) return a:bmm(b:transpose(2, 3)) end, { r(2, 2, 3), r(2, 2, 3) })
case("dot", "1-D", function(a, b) return a:dot(b) end, { r(4), r(4) })

-- views and copies
case("view", "2x3 -> 3x2", function(x) return x:view(3, 2) * d({ 1, 2 }) end, { r(2, 3) })
case("reshape", "of a transpose", function(x) return x:t():reshape(-1) * d({ 1, 2, 3, 4, 5, 6 }) end, { r(2, 3) })
case("transpose", "dims 1,3", function(x) return x:transpose(1, 3) end, { r(2, 3, 4) })
case("permute", "3,1,2", function(x) return x:permute(3, 1, 2) end, { r(2, 3, 4) })
case("narrow", "middle", function(x) return x:narrow(2, 2, 2) end, { r(2, 4) })
case("select", "dim 2", function(x) return x:select(2, 3) end, { r(2, 4) })
-- dim 1: the gradient's bytes copied as one row; then a gradient that is not contiguous
case("select", "dim 1 of 3-d", function(x) return x:select(1, 2) * crater.arange(12, { dtype = "float64" }):view(3, 4) end, { r(3, 3, 4) })
case("select", "dim 1, transposed gradient", function(x) return x:select(1, 3):t() * d({ 1, 2, 3 }) end, { r(3, 3, 2) })
case("squeeze", "all", function(x) return x:squeeze() end, { r(2, 1, 3) })
case("unsqueeze", "dim 2", function(x) return x:unsqueeze(2) end, { r(2, 3) })
case("expand", "broadcast", function(x) return x:expand(2, 3, 4) * crater.arange(24, { dtype = "float64" }):view(2, 3, 4) end, { r(3, 1) })
case("expand_as", "broadcast", function(x) return x:expand_as(crater.zeros(2, 3)) * d({ { 1, 2, 3 }, { 4, 5, 6 } }) end, { r(3) })
case("flatten", "from dim 2", function(x) return x:flatten(2) end, { r(2, 3, 2) })
case("contiguous", "of a transpose", function(x) return x:t():contiguous() end, { r(2, 3) })
case("to", "float64 -> float32 -> float64", function(x) return x:to("float32"):to("float64") end, { r(2, 2) }, { atol = 1e-4, rtol = 1e-3, eps = 1e-3 })
case("float", "round trip", function(x) return x:float():double() end, { r(2) }, { atol = 1e-4, rtol = 1e-3, eps = 1e-3 })
case("index", "x[i] and x[{i,j}]", function(x) return x[2] * x[{ 1, 3 }] end, { r(2, 3) })

-- joining and indexing
case("cat", "dim 1 and 2", function(a, b) return crater.cat({ a, b }, 1):sum(1) + crater.cat({ a, a }, 2):sum(2):sum() end, { r(2, 3), r(1, 3) })
case("stack", "dim 2", function(a, b) return crater.stack({ a, b }, 2) end, { r(2, 3), r(2, 3) })
case("gather", "dim 2, repeated", function(x) return x:gather(2, i64({ { 1, 1, 3 }, { 2, 3, 3 } })) end, { r(2, 3) })
case("gather", "dim 1", function(x) return crater.gather(x, 1, i64({ { 2, 1, 2 } })) end, { r(2, 3) })
case("index_select", "dim 1, repeated", function(x) return x:index_select(1, i64({ 2, 2, 1 })) end, { r(2, 3) })
case("index_select", "dim 2", function(x) return x:index_select(2, i64({ 3, 1 })) end, { r(2, 3) })
case("scatter_add", "both inputs", function(a, s) return a:scatter_add(2, i64({ { 1, 1 }, { 3, 2 } }), s) end, { r(2, 3), r(2, 2) })
case("index_add", "both inputs", function(a, s) return a:index_add(1, i64({ 2, 2 }), s) end, { r(2, 3), r(2, 3) })

-- methods that are not ops, and the rows without a gradient
local not_differentiable = {
  backward = true, register_hook = true, retain_grad = true, requires_grad_ = true,
  dim = true, dtype = true, get = true, item = true, is_contiguous = true, nelement = true, numel = true,
  shape = true, size = true, stride = true, totable = true, type = true,
  zeros_like = true, ones_like = true, numpy_like = true,
}
for _, op in ipairs(crater.core.internal.ops) do
  if op.grad == "none" then not_differentiable[op.name] = true end
end

describe("gradcheck in float64", function()
  it("covers every differentiable tensor method", function()
    local missing = {}
    for name in pairs(crater.Tensor) do
      if not name:match("_$") and not not_differentiable[name] and not cases[name] then
        missing[#missing + 1] = name
      end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)

  local names = {}
  for name in pairs(cases) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    for _, c in ipairs(cases[name]) do
      it(name .. " (" .. c.label .. ")", function()
        assert.is_true(ag.gradcheck(c.fn, c.inputs, c.opts))
      end)
    end
  end

  it("gradcheck itself catches a wrong gradient", function()
    local x = r(3)
    local function wrong(t)   -- the gradient of t*t with the second factor detached: half of it
      return t * t:detach()
    end
    assert.error_matches(function() ag.gradcheck(wrong, { x }) end, "gradcheck: Jacobian mismatch", 1, true)
    assert.error_matches(function() ag.gradcheck(function(t) return t * 2 end, { crater.ones(2, { requires_grad = true }) }) end,
      "gradcheck: input 1 is float32; gradcheck needs float64 inputs", 1, true)
  end)
end)

describe("gradgradcheck (second order)", function()
  local set = {
    { "exp * sin", function(x) return (x:exp() * x:sin()):sum() end, { r(3) } },
    { "tanh", function(x) return x:tanh():sum() end, { r(4) } },
    { "sigmoid", function(x) return (x:sigmoid() * d({ 1, 2, 3 })):sum() end, { r(3) } },
    { "log and sqrt", function(x) return (x:log() + x:sqrt()):sum() end, { positive(3) } },
    { "div and pow", function(a, b) return (a / b):pow(2):sum() end, { r(3), away(3) } },
    { "tensor^tensor", function(a, b) return a:pow(b):sum() end, { positive(3), r(3) } },
    { "matmul", function(a, b) return a:matmul(b):pow(2):sum() end, { r(2, 3), r(3, 2) } },
    { "batched matmul", function(a, b) return a:bmm(b):sin():sum() end, { r(2, 2, 2), r(2, 2, 2) } },
    { "softmax", function(x) return (x:softmax(2) * d({ { 1, 2, 3 }, { 3, 1, 2 } })):sum() end, { r(2, 3) } },
    { "log_softmax", function(x) return (x:log_softmax(1) * d({ 1, -1, 2 })):sum() end, { r(3) } },
    { "logsumexp", function(x) return x:logsumexp(2):sum() end, { r(2, 3) } },
    { "mean, var, norm", function(x) return x:mean() * x:var() + x:norm() end, { r(5) } },
    { "broadcast mul", function(a, b) return (a * b * b):sum() end, { r(2, 3), r(3) } },
    { "gather and index_select", function(x) return (x:gather(2, i64({ { 2 }, { 1 } })):exp():sum() + x:index_select(2, i64({ 3 })):pow(3):sum()) end, { r(2, 3) } },
    { "cat and stack", function(a, b) return crater.cat({ a, b }):pow(3):sum() + crater.stack({ a, a }):exp():sum() end, { r(2), r(3) } },
    { "gelu and softplus", function(x) return (x:gelu() + x:softplus()):sum() end, { r(4) } },
    { "views", function(x) return x:t():reshape(-1):narrow(1, 2, 3):pow(3):sum() end, { r(2, 3) } },
  }
  for _, c in ipairs(set) do
    it(c[1], function()
      assert.is_true(ag.gradgradcheck(c[2], c[3]))
    end)
  end
end)

-- The gradient at a kink or tie is a choice; these are PyTorch 1.13's choices.
describe("subgradients at kinks and ties (PyTorch's choices)", function()
  local function grad_of(fn, x)
    return crater.grad(fn(x), { x })[1]:totable()
  end

  it("clamp passes the gradient at both boundaries, 0 outside", function()
    local x = d({ -2, -1, 0, 1, 2 }, true)
    assert.same({ 0, 1, 1, 1, 0 }, grad_of(function(t) return t:clamp(-1, 1):sum() end, x))
    assert.same({ 0, 1, 1, 1, 1 }, grad_of(function(t) return t:clamp(-1):sum() end, x))
  end)

  it("relu has gradient 0 at 0; abs has 0 at 0; leaky_relu takes the slope at 0", function()
    local x = d({ -1, 0, 1 }, true)
    assert.same({ 0, 0, 1 }, grad_of(function(t) return t:relu():sum() end, x))
    assert.same({ -1, 0, 1 }, grad_of(function(t) return t:abs():sum() end, x))
    H.close(grad_of(function(t) return t:leaky_relu(0.1):sum() end, x), { 0.1, 0.1, 1 }, 1e-15)
  end)

  it("maximum and minimum split the gradient evenly at ties", function()
    local a, b = d({ 1, 2, 3 }, true), d({ 3, 2, 1 }, true)
    local g = crater.grad(crater.maximum(a, b):sum(), { a, b })
    assert.same({ 0, 0.5, 1 }, g[1]:totable())
    assert.same({ 1, 0.5, 0 }, g[2]:totable())
    g = crater.grad(crater.minimum(a, b):sum(), { a, b })
    assert.same({ 1, 0.5, 0 }, g[1]:totable())
    assert.same({ 0, 0.5, 1 }, g[2]:totable())
  end)

  it("max and min over all elements share the gradient among ties", function()
    local x = d({ 1, 3, 3, 2 }, true)
    assert.same({ 0, 0.5, 0.5, 0 }, grad_of(function(t) return t:max() end, x))
    assert.same({ 1, 0, 0, 0 }, grad_of(function(t) return t:min() end, x))
  end)

  it("max and min over a dim send the gradient to the returned index", function()
    local x = d({ { 1, 3, 3 }, { 2, 2, 0 } }, true)
    local v, idx = x:max(2)
    assert.same({ 2, 1 }, idx:totable())
    assert.same({ { 0, 1, 0 }, { 1, 0, 0 } }, crater.grad(v:sum(), { x })[1]:totable())
  end)

  it("where sends the gradient to the chosen branch only", function()
    local a, b = d({ 1, 2 }, true), d({ 3, 4 }, true)
    local g = crater.grad(crater.where(i64({ 1, 0 }), a, b):sum(), { a, b })
    assert.same({ 1, 0 }, g[1]:totable())
    assert.same({ 0, 1 }, g[2]:totable())
  end)

  it("pow of a zero base gives 0 (not NaN) for the exponent's gradient", function()
    local a, b = d({ 0, 2 }, true), d({ 2, 3 }, true)
    local g = crater.grad(a:pow(b):sum(), { a, b })
    assert.same({ 0, 12 }, g[1]:totable())
    H.close(g[2], { 0, 8 * math.log(2) }, 1e-15)
  end)

  it("sign has gradient 0 everywhere", function()
    assert.same({ 0, 0, 0 }, grad_of(function(t) return t:sign():sum() end, d({ -1, 0, 2 }, true)))
  end)
end)
