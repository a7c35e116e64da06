--- Help for the functions and methods written in C (src/lua), keyed by their
-- Lua name: `crater.zeros` and `x:narrow` look up "zeros" and "narrow".
-- Each entry is {sig=, desc=, options = {{name, default, text}, ...}, example=}.
-- The ops' entries are made from the op table (src/ops/ops.def, handed over as
-- crater.core.internal.ops), with the examples written here; the rest are written here.
-- Lua functions are documented by their LDoc comments instead (crater.help).
local core = require "crater.core"
local ctor_opts = { { "dtype", '"float32"', '"float32", "float64" or "int64"' },
                    { "requires_grad", "false", "record operations for autograd" } }

local function d (sig, desc, example, options)
  return { sig = sig, desc = desc, example = example, options = options }
end

local function inplace (name, args, what)
  return d("x:" .. name .. "(" .. args .. ")",
    what .. " in place and returns x. Refuses a leaf that requires grad outside crater.no_grad.",
    "x = crater.zeros(3)\nx:" .. name .. "(" .. (args == "" and "" or "...") .. ")")
end

local function random (name, dist)
  return d("crater." .. name .. "(size..., {dtype=, requires_grad=})",
    "A new tensor of the given sizes filled with " .. dist .. ", drawn from the seeded generator "
      .. "(crater.manual_seed).", "crater.manual_seed(0)\nx = crater." .. name .. "(2, 3)", ctor_opts)
end

