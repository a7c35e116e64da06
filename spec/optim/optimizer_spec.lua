-- The Optimizer base: groups, defaults, live hyper-parameters, zero_grad, step(closure),
-- state, state_dict/load_state_dict, and the errors raised before anything changes.
local crater = require "crater"
local optim = crater.optim

local function param(values, dtype)
  return crater.tensor(values, {dtype = dtype or "float64", requires_grad = true})
end

-- Sets p.grad to the given values.
local function set_grad(p, values)
  p.grad = crater.tensor(values, {dtype = p:dtype()})
end

describe("Optimizer", function()
  it("fills each group's missing options from the defaults", function()
    local a, b = param({1}), param({2})
    local opt = optim.SGD({{params = {a}}, {params = {b}, lr = 0.5, momentum = 0.9}}, {lr = 0.1})
    assert.equal(0.1, opt.param_groups[1].lr)
    assert.equal(0, opt.param_groups[1].momentum)
    assert.equal(0.5, opt.param_groups[2].lr)
    assert.equal(0.9, opt.param_groups[2].momentum)
    assert.same({0.9, 0.999}, optim.Adam({a}).param_groups[1].betas)
  end)

  it("applies SGD to each group with its own lr (worked by hand)", function()
    local a, b = param({1, 2}), param({3})
    local opt = optim.SGD({{params = {a}}, {params = {b}, lr = 0.5}}, {lr = 0.1})
    set_grad(a, {10, -20}); set_grad(b, {4})
    opt:step()
    assert.same({0, 4}, a:totable())
    assert.same({1}, b:totable())
  end)

  it("reads hyper-parameters live: changing group.lr and group.betas takes effect", function()
    local a = param({1})
    local opt = optim.SGD({a}, {lr = 0.1})
    set_grad(a, {1}); opt:step()
    opt.param_groups[1].lr = 0.5
    opt:step()
    assert.near(0.4, a:get(1), 1e-15)
    -- Adam, first step with beta1 = 0: m = g, v = (1-b2) g^2 -> step = lr * sign(g) (eps tiny)
    local x = param({0})
    local adam = optim.Adam({x}, {lr = 1, eps = 0})
    adam.param_groups[1].betas = {0, 0.5}
    set_grad(x, {3}); adam:step()
    assert.near(-1, x:get(1), 1e-15)
  end)

  it("adds a param group with add_param_group", function()
    local a, b = param({1}), param({1})
    local opt = optim.SGD({a}, {lr = 0.1})
    local g = opt:add_param_group({params = {b}, lr = 1})
    assert.equal(2, #opt.param_groups)
    assert.equal(g, opt.param_groups[2])
    set_grad(b, {1}); opt:step()
    assert.same({0}, b:totable())
    assert.same({1}, a:totable())   -- no grad: skipped
  end)

  it("zero_grad sets grads to nil, or zeroes them with set_to_none = false", function()
    local a = param({1, 2})
    local opt = optim.SGD({a}, {lr = 0.1})
    set_grad(a, {1, 1})
    opt:zero_grad(false)
    assert.same({0, 0}, a.grad:totable())
    opt:zero_grad({set_to_none = false})
    assert.same({0, 0}, a.grad:totable())
    opt:zero_grad()
    assert.is_nil(a.grad)
  end)

  it("zero_grad refuses a group's params that are not all tensors, before clearing any", function()
    local a, b = param({1, 2}), param({3})
    local opt = optim.SGD({{params = {a}}, {params = {b}}}, {lr = 0.1})
    set_grad(a, {1, 1}); set_grad(b, {2})
    opt.param_groups[2].params[1] = 5
    assert.error_matches(function() opt:zero_grad() end,
      "zero_grad: params[1] of group 2 is not a tensor (number)", 1, true)
    assert.same({1, 1}, a.grad:totable())   -- group 1 came first and kept its grad
    opt.param_groups[2].params = {b, nil, b}
    assert.error_matches(function() opt:zero_grad() end,
      "zero_grad: params[2] of group 2 is not a tensor (nil)", 1, true)
    opt.param_groups[2] = "x"
    assert.error_matches(function() opt:zero_grad() end,
      "zero_grad: param group 2 is not a table (string)", 1, true)
    assert.same({1, 1}, a.grad:totable())
  end)

  -- zero_grad keeps the first 32 parameters it checks for its clearing pass; past that it
  -- reads the lists again
  for _, n in ipairs({3, 32, 33, 70}) do
    it("zero_grad clears all of " .. n .. " parameters in two groups, or none when one is bad", function()
      local ps = {}
      for i = 1, n do ps[i] = param({i}); set_grad(ps[i], {i}) end
      local g1, g2 = {}, {}
      for i = 1, n do table.insert(i % 2 == 1 and g1 or g2, ps[i]) end
      local opt = optim.SGD({{params = g1}, {params = g2}}, {lr = 0.1})
      g2 = opt.param_groups[2].params
      g2[#g2 + 1] = ps[1]   -- put in both groups after the check: cleared once, then found cleared
      local bad = #g2 + 1
      g2[bad] = "x"
      assert.error_matches(function() opt:zero_grad() end, "zero_grad: params[" .. bad ..
        "] of group 2 is not a tensor (string)", 1, true)
      for i = 1, n do assert.same({i}, ps[i].grad:totable()) end
      g2[bad] = nil
      opt:zero_grad()
      for i = 1, n do assert.is_nil(ps[i].grad) end
    end)
  end

  it("step(closure) runs the closure with grad enabled and returns its loss", function()
    local x = param({3})
    local opt = optim.SGD({x}, {lr = 0.25})
    local loss = crater.no_grad(function()
      return opt:step(function()
        opt:zero_grad()
        local l = (x * x):sum()
        l:backward()
        return l
      end)
    end)
    assert.equal(9, loss:item())
    assert.same({1.5}, x:totable())     -- 3 - 0.25 * 6
  end)

  it("keeps state per parameter, keyed by the tensor", function()
    local a, b = param({1}), param({2})
    local opt = optim.Adam({a, b})
    set_grad(a, {1}); opt:step()
    assert.equal(1, opt.state[a].step)
    assert.is_nil(opt.state[b])
    assert.equal(1 - 0.9, opt.state[a].exp_avg:get(1))
  end)

  it("leaves a zero-gradient coordinate of Adam unmoved and moves it with weight decay", function()
    local a = param({1, 1})
    local opt = optim.Adam({a}, {lr = 0.1})
    set_grad(a, {1, 0}); opt:step()
    assert.equal(1, a:get(2))
    local b = param({1, 1})
    local opt2 = optim.AdamW({b}, {lr = 0.1, weight_decay = 0.5})
    set_grad(b, {1, 0}); opt2:step()
    assert.near(0.95, b:get(2), 1e-15)
  end)

  -- sizes past the update kernels' grain of 2^15 elements a thread (src/optim/optim.h) and
  -- past the elementwise ops' 2^18, neither a multiple of the chunk alignment
  for _, n in ipairs({70001, 1200007}) do
    it("gives the same numbers with 1 and 2 threads (" .. n .. " elements, split)", function()
      local function run(threads)
        crater.set_num_threads(threads)
        crater.manual_seed(3)
        local p = crater.randn(n, {dtype = "float32", requires_grad = true})
        local opt = optim.Adam({p}, {lr = 0.01, amsgrad = true})
        for _ = 1, 2 do
          p.grad = crater.ones(n) - p:detach()
          opt:step()
        end
        return p
      end
      local before = crater.get_num_threads()
      local a, b = run(1), run(2)
      crater.set_num_threads(before)
      assert.is_true(crater.allclose(a, b, 0, 0))
      assert.is_false(crater.allclose(a, crater.randn(n), 0, 0))
    end)
  end

  it("propagates NaN gradients as PyTorch does (Adam: NaN; Rprop: unchanged)", function()
    local a = param({1, 1})
    local opt = optim.Adam({a})
    set_grad(a, {0 / 0, 1}); opt:step()
    assert.is_true(a:get(1) ~= a:get(1))
    assert.is_true(a:get(2) == a:get(2))
    local r = param({1, 1})
    local rp = optim.Rprop({r})
    set_grad(r, {0 / 0, 1}); rp:step()
    assert.equal(1, r:get(1))
    assert.near(0.99, r:get(2), 1e-15)
  end)
end)

describe("Optimizer errors, raised before any parameter changes", function()
  local function raises(fn, msg) assert.error_matches(fn, msg, 1, true) end

  it("rejects negative or NaN lr and eps", function()
    local a = param({1})
    raises(function() optim.Adam({a}, {lr = -1}) end, "Adam: lr must be a number >= 0, got -1")
    raises(function() optim.Adam({a}, {lr = 0 / 0}) end, "Adam: lr must be a number >= 0")
    raises(function() optim.RMSprop({a}, {eps = -1e-8}) end, "RMSprop: eps must be a number >= 0")
    raises(function() optim.SGD({a}) end, "SGD: lr is required")
  end)

  it("rejects betas outside [0, 1)", function()
    local a = param({1})
    raises(function() optim.Adam({a}, {betas = {1, 0.9}}) end, "Adam: betas[1] must be in [0, 1), got 1")
    raises(function() optim.NAdam({a}, {betas = {0.9, -0.1}}) end, "NAdam: betas[2] must be in [0, 1)")
  end)

  it("rejects unknown options and bad Rprop etas", function()
    local a = param({1})
    raises(function() optim.SGD({a}, {lr = 1, momentun = 0.9}) end, "SGD: unknown option 'momentun'")
    raises(function() optim.Rprop({a}, {etas = {1.5, 1.2}}) end, "Rprop: etas must satisfy 0 < etaminus < 1 < etaplus")
    raises(function() optim.SGD({a}, {lr = 1, nesterov = true}) end, "SGD: Nesterov momentum requires")
  end)

  it("rejects a param that does not require grad, or is listed twice", function()
    local a = param({1})
    raises(function() optim.SGD({crater.tensor({1})}, {lr = 1}) end, "SGD: params[1] does not require grad")
    raises(function() optim.SGD({a, a}, {lr = 1}) end, "SGD: params[2] appears more than once")
    local opt = optim.SGD({a}, {lr = 1})
    raises(function() opt:add_param_group({params = {a}}) end, "appears more than once")
    raises(function() optim.SGD({}, {lr = 1}) end, "SGD: got an empty parameter list")
  end)

  it("rejects a gradient of another dtype before updating any parameter", function()
    local a, b = param({1, 2}), param({3, 4})
    local opt = optim.SGD({a, b}, {lr = 1})
    set_grad(a, {1, 1})
    b.grad = crater.tensor({1, 1})   -- float32 (a grad of another shape is refused on assignment)
    raises(function() opt:step() end, "SGD: the gradient of params[2] is float32 but the parameter is float64")
    assert.same({1, 2}, a:totable())
  end)

  it("rejects a bad lr set on a group between steps, before updating", function()
    local a = param({1})
    local opt = optim.Adam({a})
    set_grad(a, {1})
    opt.param_groups[1].lr = -0.1
    raises(function() opt:step() end, "Adam: lr must be a number >= 0, got -0.1")
    assert.same({1}, a:totable())
  end)

  it("rejects betas changed in place between steps, before updating", function()
    local a = param({1})
    local opt = optim.Adam({a})
    set_grad(a, {1}); opt:step()
    local after_one = a:get(1)
    opt.param_groups[1].betas[2] = 1.5   -- the same table, one entry changed
    raises(function() opt:step() end, "Adam: betas[2] must be in [0, 1), got 1.5")
    assert.equal(after_one, a:get(1))
    opt.param_groups[1].betas[2] = 0.999
    opt:step()
    assert.is_true(a:get(1) < after_one)
  end)

  it("hands a subclass that overrides update the gradient tensor", function()
    local a = param({1, 2})
    local Seen = optim.Adam:extend("Seen", optim.Adam.defaults)
    local got
    function Seen:update(p, g, state, group)
      got = g
      optim.Adam.update(self, p, g, state, group)
    end
    local opt = Seen({a}, {lr = 0.5})
    set_grad(a, {3, -4})
    opt:step()
    assert.is_true(crater.is_tensor(got))
    assert.same({3, -4}, got:totable())
    -- Adam's first step moves each entry by lr against the sign of its gradient
    assert.near(0.5, a:get(1), 1e-7)
    assert.near(2.5, a:get(2), 1e-7)
  end)

  it("lets a kernel read the parameter's .grad when given true", function()
    local p = param({1, 2})
    local state = {step = 1, exp_avg = crater.zeros(2, {dtype = "float64"}), exp_avg_sq = crater.zeros(2, {dtype = "float64"})}
    local group = {lr = 0.1, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0, amsgrad = false, maximize = false}
    local opt = optim.Adam({param({0})})
    raises(function() crater.core.internal.adam_step(opt, p, true, state, group) end, "Adam: param has no grad (adam_step)")
    set_grad(p, {1, -1})
    crater.core.internal.adam_step(opt, p, true, state, group)
    assert.near(0.9, p:get(1), 1e-7)
    assert.near(2.1, p:get(2), 1e-7)
  end)

  it("reads a kernel's hyper-parameters by name, naming the optimizer and a bad field", function()
    local p = param({1, 2})
    local function args()
      return {step = 1, exp_avg = crater.zeros(2, {dtype = "float64"}), exp_avg_sq = crater.zeros(2, {dtype = "float64"})},
        {lr = 0.1, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0, amsgrad = false, maximize = false}
    end
    local opt = optim.AdamW({param({0})})
    local state, group = args()
    group.lr = nil
    raises(function() crater.core.internal.adam_step(opt, p, crater.tensor({1, 1}, {dtype = "float64"}), state, group) end,
      "AdamW: group.lr must be a number, got nil (adam_step)")
    state, group = args()
    group.betas = {0.9}
    raises(function() crater.core.internal.adam_step(opt, p, crater.tensor({1, 1}, {dtype = "float64"}), state, group) end,
      "AdamW: group.betas must be a list of 2 numbers, got table (adam_step)")
    state, group = args()
    group.amsgrad = 1
    raises(function() crater.core.internal.adam_step(opt, p, crater.tensor({1, 1}, {dtype = "float64"}), state, group) end,
      "AdamW: group.amsgrad must be a boolean, got number (adam_step)")
    state, group = args()
    group.amsgrad = true   -- then state.max_exp_avg_sq must be there
    raises(function() crater.core.internal.adam_step(opt, p, crater.tensor({1, 1}, {dtype = "float64"}), state, group) end,
      "AdamW: state.max_exp_avg_sq must be a tensor, got nil (adam_step)")
    state, group = args()
    state.exp_avg = crater.zeros(2)
    raises(function() crater.core.internal.adam_step(opt, p, crater.tensor({1, 1}, {dtype = "float64"}), state, group) end,
      "AdamW: state.exp_avg is float32 but param is float64 (adam_step)")
    raises(function() crater.core.internal.nadam_step(optim.NAdam({param({0})}), p, crater.tensor({1, 1}, {dtype = "float64"}),
      {step = 1, mu_product = 1, exp_avg = crater.zeros(2, {dtype = "float64"}),
       exp_avg_sq = crater.zeros(2, {dtype = "float64"})}, optim.NAdam({param({0})}).param_groups[1]) end,
      "NAdam: nadam_step expects the step's scalars as argument #6 (a table), got no value")
  end)

  it("swapping two named arguments cannot change the step (AdamW's decoupled from the class)", function()
    -- one AdamW step from p = 1, g = 1, lr 0.1, weight_decay 0.5: p * (1 - 0.05) - 0.1 = 0.85
    -- (Adam's coupled decay would give 1 - 0.1 = 0.9: the sign step of g + wd*p)
    local p = param({1})
    local state = {step = 1, exp_avg = crater.zeros(1, {dtype = "float64"}), exp_avg_sq = crater.zeros(1, {dtype = "float64"})}
    local group = {weight_decay = 0.5, eps = 1e-8, betas = {0.9, 0.999}, lr = 0.1, maximize = false, amsgrad = false}
    crater.core.internal.adam_step(optim.AdamW({param({0})}), p, crater.tensor({1}, {dtype = "float64"}), state, group)
    assert.near(0.85, p:get(1), 1e-8)   -- eps: the step is 0.1 / (1 + 1e-8)
  end)

  it("makes state when it is needed: a late gradient, an option turned on, a reset", function()
    local a, b = param({1}), param({2})
    local opt = optim.Adam({a, b}, {lr = 0.1})
    set_grad(a, {1}); opt:step()
    assert.is_nil(opt.state[b])                       -- no gradient, no state
    set_grad(b, {1}); opt:step()
    assert.equal(1, opt.state[b].step)                -- b's first step
    assert.equal(2, opt.state[a].step)
    assert.is_nil(opt.state[a].max_exp_avg_sq)
    opt.param_groups[1].amsgrad = true; opt:step()
    assert.is_true(crater.is_tensor(opt.state[a].max_exp_avg_sq))
    opt.state[a] = nil; opt:step()                    -- a starts over
    assert.equal(1, opt.state[a].step)
    local saved = opt:state_dict()
    opt.state = {}; opt:step()                        -- a new state table: made afresh
    assert.equal(1, opt.state[b].step)
    opt:load_state_dict(saved); opt:step()
    assert.equal(2, opt.state[a].step)
    assert.equal(4, opt.state[b].step)
  end)

  it("rejects LBFGS with several groups", function()
    local a, b = param({1}), param({2})
    raises(function() optim.LBFGS({{params = {a}}, {params = {b}}}) end,
      "LBFGS: doesn't support per-parameter options (parameter groups)")
  end)
end)

describe("state_dict", function()
  local function quad_grads(ps)
    for _, p in ipairs(ps) do
      local l = (p * p * crater.arange(1, p:numel() + 1, 1, {dtype = "float64"})):sum()
      l:backward()
    end
  end

  it("has PyTorch's layout: 1-based indices, group options, state by index", function()
    local a, b = param({1, 2}), param({3})
    local opt = optim.Adam({{params = {a}}, {params = {b}, lr = 0.1}})
    set_grad(a, {1, 1}); opt:step()
    local sd = opt:state_dict()
    assert.same({1}, sd.param_groups[1].params)
    assert.same({2}, sd.param_groups[2].params)
    assert.equal(0.1, sd.param_groups[2].lr)
    assert.equal(1e-3, sd.param_groups[1].lr)
    assert.equal(1, sd.state[1].step)
    assert.same({1 - 0.9, 1 - 0.9}, sd.state[1].exp_avg:totable())
    assert.is_nil(sd.state[2])
  end)

  for _, name in ipairs({"SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "Adamax",
    "NAdam", "RAdam", "ASGD", "Rprop"}) do
    it(name .. ": save, load into a fresh optimizer and resume bit-identically", function()
      local opts = {lr = 0.01}
      if name == "SGD" then opts.momentum = 0.9 end
      if name == "Adam" then opts.amsgrad = true end
      if name == "RMSprop" then opts.centered, opts.momentum = true, 0.5 end
      if name == "ASGD" then opts.t0 = 2 end
      local a = param({1, -2, 3})
      local opt = optim[name]({a}, opts)
      for _ = 1, 5 do opt:zero_grad(); quad_grads({a}); opt:step() end
      local path = os.tmpname()
      crater.save(path, {params = a:detach():clone(), optim = opt:state_dict()})
      local saved = crater.load(path)
      os.remove(path)
      local b = param(saved.params:totable())
      local opt2 = optim[name]({b}, {lr = 0.5, momentum = opts.momentum})
      opt2:load_state_dict(saved.optim)
      for _ = 1, 5 do
        opt:zero_grad(); quad_grads({a}); opt:step()
        opt2:zero_grad(); quad_grads({b}); opt2:step()
      end
      assert.same(a:totable(), b:totable())
    end)
  end

  it("LBFGS: resumes bit-identically after load_state_dict", function()
    local function run(p, opt)
      return opt:step(function()
        opt:zero_grad()
        local l = ((p - 1) ^ 4):sum() + (p * p):sum()
        l:backward()
        return l
      end)
    end
    local a = param({1, -2, 3})
    local opt = optim.LBFGS({a}, {max_iter = 3, line_search_fn = "strong_wolfe"})
    run(a, opt); run(a, opt)
    local b = param(a:totable())
    local opt2 = optim.LBFGS({b}, {max_iter = 3, line_search_fn = "strong_wolfe"})
    opt2:load_state_dict(opt:state_dict())
    run(a, opt); run(b, opt2)
    assert.same(a:totable(), b:totable())
  end)

  it("refuses a state_dict from another optimizer, or with missing keys", function()
    local a = param({1, 2})
    local sgd = optim.SGD({a}, {lr = 0.1, momentum = 0.9})
    set_grad(a, {1, 1}); sgd:step()
    local adam = optim.Adam({a})
    assert.error_matches(function() adam:load_state_dict(sgd:state_dict()) end,
      "Adam: load_state_dict: param group 1 has no 'amsgrad' (a state_dict from another optimizer?)", 1, true)
    local adamax = optim.Adamax({a})
    adamax:zero_grad(); set_grad(a, {1, 1})
    local ad = optim.Adam({a}); ad:step()
    assert.error_matches(function() adamax:load_state_dict(ad:state_dict()) end,
      "Adamax: load_state_dict: state of parameter 1 has no 'exp_inf'", 1, true)
    local sd = ad:state_dict()
    sd.state[1].exp_avg_sq = nil
    assert.error_matches(function() optim.Adam({a}):load_state_dict(sd) end, "has no 'exp_avg_sq'", 1, true)
    local two = optim.Adam({a, param({1})})
    assert.error_matches(function() two:load_state_dict(ad:state_dict()) end,
      "param group 1 has 1 parameters but the optimizer's has 2", 1, true)
  end)
end)
