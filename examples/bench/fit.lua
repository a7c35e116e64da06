--- Training throughput on Fashion-MNIST, crater side of `make bench` (issue 6). run.lua uses it
-- when examples/bench/train.lua is absent or prints no BENCH lines; torch_bench.py runs the
-- same recipe. The whole training set is loaded (it counts in the peak RSS), batches of 128
-- come shuffled from DataLoader, Adam(lr=1e-3), CrossEntropyLoss, denormals flushed.
--   mlp: 784-512-256-10 with ReLU;  cnn: conv 1->32 3x3 pad 1, ReLU, maxpool 2; conv 32->64
--   likewise; linear 3136->128, ReLU; linear 128->10.
-- Prints `BENCH train.<model>.t<threads> <median> <min> <max> samples/s` for 1 and 2 threads.
-- Usage: crater examples/bench/fit.lua --model mlp|cnn [--reps 5]
local crater = rawget(_G, "crater") or require "crater"
local bench = dofile(arg[0]:match("^(.-)[^/]*$") .. "common.lua")
local o = bench.args({ model = "mlp", reps = 5 })
local nn = crater.nn

crater.set_flush_denormal(true)
crater.manual_seed(0)
local x, y = crater.data.fashion_mnist("train")
local model, nbatch
if o.model == "mlp" then
  model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
  nbatch = 40
elseif o.model == "cnn" then
  x = x:view(-1, 1, 28, 28)
  model = nn.Sequential(
    nn.Conv2d(1, 32, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
  nbatch = 10
else
  error("fit.lua: --model must be mlp or cnn, got " .. tostring(o.model))
end
local opt = crater.optim.Adam(model:parameters(), { lr = 1e-3 })
local criterion = nn.CrossEntropyLoss()
local loader = crater.data.DataLoader(x, y, { batch_size = 128, shuffle = true, seed = 0, drop_last = true })
local next_batch = loader:iter()

local function run()
  for _ = 1, nbatch do
    local xb, yb = next_batch()
    if xb == nil then next_batch = loader:iter(); xb, yb = next_batch() end
    opt:zero_grad()
    local loss = criterion(model(xb), yb)
    loss:backward()
    opt:step()
  end
end

for _, nt in ipairs({ 1, 2 }) do
  crater.set_num_threads(nt)
  local secs = bench.time(run, o.reps)
  bench.report(string.format("train.%s.t%d", o.model, nt),
    bench.map(secs, function(s) return nbatch * 128 / s end), "samples/s")
end
