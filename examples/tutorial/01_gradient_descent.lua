-- Batch, stochastic and mini-batch gradient descent on a least-squares problem.
-- The same lr and the same 8 passes over 512 examples: batch GD takes one step per pass,
-- stochastic GD one per example, mini-batch GD one per batch of 32.
local crater = rawget(_G, "crater") or require "crater"
local html = require "crater.lab.html"

crater.manual_seed(1)
local n, d = 512, 8
local x = crater.randn(n, d)
local w_true = crater.randn(d, 1)
local y = x:matmul(w_true) + 0.1 * crater.randn(n, 1)
local function full_loss(w) return crater.no_grad(function() return ((x:matmul(w) - y) ^ 2):mean():item() end) end

local function run(label, batch_size, lr)
  crater.manual_seed(0)
  local w = crater.zeros(d, 1, {requires_grad = true})
  local opt = crater.optim.SGD({w}, {lr = lr})
  local seen, xs, ys = 0, {0}, {full_loss(w)}
  local loader = crater.data.DataLoader(x, y, {batch_size = batch_size, shuffle = true, seed = 0})
  for _ = 1, 8 do
    for xb, yb in loader:iter() do
      opt:zero_grad()
      local loss = ((xb:matmul(w) - yb) ^ 2):mean()
      loss:backward()
      opt:step()
      seen = seen + xb:size(1)
      if seen % 64 == 0 or batch_size == n then xs[#xs + 1], ys[#ys + 1] = seen / n, full_loss(w) end
    end
  end
  return {label = label, x = xs, y = ys}
end

local batch = run("batch (512)", n, 0.05)
local sgd = run("stochastic (1)", 1, 0.05)
local mini = run("mini-batch (32)", 32, 0.05)
return {
  title = "Batch, stochastic and mini-batch gradient descent",
  text = {"Least squares, y = Xw + noise with 512 examples. At the same lr, batch GD takes one exact step per "
    .. "pass over the data; stochastic GD takes 512 noisy ones and mini-batch GD 16 less noisy ones. Per pass, "
    .. "the more steps the faster the loss falls, until the noise of a single example's gradient sets a floor."},
  figures = {html.lines({batch, sgd, mini}, {title = "full-data loss", xlabel = "passes over the data (epochs)",
    ylabel = "mean squared error", logy = true})},
  facts = {batch = batch.y[#batch.y], sgd = sgd.y[#sgd.y], mini = mini.y[#mini.y], start = batch.y[1]},
}
