-- Schedulers driving the real optimizers: the lr they set is the lr the step uses,
-- momentum cycling reaches SGD's momentum and Adam's betas[1], and a run saved with
-- opt:state_dict() and s:state_dict() resumes exactly.
local crater = require "crater"
local L = crater.optim.lr_scheduler

-- One step on loss = sum(p), whose gradient is 1 everywhere.
local function train_step(opt, p)
  opt:zero_grad()
  p:sum():backward()
  opt:step()
end

describe("schedulers with crater.optim", function()
  it("SGD uses the lr StepLR sets (worked by hand)", function()
    local p = crater.tensor({0, 0}, {requires_grad = true})
    local opt = crater.optim.SGD({p}, {lr = 1})
    local s = L.StepLR(opt, {step_size = 2, gamma = 0.5})
    for _ = 1, 5 do train_step(opt, p); s:step() end
    -- lrs 1, 1, 0.5, 0.5, 0.25: p = -(1 + 1 + 0.5 + 0.5 + 0.25)
    assert.same({-3.25, -3.25}, p:detach():totable())
    assert.same({0.25}, s:get_last_lr())
  end)

  it("works on every param group of a real optimizer", function()
    local a = crater.tensor({0}, {requires_grad = true})
    local b = crater.tensor({0}, {requires_grad = true})
    local opt = crater.optim.SGD({{params = {a}, lr = 1}, {params = {b}, lr = 0.5}}, {lr = 1})
    local s = L.LambdaLR(opt, {function(e) return 1 / (e + 1) end, function() return 2 end})
    for _ = 1, 3 do train_step(opt, a); train_step(opt, b); s:step() end
    assert.same({1 * (1 / 4), 0.5 * 2}, s:get_last_lr())
    assert.near(-(1 + 1 / 2 + 1 / 3), a:detach():totable()[1], 1e-6)   -- float32 parameters
    assert.same({-(0.5 * 2) * 3}, b:detach():totable())
  end)

  it("OneCycleLR cycles SGD's momentum and Adam's betas[1], as trace's stand-ins do", function()
    local function run(make)
      local p = crater.tensor({1, 2}, {requires_grad = true})
      local opt = make(p)
      local s = L.OneCycleLR(opt, {max_lr = 0.1, total_steps = 12})
      local lrs, moms = {}, {}
      for t = 1, 12 do
        local g = opt.param_groups[1]
        lrs[t], moms[t] = g.lr, g.betas and g.betas[1] or g.momentum
        train_step(opt, p); s:step()
      end
      return lrs, moms, opt
    end
    local f = function(o) return L.OneCycleLR(o, {max_lr = 0.1, total_steps = 12}) end
    local lrs, moms = run(function(p) return crater.optim.SGD({p}, {lr = 0.1, momentum = 0.9}) end)
    local want_lrs, want_moms = L.trace(f, 12)
    assert.same(want_lrs, lrs)
    assert.same(want_moms, moms)
    local alrs, amoms, adam = run(function(p) return crater.optim.Adam({p}, {lr = 0.1}) end)
    local awant_lrs, awant_moms = L.trace(f, 12, {betas = {0.9, 0.999}})
    assert.same(awant_lrs, alrs)
    assert.same(awant_moms, amoms)
    assert.are.equal(0.999, adam.param_groups[1].betas[2])
  end)

  it("CyclicLR cycles Adam's betas[1]", function()
    local p = crater.tensor({1}, {requires_grad = true})
    local opt = crater.optim.Adam({p}, {lr = 0.1})
    local s = L.CyclicLR(opt, {base_lr = 0.01, max_lr = 0.1, step_size_up = 2})
    local got = {}
    for t = 1, 5 do got[t] = opt.param_groups[1].betas[1]; train_step(opt, p); s:step() end
    for t, want in ipairs {0.9, 0.85, 0.8, 0.85, 0.9} do assert.near(want, got[t], 1e-15) end
  end)

  it("resumes exactly from opt:state_dict() and s:state_dict()", function()
    local function make()
      local p = crater.tensor({1, -1, 0.5}, {requires_grad = true})
      local opt = crater.optim.SGD({p}, {lr = 0.1, momentum = 0.9})
      local s = L.SequentialLR(opt, {schedulers = {L.LinearLR(opt, {start_factor = 0.2, total_iters = 3}),
                                                   L.CosineAnnealingLR(opt, {T_max = 6})},
                                     milestones = {3}})
      return p, opt, s
    end
    local p, opt, s = make()
    for _ = 1, 5 do train_step(opt, p); s:step() end
    local osd, ssd = opt:state_dict(), s:state_dict()
    local p2, opt2, s2 = make()
    p2:detach():copy_(p:detach())
    opt2:load_state_dict(osd)
    s2:load_state_dict(ssd)
    for _ = 1, 7 do
      train_step(opt, p); s:step()
      train_step(opt2, p2); s2:step()
      assert.same(s:get_last_lr(), s2:get_last_lr())
      assert.same(p:detach():totable(), p2:detach():totable())
    end
  end)

  it("ReduceLROnPlateau halves the lr of a real optimizer when the loss stalls", function()
    local p = crater.tensor({0}, {requires_grad = true})
    local opt = crater.optim.SGD({p}, {lr = 1})
    local s = L.ReduceLROnPlateau(opt, {patience = 1, factor = 0.5})
    for _ = 1, 4 do s:step(crater.tensor(2.0):sum()) end   -- a 0-d tensor metric
    -- best at step 1; bad steps 2, 3: reduce after step 3; bad step 4 starts counting again
    assert.same({0.5}, s:get_last_lr())
    assert.are.equal(0.5, opt.param_groups[1].lr)
  end)
end)
