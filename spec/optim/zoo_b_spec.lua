-- Parity of the optimizer zoo (issue #16: schedule-free, SophiaG, Prodigy, Muon, Lion, LAMB,
-- LARS, AdaBelief, Adan) with their reference implementations
-- (spec/fixtures/gen_zoo_b.py), step by step at relative 1e-8 in float64.
local crater = require "crater"
local F = dofile("spec/fixtures/zoo_b.lua")
-- gen_zoo_a.py's cases run on the same problems (its wrappers are wrappers_spec's)
for _, case in ipairs(dofile("spec/fixtures/zoo_a.lua").cases) do F.cases[#F.cases + 1] = case end

local Z = dofile("spec/optim/zoo_problems.lua")
local make, values, max_rel, copy = Z.make, Z.values, Z.max_rel, Z.copy

for ci, case in ipairs(F.cases) do
  if crater.optim[case.optimizer] and case.options.inner == nil then
    it(string.format("%s %d on %s matches the reference", case.optimizer, ci, case.problem), function()
      local ps, f = make(case.problem)
      local cls = crater.optim[case.optimizer]
      local opt = #ps == 2 and cls({{params = {ps[1]}}, (function() local g = copy(case.group2); g.params = {ps[2]}; return g end)()},
        copy(case.options)) or cls(ps, copy(case.options))
      local sf = case.optimizer:find("ScheduleFree") ~= nil
      local sophia = case.optimizer == "SophiaG"
      if sf then opt:train() end
      for s = 1, #case.steps do
        opt:zero_grad()
        local l = f()
        if case.options.maximize then l = -l end
        l:backward()
        if not sophia then opt:step()
        else
          if (s - 1) % case.extra.hessian_every == 0 then opt:update_hessian() end
          opt:step(nil, case.extra.bs and {bs = case.extra.bs} or nil)
        end
        for i, p in ipairs(ps) do
          local e = max_rel(values(p), case.steps[s][i])
          assert(e <= 1e-8, string.format("step %d param %d: relative error %.3g", s, i, e))
        end
      end
      if sf then
        opt:eval()
        for i, p in ipairs(ps) do assert(max_rel(values(p), case.eval_params[i]) <= 1e-8) end
        assert.are.equal(case.param_groups[1].k, opt.param_groups[1].k)
      elseif sophia then
        assert.are.equal(case.state[1].step, opt.state[ps[1]].step)
      elseif case.optimizer == "Prodigy" then   -- the learned step size and its parts
        local want, got = case.param_groups[1], opt.param_groups[1]
        for _, k in ipairs({"d", "d_max", "d_hat", "d_numerator", "d_denom"}) do
          assert(math.abs(got[k] - want[k]) <= 1e-8 * math.abs(want[k]), k)
        end
        assert.are.equal(want.k, got.k)
        assert.are.equal(case.state[1].step, opt.state[ps[1]].step)
      end
    end)
  end
end

describe("schedule-free", function()
  it("refuses step in eval mode and changes nothing", function()
    local p = crater.tensor({1.0, 2.0}, {dtype = "float64", requires_grad = true})
    local opt = crater.optim.AdamWScheduleFree({p})
    local l = (p * p):sum(); l:backward()
    assert.has_error(function() opt:step() end,
      "AdamWScheduleFree: step: the optimizer is in eval mode; call opt:train() before training steps (and opt:eval() before evaluating or saving)")
    assert.are.equal(1.0, p:get(1))
    assert.are.equal(0, opt.param_groups[1].k)
  end)
  it("refuses bad options naming them", function()
    local p = crater.tensor({1.0}, {requires_grad = true})
    assert.has_error(function() crater.optim.AdamWScheduleFree({p}, {betas = {0, 0.9}}) end)
    assert.has_error(function() crater.optim.SGDScheduleFree({p}, {momentum = 1}) end)
    assert.has_error(function() crater.optim.SGDScheduleFree({p}, {lr = 0 / 0}) end)
    assert.has_error(function() crater.optim.AdamWScheduleFree({p}, {betas = {0.9}}) end)
  end)
end)

describe("SophiaG", function()
  it("refuses update_hessian before any backward, changing nothing", function()
    local p = crater.tensor({1.0, 2.0}, {dtype = "float64", requires_grad = true})
    local opt = crater.optim.SophiaG({p})
    assert.has_error(function() opt:update_hessian() end,
      "SophiaG: update_hessian: no parameter has a gradient yet (call backward first)")
    assert.is_nil(next(opt.state))
  end)
end)

describe("lab", function()
  it("races the schedule-free optimizers in train mode", function()
    local r = crater.lab.race{fn = "rosenbrock", optimizers = {"adamwschedulefree", "sgdschedulefree"},
      steps = 5, quiet = true}
    for _, c in ipairs(r.contestants) do
      assert.is_nil(c.error)
      assert.is_nil(c.settings.k)          -- group_keys are not options
      assert.is_true(c.final_loss < c.losses[1])
    end
  end)
end)
