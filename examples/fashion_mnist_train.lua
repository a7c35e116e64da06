--- The training job both Fashion-MNIST examples run: command line, data, Adam (lr 1e-3),
-- batch 128, a test accuracy and a checkpoint after every epoch, and --resume, which
-- continues from the checkpoint with the same numbers as an uninterrupted run.
-- Used as `dofile(dir .. "fashion_mnist_train.lua"){name=, epochs=, seed=, image=, model=}`:
-- `model()` builds the network; `image = true` hands it (B, 1, 28, 28) images instead of rows.
-- Under `crater lrfind` (CRATER_LAB set) it returns the model and the data instead of training.
local crater = rawget(_G, "crater") or require "crater"

return function(spec)
  local name = spec.name
  local opt = { epochs = spec.epochs, threads = 2, checkpoint = name .. ".ckpt", resume = false,
                seed = spec.seed }
  local argv = arg or {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--resume" then opt.resume = true
    elseif a:match("^%-%-") and argv[i + 1] then opt[a:sub(3)] = argv[i + 1]; i = i + 1
    else error(name .. ": unknown argument " .. a) end
    i = i + 1
  end
  opt.epochs, opt.threads, opt.seed = tonumber(opt.epochs), tonumber(opt.threads), tonumber(opt.seed)

  crater.set_num_threads(opt.threads)
  crater.set_flush_denormal(true)
  crater.manual_seed(opt.seed)

  local x_train, y_train = crater.data.fashion_mnist("train", { dir = opt.data })
  local x_test, y_test = crater.data.fashion_mnist("test", { dir = opt.data })
  if spec.image then   -- images arrive as rows of 784
    x_train, x_test = x_train:view(-1, 1, 28, 28), x_test:view(-1, 1, 28, 28)
  end

  -- `crater lrfind examples/<name>.lua` takes the model and the data from here
  local lab = rawget(_G, "CRATER_LAB")
  if lab then
    lab.model_factory = spec.model
    lab.data = { x = x_train, y = y_train, batch_size = 128 }
    return lab
  end

  local model = spec.model()
  local optimizer = crater.optim.Adam(model:parameters(), { lr = 1e-3 })
  local criterion = crater.nn.CrossEntropyLoss()
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

  -- test accuracy in percent, in batches of 1000 without recording a graph
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
    local t0 = crater.clock()
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
    local secs = crater.clock() - t0
    local acc = accuracy()
    print(string.format("epoch %d  loss %.4f  test accuracy %.2f%%  %.1f s/epoch  %.0f samples/s",
      epoch, total / n, acc, secs, x_train:size(1) / secs))
    crater.save(opt.checkpoint, { model = model:state_dict(), optim = optimizer:state_dict(), epoch = epoch,
                                  test_accuracy = acc })
  end
end
