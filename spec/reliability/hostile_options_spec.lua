-- Hostile options (issue #17, class 8): every option of an optimizer or a scheduler is
-- checked for type, finiteness, range and length; load_state_dict checks everything
-- before it changes anything; in-place functions check every argument before their
-- first write, so a refused call leaves the tensor bit for bit as it was.
local crater = require "crater"
local core = require "crater.core"
local optim = crater.optim
local lr_scheduler = optim.lr_scheduler

local NAN, INF = 0 / 0, math.huge

-- x's bytes, shape and dtype: what a refused call must leave alone
local function snapshot(x)
  return {bytes = core.internal.bytes(x), shape = table.concat(x:shape(), ","), dtype = x:dtype()}
end

local function assert_refused_unchanged(x, f, pattern)
  local before = snapshot(x)
  local ok, err = pcall(f, x)
  assert.is_false(ok, "the call was accepted")
  if pattern then assert.matches(pattern, tostring(err)) end
  assert.same(before, snapshot(x))
end

local function vec() return crater.tensor({1.5, -2, 3, 0.25}, {dtype = "float64"}) end

describe("in-place tensor methods refuse before their first write", function()
  -- every method of the tensor whose name ends in "_", with arguments no form accepts
  it("every in-place method, given four strings, refuses and changes nothing", function()
    local names = {}
    for name, f in pairs(crater.Tensor) do
      if type(f) == "function" and name:sub(-1) == "_" and name:sub(1, 1) ~= "_" then
        names[#names + 1] = name
      end
    end
    table.sort(names)
    assert.is_true(#names >= 30, "found only " .. #names .. " in-place methods")
    for _, name in ipairs(names) do
      local x = vec()
      assert_refused_unchanged(x, function(t) return t[name](t, "abc", "abc", "abc", "abc") end)
    end
  end)

  it("normal_ and uniform_ refuse a bad argument without zeroing the tensor", function()
    assert_refused_unchanged(vec(), function(x) return x:normal_("abc") end)
    assert_refused_unchanged(vec(), function(x) return x:normal_(0, "abc") end)
    assert_refused_unchanged(vec(), function(x) return x:uniform_("abc") end)
    assert_refused_unchanged(vec(), function(x) return x:uniform_(0, {}) end)
  end)

  it("uniform_ refuses from > to and non-finite bounds, as PyTorch", function()
    assert_refused_unchanged(vec(), function(x) return x:uniform_(2, 1) end, "uniform_: .*from=2%.0 > to=1%.0")
    assert_refused_unchanged(vec(), function(x) return x:uniform_(0, INF) end, "uniform_: .*finite")
    assert_refused_unchanged(vec(), function(x) return x:uniform_(NAN, 1) end, "uniform_")
    assert_refused_unchanged(vec(), function(x) return x:uniform_(-1e308, 1e308) end, "to %- from")
    local x = vec():uniform_(1, 1)   -- an empty range [1, 1) gives 1, as in PyTorch
    assert.same({1, 1, 1, 1}, x:totable())
  end)

  it("normal_ refuses a negative or non-finite std and a non-finite mean", function()
    assert_refused_unchanged(vec(), function(x) return x:normal_(0, -1) end, "normal_: .*std >= 0.*std=%-1%.0")
    assert_refused_unchanged(vec(), function(x) return x:normal_(0, NAN) end, "normal_")
    assert_refused_unchanged(vec(), function(x) return x:normal_(0, INF) end, "normal_")
    assert_refused_unchanged(vec(), function(x) return x:normal_(INF, 1) end, "normal_: mean")
    assert.same({5, 5, 5, 5}, vec():normal_(5, 0):totable())
  end)

  it("arguments a call would ignore are refused (zero_(v), mul_(2, 3), fill_(1, 2))", function()
    assert_refused_unchanged(vec(), function(x) return x:zero_("abc") end, "zero_: expected at most 0 arguments")
    assert_refused_unchanged(vec(), function(x) return x:mul_(2, 3) end, "mul_: expected at most 1 argument")
    assert_refused_unchanged(vec(), function(x) return x:fill_(1, 2) end, "fill_")
    assert_refused_unchanged(vec(), function(x) return x:relu_(1) end, "relu_: expected at most 0")
    assert_refused_unchanged(vec(), function(x) return x:clamp_(0, 1, 2) end, "clamp_")
    assert_refused_unchanged(vec(), function(x) return crater.core.add_(x, 1, 2, 3) end, "add_")
  end)

  it("add_ and sub_ with a number refuse an alpha that is not a number", function()
    assert_refused_unchanged(vec(), function(x) return x:add_(1, "a") end, "number expected")
    assert_refused_unchanged(vec(), function(x) return x:sub_(1, {}) end, "number expected")
    assert.same({3.5, 0, 5, 2.25}, vec():add_(1, 2):totable())   -- x + 1 * 2
  end)

  it("shape, dtype and leaf errors leave the tensor unchanged", function()
    assert_refused_unchanged(vec(), function(x) return x:copy_(crater.zeros(3)) end, "copy_")
    assert_refused_unchanged(vec(), function(x) return x:add_(crater.zeros(3)) end, "add_")
    assert_refused_unchanged(vec(), function(x) return x:addcmul_(crater.ones(4), crater.ones(3)) end, "addcmul_")
    assert_refused_unchanged(vec(), function(x) return x:masked_fill_(crater.zeros(3):gt(0), 1) end, "masked_fill_")
    local leaf = crater.tensor({1, 2}, {requires_grad = true})
    for _, f in ipairs({
      function(x) return x:fill_(0) end, function(x) return x:uniform_() end,
      function(x) return x:normal_() end, function(x) return x:zero_() end,
      function(x) return x:add_(1) end, function(x) return x:relu_() end,
    }) do
      assert_refused_unchanged(leaf, f, "leaf")
    end
  end)

  it("requires_grad_ takes a boolean", function()
    assert_refused_unchanged(vec(), function(x) return x:requires_grad_("yes") end, "requires_grad_: flag must be a boolean")
    assert.is_true(vec():requires_grad_().requires_grad)
  end)
end)

describe("crater.nn.init refuses before writing", function()
  local init = crater.nn.init
  local function weight() return crater.tensor({{1, 2, 3}, {4, 5, 6}}) end
  it("uniform_ with a > b, normal_ with std < 0 or NaN, bad types", function()
    assert_refused_unchanged(weight(), function(w) return init.uniform_(w, 2, 1) end, "uniform_")
    assert_refused_unchanged(weight(), function(w) return init.uniform_(w, "a") end, "uniform_")
    assert_refused_unchanged(weight(), function(w) return init.normal_(w, 0, -1) end, "normal_")
    assert_refused_unchanged(weight(), function(w) return init.normal_(w, 0, NAN) end, "normal_")
    assert_refused_unchanged(weight(), function(w) return init.constant_(w, "a") end, "fill_")
    assert_refused_unchanged(weight(), function(w) return init.xavier_uniform_(w, NAN) end, "uniform_")
    assert_refused_unchanged(weight(), function(w) return init.xavier_normal_(w, -1) end, "normal_")
    assert_refused_unchanged(weight(), function(w) return init.kaiming_uniform_(w, {a = NAN}) end, "uniform_")
    assert_refused_unchanged(weight(), function(w) return init.kaiming_normal_(w, {mode = "x"}) end, "mode")
  end)
  it("a good call still fills within its range", function()
    local w = init.uniform_(weight(), -0.5, 0.5)
    for _, row in ipairs(w:totable()) do
      for _, v in ipairs(row) do assert.is_true(v >= -0.5 and v < 0.5) end
    end
  end)
end)

describe("crater.set_num_threads checks its range before converting", function()
  local n0 = crater.get_num_threads()
  after_each(function() crater.set_num_threads(n0) end)
  it("refuses NaN, 0, negative, 2^40, non-integer floats and non-numbers", function()
    for _, v in ipairs({NAN, 0, -1, 2 ^ 40, 1 << 40, 1.5, INF, math.mininteger}) do
      local ok, err = pcall(crater.set_num_threads, v)
      assert.is_false(ok, tostring(v))
      assert.matches("set_num_threads: n must be an integer in %[1, 1024%]", err)
      assert.equal(n0, crater.get_num_threads())
    end
    assert.is_false(pcall(crater.set_num_threads, "x"))
    assert.is_false(pcall(crater.set_num_threads))
  end)
  it("accepts 1 and an integral float", function()
    crater.set_num_threads(1)
    assert.equal(1, crater.get_num_threads())
    crater.set_num_threads(2.0)
    assert.equal(2, crater.get_num_threads())
  end)
end)

-- Optimizers -------------------------------------------------------------------------

local function param(v) return crater.tensor(v or {1, -2}, {dtype = "float64", requires_grad = true}) end

local function refuses(pattern, f)
  local ok, err = pcall(f)
  assert.is_false(ok, "accepted: " .. pattern)
  assert.is_truthy(tostring(err):find(pattern, 1, true), "got: " .. tostring(err) .. "\nwanted: " .. pattern)
end

-- bad options for every optimizer class, with (part of) the message each gives
local bad_options = {
  SGD = {
    {{lr = 0.1, dampening = NAN}, "SGD: dampening must be in [0, 1], got nan"},
    {{lr = 0.1, dampening = 2}, "SGD: dampening must be in [0, 1], got 2"},
    {{lr = 0.1, weight_decay = INF}, "SGD: weight_decay must be finite, got inf (invalid weight_decay value)"},
    {{lr = -1}, "SGD: lr must be a number >= 0, got -1 (invalid learning rate)"},
    {{lr = INF}, "SGD: lr must be finite, got inf"},
    {{lr = "0.1"}, "SGD: lr must be a number >= 0, got \"0.1\""},
    {{lr = 0.1, momentum = -0.5}, "SGD: momentum must be a number >= 0, got -0.5 (invalid momentum value)"},
    {{lr = 0.1, nesterov = "yes"}, "SGD: nesterov must be a boolean, got \"yes\""},
    {{lr = 0.1, maximize = 1}, "SGD: maximize must be a boolean, got 1"},
  },
  Adam = {
    {{betas = {0.9, 0.99, 0.999}}, "Adam: betas must be a list of 2 numbers, got {0.9, 0.99, 0.999}"},
    {{betas = {0.9}}, "Adam: betas must be a list of 2 numbers"},
    {{betas = 0.9}, "Adam: betas must be a list of 2 numbers, got 0.9"},
    {{betas = {0.9, NAN}}, "Adam: betas[2] must be in [0, 1), got nan (invalid beta parameter)"},
    {{betas = {-0.1, 0.9}}, "Adam: betas[1] must be in [0, 1), got -0.1"},
    {{amsgrad = "yes"}, "Adam: amsgrad must be a boolean, got \"yes\""},
    {{eps = -1e-8}, "Adam: eps must be a number >= 0, got -1e-08 (invalid epsilon value)"},
    {{eps = NAN}, "Adam: eps must be a number >= 0, got nan"},
    {{weight_decay = -INF}, "Adam: weight_decay must be a number >= 0, got -inf"},
  },
  AdamW = {
    {{weight_decay = INF}, "AdamW: weight_decay must be finite, got inf"},
    {{betas = {1, 0.9}}, "AdamW: betas[1] must be in [0, 1), got 1"},
  },
  Adamax = {{{betas = {0.9, 0.99, 0.5}}, "Adamax: betas must be a list of 2 numbers"}},
  NAdam = {
    {{momentum_decay = -1}, "NAdam: momentum_decay must be a number >= 0, got -1"},
    {{decoupled_weight_decay = 0}, "NAdam: decoupled_weight_decay must be a boolean"},
  },
  RAdam = {{{betas = {0.9, INF}}, "RAdam: betas[2] must be in [0, 1), got inf"}},
  Adagrad = {
    {{lr_decay = NAN}, "Adagrad: lr_decay must be a number >= 0, got nan"},
    {{initial_accumulator_value = -1}, "Adagrad: initial_accumulator_value must be a number >= 0, got -1"},
  },
  Adadelta = {{{rho = 1.5}, "Adadelta: rho must be in [0, 1], got 1.5 (invalid rho value)"}},
  RMSprop = {
    {{alpha = -0.1}, "RMSprop: alpha must be in [0, 1], got -0.1"},
    {{centered = "no"}, "RMSprop: centered must be a boolean"},
    {{momentum = INF}, "RMSprop: momentum must be finite, got inf"},
  },
  Rprop = {
    {{etas = {0.5, 1.2, 3}}, "Rprop: etas must be a list of 2 numbers, got {0.5, 1.2, 3}"},
    {{etas = {0.5, NAN}}, "Rprop: etas[2] must be a number, got nan"},
    {{step_sizes = {-1, 50}}, "Rprop: step_sizes[1] must be a number >= 0, got -1"},
    {{step_sizes = {1, 0.5}}, "Rprop: step_sizes must be {min, max} with min <= max"},
  },
  ASGD = {
    {{t0 = NAN}, "ASGD: t0 must be a number >= 0, got nan"},
    {{lambd = -1}, "ASGD: lambd must be a number >= 0, got -1"},
    {{alpha = INF}, "ASGD: alpha must be finite, got inf"},
  },
  LBFGS = {
    {{max_iter = 0}, "LBFGS: max_iter must be a positive integer, got 0"},
    {{max_iter = 2.5}, "LBFGS: max_iter must be a positive integer, got 2.5"},
    {{history_size = INF}, "LBFGS: history_size must be finite, got inf"},
    {{max_eval = NAN}, "LBFGS: max_eval must be a number >= 1, got nan"},
    {{tolerance_grad = -1}, "LBFGS: tolerance_grad must be a number >= 0, got -1"},
    {{line_search_fn = "armijo"}, "LBFGS: line_search_fn must be one of false, \"strong_wolfe\", got \"armijo\""},
  },
}

for name, cases in pairs(bad_options) do
  describe("crater.optim." .. name .. " options", function()
    it("refuses bad values at construction, in add_param_group and between steps", function()
      for _, case in ipairs(cases) do
        local opts, msg = case[1], case[2]
        refuses(msg, function() optim[name]({param()}, opts) end)
        if name ~= "LBFGS" then   -- one group only
          local good = {lr = opts.lr ~= nil and 0.1 or nil}
          local opt = optim[name]({param()}, good)
          local g = {params = {param()}}
          for k, v in pairs(opts) do g[k] = v end
          refuses(msg, function() opt:add_param_group(g) end)
          assert.equal(1, #opt.param_groups)
          -- the same value set on a live group is refused by the next step, before it writes
          local p = opt.param_groups[1].params[1]
          p.grad = crater.tensor({1, 1}, {dtype = "float64"})
          for k, v in pairs(opts) do opt.param_groups[1][k] = v end
          local before = snapshot(p)
          refuses(msg, function() opt:step() end)
          assert.same(before, snapshot(p))
        end
      end
    end)

    it("refuses an unknown option, listing the known ones", function()
      local ok, err = pcall(optim[name], {param()}, {lr = 0.1, lrr = 0.1})
      assert.is_false(ok)
      assert.matches(name .. ": unknown option 'lrr' %(the options are [%w_, ]*lr,", err)
      if name ~= "LBFGS" then
        local opt = optim[name]({param()}, {lr = 0.1})
        refuses(name .. ": param group has unknown option 'lrr' (the options are ",
          function() opt:add_param_group({params = {param()}, lrr = 1}) end)
        refuses(name .. ": param group has unknown option '1'",
          function() opt:add_param_group({params = {param()}, param()}) end)
      end
    end)
  end)
end

describe("Optimizer:extend rules", function()
  it("a custom optimizer's options are checked against their defaults' types", function()
    local Sign = optim.Optimizer:extend("Sign", {lr = 0.01, betas = {0.9, 0.99}, decay = 0.5, flag = false})
    function Sign:update(p, g) p:add_(g:sign(), -0.01) end
    refuses("Sign: decay must be finite, got inf", function() Sign({param()}, {decay = INF}) end)
    refuses("Sign: decay must be a number, got nan", function() Sign({param()}, {decay = NAN}) end)
    refuses("Sign: flag must be a boolean", function() Sign({param()}, {flag = "x"}) end)
    refuses("Sign: betas must be a list of 2 numbers", function() Sign({param()}, {betas = {1, 2, 3}}) end)
    refuses("Sign: lr must be a number >= 0, got -1", function() Sign({param()}, {lr = -1}) end)
    local Ranged = optim.Optimizer:extend("Ranged", {lr = 0.01, k = 3}, {k = {"integer", 1, 10}})
    refuses("Ranged: k must be in [1, 10], got 11", function() Ranged({param()}, {k = 11}) end)
    assert.equal(4, Ranged({param()}, {k = 4}).param_groups[1].k)
  end)
end)

-- a deep snapshot of an optimizer: groups and state, tensors by their bytes
local function optimizer_snapshot(opt)
  local function deep(v)
    if type(v) == "userdata" then return snapshot(v) end
    if type(v) ~= "table" then return v end
    local t = {}
    for k, x in pairs(v) do t[type(k) == "userdata" and "param" .. tostring(k:numel()) or k] = deep(x) end
    return t
  end
  local state = {}
  for i, group in ipairs(opt.param_groups) do
    for j, p in ipairs(group.params) do state[i .. ":" .. j] = deep(opt.state[p] or {}) end
  end
  return {groups = deep(opt.param_groups), state = state, state_table = opt.state}
end

describe("Optimizer:load_state_dict checks everything before it changes anything", function()
  local function trained(cls, opts)
    local p, q = param(), param({3, 4})
    local opt = optim[cls]({p, q}, opts)
    for _ = 1, 2 do
      p.grad = crater.tensor({0.5, -1}, {dtype = "float64"})
      q.grad = crater.tensor({1, 2}, {dtype = "float64"})
      opt:step()
    end
    return opt
  end
  local function tampered(opt, f)
    local sd = opt:state_dict()
    f(sd)
    return sd
  end

  local cases = {
    {"Adam", nil, function(sd) sd.state[1].step = -1 end, "state 'step' of parameter 1 must be a whole number >= 0, got -1"},
    {"Adam", nil, function(sd) sd.state[1].step = NAN end, "state 'step' of parameter 1 must be a whole number >= 0, got nan"},
    {"Adam", nil, function(sd) sd.state[1].step = INF end, "must be a whole number >= 0, got inf"},
    {"Adam", nil, function(sd) sd.state[1].step = 1.5 end, "must be a whole number >= 0, got 1.5"},
    {"Adam", nil, function(sd) sd.state[2].step = "2" end, "state 'step' of parameter 2 must be a whole number"},
    {"Adam", nil, function(sd) sd.state[2].exp_avg = crater.zeros(3, {dtype = "float64"}) end,
      "state 'exp_avg' of parameter 2 must be a float32 or float64 tensor of shape {2}, got a tensor of dtype float64 and shape {3}"},
    {"Adam", nil, function(sd) sd.state[2].exp_avg_sq = crater.tensor({1, 2}, {dtype = "int64"}) end,
      "state 'exp_avg_sq' of parameter 2 must be a float32 or float64 tensor of shape {2}, got a tensor of dtype int64"},
    {"Adam", nil, function(sd) sd.state[1].exp_avg = {1, 2} end, "state 'exp_avg' of parameter 1 must be a float32"},
    {"Adam", nil, function(sd) sd.state[1].extra = 1 end, "state of parameter 1 has an unknown entry 'extra' (Adam keeps "},
    {"Adam", nil, function(sd) sd.state[1] = 5 end, "state entry 1 is not a table"},
    {"Adam", nil, function(sd) sd.state[7] = {} end, "state entry 7 belongs to no parameter"},
    {"Adam", nil, function(sd) sd.param_groups[1].lr = NAN end, "param group 1: Adam: lr must be a number >= 0, got nan"},
    {"Adam", nil, function(sd) sd.param_groups[1].betas = {0.9, 0.9, 0.9} end, "Adam: betas must be a list of 2 numbers"},
    {"Adam", nil, function(sd) sd.param_groups[1].amsgrad = "yes" end, "Adam: amsgrad must be a boolean"},
    {"Adam", nil, function(sd) sd.param_groups[1].lrr = 1 end, "param group 1 has unknown key 'lrr' (the options are "},
    {"Adam", nil, function(sd) sd.param_groups[1].initial_lr = NAN end, "param group 1: initial_lr must be a finite number, got nan"},
    {"Adam", nil, function(sd) sd.param_groups[1].params = {1, 1} end, "params[2] must be a parameter number not used before, got 1"},
    {"Adam", nil, function(sd) sd.param_groups[1].params = {1.5, 2} end, "params[1] must be a parameter number not used before, got 1.5"},
    {"Adam", nil, function(sd) sd.param_groups[1].params = {1} end, "param group 1 has 1 parameters but the optimizer's has 2"},
    {"SGD", {lr = 0.1, momentum = 0.9}, function(sd) sd.state[1].momentum_buffer = crater.zeros(2, 1, {dtype = "float64"}) end,
      "state 'momentum_buffer' of parameter 1 must be a float32 or float64 tensor of shape {2}"},
    {"SGD", {lr = 0.1, momentum = 0.9}, function(sd) sd.param_groups[1].dampening = NAN end, "SGD: dampening must be in [0, 1], got nan"},
    {"NAdam", nil, function(sd) sd.state[1].mu_product = NAN end, "state 'mu_product' of parameter 1 must be a finite number, got nan"},
    {"ASGD", nil, function(sd) sd.state[2].eta = INF end, "state 'eta' of parameter 2 must be a finite number, got inf"},
    {"Adagrad", nil, function(sd) sd.state[2].sum = crater.zeros(2, {dtype = "int64"}) end, "state 'sum' of parameter 2 must be"},
    {"Rprop", nil, function(sd) sd.state[1].step_size = crater.zeros(1, {dtype = "float64"}) end, "state 'step_size' of parameter 1 must be"},
    {"RMSprop", {momentum = 0.5, centered = true}, function(sd) sd.state[2].grad_avg = nil end, "state of parameter 2 has no 'grad_avg'"},
    {"Adadelta", nil, function(sd) sd.state[1].acc_delta = "x" end, "state 'acc_delta' of parameter 1 must be"},
    {"Adamax", nil, function(sd) sd.state[1].exp_inf = crater.zeros(2) end, nil},   -- float32: converted, accepted
    {"RAdam", nil, function(sd) sd.param_groups[1].decoupled_weight_decay = 1 end, "RAdam: decoupled_weight_decay must be a boolean"},
  }
  it("refuses a bad state entry or group key and leaves the optimizer as it was", function()
    for _, case in ipairs(cases) do
      local cls, opts, f, msg = case[1], case[2], case[3], case[4]
      local opt = trained(cls, opts)
      local sd = tampered(opt, f)
      local before = optimizer_snapshot(opt)
      local groups = opt.param_groups
      if msg then
        refuses(cls .. ": load_state_dict: ", function() opt:load_state_dict(sd) end)
        refuses(msg, function() opt:load_state_dict(sd) end)
        assert.same(before, optimizer_snapshot(opt))
        assert.equal(groups, opt.param_groups)
        assert.equal(before.state_table, opt.state)
      else
        opt:load_state_dict(sd)
      end
    end
  end)

  it("LBFGS checks its flat history", function()
    local p = param()
    local opt = optim.LBFGS({p}, {max_iter = 3})
    local function closure()
      opt:zero_grad()
      local loss = (p * p):sum()
      loss:backward()
      return loss
    end
    opt:step(closure); opt:step(closure)
    local sd = opt:state_dict()
    assert.is_true(#sd.state[1].old_dirs > 0)
    local good = opt:state_dict()
    sd.state[1].old_dirs = {crater.zeros(5, {dtype = "float64"})}
    local before = optimizer_snapshot(opt)
    refuses("LBFGS: load_state_dict: state 'old_dirs' of parameter 1 must be a list of float32 or float64 tensors of shape {2}",
      function() opt:load_state_dict(sd) end)
    sd.state[1].old_dirs, sd.state[1].ro = good.state[1].old_dirs, {NAN}
    refuses("state 'ro' of parameter 1 must be a list of finite numbers", function() opt:load_state_dict(sd) end)
    sd.state[1].ro, sd.state[1].n_iter = good.state[1].ro, -3
    refuses("state 'n_iter' of parameter 1 must be a whole number >= 0, got -3", function() opt:load_state_dict(sd) end)
    assert.same(before, optimizer_snapshot(opt))
    opt:load_state_dict(good)
  end)
end)

-- Schedulers -------------------------------------------------------------------------

local function sgd(groups)
  local list = {}
  for i = 1, groups or 1 do list[i] = {params = {param()}, lr = 0.1 * i} end
  return optim.SGD(list, {lr = 0.1, momentum = 0.9})
end

local function lrs(opt)
  local out = {}
  for i, g in ipairs(opt.param_groups) do out[i] = {lr = g.lr, momentum = g.momentum, initial_lr = g.initial_lr} end
  return out
end

describe("lr_scheduler options", function()
  local L = lr_scheduler
  local cases = {
    {"StepLR", {step_size = 3, gamma = NAN}, "StepLR: gamma must be a finite number, got nan"},
    {"StepLR", {step_size = 3, gamma = -1}, "StepLR: gamma must be a number > 0, got -1"},
    {"StepLR", {step_size = 3, gamma = 0}, "StepLR: gamma must be a number > 0, got 0"},
    {"StepLR", {step_size = 3, gamma = INF}, "StepLR: gamma must be a finite number, got inf"},
    {"StepLR", {step_size = INF}, "StepLR: step_size must be an integer, got inf"},
    {"StepLR", {step_size = 3, verbose = "yes"}, "StepLR: verbose must be a boolean, got \"yes\""},
    {"StepLR", {step_size = 3, last_epoch = 1.5}, "StepLR: last_epoch must be an integer, got 1.5"},
    {"StepLR", {step_size = 3, gama = 0.5}, "StepLR: unknown option \"gama\" (the options are gamma, last_epoch, step_size, verbose)"},
    {"MultiStepLR", {milestones = {2, 4}, gamma = -0.5}, "MultiStepLR: gamma must be a number > 0, got -0.5"},
    {"ExponentialLR", {gamma = NAN}, "ExponentialLR: gamma must be a finite number, got nan"},
    {"ExponentialLR", {gamma = -1}, "ExponentialLR: gamma must be a number > 0, got -1"},
    {"CosineAnnealingLR", {T_max = 10, eta_min = NAN}, "CosineAnnealingLR: eta_min must be a finite number, got nan"},
    {"CosineAnnealingLR", {T_max = INF}, "CosineAnnealingLR: T_max must be a finite number, got inf"},
    {"CyclicLR", {base_lr = 0.1, max_lr = 1, mode = "exp_range", gamma = -1}, "CyclicLR: gamma must be a number > 0, got -1"},
    {"CyclicLR", {base_lr = {0.1, 0.2}, max_lr = 1}, "CyclicLR: expected 1 values for base_lr, got 2"},
    {"OneCycleLR", {max_lr = 1, total_steps = 10, div_factor = NAN}, "OneCycleLR: div_factor must be a finite number, got nan"},
    {"PolynomialLR", {power = INF}, "PolynomialLR: power must be a finite number, got inf"},
    {"ReduceLROnPlateau", {factor = -0.5}, "ReduceLROnPlateau: factor must be in [0, 1), got -0.5"},
    {"ReduceLROnPlateau", {eps = NAN}, "ReduceLROnPlateau: eps must be a finite number, got nan"},
    {"ReduceLROnPlateau", {threshold = INF}, "ReduceLROnPlateau: threshold must be a finite number, got inf"},
    {"ReduceLROnPlateau", {eps = -1}, "ReduceLROnPlateau: eps must be a number >= 0, got -1"},
    {"ExponentialDecayLR", {s = 10, staircase = 1}, "ExponentialDecayLR: staircase must be a boolean, got 1"},
    {"WarmupCosineLR", {warmup_steps = 2, total_steps = 10, eta_min = NAN}, "WarmupCosineLR: eta_min must be a finite number, got nan"},
  }
  it("refuses a bad option and leaves the optimizer's groups as they were", function()
    for _, case in ipairs(cases) do
      local opt = sgd()
      local before = lrs(opt)
      refuses(case[3], function() L[case[1]](opt, case[2]) end)
      assert.same(before, lrs(opt))
    end
  end)
  it("a custom schedule's numeric options must be finite", function()
    local Warm = L.LRScheduler:extend("Warm", {warmup = 10})
    function Warm:get_lr() return self.base_lrs end
    refuses("Warm: warmup must be a finite number, got nan", function() Warm(sgd(), {warmup = NAN}) end)
    refuses("Warm: warmup must be a finite number, got inf", function() Warm(sgd(), {warmup = INF}) end)
  end)
end)

describe("lr_scheduler step(epoch)", function()
  local L = lr_scheduler
  it("refuses a negative, non-finite or non-number epoch and changes nothing", function()
    local opt = sgd()
    local s = L.StepLR(opt, {step_size = 2, gamma = 0.5})
    s:step(); s:step()
    local before, sd = lrs(opt), s:state_dict()
    refuses("StepLR:step: expected a non-negative epoch, got -5", function() s:step(-5) end)
    refuses("StepLR:step: epoch must be a finite number, got nan", function() s:step(NAN) end)
    refuses("StepLR:step: epoch must be a finite number, got inf", function() s:step(INF) end)
    refuses("StepLR:step: epoch must be a number, got \"3\"", function() s:step("3") end)
    assert.same(before, lrs(opt))
    assert.same(sd, s:state_dict())
    s:step(4)   -- the closed form: 0.1 * 0.5^2
    assert.near(0.025, opt.param_groups[1].lr, 1e-15)
  end)
  it("OneCycleLR, ReduceLROnPlateau and CosineAnnealingWarmRestarts check theirs first", function()
    local one = L.OneCycleLR(sgd(), {max_lr = 1, total_steps = 10})
    refuses("OneCycleLR:step: expected a non-negative epoch, got -1", function() one:step(-1) end)
    refuses("OneCycleLR:step: epoch must be a number, got table", function() one:step({}) end)
    local plateau = L.ReduceLROnPlateau(sgd())
    refuses("ReduceLROnPlateau:step: expected a non-negative epoch, got -2", function() plateau:step(1, -2) end)
    assert.equal(0, plateau.last_epoch)
    local warm = L.CosineAnnealingWarmRestarts(sgd(), {T_0 = 3})
    refuses("CosineAnnealingWarmRestarts:step: epoch must be a finite number, got nan", function() warm:step(NAN) end)
  end)
  it("SequentialLR and ChainedScheduler take no epoch", function()
    local opt = sgd()
    local a, b = L.ConstantLR(opt, {factor = 0.5, total_iters = 2}), L.ExponentialLR(opt, {gamma = 0.9})
    refuses("ChainedScheduler:step: takes no epoch (got 3)", function() L.ChainedScheduler({a, b}):step(3) end)
    local seq = L.SequentialLR(opt, {schedulers = {a, b}, milestones = {2}})
    refuses("SequentialLR:step: takes no epoch (got 3)", function() seq:step(3) end)
  end)
  it("a get_lr that raises leaves last_epoch and the lrs as they were", function()
    local opt = sgd()
    local boom = false
    local s = L.LambdaLR(opt, function(e) if boom then error("lambda failed") end return 1 / (e + 1) end)
    s:step()
    local before, sd = lrs(opt), s:state_dict()
    boom = true
    refuses("lambda failed", function() s:step() end)
    assert.same(before, lrs(opt))
    assert.same(sd, s:state_dict())
  end)
end)

describe("lr_scheduler load_state_dict checks everything before it changes anything", function()
  local L = lr_scheduler
  local function stepped(make, n)
    local opt = sgd(2)
    local s = make(opt)
    for i = 1, n or 3 do
      if s.mode_worse then s:step(1 / i) else s:step() end   -- ReduceLROnPlateau takes a metric
    end
    return s
  end
  local cases = {
    {function(o) return L.StepLR(o, {step_size = 2}) end, function(sd) sd.gamma = NAN end, "StepLR:load_state_dict: gamma holds nan"},
    {function(o) return L.StepLR(o, {step_size = 2}) end, function(sd) sd.gamma = -1 end, "StepLR:load_state_dict: StepLR: gamma must be a number > 0, got -1"},
    {function(o) return L.StepLR(o, {step_size = 2}) end, function(sd) sd.step_size = 0 end, "StepLR: step_size must be a positive integer, got 0"},
    {function(o) return L.StepLR(o, {step_size = 2}) end, function(sd) sd.last_epoch = "3" end, "StepLR:load_state_dict: last_epoch must be a number, got \"3\""},
    {function(o) return L.StepLR(o, {step_size = 2}) end, function(sd) sd.last_epoch = -5 end, "StepLR: last_epoch must be a number >= -1, got -5"},
    {function(o) return L.StepLR(o, {step_size = 2}) end, function(sd) sd.last_epoch = INF end, "StepLR: last_epoch must be finite, got inf"},
    {function(o) return L.StepLR(o, {step_size = 2}) end, function(sd) sd.optimizer = {} end, "StepLR:load_state_dict: the state dict has an entry \"optimizer\" that StepLR does not keep (it keeps "},
    {function(o) return L.StepLR(o, {step_size = 2}) end, function(sd) sd.step = 1 end, "has an entry \"step\" that StepLR does not keep"},
    {function(o) return L.StepLR(o, {step_size = 2}) end, function(sd) sd.foo = 1 end, "has an entry \"foo\""},
    {function(o) return L.StepLR(o, {step_size = 2}) end, function(sd) sd.base_lrs = {0.1} end, "the state dict has 1 param groups, the optimizer has 2"},
    {function(o) return L.StepLR(o, {step_size = 2}) end, function(sd) sd._last_lr = {0.1, "x"} end, "StepLR: _last_lr[2] must be a number"},
    {function(o) return L.StepLR(o, {step_size = 2}) end, function(sd) sd.verbose = 1 end, "verbose must be a boolean, got 1"},
    {function(o) return L.MultiStepLR(o, {milestones = {2, 4}}) end, function(sd) sd.milestones = {2, "a"} end, "MultiStepLR: milestones[2] must be an integer"},
    {function(o) return L.MultiStepLR(o, {milestones = {2, 4}}) end, function(sd) sd.milestones = {2, print} end, "milestones holds a function"},
    {function(o) return L.ReduceLROnPlateau(o) end, function(sd) sd.mode = "avg" end, "ReduceLROnPlateau: mode must be one of \"min\", \"max\", got \"avg\""},
    {function(o) return L.ReduceLROnPlateau(o) end, function(sd) sd.best = NAN end, "best holds nan"},
    {function(o) return L.ReduceLROnPlateau(o) end, function(sd) sd.min_lrs = {0} end, "ReduceLROnPlateau: min_lrs must be a list of 2 values, one per param group"},
    {function(o) return L.CyclicLR(o, {base_lr = 0.1, max_lr = 1}) end, function(sd) sd.mode = "linear" end, "CyclicLR: mode must be one of"},
    {function(o) return L.OneCycleLR(o, {max_lr = 1, total_steps = 10}) end, function(sd) sd.total_steps = 0 end, "OneCycleLR: total_steps must be a positive integer, got 0"},
  }
  it("refuses a bad entry and leaves the scheduler as it was", function()
    for _, case in ipairs(cases) do
      local s = stepped(case[1])
      local sd = s:state_dict()
      case[2](sd)
      local before, groups = s:state_dict(), lrs(s.optimizer)
      refuses(case[3], function() s:load_state_dict(sd) end)
      assert.same(before, s:state_dict())
      assert.same(groups, lrs(s.optimizer))
    end
  end)

  it("checks every part of a ChainedScheduler before loading any", function()
    local opt = sgd()
    local a, b = L.StepLR(opt, {step_size = 2}), L.ExponentialLR(opt, {gamma = 0.9})
    local chain = L.ChainedScheduler({a, b})
    chain:step(); chain:step()
    local sd = chain:state_dict()
    sd._schedulers[1].last_epoch = 0
    sd._schedulers[2].gamma = -2
    local before = chain:state_dict()
    refuses("ExponentialLR: gamma must be a number > 0, got -2", function() chain:load_state_dict(sd) end)
    assert.same(before, chain:state_dict())
    assert.equal(2, a.last_epoch)
  end)

  it("a good state dict still loads", function()
    local s = stepped(function(o) return L.StepLR(o, {step_size = 2}) end, 5)
    local t = stepped(function(o) return L.StepLR(o, {step_size = 2}) end, 1)
    t:load_state_dict(s:state_dict())
    assert.same(s:state_dict(), t:state_dict())
  end)
end)
