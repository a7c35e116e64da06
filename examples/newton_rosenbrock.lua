--- Newton's method on the 2-D Rosenbrock function f(x, y) = (1 - x)^2 + 100 (y - x^2)^2.
-- The gradient comes from crater.grad with create_graph=true, so it is itself
-- differentiable; a second backward pass per gradient component gives each row of the
-- Hessian.  The 2x2 Newton system H d = -g is solved by Cramer's rule.
-- Run: crater examples/newton_rosenbrock.lua   (or lua5.4 with crater installed)
local crater = crater or require "crater"

local function rosenbrock(p)
  local x, y = p[1], p[2]
  return (1 - x) ^ 2 + 100 * (y - x ^ 2) ^ 2
end

--- Runs Newton's method from start; returns the final point {x, y}, the iteration count
-- and the list of iterates.
-- @param start `{x, y}` (default {-1.5, 2})
-- @tparam[opt] table opts `{tol=1e-10, max_iter=50, verbose=true}`
local function newton(start, opts)
  opts = opts or {}
  local tol, max_iter = opts.tol or 1e-10, opts.max_iter or 50
  local p = crater.tensor(start or { -1.5, 2.0 }, { dtype = "float64", requires_grad = true })
  local iterates = { p:totable() }
  local function show(k, f, gn)
    if opts.verbose ~= false then
      print(string.format("%3d  x = % .12f  y = % .12f  f = %.3e  |g| = %.3e", k, p:get(1), p:get(2), f, gn))
    end
  end
  for k = 0, max_iter do
    local f = rosenbrock(p)
    local g = crater.grad(f, { p }, { create_graph = true })[1]
    local gn = g:norm():item()
    show(k, f:item(), gn)
    if gn < tol then return p:totable(), k, iterates end
    -- Hessian rows: the gradient of each gradient component (two more backward passes)
    local h1 = crater.grad(g[1], { p }, { retain_graph = true })[1]
    local h2 = crater.grad(g[2], { p })[1]
    local a, b, c, dd = h1:get(1), h1:get(2), h2:get(1), h2:get(2)
    local g1, g2 = g:get(1), g:get(2)
    local det = a * dd - b * c
    local dx = (-g1 * dd + b * g2) / det
    local dy = (-a * g2 + c * g1) / det
    crater.no_grad(function() p:add_(crater.tensor({ dx, dy }, { dtype = "float64" })) end)
    iterates[#iterates + 1] = p:totable()
  end
  return p:totable(), max_iter, iterates
end

if arg and arg[0] and arg[0]:match("newton_rosenbrock%.lua$") then   -- run as a script, not dofile'd
  local p, k = newton({ -1.5, 2.0 })
  print(string.format("converged to (%.12f, %.12f) in %d Newton steps", p[1], p[2], k))
end

return newton
