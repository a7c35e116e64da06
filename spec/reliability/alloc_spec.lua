-- Allocation-failure sweep: every constructor, a representative set of ops, backward,
-- every optimizer's step, crater.save and crater.load run with the n-th C allocation
-- failing (n = 0, 1, 2, ... until the call succeeds), once and from then on.  Each
-- failure must be a Lua error saying "not enough memory", leave the arguments as they
-- were, and give back every byte (memcheck.sweep checks the last two).
local crater = require "crater"
local memcheck = require "spec.helpers.memcheck"

local d = function(v, rg) return crater.tensor(v, {dtype = "float64", requires_grad = rg or nil}) end

-- a snapshot of a tensor's values and version-visible facts, to compare after a failure
local function values(t)
  return {shape = t:shape(), v = t:totable(), dtype = t:dtype(), grad_fn = t.grad_fn}
end

-- equality of nested tables of numbers, bit for bit (NaN equals NaN)
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b or (a ~= a and b ~= b) end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function assert_same(a, b, what)
  if not same(a, b) then error(what .. " changed", 2) end
end

-- sweep(name, setup, call): call's result, when it succeeds, equals the result of the
-- same call made without injection; a failed call leaves every tensor argument unchanged
local function sweep_op(setup, call)
  local expect = values(call(setup()))
  local function remember(args)
    local snap = {}
    for k, v in pairs(args) do if crater.is_tensor(v) then snap[k] = values(v) end end
    return snap
  end
  local before
  local n = memcheck.sweep(function()
    local args = setup()
    before = remember(args)
    return args
  end, call, function(_, res)
    assert_same(expect, values(res), "the result")
  end, function(args)
    for k, snap in pairs(before) do assert_same(snap, values(args[k]), "argument " .. tostring(k)) end
  end)
  assert.is_true(n >= 1, "the call allocates nothing, so the sweep tested nothing")
end

