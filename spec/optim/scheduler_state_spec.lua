-- state_dict()/load_state_dict(): a scheduler rebuilt on a fresh optimizer, given the
-- optimizer's groups and the scheduler's state from the middle of a run, continues
-- exactly as the original does.
local lr_scheduler = require "crater.optim.lr_scheduler"

local function sgd()
  return {param_groups = {{lr = 0.1, momentum = 0.9}, {lr = 0.05, momentum = 0.9}},
          defaults = {lr = 0.1, momentum = 0.9}}
end
local function adam()
  return {param_groups = {{lr = 0.1, betas = {0.9, 0.999}}, {lr = 0.05, betas = {0.9, 0.999}}},
          defaults = {lr = 0.1, betas = {0.9, 0.999}}}
end

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

-- Whether v holds only what crater.save can write: numbers, strings, booleans, tables.
local function plain(v)
  local t = type(v)
  if t == "table" then
    for k, x in pairs(v) do
      if not (type(k) == "string" or math.type(k) == "integer") or not plain(x) then return false end
    end
    return true
  end
  return t == "number" or t == "string" or t == "boolean"
end

local function snapshot(opt)
  local out = {}
  for i, g in ipairs(opt.param_groups) do
    out[i] = {lr = g.lr, m = g.betas and g.betas[1] or g.momentum}
  end
  return out
end

