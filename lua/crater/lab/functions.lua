--- crater.lab.functions: test surfaces for optimizers, with known minima.
-- Each function is a table
--   {name=, f=, dim=, minima={{...}, ...}, fmin=, window={xmin, xmax, ymin, ymax},
--    start={...}, levels="log"|"linear", smooth=, lr={gradient=, step=}}
-- where `f(x)` takes a float64 tensor x of size dim and returns a 0-d tensor built from
-- tensor ops, so autograd gives the gradient. f is written over the rows x[1], x[2], ...,
-- so it also takes a (dim, N) tensor of N points and returns their N values in one call
-- (this is how contour maps are computed). `lr` holds suggested learning rates for this
-- surface: `gradient` for optimizers whose step is lr times the gradient (SGD and friends),
-- `step` for those whose step is about lr in x's units (Adam, RMSprop, ...).
-- Surfaces without a minimum (the saddles) have `minima = {}` and `fmin = nil`.
-- @usage local rb = crater.lab.functions.get("rosenbrock")
-- local x = crater.tensor(rb.start, {dtype = "float64", requires_grad = true})
-- rb.f(x):backward()   -- x.grad is the gradient at the classic start
local crater = require "crater"
local M = {}

local pi, e = math.pi, math.exp(1)

-- The builders, by name: each returns a fresh function table for dimension n.
local builders = {}
local order = {}      -- names in the order they are listed