describe("allocation failures", function()
  memcheck.hooks(before_each, after_each)

  describe("in constructors", function()
    local ctors = {
      tensor = function() return crater.tensor({{1, 2, 3}, {4, 5, 6}}) end,
      tensor_int64 = function() return crater.tensor({1, 2}, {dtype = "int64"}) end,
      zeros = function() return crater.zeros(3, 4) end,
      ones = function() return crater.ones({2, 5}, {dtype = "float64"}) end,
      full = function() return crater.full({2, 2}, 7) end,
      empty = function() return crater.empty(3):zero_() end,
      eye = function() return crater.eye(4) end,
      arange = function() return crater.arange(1, 10, 2) end,
      linspace = function() return crater.linspace(0, 1, 5) end,
      rand = function() crater.manual_seed(1); return crater.rand(3, 3) end,
      randn = function() crater.manual_seed(1); return crater.randn(3, 3) end,
      randint = function() crater.manual_seed(1); return crater.randint(0, 9, {4}) end,
      zeros_like = function() return crater.zeros_like(crater.ones(2, 3)) end,
      ones_like = function() return crater.ones_like(crater.zeros(2, 3)) end,
      randn_like = function() crater.manual_seed(2); return crater.randn_like(crater.zeros(2, 3)) end,
      full_like = function() return crater.full_like(crater.zeros(2), 5) end,
      scalar = function() return crater.tensor(3.5) end,
    }
    for name, make in pairs(ctors) do
      it(name, function() sweep_op(function() return {} end, make) end)
    end
  end)

  describe("in ops", function()
    local function two() return {a = d({{1, -2, 3}, {4, 5, -6}}), b = d({10, 20, 30})} end
    local ops = {
      unary_exp = {two, function(x) return x.a:exp() end},
      unary_strided = {two, function(x) return x.a:t():sigmoid() end},
      neg_operator = {two, function(x) return -x.a end},
      binary_broadcast = {two, function(x) return x.a + x.b end},
      binary_scalar = {two, function(x) return x.a * 3 end},
      pow = {two, function(x) return x.a:pow(2) end},
      where = {two, function(x) return crater.where(x.a:gt(0), x.a, x.b) end},
      clamp = {two, function(x) return x.a:clamp(-1, 2) end},
      sum_all = {two, function(x) return x.a:sum() end},
      sum_dim = {two, function(x) return x.a:sum(2, true) end},
      mean_dim = {two, function(x) return x.a:mean(1) end},
      var = {two, function(x) return x.a:var(2) end},
      max_dim = {two, function(x) return (x.a:max(2)) end},
      argmax = {two, function(x) return x.a:argmax(2) end},
      norm = {two, function(x) return x.a:norm() end},
      matmul = {two, function(x) return x.a:matmul(x.a:t()) end},
      matvec = {two, function(x) return x.a:matmul(x.b) end},
      bmm = {function() return {a = d({{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}})} end,
             function(x) return crater.bmm(x.a, x.a) end},
      view = {two, function(x) return x.a:view(3, 2) end},
      reshape_strided = {two, function(x) return x.a:t():reshape(6) end},
      transpose_contiguous = {two, function(x) return x.a:transpose(1, 2):contiguous() end},
      narrow = {two, function(x) return x.a:narrow(2, 2, 2) end},
      select = {two, function(x) return x.a:select(1, 2) end},
      expand = {two, function(x) return x.b:unsqueeze(1):expand(3, 3) end},
      index = {two, function(x) return x.a[2] end},
      cat = {two, function(x) return crater.cat({x.a, x.a * 2}, 1) end},
      stack = {two, function(x) return crater.stack({x.b, x.b}, 1) end},
      gather = {function() local a = two(); a.i = crater.tensor({{1, 3}, {2, 2}}, {dtype = "int64"}); return a end,
                function(x) return x.a:gather(2, x.i) end},
      index_select = {function() local a = two(); a.i = crater.tensor({3, 1}, {dtype = "int64"}); return a end,
                      function(x) return x.a:index_select(2, x.i) end},
      softmax = {two, function(x) return x.a:softmax(2) end},
      log_softmax = {two, function(x) return x.a:log_softmax(1) end},
      logsumexp = {two, function(x) return x.a:logsumexp(2) end},
      to_dtype = {two, function(x) return x.a:to("float32") end},
      clone = {two, function(x) return x.a:clone() end},
      masked_fill = {two, function(x) return x.a:masked_fill(x.a:lt(0), 0) end},
    }
    for name, case in pairs(ops) do
      it(name, function() sweep_op(case[1], case[2]) end)
    end
  end)

  describe("in in-place ops (a failure leaves the tensor as it was)", function()
    -- a is a non-leaf that requires grad, so each in-place op records a graph node (and
    -- allocates); b is float32, so reading it into float64 allocates a converted copy
    local function two()
      return {a = d({{1, -2, 3}, {4, 5, -6}}, true) * 1, b = crater.tensor({10, 20, 30})}
    end
    local ops = {
      add_ = function(x) return x.a:add_(x.b, 2) end,
      mul_scalar_ = function(x) return x.a:mul_(3) end,
      copy_broadcast_ = function(x) return x.a:copy_(x.b) end,
      addcmul_ = function(x) return x.a:addcmul_(x.b, x.b, 0.5) end,
      addcdiv_ = function(x) return x.a:addcdiv_(x.b, x.b:sqrt(), 0.5) end,
      lerp_ = function(x) return x.a:lerp_(x.b, 0.25) end,
      clamp_ = function(x) return x.a:clamp_(0, 4) end,
      sqrt_ = function(x) return x.a:sqrt_() end,
      exp_ = function(x) return x.a:exp_() end,
      masked_fill_ = function(x) return x.a:masked_fill_(x.a:lt(0), 0) end,
      mixed_dtype_add_ = function(x) return crater.no_grad(function() return x.a:detach():add_(x.b) end) end,
      setindex = function(x) crater.no_grad(function() x.a[2] = x.b end); return x.a end,
      transposed_add_ = function(x)
        crater.no_grad(function() x.a:t():add_(x.b:unsqueeze(2)) end); return x.a
      end,
    }
    for name, call in pairs(ops) do
      it(name, function() sweep_op(two, call) end)
    end
  end)

  describe("in backward", function()
    local function setup()
      local x = d({{1, -2, 3}, {4, 5, -6}}, true)
      local w = d({{0.5, -1}, {2, 0.25}, {-0.75, 1}}, true)
      return {x = x, w = w}
    end
    local function loss(x, w) return (x:matmul(w):tanh() * x:sum(2, true)):softmax(2):log():mean() end
    it("loss:backward() leaves no .grad half-written", function()
      local expect_x, expect_w
      do
        local a = setup()
        loss(a.x, a.w):backward()
        expect_x, expect_w = a.x.grad:totable(), a.w.grad:totable()
      end
      memcheck.sweep(function()
        local a = setup()
        a.l = loss(a.x, a.w)
        return a
      end, function(a) a.l:backward() end, function(a)
        assert_same(expect_x, a.x.grad:totable(), "x.grad")
        assert_same(expect_w, a.w.grad:totable(), "w.grad")
      end, function(a)
        assert.is_nil(a.x.grad)
        assert.is_nil(a.w.grad)
      end)
    end)
    it("accumulating into an existing .grad", function()
      local expect
      do
        local a = setup()
        loss(a.x, a.w):backward(); loss(a.x, a.w):backward()
        expect = a.w.grad:totable()
      end
      local first
      memcheck.sweep(function()
        local a = setup()
        loss(a.x, a.w):backward()
        first = a.w.grad:totable()
        a.l = loss(a.x, a.w)
        return a
      end, function(a) a.l:backward() end, function(a)
        assert_same(expect, a.w.grad:totable(), "w.grad")
      end, function(a)
        assert_same(first, a.w.grad:totable(), "w.grad")
      end)
    end)
    it("crater.grad with create_graph", function()
      local expect
      do
        local a = setup()
        expect = crater.grad({loss(a.x, a.w)}, {a.w}, {create_graph = true})[1]:sum():item()
      end
      memcheck.sweep(function()
        local a = setup()
        a.l = loss(a.x, a.w)
        return a
      end, function(a)
        return crater.grad({a.l}, {a.w}, {create_graph = true})[1]:sum():item()
      end, function(_, r) assert.equal(expect, r) end)
    end)
  end)

  -- a parameter and the closure of a weighted quadratic loss on it, for the optimizers
  local function quadratic()
    local p = d({{1, -2}, {3, 0.5}}, true)
    local function closure()
      p.grad = nil
      local l = ((p - 1):pow(2) * d({{1, 2}, {3, 4}})):sum()
      l:backward()
      return l
    end
    return p, closure
  end

  describe("in optimizer steps (a failed step changes no parameter and no state)", function()
    local optims = {
      SGD = {lr = 0.1, momentum = 0.9, nesterov = true},
      Adam = {lr = 0.1, amsgrad = true},
      AdamW = {lr = 0.1},
      Adagrad = {lr = 0.1},
      RMSprop = {lr = 0.1, centered = true, momentum = 0.5},
      Adadelta = {},
      Adamax = {lr = 0.1},
      NAdam = {lr = 0.1},
      RAdam = {lr = 0.1},
      ASGD = {lr = 0.1},
      Rprop = {lr = 0.1},
      Lion = {lr = 0.1}, LAMB = {lr = 0.1, weight_decay = 0.1}, LARS = {lr = 1, weight_decay = 0.1},
      AdaBelief = {lr = 0.1, amsgrad = true}, Adan = {lr = 0.1, max_grad_norm = 1}, Prodigy = {},
      Adafactor = {beta1 = 0.9}, AdamWScheduleFree = {lr = 0.1},
    }
    local problem = quadratic
    for name, o in pairs(optims) do
      it(name .. " (first and second step)", function()
        -- reference: two clean steps
        local expect = {}
        do
          local p, closure = problem()
          local opt = crater.optim[name]({p}, o)
          if opt.train then opt:train() end
          for k = 1, 2 do closure(); opt:step(closure); expect[k] = p:totable() end
        end
        for k = 1, 2 do
          local before
          memcheck.sweep(function()
            local p, closure = problem()
            local opt = crater.optim[name]({p}, o)
            if opt.train then opt:train() end
            for _ = 1, k - 1 do closure(); opt:step(closure) end
            closure()
            before = p:totable()
            return {p = p, opt = opt, closure = closure}
          end, function(a) a.opt:step(a.closure) end, function(a)
            assert_same(expect[k], a.p:totable(), "the parameter after a successful step")
          end, function(a)
            assert_same(before, a.p:totable(), "the parameter")
            -- the state survived the failure: the retried step gives the clean result
            a.closure()
            a.opt:step(a.closure)
            assert_same(expect[k], a.p:totable(), "the parameter after a retried step")
          end)
        end
      end)
    end
  end)

  -- L-BFGS moves the parameters once per inner iteration, so a failure part-way through a
  -- step cannot leave them untouched; it must still fail cleanly and keep a usable state
  it("LBFGS fails cleanly and can step again", function()
    local function problem()
      local p, closure = quadratic()
      return {p = p, closure = closure, opt = crater.optim.LBFGS({p}, {lr = 0.5, max_iter = 3})}
    end
    memcheck.sweep(problem, function(a) a.opt:step(a.closure) end, nil, function(a)
      for _ = 1, 3 do a.opt:step(a.closure) end
      assert.is_true(((a.p - 1):abs():max():item()) < 1)
    end)
  end)

  describe("in crater.save and crater.load", function()
    local path = os.tmpname()
    teardown(function() os.remove(path) end)
    local function value()
      return {w = d({{1, 2}, {3, 4}}), b = crater.tensor({5, 6}), i = crater.tensor({7}, {dtype = "int64"}),
              meta = {epoch = 3, name = "x"}}
    end
    it("save: a failure leaves the previous file", function()
      crater.save(path, {old = true})
      local old = io.open(path, "rb"):read("a")
      local saved = crater.core.internal.write_atomic
      memcheck.sweep(function() return {v = value()} end, function(a) crater.save(path, a.v) end,
        function() assert.same({5, 6}, crater.load(path).b:totable()) end,
        function() assert.equal(old, io.open(path, "rb"):read("a")) end)
      assert.equal(saved, crater.core.internal.write_atomic)
    end)
    it("load", function()
      crater.save(path, value())
      memcheck.sweep(function() return {} end, function() return crater.load(path) end, function(_, v)
        assert.same({{1, 2}, {3, 4}}, v.w:totable())
        assert.same({7}, v.i:totable())
        assert.same({epoch = 3, name = "x"}, v.meta)
      end)
    end)
  end)

  describe("in the foreign-file readers and writers", function()
    local fx = require "spec.fixtures.interop"
    local FX = "spec/fixtures/interop"
    local function flat(t)
      local out, v = {}, t:contiguous():view(-1)
      for i = 1, t:numel() do out[i] = v:get(i) end
      return out
    end
    it("safetensors.load (every dtype, F16/BF16 converted)", function()
      memcheck.sweep(function() return {} end, function() return crater.safetensors.load(FX .. "/dtypes.safetensors") end,
        function(_, v) for k, want in pairs(fx.dtypes) do assert.same(want, v[k]:totable(), k) end end)
    end)
    it("npy.load of a Fortran-order file (decoded, then transposed)", function()
      memcheck.sweep(function() return {} end, function() return crater.npy.load(FX .. "/f8_fortran.npy") end,
        function(_, v) assert.same(fx.npy["f8_fortran.npy"].values, flat(v)) end)
    end)
    it("npz.load of a deflated archive", function()
      memcheck.sweep(function() return {} end, function() return crater.npz.load(FX .. "/deflated.npz") end,
        function(_, v) for k, want in pairs(fx.npz) do assert.same(want.values, flat(v[k]), k) end end)
    end)
    it("safetensors.save and npz.save: a failure leaves the previous file", function()
      local path = os.tmpname()
      for _, save in ipairs({function(t) crater.safetensors.save(path, t) end,
                             function(t) crater.npz.save(path, t, {compress = true}) end}) do
        save({old = crater.zeros(1)})
        local old = io.open(path, "rb"):read("a")
        local n = memcheck.sweep(function()
          save({old = crater.zeros(1)})   -- the previous file, again before each attempt
          return {w = crater.tensor({{1, 2}, {3, 4}}):t()}
        end, function(a) save(a) end, nil, function() assert.equal(old, io.open(path, "rb"):read("a")) end)
        assert.is_true(n > 0)   -- the transposed view is copied in C: there is an allocation to fail
      end
      os.remove(path)
    end)
  end)
end)
