-- Xavier (Glorot) initialization: the spread of the activations through 12 tanh layers
-- of width 128, for weights drawn with std 1, with std 0.01 and with xavier_uniform_.
local crater = rawget(_G, "crater") or require "crater"
local nn, html = crater.nn, require "crater.lab.html"

local depth, width = 12, 128
local inits = {
  {"normal, std 1", function(w) nn.init.normal_(w, 0, 1) end},
  {"normal, std 0.01", function(w) nn.init.normal_(w, 0, 0.01) end},
  {"xavier_uniform_ (tanh gain)", function(w) nn.init.xavier_uniform_(w, nn.init.calculate_gain("tanh")) end},
}
local series, facts = {}, {}
for k, init in ipairs(inits) do
  crater.manual_seed(0)
  local layers = {}
  for i = 1, depth do
    local l = nn.Linear(width, width)
    init[2](l.weight)
    nn.init.zeros_(l.bias)
    layers[#layers + 1] = l
    layers[#layers + 1] = nn.Tanh()
  end
  local h = crater.randn(256, width)
  local xs, stds = {}, {}
  crater.no_grad(function()
    for i = 1, depth do
      h = layers[2 * i](layers[2 * i - 1](h))
      xs[i], stds[i] = i, h:std():item()
    end
  end)
  series[k] = {label = init[1], x = xs, y = stds, style = "linespoints"}
  facts[init[1]] = stds
end
return {
  title = "Xavier initialization",
  text = {"Each tanh layer multiplies the spread of its input by about std(w) x sqrt(fan_in). With std 1 that is "
    .. "11: every unit saturates at +-1, where tanh's gradient vanishes. With std 0.01 it is 0.11, and the signal "
    .. "dies out in a few layers. Xavier's uniform bound sqrt(6 / (fan_in + fan_out)), times tanh's gain 5/3, "
    .. "keeps the spread steady through all twelve layers."},
  figures = {html.lines(series, {title = "std of the activations", xlabel = "layer", ylabel = "std", logy = true})},
  facts = facts,
}