local function define(name, build) builders[name] = build; order[#order + 1] = name end

local function filled(n, v) local t = {} for i = 1, n do t[i] = v end return t end

local function check_dim(name, o, default, fixed)
  local n = o.dim or default
  if math.type(n) ~= "integer" or n < 1 then
    error(string.format("functions.get: dim must be a positive integer, got %s", tostring(n)), 4)
  end
  if fixed and n ~= fixed then
    error(string.format("functions.get: %s is %d-dimensional only, got dim=%d", name, fixed, n), 4)
  end
  return n
end

define("rosenbrock", function(o)
  local n = check_dim("rosenbrock", o, 2)
  if n < 2 then error("functions.get: rosenbrock needs dim >= 2", 3) end
  return {
    f = function(x)
      local a, b = x:narrow(1, 1, n - 1), x:narrow(1, 2, n - 1)
      return (100 * (b - a ^ 2) ^ 2 + (1 - a) ^ 2):sum(1)
    end,
    minima = {filled(n, 1)}, fmin = 0, window = {-2, 2, -1, 3},
    start = n == 2 and {-1.5, 2} or filled(n, -1.2), levels = "log",
    lr = {gradient = 1e-3, step = 2e-2},
  }
end)

define("beale", function(o)
  check_dim("beale", o, 2, 2)
  return {
    f = function(x)
      local a, b = x[1], x[2]
      return (1.5 - a + a * b) ^ 2 + (2.25 - a + a * b ^ 2) ^ 2 + (2.625 - a + a * b ^ 3) ^ 2
    end,
    minima = {{3, 0.5}}, fmin = 0, window = {-4.5, 4.5, -4.5, 4.5}, start = {1, 1.5},
    levels = "log", lr = {gradient = 1e-3, step = 2e-2},
  }
end)

define("saddle", function(o)
  check_dim("saddle", o, 2, 2)
  return {
    f = function(x) return x[1] ^ 2 - x[2] ^ 2 end,
    minima = {}, saddle_points = {{0, 0}}, window = {-1.5, 1.5, -1.5, 1.5}, start = {1.4, 1e-3},
    levels = "linear", lr = {gradient = 1e-2, step = 1e-2},
  }
end)

define("monkey_saddle", function(o)
  check_dim("monkey_saddle", o, 2, 2)
  return {
    f = function(x) return x[1] ^ 3 - 3 * x[1] * x[2] ^ 2 end,
    minima = {}, saddle_points = {{0, 0}}, window = {-1.5, 1.5, -1.5, 1.5}, start = {1.2, 1e-3},
    levels = "linear", lr = {gradient = 1e-2, step = 1e-2},
  }
end)

define("himmelblau", function(o)
  check_dim("himmelblau", o, 2, 2)
  return {
    f = function(x)
      local a, b = x[1], x[2]
      return (a ^ 2 + b - 11) ^ 2 + (a + b ^ 2 - 7) ^ 2
    end,
    -- The three irrational minima to 12 digits (roots of the gradient, refined by Newton).
    minima = {{3, 2}, {-2.805118086953, 3.131312518250}, {-3.779310253378, -3.283185991286},
              {3.584428340330, -1.848126526964}},
    fmin = 0, window = {-5, 5, -5, 5}, start = {0, 0}, levels = "log",
    lr = {gradient = 5e-3, step = 5e-2},
  }
end)

define("rastrigin", function(o)
  local n = check_dim("rastrigin", o, 2)
  return {
    f = function(x) return (x ^ 2 - 10 * (2 * pi * x):cos()):sum(1) + 10 * n end,
    minima = {filled(n, 0)}, fmin = 0, window = {-5.12, 5.12, -5.12, 5.12},
    start = n == 2 and {3.3, -2.4} or filled(n, 3.3), levels = "linear",
    lr = {gradient = 2e-3, step = 5e-2},
  }
end)

define("booth", function(o)
  check_dim("booth", o, 2, 2)
  return {
    f = function(x)
      local a, b = x[1], x[2]
      return (a + 2 * b - 7) ^ 2 + (2 * a + b - 5) ^ 2
    end,
    minima = {{1, 3}}, fmin = 0, window = {-10, 10, -10, 10}, start = {-8, 8}, levels = "log",
    lr = {gradient = 1e-2, step = 1e-1},
  }
end)

define("ackley", function(o)
  local n = check_dim("ackley", o, 2)
  return {
    -- sqrt has no derivative at 0, so the gradient at the minimum is NaN (smooth = false).
    f = function(x)
      return -20 * (-0.2 * (x ^ 2):mean(1):sqrt()):exp() - (2 * pi * x):cos():mean(1):exp() + (20 + e)
    end,
    minima = {filled(n, 0)}, fmin = 0, window = {-5, 5, -5, 5},
    start = n == 2 and {-3.5, 3.7} or filled(n, 3.5), levels = "linear", smooth = false,
    lr = {gradient = 5e-2, step = 5e-2},
  }
end)

-- Styblinski-Tang's minimum: the root of 4x^3 - 32x + 5 near -2.9.
local ST_X = -2.903534027771178
local ST_F = 0.5 * (ST_X ^ 4 - 16 * ST_X ^ 2 + 5 * ST_X)

define("styblinski_tang", function(o)
  local n = check_dim("styblinski_tang", o, 2)
  return {
    f = function(x) return 0.5 * (x ^ 4 - 16 * x ^ 2 + 5 * x):sum(1) end,
    minima = {filled(n, ST_X)}, fmin = n * ST_F, window = {-5, 5, -5, 5},
    start = n == 2 and {0.5, 4.5} or filled(n, 0.5), levels = "log",
    lr = {gradient = 5e-3, step = 5e-2},
  }
end)

--- An ill-conditioned quadratic 0.5 x'Ax in n dimensions whose eigenvalues are spaced
-- geometrically from 1 to cond. Unrotated, A is diagonal (axes aligned with the
-- coordinates, easy for per-coordinate methods such as Adam); rotated, A = H D H with H
-- the Householder reflection that swaps e1 and (1, ..., 1)/sqrt(n), so the flattest
-- direction is the diagonal (in 2-D, the axes turn by 45 degrees).
-- @tparam[opt=20] number cond condition number (>= 1)
-- @tparam[opt=2] integer dim dimension
-- @tparam[opt=true] boolean rotate rotate the axes away from the coordinates
-- @function quadratic
define("quadratic", function(o)
  local n = check_dim("quadratic", o, 2)
  local cond = o.cond or 20
  if type(cond) ~= "number" or cond < 1 then
    error("functions.get: quadratic's cond must be a number >= 1, got " .. tostring(cond), 3)
  end
  local rotate = o.rotate ~= false
  local A = {}
  for i = 1, n do
    A[i] = filled(n, 0)
    A[i][i] = n == 1 and 1 or cond ^ ((i - 1) / (n - 1))
  end
  local At = crater.tensor(A, {dtype = "float64"})
  if rotate and n > 1 then
    -- v = e1 - u with u = (1, ..., 1)/sqrt(n): H = I - 2vv'/(v'v) swaps e1 and u.
    local vt = filled(n, -1 / math.sqrt(n))
    vt[1] = vt[1] + 1
    local v = crater.tensor(vt, {dtype = "float64"}):view(n, 1)
    local H = crater.eye(n, {dtype = "float64"}) - v:matmul(v:t()) * (2 / (v * v):sum():item())
    At = H:matmul(At):matmul(H)
  end
  local start = n == 2 and {-1.5, 1.2} or filled(n, 1)
  return {
    name = string.format("quadratic(cond=%g,dim=%d%s)", cond, n, rotate and "" or ",axis-aligned"),
    f = function(x)
      local Ax = At:matmul(x)
      return 0.5 * (x * Ax):sum(1)
    end,
    A = At, cond = cond,
    minima = {filled(n, 0)}, fmin = 0, window = {-2, 2, -2, 2}, start = start, levels = "log",
    lr = {gradient = 1 / cond, step = 2e-2},
  }
end)

