local crater = require "crater"
local F = require "crater.lab.functions"

local pi, sin, cos, exp, sqrt = math.pi, math.sin, math.cos, math.exp, math.sqrt

-- Value and gradient by autograd at p.
local function eval(fn, p)
  local x = crater.tensor(p, {dtype = "float64", requires_grad = true})
  local y = fn.f(x)
  y:backward()
  return y:item(), x.grad:totable()
end

local function near(a, b, tol)
  assert(math.abs(a - b) <= tol * math.max(1, math.abs(b)), string.format("%.17g is not %.17g", a, b))
end

-- Hand-written values and gradients, one per function (independent of the tensor code).
local hand = {
  rosenbrock = function(x, y) return (1 - x) ^ 2 + 100 * (y - x * x) ^ 2,
    {-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)} end,
  beale = function(x, y)
    local t1, t2, t3 = 1.5 - x + x * y, 2.25 - x + x * y ^ 2, 2.625 - x + x * y ^ 3
    return t1 ^ 2 + t2 ^ 2 + t3 ^ 2,
      {2 * t1 * (y - 1) + 2 * t2 * (y ^ 2 - 1) + 2 * t3 * (y ^ 3 - 1),
       2 * t1 * x + 4 * t2 * x * y + 6 * t3 * x * y ^ 2}
  end,
  saddle = function(x, y) return x * x - y * y, {2 * x, -2 * y} end,
  monkey_saddle = function(x, y) return x ^ 3 - 3 * x * y ^ 2, {3 * x ^ 2 - 3 * y ^ 2, -6 * x * y} end,
  himmelblau = function(x, y)
    local a, b = x * x + y - 11, x + y * y - 7
    return a * a + b * b, {4 * x * a + 2 * b, 2 * a + 4 * y * b}
  end,
  rastrigin = function(x, y)
    return 20 + x * x - 10 * cos(2 * pi * x) + y * y - 10 * cos(2 * pi * y),
      {2 * x + 20 * pi * sin(2 * pi * x), 2 * y + 20 * pi * sin(2 * pi * y)}
  end,
  booth = function(x, y)
    local a, b = x + 2 * y - 7, 2 * x + y - 5
    return a * a + b * b, {2 * a + 4 * b, 4 * a + 2 * b}
  end,
  ackley = function(x, y)
    local r = sqrt(0.5 * (x * x + y * y))
    local c = exp(0.5 * (cos(2 * pi * x) + cos(2 * pi * y)))
    return -20 * exp(-0.2 * r) - c + exp(1) + 20,
      {2 * x * exp(-0.2 * r) / r + pi * sin(2 * pi * x) * c, 2 * y * exp(-0.2 * r) / r + pi * sin(2 * pi * y) * c}
  end,
  styblinski_tang = function(x, y)
    return 0.5 * (x ^ 4 - 16 * x ^ 2 + 5 * x + y ^ 4 - 16 * y ^ 2 + 5 * y),
      {2 * x ^ 3 - 16 * x + 2.5, 2 * y ^ 3 - 16 * y + 2.5}
  end,
}

describe("lab.functions", function()
  it("lists every function by name", function()
    assert.same({"rosenbrock", "beale", "saddle", "monkey_saddle", "himmelblau", "rastrigin", "booth",
      "ackley", "styblinski_tang", "quadratic"}, F.names())
  end)

  it("gives the worked values at the classic starts (Rosenbrock 12.5, Beale 41.25)", function()
    assert.equal(12.5, eval(F.get("rosenbrock"), {-1.5, 2}))
    local v, g = eval(F.get("beale"), {1, 1.5})
    assert.equal(41.25, v)
    assert.same({34.5, 92.5}, g)     -- worked by hand
  end)

  for name, h in pairs(hand) do
    it(name .. ": value and gradient match the hand formulas at three points", function()
      local fn = F.get(name)
      for _, p in ipairs({fn.start, {0.3, -0.7}, {-1.1, 0.45}}) do
        local v, g = eval(fn, p)
        local hv, hg = h(p[1], p[2])
        near(v, hv, 1e-12)
        near(g[1], hg[1], 1e-10)
        near(g[2], hg[2], 1e-10)
      end
    end)
  end

  for _, name in ipairs(F.names()) do
    it(name .. ": f(minimum) = fmin, and the gradient vanishes there", function()
      local fn = F.get(name)
      for _, m in ipairs(fn.minima) do
        local v, g = eval(fn, m)
        near(v, fn.fmin, 1e-9)
        if fn.smooth ~= false then
          for i = 1, #g do assert(math.abs(g[i]) < 1e-8, name .. " gradient " .. g[i]) end
        end
      end
      if #fn.minima == 0 then assert.is_nil(fn.fmin) end
    end)
  end

  it("marks Ackley as not differentiable at its minimum (sqrt at 0)", function()
    assert.is_false(F.get("ackley").smooth)
  end)

  it("evaluates a (dim, N) tensor of points in one call", function()
    local fn = F.get("himmelblau")
    local pts = crater.tensor({{3, 0, -1}, {2, 0, 1}}, {dtype = "float64"})
    local v = fn.f(pts):totable()
    assert.same({0, 170, (1 + 1 - 11) ^ 2 + (-1 + 1 - 7) ^ 2}, v)
  end)

  it("builds n-D Rosenbrock, Rastrigin and Styblinski-Tang", function()
    local rb = F.get("rosenbrock", {dim = 4})
    assert.equal(4, rb.dim)
    -- sum over i of 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 at (0, 0, 0, 0): three ones
    assert.equal(3, eval(rb, {0, 0, 0, 0}))
    local st = F.get("styblinski_tang", {dim = 5})
    near(st.fmin, -39.16616570377142 * 5, 1e-12)
    near((eval(st, st.minima[1])), st.fmin, 1e-12)
    assert.equal(0, (eval(F.get("rastrigin", {dim = 3}), {0, 0, 0})))
  end)

  it("makes quadratics with the chosen condition number", function()
    local q = F.get("quadratic", {cond = 100, dim = 3, rotate = false})
    -- 0.5 * (1*1 + 10*1 + 100*1) at (1, 1, 1): eigenvalues 1, 10, 100
    near((eval(q, {1, 1, 1})), 55.5, 1e-12)
    local r = F.get("quadratic", {cond = 100, dim = 2})
    -- Rotated by 45 degrees: curvature 1 along the diagonal (1, 1)/sqrt2, 100 across it.
    near((eval(r, {1 / sqrt(2), 1 / sqrt(2)})), 0.5, 1e-12)
    near((eval(r, {1 / sqrt(2), -1 / sqrt(2)})), 50, 1e-12)
    local _, g = eval(r, {0.3, -0.2})
    local A = r.A:totable()
    near(g[1], A[1][1] * 0.3 - A[1][2] * 0.2, 1e-12)
  end)

  it("names the known functions for an unknown name", function()
    assert.error_matches(function() F.get("rosenbrok") end,
      "functions.get: unknown function 'rosenbrok' (known: rosenbrock, beale, saddle", 1, true)
  end)

  it("rejects a dimension a 2-D function does not have", function()
    assert.error_matches(function() F.get("beale", {dim = 3}) end, "beale is 2-dimensional only, got dim=3", 1, true)
  end)
end)
