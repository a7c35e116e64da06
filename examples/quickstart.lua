-- The README's quickstart: fit y = 3x - 2 with a small MLP, then autograd by hand.
-- Run: build/crater examples/quickstart.lua   (or lua5.4 with package paths set)
local crater = crater or require "crater"

crater.manual_seed(0)
-- data: y = 3x - 2 with noise
local x = crater.randn(256, 1)
local y = 3 * x - 2 + 0.1 * crater.randn(256, 1)

-- a model, a loss, an optimizer and a schedule
local model = crater.nn.Sequential(crater.nn.Linear(1, 16), crater.nn.Tanh(), crater.nn.Linear(16, 1))
local opt = crater.optim.Adam(model:parameters(), {lr = 0.05})
local sched = crater.optim.lr_scheduler.StepLR(opt, {step_size = 100, gamma = 0.5})

for step = 1, 300 do
  opt:zero_grad()
  local loss = crater.nn.functional.mse_loss(model(x), y)
  loss:backward()
  opt:step()
  sched:step()
  if step % 100 == 0 then print(step, loss:item(), sched:get_last_lr()[1]) end
end

-- autograd by hand: the gradient and a Hessian-vector product of Rosenbrock
local p = crater.tensor({-1.5, 2.0}, {dtype = "float64", requires_grad = true})
local f = (1 - p[1])^2 + 100 * (p[2] - p[1]^2)^2
local g = crater.grad(f, {p}, {create_graph = true})[1]
print(g, crater.grad((g * crater.tensor({1, 0}, {dtype = "float64"})):sum(), {p})[1])