local doc = {
  Tensor = d("crater.Tensor",
    "An n-dimensional array (float32, float64 or int64) that may share storage with other views "
      .. "and record operations for autograd. Indices and dims are 1-based.",
    "x = crater.randn(2, 3)\nprint(x:shape(), x:dtype(), x[1])"),

  -- construction
  tensor = d("crater.tensor(data, {dtype=, requires_grad=})",
    "A new tensor holding a copy of a number or a nested table of numbers.",
    "x = crater.tensor({{1, 2}, {3, 4}})\ny = crater.tensor(3.5, {dtype = \"float64\"})", ctor_opts),
  zeros = d("crater.zeros(size..., {dtype=, requires_grad=})",
    "A new tensor of the given sizes (integers or one table) filled with 0.",
    "x = crater.zeros(2, 3)\ny = crater.zeros({4}, {dtype = \"int64\"})", ctor_opts),
  ones = d("crater.ones(size..., {dtype=, requires_grad=})",
    "A new tensor of the given sizes filled with 1.", "x = crater.ones(2, 3)\nx = crater.ones({5})", ctor_opts),
  full = d("crater.full(shape, value, {dtype=, requires_grad=})",
    "A new tensor of the given shape (a table) filled with value.",
    "x = crater.full({2, 2}, 7)\nprint(x)", ctor_opts),
  empty = d("crater.empty(size..., {dtype=, requires_grad=})",
    "A new tensor of the given sizes whose values are not initialised.",
    "x = crater.empty(3, 3)\nx:fill_(1)", ctor_opts),
  eye = d("crater.eye(n, m?, {dtype=})", "The n x m identity matrix (m defaults to n).",
    "I = crater.eye(3)\nprint(I)", ctor_opts),
  arange = d("crater.arange(start, stop?, step?, {dtype=})",
    "Values from start up to (not including) stop by step, like torch.arange; arange(n) is 0..n-1.",
    "crater.arange(5)          -- 0 1 2 3 4\ncrater.arange(1, 2, 0.25)", ctor_opts),
  linspace = d("crater.linspace(start, stop, n, {dtype=})",
    "n evenly spaced values from start to stop, both included.",
    "crater.linspace(0, 1, 5)  -- 0 0.25 0.5 0.75 1", ctor_opts),
  rand = random("rand", "uniform values in [0, 1)"),
  randn = random("randn", "standard normal values"),
  randint = d("crater.randint(low, high, shape, {dtype=\"int64\"})",
    "A new int64 tensor of the given shape with integers drawn uniformly from [low, high).",
    "crater.manual_seed(1)\nlabels = crater.randint(1, 11, {8})",
    { { "dtype", '"int64"', "element type" } }),
  zeros_like = d("crater.zeros_like(x, {dtype=})", "A new tensor of x's shape (and dtype) filled with 0.",
    "g = crater.zeros_like(p)", ctor_opts),
  ones_like = d("crater.ones_like(x, {dtype=})", "A new tensor of x's shape (and dtype) filled with 1.",
    "o = crater.ones_like(p)", ctor_opts),
  randn_like = d("crater.randn_like(x, {dtype=})", "A new tensor of x's shape with standard normal values.",
    "noise = crater.randn_like(p)", ctor_opts),
  manual_seed = d("crater.manual_seed(n)",
    "Seeds the random generator: the same seed gives the same numbers on every machine.",
    "crater.manual_seed(42)\na = crater.randn(3)"),
  is_tensor = d("crater.is_tensor(v)", "True when v is a crater tensor (the one tensor test every module uses).",
    "print(crater.is_tensor(crater.zeros(2)), crater.is_tensor({}))  -- true false"),
  set_default_dtype = d("crater.set_default_dtype(dtype)",
    'The dtype of new float tensors and layer parameters when none is asked for: "float32" (the start) or "float64", as torch.set_default_dtype; int64 is refused.',
    'crater.set_default_dtype("float64")\nprint(crater.zeros(2):dtype())  -- float64'),
  get_default_dtype = d("crater.get_default_dtype()", "The dtype new float tensors get (see set_default_dtype).",
    "print(crater.get_default_dtype())  -- float32"),
  set_num_threads = d("crater.set_num_threads(n)",
    "Sets the number of threads used by OpenBLAS and crater's own parallel loops.",
    "crater.set_num_threads(1)"),

  -- facts
  shape = d("x:shape()", "The sizes as a new Lua table, e.g. {2, 3}.", "crater.zeros(2, 3):shape()  -- {2, 3}"),
  size = d("x:size(d?)", "The size of dimension d (1-based); without d, the shape table.",
    "x = crater.zeros(2, 3)\nx:size(2)  -- 3"),
  dim = d("x:dim()", "The number of dimensions.", "crater.zeros(2, 3):dim()  -- 2"),
  numel = d("x:numel()", "The number of elements.", "crater.zeros(2, 3):numel()  -- 6"),
  dtype = d("x:dtype()", 'The element type: "float32", "float64" or "int64".', 'crater.zeros(2):dtype()  -- "float32"'),
  item = d("x:item()", "The value of a one-element tensor as a Lua number.",
    "loss = crater.tensor({{2.5}})\nprint(loss:item())"),
  totable = d("x:totable()", "The values as nested Lua tables (a number for a 0-d tensor).",
    "crater.eye(2):totable()  -- {{1, 0}, {0, 1}}"),
  is_contiguous = d("x:is_contiguous()", "Whether the elements are laid out densely in row-major order.",
    "x = crater.zeros(2, 3)\nx:t():is_contiguous()  -- false"),
  get = d("x:get(i, j, ...)", "The element at the given 1-based indices, as a Lua number.",
    "x = crater.tensor({{1, 2}, {3, 4}})\nx:get(2, 1)  -- 3"),

  -- autograd
  requires_grad = d("x.requires_grad",
    "Whether operations on x are recorded for autograd; writable on leaves.",
    "w = crater.randn(3, {requires_grad = true})\nprint(w.requires_grad)"),
  is_leaf = d("x.is_leaf", "Whether x was made by the user rather than by a recorded operation.",
    "w = crater.randn(3, {requires_grad = true})\nprint(w.is_leaf, (w * 2).is_leaf)  -- true false"),
  grad_fn = d("y.grad_fn", 'The name of the operation that made y, such as "MulBackward", or nil for leaves.',
    "y = w * 2\nprint(y.grad_fn)"),
  backward = d("y:backward(grad?, {retain_graph=false, create_graph=false})",
    "Accumulates dy/dx into the .grad of every leaf x that y depends on. grad is needed unless y has one "
      .. "element. The graph is freed unless retain_graph is true; a second backward through it is an error. "
      .. "An unknown option is refused; a backward from a hook may not walk the graph of the one running.",
    "w = crater.randn(3, {requires_grad = true})\n(w * w):sum():backward(); print(w.grad)",
    { { "retain_graph", "false", "keep the graph for another backward" },
      { "create_graph", "false", "record the backward pass, for higher derivatives" } }),
  grad = d("crater.grad(outputs, inputs, {grad_outputs=, create_graph=false, retain_graph=false})",
    "The gradients of outputs with respect to inputs, as a list, without touching .grad. "
      .. "(x.grad, on a tensor, is the gradient accumulated by backward, nil until one reaches x.)",
    "g = crater.grad({(w * w):sum()}, {w}, {create_graph = true})[1]\nhvp = crater.grad({(g * v):sum()}, {w})[1]",
    { { "grad_outputs", "nil", "the vector in the vector-Jacobian product (ones for scalars)" },
      { "create_graph", "false", "make the result differentiable again" },
      { "retain_graph", "create_graph", "keep the graph afterwards" },
      { "allow_unused", "false", "nil (not an error) for an input the outputs do not depend on" } }),
  no_grad = d("crater.no_grad(fn, ...)", "Calls fn(...) with recording off and returns its results.",
    "crater.no_grad(function () w:sub_(0.1 * w.grad) end)"),
  enable_grad = d("crater.enable_grad(fn, ...)", "Calls fn(...) with recording on, even inside no_grad.",
    "crater.enable_grad(function () y = w * 2 end)"),
  gradcheck = d("crater.autograd.gradcheck(fn, inputs, {eps=1e-6, atol=1e-5, rtol=1e-3})",
    "Compares fn's analytic gradients with central finite differences in float64; returns true or raises "
      .. "naming the first mismatch.",
    "x = crater.randn(3, {dtype = \"float64\", requires_grad = true})\n"
      .. "crater.autograd.gradcheck(function (a) return a:exp():sum() end, {x})",
    { { "eps", "1e-6", "finite-difference step" }, { "atol", "1e-5", "absolute tolerance" },
      { "rtol", "1e-3", "relative tolerance" } }),
}

