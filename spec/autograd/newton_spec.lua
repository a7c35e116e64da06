-- examples/newton_rosenbrock.lua: the Hessian from two backward passes matches the closed
-- form, and Newton's method converges to (1, 1).
local crater = require "crater"
local H = dofile("spec/core/helpers.lua")

describe("Newton's method on Rosenbrock (examples/newton_rosenbrock.lua)", function()
  it("builds the Hessian from crater.grad(create_graph=true) that matches the closed form", function()
    local p = H.d({ -1.5, 2 }, true)
    local x, y = p[1], p[2]
    local f = (1 - x) ^ 2 + 100 * (y - x ^ 2) ^ 2
    local g = crater.grad(f, { p }, { create_graph = true })[1]
    -- df/dx = -2(1-x) - 400 x (y - x^2) = -5 - 150; df/dy = 200 (y - x^2) = -50
    H.close(g, { -155, -50 }, 1e-14)
    local h1 = crater.grad(g[1], { p }, { retain_graph = true })[1]
    local h2 = crater.grad(g[2], { p })[1]
    -- d2f/dx2 = 2 - 400 (y - 3x^2) = 2 - 400 (2 - 6.75); d2f/dxdy = -400 x = 600; d2f/dy2 = 200
    H.close(h1, { 2 + 400 * 4.75, 600 }, 1e-14)
    H.close(h2, { 600, 200 }, 1e-14)
  end)

  it("converges to (1, 1) from (-1.5, 2) within a few steps, printing the iterates", function()
    local newton = dofile("examples/newton_rosenbrock.lua")
    local p, steps, iterates = newton({ -1.5, 2.0 }, { verbose = false })
    H.close(p, { 1, 1 }, 1e-10)
    assert.is_true(steps <= 10)
    assert.equal(steps + 1, #iterates)
    assert.same({ -1.5, 2 }, iterates[1])
  end)

  it("runs as a script and prints its iterates and the point it reached", function()
    local cmd = [[lua5.4 -e 'package.path="lua/?.lua;lua/?/init.lua;"..package.path; ]]
      .. [[package.cpath="build/lib/?.so;"..package.cpath' examples/newton_rosenbrock.lua 2>&1]]
    local out = io.popen(cmd):read("a")
    assert.truthy(out:find("  0  x = -1.500000000000  y =  2.000000000000", 1, true))
    assert.truthy(out:find("converged to (1.000000000000, 1.000000000000) in", 1, true))
  end)
end)
