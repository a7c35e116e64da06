-- crater.fuse: a traced elementwise function run as one program gives, bit for bit, what
-- the same function gives on real tensors op by op; and every refusal of issue #19.
local crater = require "crater"
local core = require "crater.core"
local fuse = crater.fuse

-- the exact bits of every element (float32 widens to double exactly)
local function bits(t)
  local out, flat = {}, t:contiguous():view(-1):totable()
  for i, v in ipairs(flat) do out[i] = string.pack("n", v) end
  return out
end

local function assert_bitwise(a, b, what)
  assert.equal(a:dtype(), b:dtype(), what)
  assert.same(a:shape(), b:shape(), what)
  if a:numel() > 10000 then   -- no NaN in the big ones: equal values, and zeros of equal sign
    local n = a:numel()
    assert.equal(n, crater.eq(a, b):sum():item(), what)
    assert.equal(n, crater.eq(1 / a, 1 / b):sum():item(), what)
    return
  end
  local x, y = bits(a), bits(b)
  for i = 1, #x do
    if x[i] ~= y[i] then
      error(string.format("%s: element %d differs: %.17g (fused) vs %.17g (op by op)", what or "",
        i, string.unpack("n", x[i]), string.unpack("n", y[i])), 2)
    end
  end
end

-- inputs with the awkward values in them: zeros of both signs, ones, large, NaN, inf
local SPECIAL = {0, -0.0, 1, -1, 2, 3, 0.5, -0.5, 1e-3, 30, -30, 1 / 0, -1 / 0, 0 / 0, 88, -88, 1e-30}
local function input(n, dtype, seed, positive)
  crater.manual_seed(seed)
  local x = crater.randn(n, {dtype = dtype}) * 2
  for i, v in ipairs(SPECIAL) do
    if i <= n then x[i] = positive and math.abs(v) or v end
  end
  if positive then x = x:abs() end
  return x
end

