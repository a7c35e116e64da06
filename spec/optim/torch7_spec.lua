-- Torch7 optim's remaining algorithms (issue #16, part C): CG, FISTA, CMAES and DE, each
-- against a problem with a known answer, and crater.eigh, which CMAES builds on.
local crater = require "crater"
local optim = crater.optim

local function f64(t) return crater.tensor(t, {dtype = "float64"}) end
local function param(n) return crater.zeros(n, {dtype = "float64", requires_grad = true}) end
local function err(fn, pattern)
  local ok, e = pcall(fn)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.matches(pattern, tostring(e), 1, true)
end
-- Rosenbrock in n dimensions: minimum 0 at (1, ..., 1)
local function rosenbrock(x)
  local n = x:numel()
  local a, b = x:narrow(1, 1, n - 1), x:narrow(1, 2, n - 1)
  return ((1 - a) ^ 2 + 100 * (b - a * a) ^ 2):sum()
end

describe("crater.eigh", function()
  it("gives the eigenpairs of a 2x2 matrix worked by hand", function()
    local w, v = crater.eigh(f64({{2, 1}, {1, 2}}))
    assert.same({1, 3}, {w[1]:item(), w[2]:item()})
    local r = 1 / math.sqrt(2)   -- eigenvectors (1, -1)/sqrt 2 and (1, 1)/sqrt 2, up to sign
    assert.near(r, math.abs(v[1][1]:item()), 1e-15)
    assert.near(-1, v[1][1]:item() * v[2][1]:item() / (r * r), 1e-12)
    assert.near(1, v[1][2]:item() * v[2][2]:item() / (r * r), 1e-12)
  end)

  it("reconstructs a symmetric matrix as V diag(w) V' with orthonormal V", function()
    crater.manual_seed(3)
    for _, dtype in ipairs({"float64", "float32"}) do
      local m = crater.randn(6, 6, {dtype = dtype})
      local a = m + m:t()
      local w, v = crater.eigh(a)
      local tol = dtype == "float64" and 1e-12 or 1e-4
      assert.is_true(((v * w):matmul(v:t()) - a):abs():max():item() < tol)
      assert.is_true((v:t():matmul(v) - crater.eye(6, {dtype = dtype})):abs():max():item() < tol)
      for i = 1, 5 do assert.is_true(w[i]:item() <= w[i + 1]:item()) end
    end
  end)

  it("refuses what it cannot decompose, naming the shape", function()
    err(function() crater.eigh(crater.zeros(2, 3)) end, "eigh: expected a square float32 or float64 matrix, got float32 {2,3}")
    err(function() crater.eigh(crater.zeros(2, 2, {dtype = "int64"})) end, "eigh: expected a square float32 or float64 matrix, got int64")
    err(function() crater.eigh(f64({{1, 0 / 0}, {0, 1}})) end, "eigh: the matrix has a non-finite entry (at row 1, column 2)")
  end)
end)

