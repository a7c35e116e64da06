--- Soak: trains an MLP (crater.nn) for N steps of small batches and reports whether memory
-- stays flat: the slope of the process's RSS (KiB per 1k steps, from /proc/self/status),
-- the slope of crater.memory().bytes (C bytes live, per 1k steps), and the live tensor
-- count at the end against the start (after warm-up).  The first tenth of the run is warm-up (allocator
-- pools, Lua's heap) and is left out of the slopes.
-- @usage build/crater examples/bench/soak.lua [steps=100000] [batch=16]
local crater = rawget(_G, "crater") or require "crater"
local nn = crater.nn

local STEPS = tonumber(arg and arg[1]) or 100000
local BATCH = tonumber(arg and arg[2]) or 16
local EVERY = math.max(1, STEPS // 100)   -- 100 samples over the run

local function rss_kib()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) or 0
end

-- least-squares slope of ys against xs
local function slope(xs, ys)
  local n, sx, sy, sxx, sxy = #xs, 0, 0, 0, 0
  for i = 1, n do sx, sy, sxx, sxy = sx + xs[i], sy + ys[i], sxx + xs[i] ^ 2, sxy + xs[i] * ys[i] end
  local den = n * sxx - sx * sx
  return den ~= 0 and (n * sxy - sx * sy) / den or 0
end

local function live()
  collectgarbage("collect")
  collectgarbage("collect")
  return crater.memory()
end

crater.manual_seed(0)
local x, y = crater.randn(4096, 64), crater.randint(1, 11, {4096})
local net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
local opt = crater.optim.Adam(net:parameters(), {lr = 1e-3})
local lossf = nn.CrossEntropyLoss()
local loader = crater.data.DataLoader(x, y, {batch_size = BATCH, shuffle = true, drop_last = true})

local start   -- taken after warm-up, once the optimizer's state and the gradients exist
local steps, xs, rss, bytes = 0, {}, {}, {}
local t0, loss = crater.clock(), nil
while steps < STEPS do
  for xb, yb in loader:iter() do
    opt:zero_grad()
    local l = lossf(net(xb), yb)
    l:backward()
    opt:step()
    steps = steps + 1
    if steps == math.max(1, STEPS // 10) then xb, yb, l = nil, nil, nil; start = live() end   -- luacheck: ignore 311
    if steps % EVERY == 0 then
      loss = l and l:item() or loss
      if steps > STEPS // 10 then
        xs[#xs + 1] = steps / 1000
        rss[#rss + 1] = rss_kib()
        bytes[#bytes + 1] = crater.memory().bytes
      end
    end
    if steps >= STEPS then break end
  end
end
local secs = crater.clock() - t0
local finish = live()
print(string.format("soak: %d steps of batch %d in %.1f s (%.0f steps/s), last loss %.4f", steps, BATCH, secs,
  steps / secs, loss or 0 / 0))
print(string.format("soak: RSS %d KiB at the end, slope %+.2f KiB per 1k steps", rss_kib(), slope(xs, rss)))
print(string.format("soak: crater.memory().bytes slope %+.1f bytes per 1k steps (sampled, garbage included)",
  slope(xs, bytes)))
print(string.format("soak: live after collection: %d tensors / %d bytes at the start, %d tensors / %d bytes at the end",
  start.tensors, start.bytes, finish.tensors, finish.bytes))