-- Runs fn fused (a new output per returned tensor) and op by op; compares the bits.
local function check(what, fn, args)
  local fused = fuse(fn, {name = what})
  local got = table.pack(crater.no_grad(fused, table.unpack(args, 1, args.n or #args)))
  local want = table.pack(crater.no_grad(fn, table.unpack(args, 1, args.n or #args)))
  assert.equal(want.n, got.n, what)
  for i = 1, want.n do
    if type(want[i]) == "number" then
      assert.equal(string.pack("n", want[i]), string.pack("n", got[i]), what)
    else
      assert_bitwise(got[i], want[i], what .. " result " .. i)
    end
  end
end

-- One or more cases per op of the VM's list: the spec fails when an op has none.
local N = 300
local CASES = {
  neg = function(x) return -x, x:neg(), crater.neg(x) end,
  abs = function(x) return x:abs() end, sign = function(x) return x:sign() end,
  exp = function(x) return x:exp() end, log = function(_, _, p) return p:log() end,
  log1p = function(_, _, p) return p:log1p() end, sqrt = function(_, _, p) return p:sqrt(), crater.sqrt(p) end,
  rsqrt = function(_, _, p) return p:rsqrt() end, sin = function(x) return x:sin() end,
  cos = function(x) return x:cos() end, tanh = function(x) return x:tanh() end,
  sigmoid = function(x) return x:sigmoid(), crater.sigmoid(x) end, relu = function(x) return x:relu() end,
  erf = function(x) return x:erf() end, gelu = function(x) return x:gelu() end,
  leaky_relu = function(x, _, _, s) return x:leaky_relu(), x:leaky_relu(s), x:leaky_relu(0.3) end,
  softplus = function(x, _, _, s) return x:softplus(), x:softplus(s, 4), x:softplus(2, 5) end,
  clamp = function(x, _, _, s) return x:clamp(-0.5, 0.5), x:clamp(nil, s), x:clamp(-s), crater.clamp(x, -1, 1) end,
  pow_scalar = function(x, _, p, s) return x ^ 2, x ^ 3, p ^ 0.5, p ^ s, x:pow(2) end,
  rpow_scalar = function(x, _, _, s) return 2 ^ x, s ^ x, 0.5 ^ x end,
  add_scalar = function(x, _, _, s) return x + 3, 3 + x, x + s, x - s, x - 0.1, x:add(s) end,
  mul_scalar = function(x, _, _, s) return x * 3, 0.1 * x, s * x, x * s, x:mul(0.7) end,
  div_scalar = function(x, _, _, s) return x / 3, x / s, x:div(0.1) end,
  rsub_scalar = function(x, _, _, s) return 1 - x, s - x end,
  rdiv_scalar = function(x, _, _, s) return 1 / x, s / x end,
  add = function(x, y) return x + y, x:add(y), x:add(y, 0.3), crater.add(x, y) end,
  sub = function(x, y) return x - y, x:sub(y, 2) end,
  mul = function(x, y) return x * y, x * x end, div = function(x, y) return x / y end,
  pow = function(x, y, p) return p ^ y, x:pow(y), p:pow(x) end,
  minimum = function(x, y) return x:minimum(y), crater.minimum(x, y) end,
  maximum = function(x, y) return x:maximum(y), crater.maximum(y, x) end,
  logaddexp = function(x, y) return x:logaddexp(y), crater.logaddexp(y, x), x:logaddexp(0), x:logaddexp(x) end,
  eq = function(x, y) return x:eq(y) * y, (x * 0):eq(0) * x end,
  ne = function(x, y) return x:ne(y) * y end, lt = function(x, y) return x:lt(y) * y + x end,
  le = function(x, y) return x:le(0) * y end, gt = function(x, y) return y * x:gt(y) end,
  ge = function(x, y) return x:ge(y) * x, x:le(y):mul(y) end,
  where = function(x, y) return crater.where(x:gt(0), x, y), crater.where(x:lt(y), 0.5, y), x:where(y:gt(x), -1) end,
  full = function(x) return x:minimum(0.5), x:maximum(-1) end,
  copy = function(_, y) return y end,
}

describe("crater.fuse: every op gives the op-by-op bits", function()
  it("has a case for every op of the VM's list", function()
    for name in pairs(core.internal.fuse_ops) do
      assert.is_function(CASES[name], "no spec case for fused op " .. name)
    end
  end)
  for _, dtype in ipairs {"float32", "float64"} do
    for name, fn in pairs(CASES) do
      it(name .. " in " .. dtype, function()
        local x, y, p = input(N, dtype, 1), input(N, dtype, 2), input(N, dtype, 3, true)
        for _, s in ipairs {0.7, 2, 3, -1.5} do   -- one program: s changes, the branch of ^ too
          check(name, function(a, b, c, d) return fn(a, b, c, d) end, {x, y, p, s, n = 4})
        end
      end)
    end
  end
end)

-- One case per superinstruction (fuse.h's CT_FUSE_SUPER), written as its pattern: the
-- first result must compile to it.  x, y: any values; p: positive; s: a number.
local SUPER_CASES = {
  adam_p = function(x, y, p, s) return x + s * y / (p:sqrt() / 3 + 1e-8) end,
  adamd_p = function(x, y, p, s) return x * 0.99 + s * y / (p:sqrt() / s + 1e-8) end,
  rectd_p = function(x, y, p, s) return x * s + 0.1 * y / (p:sqrt() + 1e-3) end,
  axpbyzc = function(x, y, p, s) return 0.9 * x + 0.1 * y * y + 1e-3, x * 0.9 + (s * y) * p + s end,
  axpbyz = function(x, y, p, s) return s * x + (1 - s) * y * p end,
  axpby = function(x, y, _, s) return 0.9 * x + s * y, 0.5 * y + 0.5 * x end,
  lerp = function(x, y, _, s) return x:lerp(y, s), y:lerp(x, 0.1) end,
  xpydz = function(x, y, p, s) return x + s * y / p end,
  xmydz = function(x, y, p, s) return x - s * y / p end,
  sqda = function(_, _, p, s) return p:sqrt() / s + 1e-8 end,
  sqa = function(_, _, p, s) return p:sqrt() + s end,
  axpy = function(x, y, _, s) return x + s * y, x:add(y, s) end,
  xmay = function(x, y, _, s) return x - s * y, x - y * 3 end,
}

-- The opcodes of the programs that fuse_compile is given while fn runs.
local function compiled_ops(fn)
  local names, seen, orig = {}, {}, core.internal.fuse_compile
  for name, info in pairs(core.internal.fuse_ops) do names[info[1]] = name end
  for name, info in pairs(core.internal.fuse_super) do names[info[1]] = name end
  core.internal.fuse_compile = function(spec)
    for k = 1, #spec.ins, 9 do seen[names[spec.ins[k]]] = true end
    return orig(spec)
  end
  local ok, err = pcall(fn)
  core.internal.fuse_compile = orig
  assert(ok, err)
  return seen
end

describe("crater.fuse: superinstructions give the op-by-op bits", function()
  it("has a case for every superinstruction", function()
    for name in pairs(core.internal.fuse_super) do
      assert.is_function(SUPER_CASES[name], "no spec case for superinstruction " .. name)
    end
  end)
  for _, dtype in ipairs {"float32", "float64"} do
    for name, fn in pairs(SUPER_CASES) do
      it(name .. " in " .. dtype .. ", new, written in place, and with a written argument passed twice", function()
        for _, n in ipairs {N, 1300} do   -- not multiples of the block (512 or 256 elements)
          local x, y, p = input(n, dtype, 1), input(n, dtype, 2), input(n, dtype, 3, true)
          local ops = compiled_ops(function()
            check(name, function(a, b, c, d) return fn(a, b, c, d) end, {x, y, p, 0.7, n = 4})
          end)
          assert.is_true(ops[name], name .. " was not used")
          for w = 1, 3 do   -- the first result written into argument w, the others new
            local args = {x:clone(), y:clone(), p:clone(), 0.7}
            local want = table.pack(fn(x, y, p, 0.7))
            local fused = fuse(function(a, b, c, d) return fn(a, b, c, d) end, {writes = {w}})
            local got = table.pack(fused(table.unpack(args)))
            assert.equal(args[w], got[1])
            for k = 1, want.n do assert_bitwise(got[k], want[k], name .. " written into #" .. w) end
          end
          -- x written, and also passed as y: y must keep its old elements to the end
          local a = x:clone()
          local want = table.pack(fn(x, x, p, 0.7))
          local fused = fuse(function(u, v, c, d) return fn(u, v, c, d) end, {writes = {1}})
          local got = table.pack(fused(a, a, p, 0.7))
          for k = 1, want.n do assert_bitwise(got[k], want[k], name .. " with x passed twice") end
        end
      end)
    end
  end
  it("an argument written in place and also passed as another keeps its old elements there", function()
    for _, dtype in ipairs {"float32", "float64"} do
      local x = input(N, dtype, 1)
      local fn = function(m, g) return 0.9 * m + 0.1 * g, g * 2, fuse.sum(g) end
      local f = fuse(fn, {writes = {"m"}})
      local want = table.pack(fn(x, x))
      local a = x:clone()
      local got = table.pack(f(a, a))
      assert_bitwise(got[1], want[1], "m")
      assert_bitwise(got[2], want[2], "g * 2 reads the old m")
      assert.equal(string.pack("n", fuse.sum(x)), string.pack("n", got[3]))
    end
  end)
  it("a value used twice is not absorbed into a superinstruction", function()
    local x, y = input(N, "float32", 1), input(N, "float32", 2)
    local ops = compiled_ops(function()
      check("shared", function(a, b) local t = 0.3 * b; return a + t, t * 2 end, {x, y})
    end)
    assert.is_nil(ops.axpy)
  end)
  it("a new output of a written argument keeps its old elements; a later read of it too", function()
    local f = fuse(function(p, g) return p + 0.5 * g, p, p * 2 end, {writes = {"p"}})
    local p, g = crater.tensor({1, 2, 3}), crater.tensor({2, 4, 6})
    local _, old, twice = f(p, g)
    assert.same({2, 4, 6}, p:totable())
    assert.same({1, 2, 3}, old:totable())
    assert.same({2, 4, 6}, twice:totable())
  end)
end)

local updates = dofile("spec/fuse/updates.lua")
local adam_fn, adabelief_fn, lion_fn = updates.adam, updates.adabelief, updates.lion

-- Runs a written-in-place update `steps` times both ways and compares every written tensor.
local function check_update(fn, writes, make_args, steps, threads)
  local fused = fuse(fn, {writes = writes})
  local index = {}
  for i = 1, debug.getinfo(fn, "u").nparams do index[debug.getlocal(fn, i)] = i end
  local w = {}
  for k, name in ipairs(writes) do w[k] = index[name] or name end
  writes = w
  local a, b = make_args(), make_args()
  local before = crater.get_num_threads()
  crater.set_num_threads(threads or 1)
  for t = 1, steps do
    local function scal(args)
      for i = 1, #args do
        if type(args[i]) == "function" then args[i] = args[i](t) end
      end
      return args
    end
    local fa, fb = scal(a(t)), scal(b(t))
    crater.no_grad(fused, table.unpack(fa))
    local res = table.pack(crater.no_grad(fn, table.unpack(fb)))
    for k = 1, res.n do fb[writes[k]]:copy_(res[k]) end
  end
  crater.set_num_threads(before)
  local fa, fb = a(steps), b(steps)
  for k = 1, #writes do assert_bitwise(fa[writes[k]], fb[writes[k]], "written #" .. k) end
end

local function adam_args(n, dtype)
  return function()
    crater.manual_seed(5)
    local p, m, v = crater.randn(n, {dtype = dtype}), crater.zeros(n, {dtype = dtype}), crater.zeros(n, {dtype = dtype})
    local g = crater.randn(n, {dtype = dtype})
    return function()
      return {p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, function(t) return 1 - 0.9 ^ t end,
        function(t) return 1 - 0.999 ^ t end}
    end
  end
end

describe("crater.fuse: optimizer updates", function()
  for _, dtype in ipairs {"float32", "float64"} do
    it("Adam, 3 steps, " .. dtype .. ", bitwise", function()
      check_update(adam_fn, {"p", "m", "v"}, adam_args(1001, dtype), 3)
    end)
    it("AdaBelief, 3 steps, " .. dtype .. ", bitwise", function()
      check_update(adabelief_fn, {"p", "m", "s"}, adam_args(777, dtype), 3)
    end)
    it("Lion, 3 steps, " .. dtype .. ", bitwise", function()
      check_update(lion_fn, {1, 3}, function()
        crater.manual_seed(9)
        local p, g, m = crater.randn(513, {dtype = dtype}), crater.randn(513, {dtype = dtype}), crater.randn(513, {dtype = dtype})
        return function() return {p, g, m, 1e-2, 0.1, 0.9, 0.99} end
      end, 3)
    end)
  end
  it("Adam over 1.2M elements on 2 threads gives the 1-thread bits", function()
    local n = 1200000
    check_update(adam_fn, {"p", "m", "v"}, adam_args(n, "float32"), 2, 2)
  end)
end)

describe("crater.fuse: sums, new outputs, the per-signature cache", function()
  it("fuse.sum outputs equal fuse.sum on real tensors, on 1 and 2 threads, near x:sum()", function()
    local fn = function(g, w) return fuse.sum(g * g), fuse.sum(w), g * w end
    local fused = fuse(fn)
    crater.manual_seed(3)
    local g, w = crater.randn(1200000), crater.randn(1200000)
    local before = crater.get_num_threads()
    crater.set_num_threads(1)
    local s1, s2, prod = fused(g, w)
    crater.set_num_threads(2)
    local t1, t2 = fused(g, w)
    crater.set_num_threads(before)
    local r1, r2, rprod = fn(g, w)
    assert.equal(r1, s1); assert.equal(r1, t1)
    assert.equal(r2, s2); assert.equal(r2, t2)
    assert_bitwise(prod, rprod)
    assert.is_true(math.abs(s1 - (g * g):sum():item()) < 1e-6 * math.abs(s1))   -- float32 sum's rounding
    assert.equal("number", type(s1))
  end)
  it("fuse.sum of a 2-element and of an empty tensor", function()
    local f = fuse(function(x) return fuse.sum(x * 2) end)
    assert.equal(6, f(crater.tensor({1, 2})))
    assert.equal(0, f(crater.zeros(0)))
  end)
  it("a forward-only activation returns a new tensor and leaves its input alone", function()
    local silu = fuse(function(x) return x * x:sigmoid() end)
    local x = input(100, "float32", 4)
    local x0 = x:clone()
    local y = silu(x)
    assert_bitwise(y, x * x:sigmoid())
    assert_bitwise(x, x0)
    assert.same({10, 10}, silu(x:view(10, 10)):shape())
  end)
  it("traces once per signature: a new lr does not retrace, a new dtype or a number does", function()
    local traces = 0
    local f = fuse(function(x, s) traces = traces + 1; return x * s end)
    local x = crater.ones(4)
    f(x, 2); f(x, 3); f(x, 0.5)
    assert.equal(1, traces)
    assert.same({0.5, 0.5, 0.5, 0.5}, f(x, 0.5):totable())
    f(x:to("float64"), 2)
    assert.equal(2, traces)
    f(x, x)
    assert.equal(3, traces)
    f(x, 4)
    assert.equal(3, traces)
  end)
  it("returns written tensors, new tensors and sums in the traced function's order", function()
    local f = fuse(function(p, g) return fuse.sum(g), p + g, g * 2 end, {writes = {"p"}})
    local p, g = crater.ones(3), crater.tensor({1, 2, 3})
    local s, q, r = f(p, g)
    assert.equal(6, s)
    assert.equal(p, q)   -- the argument itself, written
    assert.same({2, 3, 4}, p:totable())
    assert.same({2, 4, 6}, r:totable())
  end)
  it("a write may read itself through another argument of the same elements", function()
    local f = fuse(function(p, g) return p - g end, {writes = {"p"}})
    local p = crater.tensor({1, 2, 3})
    f(p, p)
    assert.same({0, 0, 0}, p:totable())
  end)
  it("swapped writes read the old values of both", function()
    local f = fuse(function(a, b) return b, a end, {writes = {"a", "b"}})
    local a, b = crater.tensor({1, 2}), crater.tensor({3, 4})
    f(a, b)
    assert.same({3, 4}, a:totable()); assert.same({1, 2}, b:totable())
  end)
  it("bumps the version of written tensors, so autograd sees the change", function()
    local f = fuse(function(p) return p * 2 end, {writes = {"p"}})
    local p = crater.ones(2)
    local v0 = core.internal.version(p)
    f(p)
    assert.is_true(core.internal.version(p) > v0)
  end)
end)

describe("crater.fuse: refusals", function()
  local function line_of(pattern)
    local src = debug.getinfo(1, "S").source:sub(2)
    local n = 0
    for l in io.lines(src) do
      n = n + 1
      if l:find(pattern, 1, true) then return n end
    end
  end
  local function refuses(msg, fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok)
    assert.truthy(tostring(err):find(msg, 1, true), "message was: " .. tostring(err))
  end

  it("a non-elementwise op names the op and the line of the traced function", function()
    local w = crater.ones(2, 2)
    local f = fuse(function(x) return x:matmul(x) end)   -- MATMUL_LINE
    refuses("matmul is not an elementwise op (line " .. line_of("MATMUL_LINE") .. " of the traced function",
      f, w)
    local g = fuse(function(x) return crater.matmul(x, x) end)   -- CMATMUL_LINE
    refuses("matmul is not an elementwise op (line " .. line_of("CMATMUL_LINE"), g, w)
    refuses("sum is a reduction: use crater.fuse.sum", fuse(function(x) return x:sum(1) end), w)
    refuses("sum is a reduction", fuse(function(x) return crater.sum(x) end), w)
    refuses("indexing (x[1]) is not an elementwise op", fuse(function(x) return x[1] end), w)
    refuses("view is not an elementwise op", fuse(function(x) return x:view(4) end), w)
    refuses("softmax is not an elementwise op", fuse(function(x) return x:softmax(1) end), w)
    refuses("in-place methods cannot be traced; write x = x:add(...)", fuse(function(x) return x:add_(1) end), w)
    refuses("'<' gives a Lua boolean", fuse(function(x) if x < 0 then return x end return x end), w)
    refuses("not an argument of the traced function", fuse(function(x) return x + w end), w)
    refuses("sqrt: 'lr' is a number here", fuse(function(x, lr) return x * lr:sqrt() end), w, 2)
  end)
  it("crater's functions work as before after a refused trace", function()
    pcall(fuse(function(x) return crater.matmul(x, x) end), crater.ones(2, 2))
    assert.same({{2, 2}, {2, 2}}, crater.matmul(crater.ones(2, 2), crater.ones(2, 2)):totable())
    assert.same({1, 2}, crater.abs(crater.tensor({-1, 2})):totable())
  end)
  it("the wrong count, shape, dtype or contiguity of arguments names the argument", function()
    local f = fuse(function(p, g, lr) return p - lr * g end, {writes = {"p"}, name = "sgd"})
    local p, g = crater.ones(4), crater.ones(4)
    refuses("sgd: expected 3 arguments, got 2", f, p, g)
    refuses("sgd: argument #2 'g' has shape {3} but argument #1 'p' has shape {4}", f, p, crater.ones(3), 0.1)
    refuses("sgd: argument #2 'g' is float64 but argument #1 'p' is float32", f, p, crater.ones(4, {dtype = "float64"}), 0.1)
    refuses("sgd: argument #1 'p' is an int64 tensor", f, crater.ones(4, {dtype = "int64"}), g, 0.1)
    local m = crater.ones(2, 2)
    refuses("sgd: argument #2 'g' is not contiguous", f, m, crater.ones(2, 2):t(), 0.1)
    refuses("sgd: argument #3 'lr' must be a tensor or a number, got string", f, p, g, "x")
  end)
  it("a writes entry that is a number or appears twice is refused", function()
    local f = fuse(function(p, lr) return p * lr end, {writes = {"lr"}})
    refuses("writes entry 1 'lr' is a number in this call", f, crater.ones(2), 0.5)
    refuses("fuse: writes entry 'p' appears twice", fuse, function(p) return p, p end, {writes = {"p", 1}})
    refuses("fuse: writes entry 1 (q) is not a parameter", fuse, function(p) return p end, {writes = {"q"}})
  end)
  it("written arguments that share memory with others are refused", function()
    local f = fuse(function(a, b) return a + 1, b + 1 end, {writes = {"a", "b"}})
    local a = crater.zeros(4)
    refuses("argument #1 'a' is written but shares memory with argument #2 'b' (also written)", f, a, a)
    local base = crater.zeros(5)
    local g = fuse(function(p, q) return p + q end, {writes = {"p"}})
    refuses("is written but shares memory with argument #2 'q'", g, base:narrow(1, 1, 4), base:narrow(1, 2, 4))
    assert.same({0, 0, 0, 0, 0}, base:totable())
  end)
  it("tensors that require grad in grad mode are refused; under no_grad they run", function()
    local f = fuse(function(p, g) return p - g end, {writes = {"p"}})
    local p = crater.ones(3, {requires_grad = true})
    refuses("argument #1 'p' requires grad while grad mode is on", f, p, crater.ones(3))
    refuses("use crater.no_grad", f, p, crater.ones(3))
    crater.no_grad(f, p, crater.ones(3))
    assert.same({0, 0, 0}, p:totable())
  end)
  it("a traced function that returns a non-tensor is refused", function()
    refuses("returns a number as result #1", fuse(function(x) return 1 end), crater.ones(2))
    refuses("returns a number as result #2", fuse(function(x, s) return x, s * 2 end), crater.ones(2), 3)
    refuses("returns nil as result #1", fuse(function(x) return nil end), crater.ones(2))
    refuses("returns nothing", fuse(function(x) end), crater.ones(2))
    refuses("result #1 is a comparison's 0/1", fuse(function(x) return x:gt(0) end), crater.ones(2))
    refuses("returns 1 tensor for 2 writes entries", fuse(function(a, b) return a end, {writes = {"a", "b"}}),
      crater.ones(2), crater.ones(2))
  end)
  it("errors leave every tensor unchanged", function()
    local f = fuse(function(p, g, m) return p - g, m + g end, {writes = {"p", "m"}})
    local p, g, m = crater.randn(8), crater.randn(8), crater.randn(8)
    local p0, g0, m0 = p:clone(), g:clone(), m:clone()
    pcall(f, p, g, crater.ones(7))
    pcall(f, p, g, m:to("float64"))
    pcall(f, p, g, 1)
    pcall(f, p, p, p)
    assert_bitwise(p, p0); assert_bitwise(g, g0); assert_bitwise(m, m0)
  end)
end)

describe("crater.core.internal.fuse_compile checks the program it is given", function()
  local ADD = core.internal.fuse_ops.add[1]
  local function prog(ins, outs, nregs)
    return {nargs = 2, nregs = nregs or 1, consts = {}, sins = {}, ins = ins, outs = outs or {0, 0, 0}}
  end
  it("accepts a well-formed program", function()
    assert.truthy(core.internal.fuse_compile(prog({ADD, 0, -1, -2, 0, 0, 0, 0, 0})))
  end)
  for what, p in pairs {
    ["an argument out of range"] = prog({ADD, 0, -1, -3, 0, 0, 0, 0, 0}),
    ["a register never written"] = prog({ADD, 0, -1, 1, 0, 0, 0, 0, 0}, nil, 2),
    ["a destination that is an operand"] = prog({ADD, 0, -1, -2, 0, 0, 0, 0, 0, ADD, 0, 0, -1, 0, 0, 0, 0, 0}),
    ["an unknown op"] = prog({999, 0, -1, -2, 0, 0, 0, 0, 0}),
    ["a write from an argument"] = prog({ADD, 0, -1, -2, 0, 0, 0, 0, 0}, {0, -1, 0}),
    ["a write to a missing argument"] = prog({ADD, 0, -1, -2, 0, 0, 0, 0, 0}, {0, 0, 5}),
    ["too many registers"] = prog({ADD, 0, -1, -2, 0, 0, 0, 0, 0}, nil, 33),
    ["a ragged list"] = prog({ADD, 0, -1, -2, 0, 0, 0, 0}),
  } do
    it("refuses " .. what, function()
      assert.has_error(function() core.internal.fuse_compile(p) end)
    end)
  end
end)
