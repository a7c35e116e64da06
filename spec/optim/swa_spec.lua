-- crater.optim.swa_utils (issue #16, part B): SWALR against torch 1.13's (fixtures by
-- spec/fixtures/gen_swa.py), AveragedModel and update_bn against hand computation.
local crater = require "crater"
local swa = crater.optim.swa_utils
local nn = crater.nn
local F = dofile("spec/fixtures/swa.lua")

describe("SWALR", function()
  for ci, case in ipairs(F.cases) do
    it(string.format("case %d (%s, anneal_epochs %d) sets torch's lrs", ci, case.options.anneal_strategy,
      case.options.anneal_epochs), function()
      local a = crater.zeros(2, {requires_grad = true})
      local b = crater.zeros(3, {requires_grad = true})
      local opt = crater.optim.SGD({{params = {a}, lr = 0.5}, {params = {b}, lr = 0.1}}, {lr = 0.5})
      local s = swa.SWALR(opt, case.options)
      for step, want in ipairs(case.lrs) do
        if step > 1 then s:step() end
        for g = 1, 2 do
          assert(math.abs(opt.param_groups[g].lr - want[g]) <= 1e-12 * want[g],
            string.format("step %d group %d: %.17g, torch %.17g", step - 1, g, opt.param_groups[g].lr, want[g]))
        end
      end
    end)
  end

  it("refuses bad options, naming them", function()
    local opt = crater.optim.SGD({crater.zeros(2, {requires_grad = true})}, {lr = 0.1})
    assert.has_error(function() swa.SWALR(opt, {}) end, "SWALR: swa_lr is required")
    assert.has_error(function() swa.SWALR(opt, {swa_lr = 0.1, anneal_strategy = "step"}) end,
      "SWALR: anneal_strategy must be one of 'cos', 'linear', got \"step\"")
    assert.has_error(function() swa.SWALR(opt, {swa_lr = {0.1, 0.2}}) end, "SWALR: expected 1 values for swa_lr, got 2")
    assert.has_error(function() swa.SWALR(opt, {swa_lr = 0.1, anneal_epochs = -1}) end)
    assert.are.equal(0.1, opt.param_groups[1].lr)   -- nothing changed
  end)
end)

describe("AveragedModel", function()
  it("averages the snapshots it is given, equally or with avg_fn", function()
    local model = nn.Linear(2, 1)
    local avg = swa.AveragedModel(model)
    local ema = swa.AveragedModel(model, function(a, p) return a * 0.5 + p * 0.5 end)
    for k = 1, 3 do
      crater.no_grad(function() model.weight:fill_(k); model.bias:fill_(-k) end)
      avg:update_parameters(model)
      ema:update_parameters(model)
    end
    assert.are.equal(3, avg.n_averaged)
    assert.are.same({{2, 2}}, avg.module.weight:totable())        -- (1 + 2 + 3) / 3
    assert.are.same({-2}, avg.module.bias:totable())
    assert.are.same({{2.25, 2.25}}, ema.module.weight:totable())  -- ((1 + 2)/2 + 3)/2
    assert.are.same({{3, 3}}, model.weight:totable())             -- the model is its own
    local y = avg(crater.ones(1, 2))
    assert.are.same({{2 + 2 - 2}}, y:totable())
    assert.has_error(function() avg:update_parameters(nn.Linear(3, 1)) end)
  end)
end)

describe("update_bn", function()
  it("recomputes BatchNorm statistics as the cumulative average over the loader", function()
    local model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    crater.no_grad(function()
      model[1].weight:copy_(crater.eye(2)); model[1].bias:zero_()
    end)
    model:eval()
    local batches = {crater.tensor({{1, 2}, {3, 6}}), crater.tensor({{5, 0}, {7, 2}, {9, 4}})}
    local avg = swa.AveragedModel(model)
    swa.update_bn(batches, avg)
    local bn = avg.module[2]
    -- batch means (2, 4) and (7, 2); unbiased variances (2, 8) and (4, 4): averaged per batch
    assert.are.same({4.5, 3}, bn.running_mean:totable())
    assert.are.same({3, 6}, bn.running_var:totable())
    assert.are.equal(0.1, bn.momentum)                 -- restored
    assert.is_false(avg.module.training)               -- mode kept
    assert.are.same({0, 0}, model[2].running_mean:totable())   -- the original untouched
  end)
end)