-- the rest of the binding's public functions and methods
local extra = {
  nelement = d("x:nelement()", "Torch7's name for x:numel(): the number of elements.", "crater.zeros(2, 3):nelement()  -- 6"),
  clock = d("crater.clock()", "Monotonic wall-clock seconds (a float), for timing.", "t0 = crater.clock()\nprint(crater.clock() - t0)"),
  get_num_threads = d("crater.get_num_threads()", "The number of threads OpenBLAS and crater's loops use.",
    "print(crater.get_num_threads())"),
  is_grad_enabled = d("crater.is_grad_enabled()", "True unless inside crater.no_grad (or after set_grad_enabled(false)).",
    "crater.no_grad(function () print(crater.is_grad_enabled()) end)  -- false"),
  set_grad_enabled = d("crater.set_grad_enabled(flag)", "Turns recording on or off globally; returns the previous setting.",
    "local was = crater.set_grad_enabled(false)\ncrater.set_grad_enabled(was)"),
  memory = d("crater.memory()", "Live C memory: {bytes=, tensors=, peak_bytes=}. collectgarbage('count') does not see it.",
    "collectgarbage()\nprint(crater.memory().bytes)"),
  reset_peak_memory = d("crater.reset_peak_memory()", "Sets peak_bytes of crater.memory() to the current live bytes.",
    "crater.reset_peak_memory()"),
  stride = d("x:stride()", "The element strides of each dim, as a table (views share storage with other strides).",
    "crater.zeros(2, 3):t():stride()  -- {1, 3}"),
  retain_grad = d("x:retain_grad()",
    "Keeps a non-leaf's gradient in x.grad during the next backwards (summed, as a leaf's); x.retains_grad tells.",
    "local y = x * 2\ny:retain_grad()\nlocal loss = (y * y):sum()\nloss:backward()\nprint(y.grad)  -- 4 * x"),
  register_hook = d("x:register_hook(fn)",
    "Calls fn(grad) when x's gradient is computed during backward; if fn returns a tensor it replaces the "
      .. "gradient, with the same shape and dtype. The hook goes with x (a hook capturing x does not keep it alive).",
    "w = crater.ones(2, {requires_grad = true})\nw:register_hook(function (g) return g * 2 end)"),
  empty_like = d("crater.empty_like(x, {dtype=})", "An uninitialised tensor with x's shape and dtype.", "crater.empty_like(crater.ones(2, 3))"),
  rand_like = d("crater.rand_like(x, {dtype=})", "Uniform [0,1) samples with x's shape and dtype.", "crater.rand_like(crater.ones(2, 3))"),
  randperm = d("crater.randperm(n)", "A random permutation of 1..n (int64) from crater's seeded generator.",
    "crater.manual_seed(1)\nprint(crater.randperm(5))"),
  set_flush_denormal = d("crater.set_flush_denormal(flag)",
    "Flushes subnormal floats to zero in this thread (they slow training down); returns whether it is supported.",
    "crater.set_flush_denormal(true)"),
}
for k, v in pairs(extra) do if doc[k] == nil then doc[k] = v end end

