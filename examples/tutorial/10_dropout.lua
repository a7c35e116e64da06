-- Dropout: a wide MLP fits 40 noisy samples of a sine; with Dropout(0.5) after each hidden
-- layer it cannot memorise the noise so well, and does better on unseen points.
local crater = rawget(_G, "crater") or require "crater"
local nn, html = crater.nn, require "crater.lab.html"

crater.manual_seed(10)
local x = crater.rand(40, 1) * 6 - 3
local y = x:sin() + 0.3 * crater.randn(40, 1)
local xt = crater.linspace(-3, 3, 400):view(400, 1)
local yt = xt:sin()
local function run(p)
  crater.manual_seed(0)
  local model = nn.Sequential(nn.Linear(1, 128), nn.ReLU(), nn.Dropout(p), nn.Linear(128, 128), nn.ReLU(),
    nn.Dropout(p), nn.Linear(128, 1))
  local opt = crater.optim.Adam(model:parameters(), {lr = 3e-3})
  local xs, test = {}, {}
  for i = 1, 400 do
    model:train()
    opt:zero_grad()
    local loss = ((model(x) - y) ^ 2):mean()
    loss:backward()
    opt:step()
    if i % 10 == 0 then
      model:eval()     -- dropout is the identity in eval mode
      xs[#xs + 1] = i
      test[#test + 1] = crater.no_grad(function() return ((model(xt) - yt) ^ 2):mean():item() end)
    end
  end
  return {label = p > 0 and ("Dropout(" .. p .. ")") or "no dropout", x = xs, y = test}
end
local plain, dropped = run(0), run(0.5)
-- Dropout in training mode zeroes each element with probability p and scales the rest by 1/(1-p).
local drop = nn.Dropout(0.5)
local ones = crater.ones(10000)
local out = drop(ones)
drop:eval()
return {
  title = "Dropout",
  text = {"In training mode Dropout(p) zeroes each activation with probability p and scales the others by "
    .. "1/(1-p), so no unit can rely on another being there; in eval mode it passes its input through. The network "
    .. "without dropout follows the 40 noisy points and its error on the true curve rises as it memorises them."},
  figures = {html.lines({plain, dropped}, {title = "error against the noiseless sine, 400 points", xlabel = "step",
    ylabel = "mean squared error", logy = true})},
  facts = {plain = plain.y[#plain.y], dropped = dropped.y[#dropped.y], zeros = out:eq(0):sum():item() / 10000,
    kept = out:max():item(), eval_same = drop(ones):eq(1):sum():item() == 10000},
}