describe("CG", function()
  -- 0.5 x'Ax - b'x with A SPD: by hand, x* = A^-1 b = (7, 33, 16, 236) / 61, f* = -b'x*/2 = -1065/122
  local A = f64({{4, 1, 0, 0}, {1, 3, 1, 0}, {0, 1, 2, 0.5}, {0, 0, 0.5, 1}})
  local b = f64({1, 2, 3, 4})
  local function quadratic(opt, x)
    return function() opt:zero_grad(); local l = 0.5 * x:dot(A:matmul(x)) - b:dot(x); l:backward(); return l end
  end

  it("reaches a quadratic's exact minimum in n line searches (exact line searches)", function()
    local x = param(4)
    local opt = optim.CG({x}, {maxEval = 100, sig = 1e-9, rho = 1e-10})
    local f, fx, evals = opt:step(quadratic(opt, x))
    assert.equal(0, fx[1])
    assert.is_true(math.abs(fx[5] - (-1065 / 122)) < 1e-12, "after 4 line searches: " .. fx[5])
    assert.is_true(fx[4] - (-1065 / 122) > 1e-3, "3 line searches do not reach it")
    assert.near(-1065 / 122, f, 1e-12)
    for i, v in ipairs({7, 33, 16, 236}) do assert.near(v / 61, x[i]:item(), 1e-9) end
    assert.is_true(evals <= 100)
  end)

  it("with Torch7's defaults lowers Rosenbrock within maxEval = maxIter * 1.25 calls", function()
    local x = crater.tensor({-1.2, 1}, {dtype = "float64", requires_grad = true})
    local opt = optim.CG({x})
    local calls = 0
    local f, fx, evals = opt:step(function() calls = calls + 1; opt:zero_grad(); local l = rosenbrock(x); l:backward(); return l end)
    assert.near(24.2, fx[1], 1e-12)   -- (1 + 1.2)^2 + 100 (1 - 1.44)^2
    assert.is_true(f < fx[1])
    assert.equal(calls, evals)
    assert.is_true(evals <= 25)
  end)

  it("refuses what it cannot run", function()
    local x = param(2)
    err(function() optim.CG({x}):step() end, "CG: step needs a closure")
    err(function() optim.CG({x}, {sig = -1}) end, "CG: sig must be a number >= 0, got -1")
    err(function() optim.CG({x, crater.zeros(2, {requires_grad = true})}) end, "CG: all parameters must have one dtype")
    err(function() optim.CG({{params = {x}}, {params = {param(1)}}}) end, "CG: doesn't support per-parameter options")
  end)
end)