-- Runs `before` steps, saves, runs `after` more; then rebuilds on a fresh optimizer,
-- loads the groups (as opt:load_state_dict would) and the scheduler state, runs `after`.
local function check_resume(make_opt, factory, before, after, arg)
  arg = arg or function() return nil end
  local opt = make_opt()
  local s = factory(opt)
  for t = 1, before do s:step(arg(t)) end
  local sd = s:state_dict()
  assert.is_true(plain(sd), "state dict holds only plain data")
  local groups = copy(opt.param_groups)
  local expected = {}
  for t = before + 1, before + after do
    s:step(arg(t))
    expected[#expected + 1] = {snapshot(opt), s:get_last_lr()}
  end

  local opt2 = make_opt()
  local s2 = factory(opt2)
  for i, g in ipairs(opt2.param_groups) do
    for k in pairs(g) do g[k] = nil end
    for k, v in pairs(copy(groups[i])) do g[k] = v end
  end
  s2:load_state_dict(sd)
  local got = {}
  for t = before + 1, before + after do
    s2:step(arg(t))
    got[#got + 1] = {snapshot(opt2), s2:get_last_lr()}
  end
  assert.same(expected, got)
end

local L = lr_scheduler
local cases = {
  {"LambdaLR", sgd, function(o) return L.LambdaLR(o, function(e) return 0.9 ^ e end) end},
  {"MultiplicativeLR", sgd, function(o)
    return L.MultiplicativeLR(o, {function() return 0.9 end, function(e) return e % 3 == 0 and 0.5 or 1 end})
  end},
  {"StepLR", sgd, function(o) return L.StepLR(o, {step_size = 4, gamma = 0.5}) end},
  {"MultiStepLR", sgd, function(o) return L.MultiStepLR(o, {milestones = {3, 9, 14}}) end},
  {"ConstantLR", sgd, function(o) return L.ConstantLR(o, {factor = 0.5, total_iters = 10}) end},
  {"LinearLR", sgd, function(o) return L.LinearLR(o, {start_factor = 0.2, total_iters = 12}) end},
  {"ExponentialLR", sgd, function(o) return L.ExponentialLR(o, {gamma = 0.9}) end},
  {"PolynomialLR", sgd, function(o) return L.PolynomialLR(o, {total_iters = 15, power = 2}) end},
  {"CosineAnnealingLR", sgd, function(o) return L.CosineAnnealingLR(o, {T_max = 6, eta_min = 0.001}) end},
  {"CosineAnnealingWarmRestarts", sgd, function(o) return L.CosineAnnealingWarmRestarts(o, {T_0 = 3, T_mult = 2}) end},
  {"CyclicLR", sgd, function(o)
    return L.CyclicLR(o, {base_lr = 0.01, max_lr = 0.1, step_size_up = 3, mode = "triangular2"})
  end},
  {"CyclicLR on betas", adam, function(o)
    return L.CyclicLR(o, {base_lr = 0.01, max_lr = 0.1, step_size_up = 3, mode = "exp_range", gamma = 0.9})
  end},
  {"OneCycleLR", sgd, function(o) return L.OneCycleLR(o, {max_lr = 0.1, total_steps = 30, three_phase = true}) end},
  {"OneCycleLR on betas", adam, function(o) return L.OneCycleLR(o, {max_lr = 0.1, total_steps = 30}) end},
  {"SequentialLR", sgd, function(o)
    return L.SequentialLR(o, {schedulers = {L.LinearLR(o, {start_factor = 0.1, total_iters = 4}),
                                            L.CosineAnnealingLR(o, {T_max = 8})}, milestones = {6}})
  end},
  {"ChainedScheduler", sgd, function(o)
    return L.ChainedScheduler(o, {schedulers = {L.ConstantLR(o, {factor = 0.5, total_iters = 7}),
                                                L.ExponentialLR(o, {gamma = 0.95})}})
  end},
  {"PowerLR", sgd, function(o) return L.PowerLR(o, {s = 5, c = 2}) end},
  {"ExponentialDecayLR", sgd, function(o) return L.ExponentialDecayLR(o, {s = 4, staircase = true}) end},
  {"PiecewiseConstantLR", sgd, function(o)
    return L.PiecewiseConstantLR(o, {boundaries = {4, 11}, values = {0.1, 0.02, 0.005}})
  end},
  {"WarmupCosineLR", sgd, function(o) return L.WarmupCosineLR(o, {warmup_steps = 5, total_steps = 20}) end},
}

describe("scheduler state_dict", function()
  for _, c in ipairs(cases) do
    it(c[1] .. " resumes exactly mid-run", function()
      check_resume(c[2], c[3], 9, 15)
    end)
  end

  it("ReduceLROnPlateau resumes exactly mid-plateau, inside a cooldown", function()
    local metrics = {1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8}
    check_resume(sgd, function(o) return L.ReduceLROnPlateau(o, {patience = 2, cooldown = 2, factor = 0.5}) end,
                 7, 13, function(t) return metrics[t] end)
  end)

  it("records the class name and refuses a state dict from another class", function()
    local opt = sgd()
    local sd = L.StepLR(opt, {step_size = 3}):state_dict()
    assert.are.equal("StepLR", sd._class)
    local opt2 = sgd()
    local s = L.CosineAnnealingLR(opt2, {T_max = 10})
    local before = copy(opt2.param_groups)
    assert.error_matches(function() s:load_state_dict(sd) end,
      "CosineAnnealingLR:load_state_dict: the state dict is from StepLR, not CosineAnnealingLR", 1, true)
    assert.same(before, opt2.param_groups)
    assert.are.equal(10, s.T_max)
  end)

  it("refuses a table that is not a scheduler state dict", function()
    local s = L.StepLR(sgd(), {step_size = 3})
    assert.error_matches(function() s:load_state_dict({last_epoch = 4}) end,
      "StepLR:load_state_dict: the state dict is from no scheduler, not StepLR", 1, true)
    assert.error_matches(function() s:load_state_dict(42) end,
      "StepLR:load_state_dict: expected a state dict table, got 42", 1, true)
  end)

  it("refuses a state dict made for a different number of param groups", function()
    local sd = L.StepLR(sgd(), {step_size = 3}):state_dict()
    local s = L.StepLR({param_groups = {{lr = 1}}}, {step_size = 3})
    assert.error_matches(function() s:load_state_dict(sd) end,
      "StepLR:load_state_dict: the state dict has 2 param groups, the optimizer has 1", 1, true)
  end)

  it("SequentialLR refuses a state dict whose parts are other schedulers", function()
    local function seq(o, second)
      return L.SequentialLR(o, {schedulers = {L.ConstantLR(o, {factor = 0.5}), second(o)}, milestones = {3}})
    end
    local sd = seq(sgd(), function(o) return L.StepLR(o, {step_size = 2}) end):state_dict()
    local s = seq(sgd(), function(o) return L.ExponentialLR(o, {gamma = 0.9}) end)
    assert.error_matches(function() s:load_state_dict(sd) end,
      "SequentialLR:load_state_dict: schedulers[2] is a ExponentialLR, the state dict has a StepLR", 1, true)
  end)

  it("keeps LambdaLR's functions, saving a callable table's fields as PyTorch saves __dict__", function()
    local fn = setmetatable({rate = 0.5}, {__call = function(self, e) return self.rate ^ e end})
    local s = L.LambdaLR(sgd(), {function(e) return 1 / (e + 1) end, fn})
    for _ = 1, 3 do s:step() end
    local sd = s:state_dict()
    assert.same({false, {rate = 0.5}}, sd.lr_lambdas)
    fn.rate = 0.9
    local opt2 = sgd()
    local fn2 = setmetatable({rate = 0.1}, getmetatable(fn))
    local s2 = L.LambdaLR(opt2, {function(e) return 1 / (e + 1) end, fn2})
    s2:load_state_dict(sd)
    assert.are.equal(0.5, fn2.rate)
    s2:step()
    assert.are.equal(0.05 * 0.5 ^ 4, opt2.param_groups[2].lr)
    assert.are.equal(0.1 * (1 / 5), opt2.param_groups[1].lr)
  end)

  it("saves get_last_lr as a copy the caller cannot change", function()
    local s = L.StepLR(sgd(), {step_size = 3})
    local last = s:get_last_lr()
    last[1] = 42
    assert.same({0.1, 0.05}, s:get_last_lr())
  end)
end)
