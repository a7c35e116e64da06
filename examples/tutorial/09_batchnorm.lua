-- Batch normalization: the same 4-layer MLP on the XOR pattern, with and without
-- BatchNorm1d after each hidden Linear, trained with plain SGD at the same lr.
local crater = rawget(_G, "crater") or require "crater"
local lab, nn, html = crater.lab, crater.nn, require "crater.lab.html"

crater.manual_seed(9)
local x = crater.rand(1024, 2) * 2 - 1
local y = (x:select(2, 1) * x:select(2, 2)):gt(0):to("int64") + 1
local function mlp(bn)
  local m = {}
  local sizes = {2, 32, 32, 32}
  for i = 1, 3 do
    m[#m + 1] = nn.Linear(sizes[i], sizes[i + 1])
    if bn then m[#m + 1] = nn.BatchNorm1d(sizes[i + 1]) end
    m[#m + 1] = nn.Sigmoid()
  end
  m[#m + 1] = nn.Linear(32, 2)
  return nn.Sequential(table.unpack(m))
end
local r = lab.train_race{model_factory = function() return mlp(false) end, data = {x = x, y = y, batch_size = 32},
  epochs = 6, optimizers = {{"sgd", lr = 0.5, label = "without batch norm"}}, quiet = true}
local rb = lab.train_race{model_factory = function() return mlp(true) end, data = {x = x, y = y, batch_size = 32},
  epochs = 6, optimizers = {{"sgd", lr = 0.5, label = "with BatchNorm1d"}}, quiet = true}
-- What a BatchNorm1d layer hands on in training mode: each feature with mean 0, variance 1.
local bn = nn.BatchNorm1d(3)
local z = bn(crater.randn(64, 3) * 5 + 2)
local series = r:series()
series[2] = rb:series()[1]
return {
  title = "Batch normalization",
  text = {"Sigmoid layers squash their input, and the gradient shrinks by up to 4x per layer. Batch norm "
    .. "re-centres and re-scales every feature over the batch (then applies a learned scale and shift), so each "
    .. "layer sees inputs of the same size whatever the weights below did. At the same lr the network with batch norm "
    .. "gets below chance (ln 2 = 0.69), where the plain one is still stuck after six epochs."},
  figures = {html.lines(series, {title = "training loss (smoothed)", xlabel = "batch", ylabel = "loss", logy = true})},
  facts = {plain = r.contestants[1].final_loss, bn = rb.contestants[1].final_loss,
    mean = z:mean(1):abs():max():item(), var = z:var(1, {unbiased = false}):totable()},
}