-- The examples of the op table's rows outside the elementwise families, by name (the
-- elementwise ones are made alike), and the options of those that take an options table.
local examples = {
  sum = "x = crater.tensor({{1, 2}, {3, 4}})\nx:sum()  x:sum(1)  x:sum(2, true)",
  mean = "x = crater.tensor({{1, 2}, {3, 4}})\nx:mean()  x:mean(1)",
  prod = "x = crater.tensor({{1, 2}, {3, 4}})\nx:prod()  x:prod(2)",
  max = "x = crater.tensor({{1, 5}, {7, 2}})\nvalues, idx = x:max(2)",
  min = "x = crater.tensor({{1, 5}, {7, 2}})\nvalues, idx = x:min(2)",
  argmax = "crater.tensor({{1, 5}, {7, 2}}):argmax(2)  -- {2, 1}",
  argmin = "crater.tensor({{1, 5}, {7, 2}}):argmin(2)  -- {1, 2}",
  var = "crater.tensor({1, 2, 3, 4}):var()  -- 1.6667",
  std = "crater.tensor({1, 2, 3, 4}):std()",
  norm = "crater.tensor({3, 4}):norm()  -- 5\ncrater.tensor({3, -4}):norm(\"inf\")  -- 4",
  logsumexp = "crater.tensor({1000, 1000}):logsumexp(1)  -- 1000.6931",
  softmax = "p = crater.randn(4, 10):softmax(2)",
  log_softmax = "logp = crater.randn(4, 10):log_softmax(2)",
  view = "x = crater.arange(6)\ny = x:view(2, 3)",
  reshape = "y = crater.arange(6):view(2, 3):t():reshape(6)",
  t = "x = crater.zeros(2, 3)\nx:t():shape()  -- {3, 2}",
  transpose = "x = crater.zeros(2, 3, 4)\nx:transpose(1, 3):shape()  -- {4, 3, 2}",
  permute = "x = crater.zeros(2, 3, 4)\nx:permute(3, 1, 2):shape()  -- {4, 2, 3}",
  narrow = "x = crater.arange(10)\nx:narrow(1, 3, 4)  -- 2 3 4 5",
  select = "x = crater.tensor({{1, 2}, {3, 4}})\nx:select(2, 1)  -- 1 3",
  squeeze = "crater.zeros(1, 3, 1):squeeze():shape()  -- {3}",
  unsqueeze = "crater.zeros(3):unsqueeze(1):shape()  -- {1, 3}",
  expand = "crater.tensor({{1}, {2}}):expand(2, 3)",
  expand_as = "crater.tensor({1, 2}):expand_as(crater.zeros(3, 2))",
  flatten = "crater.zeros(2, 3, 4):flatten(2):shape()  -- {2, 12}",
  contiguous = "y = x:t():contiguous()",
  clone = "y = x:clone()\ny:fill_(0)  -- x unchanged",
  detach = "y = (w * 2):detach()",
  to = 'x = crater.arange(3):to("float64")',
  float = 'crater.tensor({1, 2}, {dtype = "int64"}):float()',
  double = "crater.ones(2):double()",
  long = "crater.tensor({1.7, -1.7}):long()  -- 1 -1",
  cat = "crater.cat({crater.zeros(2, 3), crater.ones(1, 3)}, 1)  -- 3x3",
  stack = "crater.stack({crater.zeros(3), crater.ones(3)})  -- 2x3",
  matmul = "a = crater.randn(2, 3)\nc = a:matmul(crater.randn(3, 4))  -- 2x4",
  mm = "c = crater.eye(2):mm(crater.ones(2, 3))",
  bmm = "c = crater.randn(4, 2, 3):bmm(crater.randn(4, 3, 5))",
  dot = "crater.dot(crater.tensor({1, 2}), crater.tensor({3, 4}))  -- 11",
  eigh = "local w, v = crater.eigh(crater.tensor({{2, 1}, {1, 2}}))  -- w = {1, 3}",
  gather = 'x = crater.tensor({{1, 2}, {3, 4}})\nx:gather(2, crater.tensor({{2}, {1}}, {dtype = "int64"}))  -- {{2}, {3}}',
  scatter_add = 'crater.zeros(2, 3):scatter_add(2, crater.tensor({{1}, {3}}, {dtype = "int64"}), crater.ones(2, 1))',
  index_select = 'x:index_select(1, crater.tensor({3, 1}, {dtype = "int64"}))',
  index_add = 'crater.zeros(3):index_add(1, crater.tensor({1, 1}, {dtype = "int64"}), crater.ones(2))  -- 2 0 0',
  masked_fill = "y = x:masked_fill(x:lt(0), 0)",
  where = "z = crater.where(x:gt(0), x, crater.zeros_like(x))\nz = x:where(x:gt(0), 0)",
  lerp = "crater.zeros(2):lerp(crater.ones(2), 0.25)  -- 0.25 0.25",
  allclose = "crater.allclose(crater.tensor({1}), crater.tensor({1 + 1e-9}))  -- true",
  addcmul_ = "x = crater.zeros(3)\nx:addcmul_(crater.ones(3), crater.full({3}, 2), 0.5)  -- 1 1 1",
  addcdiv_ = "x = crater.zeros(3)\nx:addcdiv_(crater.ones(3), crater.full({3}, 2))  -- 0.5 0.5 0.5",
  lerp_ = "x = crater.zeros(3)\nx:lerp_(crater.ones(3), 0.1)",
  fill_ = "x = crater.zeros(3)\nx:fill_(7)",
  zero_ = "x = crater.ones(3)\nx:zero_()",
  copy_ = "x = crater.zeros(2, 3)\nx:copy_(crater.tensor({1, 2, 3}))",
  masked_fill_ = "x = crater.zeros(3)\nx:masked_fill_(crater.tensor({1, 0, 1}), 7)  -- 7 0 7",
  uniform_ = "x = crater.empty(3):uniform_(-1, 1)",
  normal_ = "crater.manual_seed(0)\nx = crater.empty(3):normal_(0, 0.1)",
}
local var_options = { { "unbiased", "true", "divide by n - 1" }, { "correction", "1", "divide by n - correction" },
                      { "keepdim", "false", "keep the reduced dimension with size 1" } }
