-- Adagrad, RMSprop, Adadelta, Adam, AdaMax, Nadam and AdamW train the same small MLP on
-- the same batches (crater.lab.train_race): a two-class XOR pattern in the plane.
local crater = rawget(_G, "crater") or require "crater"
local lab, nn, html = crater.lab, crater.nn, require "crater.lab.html"

crater.manual_seed(3)
local x = crater.rand(1024, 2) * 2 - 1
local y = (x:select(2, 1) * x:select(2, 2)):gt(0):to("int64") + 1   -- class 2 where x1 x2 > 0
local r = lab.train_race{
  model_factory = function() return nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 2)) end,
  data = {x = x, y = y, batch_size = 32}, epochs = 6, quiet = true,
  optimizers = {{"adagrad", lr = 0.05}, {"rmsprop", lr = 3e-3}, {"adadelta", lr = 1.0}, {"adam", lr = 1e-2},
    {"adamax", lr = 2e-2}, {"nadam", lr = 1e-2}, {"adamw", lr = 1e-2, weight_decay = 0.01}}}
local facts = {}
for _, c in ipairs(r.contestants) do facts[c.label] = {first = c.losses[1], final = c.final_loss} end
return {
  title = "Adagrad, RMSprop, Adadelta, Adam, AdaMax, Nadam, AdamW",
  text = {"Each divides the step by a running size of the gradient, per parameter. Adagrad sums all past squares "
    .. "(its steps only shrink); RMSprop and Adadelta average them with decay (Adadelta also rescales by the past "
    .. "steps, so lr 1.0 is its natural unit); Adam adds momentum and bias correction, AdaMax uses the infinity "
    .. "norm, Nadam Nesterov momentum, and AdamW decays the weights apart from the gradient."},
  figures = {html.lines(r:series(), r:plot_options())},
  facts = facts,
}
