--- Fashion-MNIST with a small convolutional network: conv 1->32 3x3 pad 1, ReLU,
-- maxpool 2; conv 32->64 likewise; linear 3136->128, ReLU; linear 128->10.  Adam (lr 1e-3),
-- batch 128, 3 epochs; about 90% test accuracy (PyTorch 1.13: 86.8% after 1 epoch, 89.8% after 3).
-- Usage: crater examples/fashion_mnist_cnn.lua [--epochs 3] [--threads 2]
--          [--seed 2] [--checkpoint fashion_mnist_cnn.ckpt] [--resume] [--data DIR]
-- Needs the Debian package dataset-fashion-mnist.  After every epoch it saves the model,
-- the optimizer and the epoch to the checkpoint; --resume continues from it and gives
-- the same numbers as an uninterrupted run.
local crater = rawget(_G, "crater") or require "crater"
local nn = crater.nn

local opt = { epochs = 3, threads = 2, checkpoint = "fashion_mnist_cnn.ckpt", resume = false, seed = 2 }
local argv = arg or {}
local i = 1
while i <= #argv do
  local a = argv[i]
  if a == "--resume" then opt.resume = true
  elseif a:match("^%-%-") and argv[i + 1] then opt[a:sub(3)] = argv[i + 1]; i = i + 1
  else error("fashion_mnist_cnn: unknown argument " .. a) end
  i = i + 1
end
opt.epochs, opt.threads, opt.seed = tonumber(opt.epochs), tonumber(opt.threads), tonumber(opt.seed)

crater.set_num_threads(opt.threads)
crater.set_flush_denormal(true)
crater.manual_seed(opt.seed)

local x_train, y_train = crater.data.fashion_mnist("train", { dir = opt.data })
local x_test, y_test = crater.data.fashion_mnist("test", { dir = opt.data })

-- images arrive as rows of 784; the network sees them as (B, 1, 28, 28)
x_train = x_train:view(-1, 1, 28, 28)
x_test = x_test:view(-1, 1, 28, 28)
local model = nn.Sequential(
  nn.Conv2d(1, 32, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),    -- 32 x 14 x 14
  nn.Conv2d(32, 64, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),   -- 64 x 7 x 7
  nn.Flatten(),
  nn.Linear(3136, 128), nn.ReLU(),
  nn.Linear(128, 10))
local optimizer = crater.optim.Adam(model:parameters(), { lr = 1e-3 })
local criterion = nn.CrossEntropyLoss()
local loader = crater.data.DataLoader(x_train, y_train, { batch_size = 128, shuffle = true, seed = opt.seed })

local start_epoch = 1
if opt.resume then
  local ck = crater.load(opt.checkpoint)
  model:load_state_dict(ck.model)
  optimizer:load_state_dict(ck.optim)
  loader:set_epoch(ck.epoch)
  start_epoch = ck.epoch + 1
  print(string.format("resumed from %s after epoch %d", opt.checkpoint, ck.epoch))
end

--- Test accuracy in percent, evaluated in batches of 1000 without recording a graph.
local function accuracy()
  model:eval()
  local correct = 0
  crater.no_grad(function()
    for xb, yb in crater.data.DataLoader(x_test, y_test, { batch_size = 1000 }):iter() do
      correct = correct + model(xb):argmax(2):view(-1):eq(yb):sum():item()
    end
  end)
  model:train()
  return 100 * correct / x_test:size(1)
end

print(model)
for epoch = start_epoch, opt.epochs do
  crater.manual_seed(opt.seed * 1000 + epoch)   -- per-epoch seed: a resumed run draws the same numbers
  local t0 = crater.core.monotonic()
  local total, n = 0, 0
  local bar = crater.progress(loader, { desc = "epoch " .. epoch })
  for xb, yb in bar do
    optimizer:zero_grad()
    local loss = criterion(model(xb), yb)
    loss:backward()
    optimizer:step()
    collectgarbage("step")   -- Lua's GC cannot see tensors' C memory: free last step's graph now
    total, n = total + loss:item(), n + 1
    if n % 50 == 0 then bar:set_postfix({ loss = total / n }) end
  end
  local secs = crater.core.monotonic() - t0
  local acc = accuracy()
  print(string.format("epoch %d  loss %.4f  test accuracy %.2f%%  %.1f s/epoch  %.0f samples/s",
    epoch, total / n, acc, secs, x_train:size(1) / secs))
  crater.save(opt.checkpoint, { model = model:state_dict(), optim = optimizer:state_dict(), epoch = epoch,
                                test_accuracy = acc })
end
