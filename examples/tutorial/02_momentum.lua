-- Momentum and Nesterov on an ill-conditioned quadratic (condition number 50): plain GD
-- must keep lr below 2/50 for the steep direction and then crawls along the flat one.
local crater = rawget(_G, "crater") or require "crater"
local lab, html = crater.lab, require "crater.lab.html"

local fn = lab.functions.get("quadratic", {cond = 50})
local r = lab.race{fn = fn, steps = 100, optimizers = {
  {"sgd", lr = 0.02, label = "gradient descent"},
  {"momentum", lr = 0.02, momentum = 0.9, label = "momentum 0.9"},
  {"nag", lr = 0.02, momentum = 0.9, label = "Nesterov 0.9"}}}
local traces, series, facts = {}, {}, {}
for k, c in ipairs(r.contestants) do
  traces[k] = {label = c.label, points = c.iterates}
  local xs = {}
  for i = 1, #c.losses do xs[i] = i - 1 end
  series[k] = {label = c.label, x = xs, y = c.losses}
  facts[c.label] = c.final_loss
end
return {
  title = "Momentum and Nesterov",
  text = {"f(x) = x'Ax / 2 with eigenvalues 1 and 50, its valley along the diagonal, from (-1.5, 1.2); lr 0.02 "
    .. "for all three. Gradient descent crosses the steep direction quickly but crawls along the flat one: each "
    .. "step removes only 2% of the error there. Momentum adds up the small, consistent steps along the valley "
    .. "(up to 10 times the lr); Nesterov takes the gradient after the momentum step, which damps the overshoot "
    .. "across the valley."},
  figures = {html.contour(fn, traces, {title = "paths, 100 steps"}),
    html.lines(series, {title = "loss per step", xlabel = "step", ylabel = "f(x)", logy = true, floor = 1e-30})},
  facts = facts,
}
