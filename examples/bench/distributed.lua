--- crater.distributed's figures (make bench, section distributed; see README.md's cost model).
-- Prints `BENCH <name> <median> <min> <max> <unit>` lines from rank 0.
-- Usage:
--   mpirun -np 2 crater examples/bench/distributed.lua allreduce   all_reduce bandwidth, 4 KB..64 MB,
--                                                                  and a copy_ (memcpy) of each size
--   mpirun -np 2 crater examples/bench/distributed.lua mlp 1       MLP samples/s, 2 ranks x 1 thread
--   crater examples/bench/distributed.lua mlp 2                    the same, 1 rank x 2 threads
--   crater examples/bench/distributed.lua step                     per-step compute of the MLP and the
--                                                                  CNN (batch 128, 1 thread), with DDP
--                                                                  in a world of one, and DDP's own
--                                                                  pack/unpack per step (dist.pack)
-- [--quick] takes fewer repetitions.
local crater = rawget(_G, "crater") or require "crater"
local bench = dofile(arg[0]:match("^(.-)[^/]*$") .. "common.lua")
local nn, dist = crater.nn, crater.distributed

local mode, quick = arg[1] or "allreduce", false
for _, a in ipairs(arg) do if a == "--quick" then quick = true end end
local reps = quick and 3 or 7
local rank, world = dist.init()
crater.set_flush_denormal(true)

local function report(name, v, unit) if rank == 0 then bench.report(name, v, unit) end end

local function size_name(bytes)
  if bytes >= 1 << 20 then return (bytes >> 20) .. "MB" end
  return (bytes >> 10) .. "KB"
end

if mode == "allreduce" then
  crater.set_num_threads(1)
  for _, bytes in ipairs({4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20}) do
    local t = crater.ones(bytes // 4)
    local src = crater.ones(bytes // 4)
    -- enough calls per repetition to last ~20 ms on a 2 GB/s link
    local k = math.max(1, math.floor(40e6 / bytes))
    dist.all_reduce(t)
    local secs = bench.time(function()
      dist.barrier()
      for _ = 1, k do dist.all_reduce(t) end
    end, reps, 1)
    report("dist.allreduce." .. size_name(bytes) .. ".r" .. world, bench.map(secs, function(s) return k * bytes / s / 1e9 end), "GB/s")
    local csecs = bench.time(function() for _ = 1, k do t:copy_(src) end end, reps, 1)
    report("dist.copy." .. size_name(bytes), bench.map(csecs, function(s) return k * bytes / s / 1e9 end), "GB/s")
  end
elseif mode == "mlp" then
  -- the global batch is 128 rows, split over the ranks: N ranks take the steps one process does
  local threads = tonumber(arg[2]) or 1
  crater.set_num_threads(threads)
  local x, y = crater.data.fashion_mnist("train")
  crater.manual_seed(0)
  local model = nn.parallel.DistributedDataParallel(nn.Sequential(nn.Linear(784, 512), nn.ReLU(),
    nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)))
  local opt = crater.optim.Adam(model:parameters(), {lr = 1e-3})
  local crit = nn.CrossEntropyLoss()
  local sampler = crater.data.DistributedSampler(x, {seed = 0})
  local loader = crater.data.DataLoader(x, y, {batch_size = 128 // world, sampler = sampler, drop_last = true})
  local steps = bench.trainer(model, opt, crit, loader)
  steps(30)
  local per = 100
  local secs = bench.time(function() dist.barrier(); steps(per) end, reps, 0)
  report(string.format("dist.mlp.r%dt%d", world, threads), bench.map(secs, function(s) return per * 128 / s end), "samples/s")
elseif mode == "step" then
  -- what the cost model needs: compute per step (batch 128, one thread) and DDP's own cost
  crater.set_num_threads(1)
  local x, y = crater.data.fashion_mnist("train")
  local models = {
    mlp = function() return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)) end,
    cnn = function()
      return nn.Sequential(nn.Conv2d(1, 32, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    end,
  }
  for _, name in ipairs({"mlp", "cnn"}) do
    for _, wrap in ipairs({false, true}) do
      crater.manual_seed(0)
      local m = models[name]()
      local nparams = 0
      for _, p in ipairs(m:parameters()) do nparams = nparams + p:numel() end
      if wrap then m = nn.parallel.DistributedDataParallel(m) end
      local opt = crater.optim.Adam(m:parameters(), {lr = 1e-3})
      local crit = nn.CrossEntropyLoss()
      local xb = name == "cnn" and x:narrow(1, 1, 128):view(128, 1, 28, 28) or x:narrow(1, 1, 128)
      local yb = y:narrow(1, 1, 128)
      local k = name == "mlp" and 50 or 5
      local secs = bench.time(function()
        for _ = 1, k do
          opt:zero_grad()
          crit(m(xb), yb):backward()
          opt:step()
          collectgarbage("step")
        end
      end, reps, 1)
      report(string.format("dist.step.%s%s", name, wrap and ".ddp1" or ""), bench.map(secs, function(s) return 1e3 * s / k end), "ms")
      if not wrap then report("dist.params." .. name, {nparams}, "count") end
      if wrap and world == 1 then   -- DDP's own work per step: pack, a reduce of one rank, unpack
        local psecs = bench.time(function() for _ = 1, 20 do m:_reduce() end end, reps, 1)
        report("dist.pack." .. name, bench.map(psecs, function(s) return 1e3 * s / 20 end), "ms")
      end
    end
  end
else
  error("distributed bench: unknown mode " .. tostring(mode) .. " (allreduce, mlp, step)")
end
