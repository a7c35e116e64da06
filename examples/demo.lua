--- The crater demo (`make demo`): optimizer races on test surfaces and on Fashion-MNIST.
-- 1. Every classic built-in, the zoo's Lion, Prodigy, AdaBelief, Adan and schedule-free
--    AdamW, and Lion again, written here in Lua with crater.optim.Optimizer:extend (it
--    matches the built-in), race 500 steps on Rosenbrock, Beale and the saddle.
-- 2. SGD, SGD with momentum, Adam and AdamW, each with and without a schedule, then
--    schedule-free AdamW, Prodigy, Lion and Muon (on the MLP's matrices, the Adam rule on
--    its biases) train the same MLP on a 20000-image slice of Fashion-MNIST for one epoch.
-- Writes out/demo/<race>/report.md with the pictures, and prints the tables.
-- Usage: crater examples/demo.lua [output folder]
local crater = rawget(_G, "crater") or require "crater"
local lab, nn = crater.lab, crater.nn
local out = (arg and arg[1]) or "out/demo"
local t0 = crater.clock()
crater.set_num_threads(2)

-- Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): the sign of an
-- interpolation of momentum and gradient, with decoupled weight decay.
local Lion = crater.optim.Optimizer:extend("Lion", {lr = 1e-4, betas = {0.9, 0.99}, weight_decay = 0})
function Lion:validate(group)
  crater.optim.Optimizer.validate(self, group)
  self:check_betas(group)
end
function Lion:update(p, g, state, group)
  local b1, b2 = group.betas[1], group.betas[2]
  local m = state.exp_avg
  if m == nil then m = crater.zeros_like(p); state.exp_avg = m end
  if group.weight_decay ~= 0 then p:mul_(1 - group.lr * group.weight_decay) end
  p:add_((m * b1 + g * (1 - b1)):sign(), -group.lr)
  m:mul_(b2):add_(g, 1 - b2)
end

local builtins = {"sgd", "momentum", "nag", "adagrad", "rmsprop", "adadelta", "adam", "adamw",
                  "nadam", "radam", "adamax", "asgd", "rprop", "lbfgs"}
local reports = {}

for _, name in ipairs({"rosenbrock", "beale", "saddle"}) do
  local fn = lab.functions.get(name)
  local contestants = {table.unpack(builtins)}
  -- Lion steps exactly lr along every coordinate: a quarter of the surface's Adam lr.
  contestants[#contestants + 1] = {"lion", lr = fn.lr.step / 4}
  contestants[#contestants + 1] = {Lion, lr = fn.lr.step / 4, label = "lion-lua"}
  for _, zoo in ipairs({"prodigy", "adabelief", "adan", "adamwschedulefree"}) do
    contestants[#contestants + 1] = zoo
  end
  local r = lab.race{fn = name, optimizers = contestants, steps = 500, seed = 0,
                     out = out .. "/" .. name, quiet = true}
  print(string.format("\n## %s, 500 steps from (%g, %g)\n", name, fn.start[1], fn.start[2]))
  print(r:table())
  reports[#reports + 1] = out .. "/" .. name .. "/report.md"
end

print("\n## Fashion-MNIST: MLP 784-256-10, 20000 training images, 1 epoch, batch 128\n")
local x, y = crater.data.fashion_mnist("train")
local xt, yt = crater.data.fashion_mnist("test")
local r = lab.train_race{
  model_factory = function()
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
  end,
  data = {x = x:narrow(1, 1, 20000), y = y:narrow(1, 1, 20000), batch_size = 128,
          test = {x = xt, y = yt}},
  optimizers = {
    {"sgd", lr = 0.1}, {"sgd", lr = 0.1, schedule = "onecycle"},
    {"momentum", lr = 0.05}, {"momentum", lr = 0.05, schedule = "onecycle"},
    {"adam", lr = 1e-3}, {"adam", lr = 3e-3, schedule = "warmup_cosine"},
    {"adamw", lr = 1e-3, weight_decay = 0.05}, {"adamw", lr = 3e-3, weight_decay = 0.05, schedule = "warmup_cosine"},
    {"adamwschedulefree", lr = 3e-3}, {"prodigy"}, {"lion", lr = 3e-4, weight_decay = 0.3}, {"muon_adam"},
  },
  epochs = 1, seed = 0, out = out .. "/fashion_mnist", quiet = true,
}
print(r:table())
reports[#reports + 1] = out .. "/fashion_mnist/report.md"

if not lab.plot.available() then print("\n" .. lab.plot.MISSING) end
print(string.format("\nreports (%.1f s):", crater.clock() - t0))
for _, p in ipairs(reports) do print("  " .. p) end