local options = { var = var_options, std = var_options }

-- The op table's rows: crater.<name>, x:<name>() and the in-place x:<name>_().
local dtype_note = {
  int = "", ints = " (int64 stays int64 when the scalars are whole numbers)",
  float = " (int64 computes in float32)", noint = " (int64 tensors are refused, as in PyTorch)",
}
-- a doc line starts a sentence: "the sum ..." -> "The sum ...", but code stays ("x + w * ...")
local function upper (s) return s:match("^%l+ ") and not s:match("^x ") and s:sub(1, 1):upper() .. s:sub(2) or s end
-- crater.name(x, args) / x:name(args) as the row's kind says; views read best as methods
local function signature (op)
  local args = op.args
  if op.kind == "function" then return "crater." .. op.name .. "(" .. args .. ")" end
  local method = "x:" .. op.name .. "(" .. args .. ")"
  if op.kind == "method" or op.family == "shape" then return method end
  return "crater." .. op.name .. "(x" .. (args ~= "" and ", " .. args or "") .. ") / " .. method
end
for _, op in ipairs(core.internal.ops) do
  local args = op.args
  if op.family == "unary" then
    doc[op.name] = d(signature(op),
      "Elementwise " .. op.doc .. "; returns a new tensor of x's shape and dtype" .. dtype_note[op.dtype] .. ".",
      "x = crater.tensor({0.5, 1, 2})\ny = x:" .. op.name .. "()")
  elseif op.dtype == "compare" then
    doc[op.name] = d(signature(op),
      "Elementwise " .. op.doc .. " with broadcasting: an int64 tensor of 0s and 1s (crater has no bool dtype).",
      "x = crater.tensor({1, 2, 3})\nm = x:" .. op.name .. "(2)")
  elseif op.family == "binary" then
    doc[op.name] = d(signature(op),
      "Elementwise " .. op.doc .. ", with broadcasting and dtype promotion" .. dtype_note[op.dtype]
        .. "; y may be a tensor or a number.",
      "x = crater.ones(2, 3)\ny = x:" .. op.name .. "(crater.tensor({1, 2, 3}))")
  elseif op.kind ~= "internal" then
    local desc = upper(op.doc) .. (op.name:match("_$")
      and " in place and returns x. Refuses a leaf that requires grad outside crater.no_grad." or ".")
    local e = doc[op.name]
    if e then   -- a second row of the name (where's method form): one entry for both
      e.sig, e.desc = e.sig .. " / " .. signature(op), e.desc .. " " .. desc
    else
      doc[op.name] = d(signature(op), desc, assert(examples[op.name], op.name), options[op.name])
    end
  end
  if op.inplace then
    doc[op.name .. "_"] = inplace(op.name .. "_", op.inplace > 0 and args or "", "Replaces x by " .. op.doc)
  end
end

return doc