--- The names of the built-in functions, in a stable order.
function M.names() return {table.unpack(order)} end

--- Returns the test function `name` (a fresh table), for dimension `dim` where it has one.
-- An unknown name is an error that lists the known ones.
-- @param name one of M.names(): rosenbrock, beale, saddle, monkey_saddle, himmelblau,
-- rastrigin, booth, ackley, styblinski_tang, quadratic
-- @tparam[opt=2] integer dim dimension (rosenbrock, rastrigin, ackley, styblinski_tang, quadratic)
-- @tparam[opt=20] number cond condition number (quadratic only)
-- @tparam[opt=true] boolean rotate rotated axes (quadratic only)
-- @usage local q = crater.lab.functions.get("quadratic", {cond = 100, dim = 10})
function M.get(name, o)
  if type(name) == "table" and name.f then return name end
  if o ~= nil and type(o) ~= "table" then error("functions.get: options must be a table, got " .. type(o), 2) end
  local build = type(name) == "string" and builders[name:lower():gsub("-", "_")]
  if not build then
    error(string.format("functions.get: unknown function '%s' (known: %s)", tostring(name),
      table.concat(order, ", ")), 2)
  end
  local fn = build(o or {})
  fn.name = fn.name or name:lower():gsub("-", "_")
  fn.dim = #fn.start
  return fn
end

--- Checks a user-made function table (needs f and start) and fills in defaults.
-- @param fn `{f=, start=, minima=?, fmin=?, window=?, name=?}`
function M.check(fn)
  if type(fn) ~= "table" or type(fn.f) ~= "function" then
    error("functions.check: a test function is a table with f = function(x) ... end", 3)
  end
  if type(fn.start) ~= "table" or #fn.start == 0 then
    error("functions.check: " .. tostring(fn.name or "the function") .. " needs start = {x1, x2, ...}", 3)
  end
  fn.name = fn.name or "custom"
  fn.dim = #fn.start
  fn.minima = fn.minima or {}
  fn.levels = fn.levels or (fn.fmin and "log" or "linear")
  fn.lr = fn.lr or {}
  return fn
end

return setmetatable(M, {__index = function(_, k)
  if builders[k] then return M.get(k) end
end})
