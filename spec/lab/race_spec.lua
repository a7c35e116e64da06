local crater = require "crater"
local lab = require "crater.lab"
local plot = require "crater.lab.plot"

-- f(x) = 0.5 (x1^2 + 4 x2^2): SGD with lr 0.1 multiplies x1 by 0.9 and x2 by 0.6 per step.
local quad = {name = "quad", f = function(x) return 0.5 * (x[1] ^ 2 + 4 * x[2] ^ 2) end,
              start = {1, 1}, minima = {{0, 0}}, fmin = 0, window = {-1, 1, -1, 1}}

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  return d
end

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

describe("lab.race", function()
  it("records SGD's iterates on a quadratic (x_k = (0.9^k, 0.6^k))", function()
    local r = lab.race{fn = quad, optimizers = {{"sgd", lr = 0.1}}, steps = 5, tol = 1e-3}
    local c = r.contestants[1]
    assert.equal(6, #c.iterates)
    for k = 0, 5 do
      assert(math.abs(c.iterates[k + 1][1] - 0.9 ^ k) < 1e-15)
      assert(math.abs(c.iterates[k + 1][2] - 0.6 ^ k) < 1e-15)
      local want = 0.5 * (0.81 ^ k + 4 * 0.36 ^ k)
      assert(math.abs(c.losses[k + 1] - want) < 1e-14)
    end
    assert.is_false(c.diverged)
    assert.is_nil(c.steps_to_tol)     -- 0.5*0.81^5 = 0.17 > 1e-3
    assert(math.abs(c.distance - math.sqrt(0.9 ^ 10 + 0.6 ^ 10)) < 1e-15)
  end)

  it("finds the first step below tol", function()
    local r = lab.race{fn = quad, optimizers = {{"sgd", lr = 0.1}}, steps = 40, tol = 1e-2}
    -- 0.5 (0.81^k + 4 * 0.36^k) <= 0.01 first at k = 19 (0.5*0.81^19 = 0.0091; k = 18: 0.0112)
    assert.equal(19, r.contestants[1].steps_to_tol)
  end)

  it("gives every contestant the same start, and momentum/nag their presets", function()
    local r = lab.race{fn = "booth", optimizers = {"sgd", "momentum", "nag"}, steps = 3}
    for _, c in ipairs(r.contestants) do assert.same({-8, 8}, c.iterates[1]) end
    assert.equal(0.9, r.contestants[2].settings.momentum)
    assert.is_false(r.contestants[2].settings.nesterov)
    assert.is_true(r.contestants[3].settings.nesterov)
    -- Booth's suggested SGD lr is 1e-2 (the function's hint, not SGD's preset).
    assert.equal(1e-2, r.contestants[1].settings.lr)
  end)

  it("marks a NaN contestant diverged and goes on with the others", function()
    -- sqrt(x) from 1 with SGD lr 1: x = 1, 0.5, 0.5 - 1/(2 sqrt 0.5) < 0, so f(x_2) is NaN.
    local fn = {name = "sqrt", f = function(x) return x[1]:sqrt() end, start = {1}}
    local r = lab.race{fn = fn, optimizers = {{"sgd", lr = 1}, {"sgd", lr = 1e-3, label = "slow"}}, steps = 5}
    local bad, good = r.contestants[1], r.contestants[2]
    assert.is_true(bad.diverged)
    assert.equal(2, bad.diverged_at)
    assert.is_false(good.diverged)
    assert.equal(6, #good.losses)
  end)

  it("marks a blow-up (loss past 1e12 times its start) diverged", function()
    -- x^2 with SGD lr 2: x multiplies by -3 each step, f by 9; 9^13 > 1e12.
    local fn = {f = function(x) return x[1] ^ 2 end, start = {1}}
    local c = lab.race{fn = fn, optimizers = {{"sgd", lr = 2}}, steps = 50}.contestants[1]
    assert.is_true(c.diverged)
    assert.equal(13, c.diverged_at)
  end)

  it("races an optimizer class written in Lua", function()
    local Sign = crater.optim.Optimizer:extend("SignSGD", {lr = 0.01})
    function Sign:update(p, g) p:add_(g:sign(), -self.param_groups[1].lr) end
    local r = lab.race{fn = quad, optimizers = {{Sign, lr = 0.25}}, steps = 2}
    local c = r.contestants[1]
    assert.equal("signsgd", c.label)
    assert.same({0.5, 0.5}, c.iterates[3])
  end)

  it("applies a schedule at every step (cosine over the run)", function()
    local r = lab.race{fn = quad, optimizers = {{"sgd", lr = 0.1}}, steps = 4, schedule = "cosine"}
    local lrs = r.contestants[1].lrs
    for k = 0, 3 do assert(math.abs(lrs[k + 1] - 0.05 * (1 + math.cos(math.pi * k / 4))) < 1e-15) end
  end)

  it("names the known optimizers for an unknown one", function()
    assert.error_matches(function() lab.race{fn = quad, optimizers = {"adma"}} end,
      "race: unknown optimizer 'adma' (known: sgd, momentum, nag, adagrad", 1, true)
  end)

  it("names the known functions for an unknown one", function()
    assert.error_matches(function() lab.race{fn = "bael", optimizers = {"sgd"}} end,
      "race: unknown function 'bael' (known: rosenbrock, beale", 1, true)
  end)

  it("rejects options of the wrong type", function()
    assert.error_matches(function() lab.race{fn = quad, optimizers = {"sgd"}, steps = 2.5} end,
      "race: steps must be a positive integer, got 2.5", 1, true)
    assert.error_matches(function() lab.race{fn = quad, optimizers = {{"adam", lr = "big"}}} end,
      "race: adam's lr must be a number, got string", 1, true)
    assert.error_matches(function() lab.race{fn = quad, optimizers = {{"adam", lrr = 1}}} end,
      "race: adam: Adam: unknown option 'lrr'", 1, true)
    assert.error_matches(function() lab.race{fn = quad, optimizers = {"sgd"}, schedule = "cosin"} end,
      "race: unknown schedule 'cosin'", 1, true)
  end)
end)

describe("lab race reports", function()
  it("writes report.md with the table, settings, seed and version, and the pictures", function()
    local dir = tmpdir()
    local r = lab.race{fn = "beale", optimizers = {"sgd", {"adam", lr = 0.05}}, steps = 20, seed = 7,
                       out = dir, quiet = true}
    local md = read(dir .. "/report.md")
    assert.truthy(md:find("# Optimizer race on beale", 1, true))
    assert.truthy(md:find("| optimizer | final loss | best loss | distance to min | steps to tol | diverged |", 1, true))
    assert.truthy(md:find("| seed | 7 |", 1, true))
    assert.truthy(md:find("| crater | " .. crater._VERSION .. " |", 1, true))
    assert.truthy(md:find("| adam | Adam | amsgrad=false betas={0.9,0.999} eps=1e-08 lr=0.05", 1, true))
    assert.truthy(md:find(string.format("| sgd | %.6g |", r.contestants[1].final_loss), 1, true))
    assert.truthy(md:find('{"adam", amsgrad = false, betas = {0.9, 0.999}, eps = 1e-08, lr = 0.05', 1, true))
    if plot.available() then
      assert.truthy(md:find("![trajectories](trajectories.png)", 1, true))
      for _, f in ipairs({"trajectories.png", "trajectories.svg", "loss.png", "loss.svg"}) do
        local h = io.open(dir .. "/" .. f, "rb")
        assert.truthy(h, f)
        assert.truthy(#h:read("a") > 1000)
        h:close()
      end
    end
    os.execute("rm -r '" .. dir .. "'")
  end)

  it("still writes report.md without gnuplot, naming the Debian package", function()
    local saved = plot.gnuplot
    plot.gnuplot = "/nonexistent/gnuplot"
    local dir = tmpdir()
    local ok, err = pcall(lab.race, {fn = quad, optimizers = {"sgd"}, steps = 3, out = dir, quiet = true})
    plot.gnuplot = saved
    assert(ok, err)
    local md = read(dir .. "/report.md")
    assert.truthy(md:find("gnuplot-nox", 1, true))
    assert.is_nil(io.open(dir .. "/loss.png"))
    os.execute("rm -r '" .. dir .. "'")
  end)

  it("draws in the terminal with gnuplot's dumb terminal", function()
    if not plot.available() then return end
    local r = lab.race{fn = quad, optimizers = {{"sgd", lr = 0.1}}, steps = 10}
    local text = lab.show(r, {print = false, width = 60, height = 20})
    assert.truthy(text:find("quad: loss per step", 1, true))
    assert.truthy(text:find("sgd", 1, true))
  end)
end)
