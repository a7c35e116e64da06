--- The crater demo (`make demo`): optimizer races on test surfaces and on Fashion-MNIST.
-- 1. Every classic built-in, the zoo's Lion, Prodigy, AdaBelief, Adan and schedule-free
--    AdamW, and Lion again, written here in Lua as one crater.fuse update (it gives the
--    built-in's bits), race 500 steps on Rosenbrock, Beale and the saddle.
-- 2. SGD, SGD with momentum, Adam and AdamW, each with and without a schedule, then
--    schedule-free AdamW, Prodigy, Lion and Muon (on the MLP's matrices, the Adam rule on
--    its biases) train the same MLP on a 20000-image slice of Fashion-MNIST for one epoch.
-- 3. A sweep of SGD with momentum on Rosenbrock (lr x momentum), and the LR range test
--    of Adam on the MLP.
-- Writes out/demo/<run>/report.md and report.html with the pictures, prints the tables, and
-- prints the path of out/demo/index.html, which links every report.html of the run.
-- Usage: crater examples/demo.lua [output folder] [--quick]
-- --quick runs the same contestants for fewer steps on 2000 images (the browser spec's pages).
local crater = rawget(_G, "crater") or require "crater"
local lab, nn = crater.lab, crater.nn
local out = (arg and arg[1]) or "out/demo"
local quick = arg and arg[2] == "--quick"
local steps = quick and 60 or 500
local t0 = crater.clock()
crater.set_num_threads(2)

-- Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): the sign of an
-- interpolation of momentum and gradient, with decoupled weight decay. Its update is one
-- elementwise function that crater.fuse runs in one pass over p, g and m, as the built-in's
-- C kernel does; written in that kernel's order, it gives the built-in's bits.
local Lion = crater.optim.Optimizer:extend("Lion", {lr = 1e-4, betas = {0.9, 0.99}, weight_decay = 0})
function Lion:validate(group)
  crater.optim.Optimizer.validate(self, group)
  self:check_betas(group)
end
Lion:fused_update(function(p, g, m, lr, decay, b1, b2)
  local c = b1 * m + (1 - b1) * g
  p = p * decay - lr * c:sign()
  m = b2 * m + (1 - b2) * g
  return p, m
end, {state = {"exp_avg"}, step = false, scalars = function(group)
  return group.lr, 1 - group.lr * group.weight_decay, group.betas[1], group.betas[2]
end})

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
  local r = lab.race{fn = name, optimizers = contestants, steps = steps, seed = 0,
                     out = out .. "/" .. name, quiet = true}
  print(string.format("\n## %s, %d steps from (%g, %g)\n", name, steps, fn.start[1], fn.start[2]))
  print(r:table())
  reports[#reports + 1] = out .. "/" .. name .. "/report.md"
end

local n_train = quick and 2000 or 20000
print(string.format("\n## Fashion-MNIST: MLP 784-256-10, %d training images, 1 epoch, batch 128\n", n_train))
local x, y = crater.data.fashion_mnist("train")
local xt, yt = crater.data.fashion_mnist("test")
if quick then xt, yt = xt:narrow(1, 1, 1000), yt:narrow(1, 1, 1000) end
local function mlp() return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)) end
local r = lab.train_race{
  model_factory = mlp,
  data = {x = x:narrow(1, 1, n_train), y = y:narrow(1, 1, n_train), batch_size = 128,
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

print("\n## Sweep: SGD with momentum on Rosenbrock, lr x momentum\n")
local sw = lab.sweep{fn = "rosenbrock", optimizer = "momentum", steps = steps,
  grid = {lr = {1e-4, 3e-4, 1e-3}, momentum = {0.5, 0.9, 0.99}}, out = out .. "/sweep", quiet = true}
print(sw:table())
reports[#reports + 1] = out .. "/sweep/report.md"

local lf = lab.lr_find{model_factory = mlp, data = {x = x:narrow(1, 1, n_train), y = y:narrow(1, 1, n_train),
  batch_size = 128}, optimizer = "adam", num_iter = quick and 40 or 100, out = out .. "/lr_find", quiet = true}
print(string.format("\n## LR range test of Adam on the MLP: suggested lr %.3g", lf.suggestion))
reports[#reports + 1] = out .. "/lr_find/report.md"

if not lab.plot.available() then print("\n" .. lab.plot.MISSING) end
print(string.format("\nreports (%.1f s):", crater.clock() - t0))
local pages = {}
for i, p in ipairs(reports) do
  print("  " .. p)
  pages[i] = p:gsub("%.md$", ".html")
end
print("\nindex of the HTML reports: " .. lab.index(out .. "/index.html", pages, "crater demo"))