describe("FISTA", function()
  -- lasso with a diagonal design: min 0.5 |a .* x - b|^2 + lambda |x|_1 has, by hand,
  -- x_i = soft(a_i b_i, lambda) / a_i^2 = (1.7/4, -1.7, 0, 0) for the data below
  local a, b, lambda = f64({2, 1, 0.5, 3}), f64({1, -2, 0.1, 0.05}), 0.3
  local expected = {1.7 / 4, -1.7, 0, 0}
  local function lasso(opt, x)
    return function() opt:zero_grad(); local l = 0.5 * ((a * x - b) ^ 2):sum(); l:backward(); return l end
  end

  it("solves a lasso with a known solution, with FISTA and ISTA", function()
    for _, fista in ipairs({true, false}) do
      local x = param(4)
      local opt = optim.FISTA({x}, {lambda = lambda, maxiter = 2000, errthres = 1e-15, doFistaUpdate = fista})
      local F, history = opt:step(lasso(opt, x))
      for i, v in ipairs(expected) do assert.near(v, x[i]:item(), 1e-7) end
      -- F* = 0.5 ((2 * 0.425 - 1)^2 + (-1.7 + 2)^2 + 0.1^2 + 0.05^2) + 0.3 (0.425 + 1.7)
      assert.near(0.5 * (0.15 ^ 2 + 0.3 ^ 2 + 0.01 + 0.0025) + 0.3 * 2.125, F, 1e-10)
      assert.is_true(#history < 2000)
    end
  end)

  it("is faster than ISTA on an ill-conditioned quadratic (O(1/k^2) against O(1/k))", function()
    -- 0.5 x'Ax - b'x, condition number 1e3: x* = (1, 1/1000) * b, F* = -0.5 (1 + 1/1000)
    local H, c = f64({{1, 0}, {0, 1000}}), f64({1, 1})
    local iterations = {}
    for _, fista in ipairs({true, false}) do
      local x = param(2)
      local opt = optim.FISTA({x}, {maxiter = 1, L = 1000, doFistaUpdate = fista})
      local k = 0
      repeat
        k = k + 1
        local F = opt:step(function() opt:zero_grad(); local l = 0.5 * x:dot(H:matmul(x)) - c:dot(x); l:backward(); return l end)
      until F - (-0.5 * 1.001) < 1e-8 or k == 20000
      iterations[fista] = k
    end
    assert.is_true(iterations[true] * 5 < iterations[false], "FISTA " .. iterations[true] .. ", ISTA " .. iterations[false])
  end)

  it("continues one run across steps and keeps L", function()
    local x = param(4)
    local opt = optim.FISTA({x}, {lambda = lambda, maxiter = 1, L = 0.1})
    for _ = 1, 300 do opt:step(lasso(opt, x)) end
    for i, v in ipairs(expected) do assert.near(v, x[i]:item(), 1e-6) end
    assert.is_true(opt.param_groups[1].L > 0.1)   -- raised by the line search, kept
  end)

  it("takes a penalty and its proximal map: a non-negativity constraint", function()
    -- min 0.5 |x - c|^2 subject to x >= 0: x = max(c, 0)
    local c, x = f64({1.5, -2, 0.25}), param(3)
    local opt = optim.FISTA({x}, {g = function() return 0 end, pl = function(v) v:clamp_(0) end,
      maxiter = 200, errthres = 1e-15, L = 1})
    opt:step(function() opt:zero_grad(); local l = 0.5 * ((x - c) ^ 2):sum(); l:backward(); return l end)
    for i, v in ipairs({1.5, 0, 0.25}) do assert.near(v, x[i]:item(), 1e-12) end
  end)

  it("refuses a penalty without its proximal map", function()
    err(function() optim.FISTA({param(2)}, {g = function() return 0 end}) end, "FISTA: g and pl come together")
    err(function() optim.FISTA({param(2)}, {pl = 3}) end, "FISTA: pl must be a function, got 3")
    err(function() optim.FISTA({param(2)}):step() end, "FISTA: step needs a closure")
  end)
end)

local function free_closure(x, f, count)
  return function()
    count.n = count.n + 1
    return f(x)
  end
end

describe("DE", function()
  it("finds Rosenbrock's minimum in 2-D within 4,000 and in 10-D within 100,000 evaluations", function()
    for _, c in ipairs({{2, 4000, 1}, {10, 100000, 1}}) do
      crater.manual_seed(c[3])
      local x, count = param(c[1]), {n = 0}
      local opt = optim.DE({x}, {maxFEs = c[2], minRegion = -2, maxRegion = 2})
      local best, fx, f = opt:run(free_closure(x, rosenbrock, count))
      assert.is_true(f < 1e-10, c[1] .. "-D: best f " .. f)
      assert.equal(count.n, #fx)
      assert.is_true(count.n <= c[2] + 10 * c[1])   -- whole generations: at most one past the budget
      for i = 1, c[1] do assert.near(1, best[i]:item(), 1e-4) end
      assert.near(f, rosenbrock(x):item(), 1e-15)   -- the parameters hold the best point
    end
  end)

  it("step runs one generation and never loses its best point", function()
    crater.manual_seed(2)
    local x, count = param(2), {n = 0}
    local opt = optim.DE({x}, {popsize = 12, minRegion = -2, maxRegion = 2})
    local last = math.huge
    for g = 1, 30 do
      local f = opt:step(free_closure(x, rosenbrock, count))
      assert.equal(12 * g, count.n)
      assert.is_true(f <= last)
      last = f
    end
  end)

  it("counts a NaN as the worst value and goes on", function()
    crater.manual_seed(4)
    local x, count = param(2), {n = 0}
    local opt = optim.DE({x}, {maxFEs = 3000, minRegion = -2, maxRegion = 2})
    local _, _, f = opt:run(free_closure(x, function(v)
      if v[1]:item() < 0 then return 0 / 0 end
      return rosenbrock(v)
    end, count))
    assert.is_true(f < 1e-6 and f == f)
    err(function() optim.DE({param(2)}, {minRegion = 1, maxRegion = 1}) end, "DE: minRegion (1) must be below maxRegion (1)")
    err(function() optim.DE({param(2)}, {crossoverRate = 2}) end, "DE: crossoverRate must be in [0, 1], got 2")
  end)

  it("refuses a closure that is not a function before moving the parameters", function()
    local x = param(2)
    local before = x:clone()
    local opt = optim.DE({x}, {minRegion = -2, maxRegion = 2})
    err(function() opt:run(crater.zeros(2)) end, "DE: run needs a closure that returns f at the parameters (got userdata)")
    err(function() opt:step(5) end, "DE: step needs a closure that returns f at the parameters (got number)")
    assert.are.same(before:totable(), x:totable())
  end)
end)

describe("CMAES", function()
  it("finds Rosenbrock's minimum in 2-D within 2,000 and in 10-D within 10,000 evaluations", function()
    for _, c in ipairs({{2, 2000}, {10, 10000}}) do
      crater.manual_seed(1)
      local x, count = param(c[1]), {n = 0}
      local opt = optim.CMAES({x}, {sigma = 0.5, maxEval = c[2]})
      local best, hist, evals, why = opt:run(free_closure(x, rosenbrock, count))
      assert.is_true(hist[#hist] < 1e-10, c[1] .. "-D: best f " .. hist[#hist])
      assert.equal(c[1] - 1, hist[1])   -- f at the start, the origin: n - 1
      assert.equal(count.n, evals + 1)  -- the generations' candidates and the start
      assert.is_true(evals <= c[2])
      assert.is_not_nil(next(why))
      for i = 1, c[1] do assert.near(1, best[i]:item(), 1e-4) end
    end
  end)

  it("stops at ftarget and counts a NaN as the worst value", function()
    crater.manual_seed(5)
    local x, count = param(2), {n = 0}
    local opt = optim.CMAES({x}, {sigma = 0.5, ftarget = 1e-3})
    local _, hist, _, why = opt:run(free_closure(x, function(v)
      if v[2]:item() < -0.5 then return 0 / 0 end
      return rosenbrock(v)
    end, count))
    assert.equal(1e-3, why.ftarget)
    assert.is_true(hist[#hist] <= 1e-3)
  end)

  it("requires sigma and a closure", function()
    err(function() optim.CMAES({param(2)}) end, "CMAES: sigma is required")
    err(function() optim.CMAES({param(2)}, {sigma = 0}) end, "CMAES: sigma must be a number > 0, got 0")
    err(function() optim.CMAES({param(2)}, {sigma = 1}):step() end, "CMAES: step needs a closure")
  end)
end)

describe("the lab races Torch7's algorithms", function()
  it("accepts cg, fista, cmaes and de, their paths the best point so far", function()
    local r = crater.lab.race({fn = "rosenbrock", optimizers = {"cg", "fista", "cmaes", "de"}, steps = 20, quiet = true})
    assert.equal(4, #r.contestants)
    for _, rec in ipairs(r.contestants) do
      assert.is_nil(rec.error)
      assert.equal(21, #rec.losses)
      if rec.label == "cmaes" or rec.label == "de" then
        for k = 2, #rec.losses do assert.is_true(rec.losses[k] <= rec.losses[k - 1]) end
      end
    end
  end)
end)

describe("a step whose closure fails halfway", function()
  -- found by the API fuzzer: the parameters were left at a trial point
  local function failing_after(calls, x, with_grad)
    local n = 0
    return function()
      n = n + 1
      if n > calls then return nil end   -- "the closure must return the loss"
      local f = rosenbrock(x)
      if with_grad then
        if x.grad then x.grad:zero_() end
        f:backward()
      end
      return f
    end
  end
  local cases = {
    {"CG", function(x) return optim.CG({x}, {maxIter = 20}) end, true},
    {"LBFGS", function(x) return optim.LBFGS({x}, {max_iter = 20}) end, true},
    {"DE", function(x) return optim.DE({x}, {minRegion = -2, maxRegion = 2}) end, false},
    {"CMAES", function(x) return optim.CMAES({x}, {sigma = 0.5}) end, false},
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " leaves the parameters where the step found them", function()
      local x = crater.tensor({-1.2, 1, 0.5}, {dtype = "float64", requires_grad = true})
      local opt = c[2](x)
      assert.has_error(function() opt:step(failing_after(3, x, c[3])) end)
      assert.are.same({-1.2, 1, 0.5}, x:detach():totable())
    end)
  end
end)
