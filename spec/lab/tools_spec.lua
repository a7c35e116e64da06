local crater = require "crater"
local lab = require "crater.lab"
local lr_find = require "crater.lab.lr_find"
local nn = crater.nn

-- A tiny regression: y = 2x + 1 on 64 points.
local function problem()
  crater.manual_seed(0)
  local x = crater.randn(64, 1)
  local y = x * 2 + 1
  return {x = x, y = y, batch_size = 16}
end

describe("lab.train_race", function()
  it("starts every contestant from the same weights and batches (same seed)", function()
    local r = lab.train_race{model_factory = function() return nn.Linear(1, 1) end, data = problem(),
      loss = nn.MSELoss(), optimizers = {{"sgd", lr = 0.1}, {"sgd", lr = 0.1, label = "again"}, {"adam", lr = 0.1}},
      epochs = 2, quiet = true}
    local a, b, c = r.contestants[1], r.contestants[2], r.contestants[3]
    assert.equal(8, #a.losses)               -- 2 epochs x 4 batches
    assert.same(a.losses, b.losses)          -- identical runs
    assert.equal(a.losses[1], c.losses[1])   -- same model and batch before any step
    assert(a.final_loss < a.losses[1])
  end)

  it("steps a contestant's schedule once per batch", function()
    local r = lab.train_race{model_factory = function() return nn.Linear(1, 1) end, data = problem(),
      loss = nn.MSELoss(), optimizers = {{"sgd", lr = 0.1, schedule = {"StepLR", step_size = 2, gamma = 0.5}}},
      epochs = 1, quiet = true}
    assert.same({0.1, 0.1, 0.05, 0.05}, r.contestants[1].lrs)
    assert.equal("sgd+StepLR(gamma=0.5 step_size=2)", r.contestants[1].label)
  end)

  it("tests a schedule-free contestant at its averaged point x, not at y", function()
    local SF = crater.optim.AdamWScheduleFree
    local eval, moved = SF.eval, nil
    SF.eval = function(self)   -- how far eval moves the weights from y to x
      local before = self.param_groups[1].params[1]:clone()
      eval(self)
      moved = (self.param_groups[1].params[1] - before):abs():max():item()
      return self
    end
    local data = problem()
    data.test = {x = data.x, y = data.y}
    local ok, r = pcall(lab.train_race, {model_factory = function() return nn.Linear(1, 1) end, data = data,
      loss = nn.MSELoss(), optimizers = {{"adamwschedulefree", lr = 0.05}}, epochs = 2, quiet = true})
    SF.eval = eval
    assert(ok, r)
    assert.is_true(moved ~= nil and moved > 0)   -- evaluated at x, which is not y
    assert.is_number(r.contestants[1].test_loss)
  end)
end)

describe("lab.lr_find", function()
  it("picks the steepest descent against log lr", function()
    -- Slopes per decade: -1, -3, -0.5: the steepest step ends at lr = 100.
    assert.equal(100, (lr_find.steepest({1, 10, 100, 1000}, {5, 4, 1, 0.5})))
  end)

  it("grows the lr exponentially from start_lr to end_lr", function()
    local r = lab.lr_find{model_factory = function() return nn.Linear(1, 1) end, data = problem(),
      loss = nn.MSELoss(), start_lr = 1e-4, end_lr = 1e-2, num_iter = 3, diverge = math.huge}
    assert.equal(3, #r.lrs)
    assert(math.abs(r.lrs[1] - 1e-4) < 1e-18 and math.abs(r.lrs[2] - 1e-3) < 1e-17 and math.abs(r.lrs[3] - 1e-2) < 1e-16)
    -- bias-corrected moving average: the first smoothed value is the first loss
    assert(math.abs(r.smoothed[1] - r.losses[1]) < 1e-12)
  end)

  it("rejects a bad lr range", function()
    assert.error_matches(function() lab.lr_find{model_factory = function() end, data = problem(), start_lr = 1, end_lr = 0.1} end,
      "lr_find: need 0 < start_lr < end_lr", 1, true)
  end)
end)

describe("lab.sweep", function()
  it("runs every grid combination and averages over seeds", function()
    -- x^2/2 from 1 with SGD: after n steps x = (1 - lr)^n, f = (1 - lr)^(2n) / 2.
    local fn = {name = "half-square", f = function(x) return 0.5 * x[1] ^ 2 end, start = {1}, minima = {{0}}, fmin = 0}
    local s = lab.sweep{fn = fn, optimizer = "sgd", steps = 3, grid = {lr = {0.1, 0.5}}, seeds = {0, 1}}
    assert.equal(2, #s.mean)
    assert(math.abs(s.mean[1] - 0.5 * 0.9 ^ 6) < 1e-15)
    assert(math.abs(s.mean[2] - 0.5 * 0.5 ^ 6) < 1e-15)
    assert.equal(0, s.std[1])                -- no jitter: every seed gives the same run
    assert.truthy(s:table():find("| lr=0.5 |", 1, true))
  end)

  it("makes the combinations of two hyper-parameters", function()
    local s = lab.sweep{fn = "booth", optimizer = "momentum", steps = 2,
      grid = {lr = {1e-3, 1e-2}, momentum = {0.5, 0.9}}}
    assert.equal(4, #s.specs)
    assert.equal("lr=0.001 momentum=0.5", s.specs[1].label)
    assert.equal("lr=0.01 momentum=0.9", s.specs[4].label)
  end)
end)
