-- Lookahead and SAM (issue #16, part B) against their reference implementations
-- (spec/fixtures/gen_zoo_a.py: michaelrzhang/lookahead and davda54/sam under PyTorch 1.13),
-- step by step at relative 1e-8 in float64, and their contract: schedulers, resume, refusals.
local crater = require "crater"
local A = dofile("spec/fixtures/zoo_a.lua")
local Z = dofile("spec/optim/zoo_problems.lua")
local make, values, max_rel, copy = Z.make, Z.values, Z.max_rel, Z.copy

-- the optimizer a case names: groups when the problem has two parameters
local function build(case, ps)
  local o = copy(case.options)
  local inner_class, inner_opts = crater.optim[o.inner], o.inner_opts
  o.inner, o.inner_opts = nil, nil
  local params = ps
  if #ps == 2 then
    local g2 = copy(case.group2)
    g2.params = {ps[2]}
    params = {{params = {ps[1]}}, g2}
  end
  if case.optimizer == "SAM" then
    for k, v in pairs(inner_opts) do o[k] = v end
    return crater.optim.SAM(params, inner_class, o)
  end
  return crater.optim.Lookahead(inner_class(params, inner_opts), o)
end

for ci, case in ipairs(A.cases) do
  if case.optimizer == "Lookahead" or case.optimizer == "SAM" then
    it(string.format("%s %d on %s matches the reference", case.optimizer, ci, case.problem), function()
      local ps, f = make(case.problem)
      local opt = build(case, ps)
      for s = 1, #case.steps do
        opt:zero_grad()
        f():backward()
        if case.optimizer == "SAM" then opt:step(function() f():backward() end) else opt:step() end
        for i, p in ipairs(ps) do
          local e = max_rel(values(p), case.steps[s][i])
          assert(e <= 1e-8, string.format("step %d param %d: relative error %.3g", s, i, e))
        end
      end
    end)
  end
end

describe("Lookahead", function()
  local function problem()
    crater.manual_seed(3)
    local W = crater.randn(4, 3, {dtype = "float64", requires_grad = true})
    local X, Y = crater.randn(8, 4, {dtype = "float64"}), crater.randn(8, 3, {dtype = "float64"})
    return W, function() return ((X:matmul(W) - Y) ^ 2):mean() end
  end
  local function run(opt, f, n) for _ = 1, n do opt:zero_grad(); f():backward(); opt:step() end end

  it("resumes bit for bit from its state_dict, slow weights included", function()
    local W, f = problem()
    local straight = crater.optim.Lookahead(crater.optim.SGD({W}, {lr = 0.1, momentum = 0.9}), {k = 3})
    run(straight, f, 10)
    local want = W:clone()
    local W2, f2 = problem()
    local first = crater.optim.Lookahead(crater.optim.SGD({W2}, {lr = 0.1, momentum = 0.9}), {k = 3})
    run(first, f2, 4)   -- mid-way between two lookahead steps
    local again = crater.optim.Lookahead(crater.optim.SGD({W2}, {lr = 0.1, momentum = 0.9}), {k = 3})
    again:load_state_dict(first:state_dict())
    run(again, f2, 6)
    assert.are.equal(0, (W2 - want):abs():max():item())
  end)

  it("works with a scheduler through the inner optimizer's param_groups", function()
    local W, f = problem()
    local opt = crater.optim.Lookahead(crater.optim.SGD({W}, {lr = 0.1}))
    local sched = crater.optim.lr_scheduler.StepLR(opt, {step_size = 2, gamma = 0.5})
    for _ = 1, 4 do opt:zero_grad(); f():backward(); opt:step(); sched:step() end
    assert.are.equal(0.025, opt.param_groups[1].lr)
  end)

  it("refuses bad options naming them", function()
    local W = problem()
    local inner = crater.optim.SGD({W}, {lr = 0.1})
    assert.has_error(function() crater.optim.Lookahead(inner, {k = 0}) end, "Lookahead: k must be a positive integer, got 0")
    assert.has_error(function() crater.optim.Lookahead(inner, {alpha = 1.5}) end, "Lookahead: alpha must be in [0, 1], got 1.5")
    assert.has_error(function() crater.optim.Lookahead(inner, {pullback_momentum = "pullback"}) end)
    assert.has_error(function() crater.optim.Lookahead(inner, {la_steps = 5}) end,
      "Lookahead: unknown option 'la_steps' (the options are alpha, k, pullback_momentum)")
    assert.has_error(function() crater.optim.Lookahead({}, {}) end, "Lookahead: inner must be an optimizer, got table")
  end)
end)

describe("SAM", function()
  it("refuses a step without a closure and changes nothing", function()
    crater.manual_seed(5)
    local W = crater.randn(3, 2, {dtype = "float64", requires_grad = true})
    local sam = crater.optim.SAM({W}, crater.optim.SGD, {lr = 0.1})
    ;(W * W):sum():backward()
    local before = W:clone()
    assert.has_error(function() sam:step() end, "SAM: step needs a closure that recomputes the loss and calls backward")
    assert.are.equal(0, (W - before):abs():max():item())
    assert.has_error(function() crater.optim.SAM({W}, crater.optim.SGD, {lr = 0.1, rho = -1}) end,
      "SAM: rho must be a number >= 0, got -1 (invalid rho)")
    assert.has_error(function() crater.optim.SAM({W}, "SGD", {lr = 0.1}) end)
  end)

  it("resumes from its state_dict, rho and adaptive included", function()
    crater.manual_seed(6)
    local W = crater.randn(3, 2, {dtype = "float64", requires_grad = true})
    local sam = crater.optim.SAM({W}, crater.optim.Adam, {lr = 0.1, rho = 0.2, adaptive = true})
    local f = function() return (W * W):sum() end
    f():backward()
    sam:step(function() f():backward() end)
    local other = crater.optim.SAM({W}, crater.optim.Adam, {lr = 0.1})
    other:load_state_dict(sam:state_dict())
    assert.are.equal(0.2, other.param_groups[1].rho)
    assert.is_true(other.param_groups[1].adaptive)
    assert.are.equal(1, other.base_optimizer.state[W].step)
  end)
end)
