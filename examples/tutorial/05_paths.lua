-- The optimizers' paths on a saddle (x^2 - y^2, from just off the ridge) and on Beale's
-- function, 100 steps from the classic starts (crater.lab.race records every iterate).
local crater = rawget(_G, "crater") or require "crater"
local lab, html = crater.lab, require "crater.lab.html"

local optimizers = {"sgd", "momentum", "nag", "adagrad", "rmsprop", "adadelta", "adam"}
local figures, facts = {}, {}
for _, name in ipairs({"saddle", "beale"}) do
  local r = lab.race{fn = name, optimizers = optimizers, steps = 100}
  local traces = {}
  facts[name] = {}
  for k, c in ipairs(r.contestants) do
    traces[k] = {label = c.label, points = c.iterates}
    facts[name][c.label] = {final = c.final, loss = c.final_loss}
  end
  figures[#figures + 1] = html.contour(r.fn, traces, {title = string.format("%s: 100 steps from (%g, %g)", name,
    r.start[1], r.start[2])})
end
return {
  title = "Paths on a saddle and on Beale's function",
  text = {"On the saddle the gradient along y starts at 2e-3. After 100 steps plain gradient descent sits at the "
    .. "saddle point still (y = 0.007); momentum piles up the small push along y until it runs off; RMSprop and "
    .. "Adam divide by the gradient's running size, so the tiny y component gets a full-size step at once. Adagrad "
    .. "divides by the sum of all past squares, whose x part stays large, and is slow to leave.",
    "Beale's function has a flat plateau and a curved valley down to its minimum at (3, 0.5). Momentum and "
    .. "Nesterov run along the valley furthest in 100 steps; Adagrad's and Adadelta's steps stay small on the "
    .. "plateau."},
  figures = figures,
  facts = facts,
}
