--- Training throughput of the Fashion-MNIST examples' models (batch 128, Adam lr 1e-3) in
-- samples per second, on 1 and 2 threads, and the peak resident memory of the MLP run.
-- Prints `BENCH train.<model>.t<threads> <median> <min> <max> samples/s` lines (run.lua
-- reads them), and the same rates as training FLOP/s, `train.<model>.gflops.t<threads>`,
-- which run.lua sets beside the same run's sgemm rate: a product's forward is 2 flops per
-- multiply-add, its backward twice that (input and weight gradients), but only the weight
-- gradient for the first layer, whose input needs none.
-- Usage: crater examples/bench/train.lua [mlp|cnn|all] [--quick]
local crater = rawget(_G, "crater") or require "crater"
local bench = dofile(arg[0]:match("^(.-)[^/]*$") .. "common.lua")
local nn = crater.nn

local which = arg[1] or "all"
local quick = arg[2] == "--quick"

local function models()
  return {
    mlp = function()
      return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    end,
    cnn = function()
      return nn.Sequential(
        nn.Conv2d(1, 32, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    end,
  }
end

--- Training flops per sample of a Sequential of Linear, Conv2d and parameter-free layers,
-- from the sizes one sample (x, batch 1) takes through it.
local function train_flops(model, x)
  local flops, first = 0, true
  crater.no_grad(function()
    for _, m in ipairs(model:children()) do
      local y = m(x)
      local w = m.weight
      if w then   -- Linear (out, in) or Conv2d (out, in, kh, kw): multiply-adds per output value
        local macs = w:numel() * (w:dim() == 4 and y:numel() // w:size(1) or 1)
        flops = flops + 2 * macs * (first and 2 or 3)
        first = false
      end
      x = y
    end
  end)
  return flops
end

crater.set_flush_denormal(true)
local x, y = crater.data.fashion_mnist("train")
local clock = crater.clock

for _, name in ipairs({ "mlp", "cnn" }) do
  if which == "all" or which == name then
    for _, threads in ipairs({ 1, 2 }) do
      crater.set_num_threads(threads)
      crater.manual_seed(0)
      local model = models()[name]()
      local opt = crater.optim.Adam(model:parameters(), { lr = 1e-3 })
      local crit = nn.CrossEntropyLoss()
      local xs = name == "cnn" and x:view(-1, 1, 28, 28) or x
      local loader = crater.data.DataLoader(xs, y, { batch_size = 128, shuffle = true, seed = 0, drop_last = true })
      local batches = bench.trainer(model, opt, crit, loader)
      local per = name == "mlp" and 100 or 10
      local reps = quick and 2 or 5
      batches(name == "mlp" and 50 or 5)           -- warm-up: allocator, BLAS buffers
      local rates = {}
      for r = 1, reps do
        local t0 = clock()
        batches(per)
        rates[r] = per * 128 / (clock() - t0)
      end
      bench.report("train." .. name .. ".t" .. threads, rates, "samples/s")
      local flops = train_flops(model, xs:narrow(1, 1, 1))
      bench.report("train." .. name .. ".gflops.t" .. threads, bench.map(rates, function(r) return r * flops / 1e9 end),
        "GFLOP/s")
    end
    if name == "mlp" then
      local rss = bench.peak_rss()
      if rss then bench.report("train.mlp.peak_rss", { rss }, "MiB") end
    end
  end
end
