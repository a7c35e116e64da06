--- Fashion-MNIST's MLP (784-512-256-10, ReLU, Adam lr 1e-3, global batch 128) trained data
-- parallel: each rank takes its shard of every epoch (DistributedSampler) in batches of
-- 128 / world_size rows, and DistributedDataParallel averages the gradients, so N ranks
-- take the same steps as one process with batches of 128.
-- Usage: mpirun -np 2 build/crater examples/fashion_mnist_ddp.lua [--epochs 2] [--seed 1]
--          [--threads T] [--checkpoint fashion_mnist_ddp.ckpt]
--        build/crater examples/fashion_mnist_ddp.lua        (the same script, one process)
-- Several ranks on one machine take one OpenBLAS thread each (--threads overrides).  Rank 0
-- draws the progress bar, prints, and writes the checkpoint after every epoch.
local crater = rawget(_G, "crater") or require "crater"
local nn, dist = crater.nn, crater.distributed

local rank, world = dist.init()
local opt = {epochs = 2, seed = 1, checkpoint = "fashion_mnist_ddp.ckpt"}
local argv = arg or {}
for i = 1, #argv, 2 do
  local k = argv[i]:match("^%-%-(.+)$")
  if not k or argv[i + 1] == nil then error("fashion_mnist_ddp: bad argument " .. argv[i]) end
  opt[k] = tonumber(argv[i + 1]) or argv[i + 1]
end
crater.set_num_threads(opt.threads or (dist.local_size() > 1 and 1 or 2))
crater.set_flush_denormal(true)
if 128 % world ~= 0 then error("fashion_mnist_ddp: 128 rows per step do not split over " .. world .. " ranks") end

local x_train, y_train = crater.data.fashion_mnist("train")
local x_test, y_test = crater.data.fashion_mnist("test")

crater.manual_seed(opt.seed)   -- the same weights everywhere anyway: DDP broadcasts rank 0's
local model = nn.parallel.DistributedDataParallel(nn.Sequential(
  nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)))
local optimizer = crater.optim.Adam(model:parameters(), {lr = 1e-3})
local criterion = nn.CrossEntropyLoss()
local sampler = crater.data.DistributedSampler(x_train, {shuffle = true, seed = opt.seed})
local loader = crater.data.DataLoader(x_train, y_train, {batch_size = 128 // world, sampler = sampler})

-- test accuracy in percent: each rank counts on its slice of the test set, then a sum
local function accuracy()
  model:eval()
  local n = x_test:size(1)
  local per = (n + world - 1) // world
  local first, len = rank * per + 1, math.max(0, math.min(per, n - rank * per))
  local correct = crater.zeros(1, {dtype = "int64"})
  if len > 0 then
    crater.no_grad(function()
      local out = model.module(x_test:narrow(1, first, len))
      correct[1] = out:argmax(2):view(-1):eq(y_test:narrow(1, first, len)):sum():item()
    end)
  end
  model:train()
  return 100 * dist.all_reduce(correct):item() / n
end

dist.print(string.format("%d rank(s), %d OpenBLAS thread(s) each, %d rows per rank and step",
  world, crater.get_num_threads(), 128 // world))
for epoch = 1, opt.epochs do
  sampler:set_epoch(epoch)
  local t0 = crater.clock()
  local total, steps = crater.zeros(1, {dtype = "float64"}), 0
  local bar = crater.progress(loader, {desc = "epoch " .. epoch})
  for xb, yb in bar do
    optimizer:zero_grad()
    local loss = criterion(model(xb), yb)
    loss:backward()
    optimizer:step()
    collectgarbage("step")
    total[1], steps = total:item() + loss:item(), steps + 1
  end
  local secs = crater.clock() - t0
  local mean_loss = dist.all_reduce(total, {op = "mean"}):item() / steps
  local acc = accuracy()
  dist.print(string.format("epoch %d  loss %.4f  test accuracy %.2f%%  %.1f s/epoch  %.0f samples/s",
    epoch, mean_loss, acc, secs, x_train:size(1) / secs))
  dist.save(opt.checkpoint, {model = model.module:state_dict(), optim = optimizer:state_dict(), epoch = epoch,
                             test_accuracy = acc})
end
