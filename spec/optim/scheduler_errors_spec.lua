-- Bad input: each mistake is a Lua error naming the scheduler and the argument, and the
-- optimizer's param groups are left exactly as they were.
local L = require "crater.optim.lr_scheduler"

local function sgd()
  return {param_groups = {{lr = 0.1, momentum = 0.9}, {lr = 0.05, momentum = 0.9}},
          defaults = {lr = 0.1, momentum = 0.9}}
end

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

-- Asserts that f(opt) raises `msg` (plain text) and leaves opt's groups untouched.
local function refuses(msg, f, opt)
  opt = opt or sgd()
  local before = copy(opt.param_groups)
  assert.error_matches(function() f(opt) end, msg, 1, true)
  assert.same(before, opt.param_groups)
end

describe("scheduler bad input", function()
  it("names the line of the caller", function()
    local ok, err = pcall(L.StepLR, sgd(), {step_size = 0})
    assert.is_false(ok)
    assert.matches("^spec/optim/scheduler_errors_spec%.lua:%d+: StepLR: step_size must be positive, got 0$", err)
  end)

  it("refuses something that is not an optimizer", function()
    refuses("StepLR: expected an optimizer (a table with param_groups), got nil",
            function() L.StepLR(nil, {step_size = 3}) end)
    refuses("ExponentialLR: param_groups[2].lr must be a number, got nil",
            function(o) L.ExponentialLR(o, {gamma = 0.9}) end, {param_groups = {{lr = 1}, {}}})
    refuses("StepLR: the optimizer has no param groups",
            function(o) L.StepLR(o, {step_size = 3}) end, {param_groups = {}})
  end)

  it("refuses unknown options and non-table options", function()
    refuses('StepLR: unknown option "gama"', function(o) L.StepLR(o, {step_size = 3, gama = 0.5}) end)
    refuses("StepLR: options must be a table, got 30", function(o) L.StepLR(o, 30) end)
  end)

  it("refuses non-positive or non-integer step_size, T_max, T_0, total_iters", function()
    refuses("StepLR: step_size must be positive, got 0", function(o) L.StepLR(o, {step_size = 0}) end)
    refuses("StepLR: step_size must be an integer, got nil", function(o) L.StepLR(o, {}) end)
    refuses('StepLR: step_size must be an integer, got "30"', function(o) L.StepLR(o, {step_size = "30"}) end)
    refuses("StepLR: step_size must be an integer, got 2.5", function(o) L.StepLR(o, {step_size = 2.5}) end)
    refuses("CosineAnnealingLR: T_max must be positive, got 0", function(o) L.CosineAnnealingLR(o, {T_max = 0}) end)
    refuses("CosineAnnealingLR: T_max must be positive, got -5", function(o) L.CosineAnnealingLR(o, {T_max = -5}) end)
    refuses("CosineAnnealingLR: T_max must be a number, got nil", function(o) L.CosineAnnealingLR(o, {}) end)
    refuses("CosineAnnealingWarmRestarts: T_0 must be positive, got 0",
            function(o) L.CosineAnnealingWarmRestarts(o, {T_0 = 0}) end)
    refuses("CosineAnnealingWarmRestarts: T_mult must be an integer, got 1.5",
            function(o) L.CosineAnnealingWarmRestarts(o, {T_0 = 2, T_mult = 1.5}) end)
    refuses("PolynomialLR: total_iters must be positive, got 0", function(o) L.PolynomialLR(o, {total_iters = 0}) end)
    refuses("LinearLR: total_iters must be positive, got 0", function(o) L.LinearLR(o, {total_iters = 0}) end)
  end)

  it("refuses gamma, factor and friends of the wrong type or range", function()
    refuses('StepLR: gamma must be a number, got "0.1"', function(o) L.StepLR(o, {step_size = 3, gamma = "0.1"}) end)
    refuses("ExponentialLR: gamma must be a number, got nil", function(o) L.ExponentialLR(o, {}) end)
    refuses("ConstantLR: factor must be between 0 and 1, got 1.5", function(o) L.ConstantLR(o, {factor = 1.5}) end)
    refuses("LinearLR: start_factor must be in (0, 1], got 0", function(o) L.LinearLR(o, {start_factor = 0}) end)
    refuses("LinearLR: end_factor must be between 0 and 1, got 2", function(o) L.LinearLR(o, {end_factor = 2}) end)
    refuses("CosineAnnealingLR: eta_min must be a number, got table",
            function(o) L.CosineAnnealingLR(o, {T_max = 3, eta_min = {}}) end)
  end)

  it("refuses milestones that are not a list of integers", function()
    refuses("MultiStepLR: milestones must be a list of integers, got 5",
            function(o) L.MultiStepLR(o, {milestones = 5}) end)
    refuses("MultiStepLR: milestones must be a list of integers, got nil", function(o) L.MultiStepLR(o, {}) end)
    refuses('MultiStepLR: milestones[2] must be an integer, got "b"',
            function(o) L.MultiStepLR(o, {milestones = {1, "b"}}) end)
    refuses("MultiStepLR: milestones[1] must be an integer, got 2.5",
            function(o) L.MultiStepLR(o, {milestones = {2.5}}) end)
    refuses("MultiStepLR: milestones must be a list of integers, got a table with non-list keys",
            function(o) L.MultiStepLR(o, {milestones = {a = 1}}) end)
  end)

  it("refuses lambdas that are not functions, or one per group in the wrong number", function()
    refuses("LambdaLR: lr_lambda must be a function or a list of functions, got 3", function(o) L.LambdaLR(o, 3) end)
    refuses("LambdaLR: lr_lambda must be a function or a list of functions, got nil", function(o) L.LambdaLR(o, {}) end)
    refuses("LambdaLR: expected 2 lr_lambdas, but got 1", function(o) L.LambdaLR(o, {function() return 1 end}) end)
    refuses("MultiplicativeLR: lr_lambda[2] must be a function, got 5",
            function(o) L.MultiplicativeLR(o, {function() return 1 end, 5}) end)
    refuses("LambdaLR: lr_lambda for group 1 returned nil at epoch 0; expected a number",
            function(o) L.LambdaLR(o, function() end) end)
  end)

  it("refuses bad CyclicLR settings before touching lr or momentum", function()
    refuses("CyclicLR: base_lr must be a number, got nil", function(o) L.CyclicLR(o, {max_lr = 1}) end)
    refuses("CyclicLR: expected 2 values for max_lr, got 3",
            function(o) L.CyclicLR(o, {base_lr = 0.1, max_lr = {1, 2, 3}}) end)
    refuses("CyclicLR: mode must be one of 'triangular', 'triangular2', 'exp_range', got \"linear\"",
            function(o) L.CyclicLR(o, {base_lr = 0.1, max_lr = 1, mode = "linear"}) end)
    refuses("CyclicLR: step_size_up must be positive, got 0",
            function(o) L.CyclicLR(o, {base_lr = 0.1, max_lr = 1, step_size_up = 0}) end)
    refuses("CyclicLR: scale_fn must be a function, got 2",
            function(o) L.CyclicLR(o, {base_lr = 0.1, max_lr = 1, scale_fn = 2}) end)
    refuses("CyclicLR: the optimizer has no momentum or betas; pass cycle_momentum = false",
            function(o) L.CyclicLR(o, {base_lr = 0.1, max_lr = 1}) end,
            {param_groups = {{lr = 0.1}}, defaults = {lr = 0.1}})
    refuses("CyclicLR: param_groups[2].betas is not a table",
            function(o) L.CyclicLR(o, {base_lr = 0.1, max_lr = 1}) end,
            {param_groups = {{lr = 0.1, betas = {0.9, 0.999}}, {lr = 0.1}}, defaults = {lr = 0.1, betas = {0.9, 0.999}}})
    refuses("boom", function(o)
      L.CyclicLR(o, {base_lr = 0.3, max_lr = 1, scale_fn = function() error("boom") end})
    end)
  end)

  it("refuses bad OneCycleLR settings", function()
    refuses("OneCycleLR: total_steps must be positive, got 0",
            function(o) L.OneCycleLR(o, {max_lr = 1, total_steps = 0}) end)
    refuses("OneCycleLR: define either total_steps or (epochs and steps_per_epoch)",
            function(o) L.OneCycleLR(o, {max_lr = 1}) end)
    refuses("OneCycleLR: steps_per_epoch must be an integer, got nil",
            function(o) L.OneCycleLR(o, {max_lr = 1, epochs = 3}) end)
    refuses("OneCycleLR: pct_start must be a number between 0 and 1, got 1.5",
            function(o) L.OneCycleLR(o, {max_lr = 1, total_steps = 10, pct_start = 1.5}) end)
    refuses("OneCycleLR: anneal_strategy must be one of 'cos', 'linear', got \"exp\"",
            function(o) L.OneCycleLR(o, {max_lr = 1, total_steps = 10, anneal_strategy = "exp"}) end)
    refuses("OneCycleLR: max_lr must be a number, got nil", function(o) L.OneCycleLR(o, {total_steps = 10}) end)
  end)

  it("raises, like PyTorch, when OneCycleLR steps past total_steps, changing nothing", function()
    local opt = sgd()
    local s = L.OneCycleLR(opt, {max_lr = 1, total_steps = 10})
    for _ = 1, 10 do s:step() end          -- PyTorch allows total_steps steps after construction
    local before, last = copy(opt.param_groups), s.last_epoch
    assert.error_matches(function() s:step() end,
      "OneCycleLR: tried to step 12 times; the specified number of total steps is 10", 1, true)
    assert.same(before, opt.param_groups)
    assert.are.equal(last, s.last_epoch)
  end)

  it("refuses bad SequentialLR and ChainedScheduler parts", function()
    local opt, other = sgd(), sgd()
    local const, expo = L.ConstantLR(opt), L.ExponentialLR(opt, {gamma = 0.9})
    local foreign = L.ExponentialLR(other, {gamma = 0.9})
    refuses("SequentialLR: expected 1 milestones (one fewer than the 2 schedulers), got 2",
            function(o) L.SequentialLR(o, {schedulers = {const, expo}, milestones = {2, 3}}) end, opt)
    refuses("SequentialLR: milestones must be a list of integers, got nil",
            function(o) L.SequentialLR(o, {schedulers = {const, expo}}) end, opt)
    refuses("SequentialLR: schedulers[2] belongs to a different optimizer; all must share one",
            function(o) L.SequentialLR(o, {schedulers = {const, foreign}, milestones = {2}}) end, opt)
    refuses("SequentialLR: schedulers must be a non-empty list of schedulers, got nil",
            function(o) L.SequentialLR(o, {milestones = {}}) end, opt)
    refuses("ChainedScheduler: schedulers[1] is not a scheduler (got table)",
            function(o) L.ChainedScheduler(o, {schedulers = {{}}}) end, opt)
    refuses("ChainedScheduler: schedulers[2] belongs to a different optimizer; all must share one",
            function() L.ChainedScheduler({const, foreign}) end, opt)
  end)

  it("refuses bad ReduceLROnPlateau settings and metrics", function()
    refuses("ReduceLROnPlateau: factor must be < 1.0, got 1.0", function(o) L.ReduceLROnPlateau(o, {factor = 1.0}) end)
    refuses("ReduceLROnPlateau: mode must be one of 'min', 'max', got \"avg\"",
            function(o) L.ReduceLROnPlateau(o, {mode = "avg"}) end)
    refuses("ReduceLROnPlateau: threshold_mode must be one of 'rel', 'abs', got \"pct\"",
            function(o) L.ReduceLROnPlateau(o, {threshold_mode = "pct"}) end)
    refuses("ReduceLROnPlateau: expected 2 values for min_lr, got 1",
            function(o) L.ReduceLROnPlateau(o, {min_lr = {0.1}}) end)
    refuses("ReduceLROnPlateau: patience must be >= 0, got -1",
            function(o) L.ReduceLROnPlateau(o, {patience = -1}) end)
    local s = L.ReduceLROnPlateau(sgd())
    assert.error_matches(function() s:step("low") end,
      'ReduceLROnPlateau:step: metrics must be a number, got "low"', 1, true)
    assert.error_matches(function() s:step() end, "ReduceLROnPlateau:step: metrics must be a number, got nil", 1, true)
  end)

  it("refuses to resume (last_epoch ~= -1) without initial_lr in the groups", function()
    refuses("StepLR: param_groups[1].initial_lr is not set; it is needed to resume (last_epoch = 5)",
            function(o) L.StepLR(o, {step_size = 3, last_epoch = 5}) end)
  end)

  it("refuses a bad epoch in step(epoch)", function()
    local s = L.CosineAnnealingWarmRestarts(sgd(), {T_0 = 3})
    assert.error_matches(function() s:step(-1) end,
      "CosineAnnealingWarmRestarts:step: expected a non-negative epoch, got -1", 1, true)
    local s2 = L.StepLR(sgd(), {step_size = 3})
    assert.error_matches(function() s2:step("3") end, 'StepLR:step: epoch must be a number, got "3"', 1, true)
  end)
end)
