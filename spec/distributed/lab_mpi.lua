-- The distributed lab and the rank-aware helpers under mpirun (2 and 3 ranks; see
-- test-dist in the Makefile).  The reference for a spread sweep or race is the same call
-- with distributed = false, which runs every trial on every rank.
local crater = require "crater"
local dist = require "crater.distributed"
local spread = require "crater.lab.spread"
local lab = crater.lab
local rank, n = dist.init()

-- a fresh name, the same on every rank; rank 0's os.tmpname file reserves it until the
-- spec using it removes it with what it made
local function tmpdir()
  local d = dist.broadcast_bytes(rank == 0 and os.tmpname() or nil, 0)
  return d
end

-- the comparable part of a race's records: everything but the timings and the rank
local function strip(contestants)
  local out = {}
  for i, c in ipairs(contestants) do
    out[i] = {label = c.label, losses = c.losses, iterates = c.iterates, final_loss = c.final_loss,
              distance = c.distance, diverged = c.diverged, steps_to_tol = c.steps_to_tol, settings = c.settings}
  end
  return out
end

describe("crater.lab under mpirun", function()
  it("a spread sweep reports the same trials and results as the sweep in one process", function()
    local o = {fn = "rosenbrock", optimizer = "momentum", steps = 60, seeds = {0, 1}, jitter = 0.1,
               grid = {lr = {1e-4, 3e-4, 1e-3}, momentum = {0.5, 0.9}}}
    local spread_r = lab.sweep(o)
    o.distributed = false
    local one = lab.sweep(o)
    assert.equal(6, #spread_r.specs)
    for i = 1, 6 do assert.equal(one.specs[i].label, spread_r.specs[i].label) end
    assert.same(one.values, spread_r.values)
    assert.same(one.mean, spread_r.mean)
    assert.equal(one:table(), spread_r:table())
  end)

  it("a spread race gives every rank every contestant, the same as one process", function()
    local o = {fn = "beale", optimizers = {"sgd", "momentum", "nag", "adam", "rmsprop"}, steps = 80}
    local r = lab.race(o)
    o.distributed = false
    local one = lab.race(o)
    assert.same(strip(one.contestants), strip(r.contestants))
    for _, c in ipairs(r.contestants) do assert.is_true(c.rank >= 0 and c.rank < n) end
  end)

  it("a spread train_race matches one process", function()
    crater.manual_seed(4)
    local x, y = crater.randn(48, 6), crater.randint(1, 4, {48}, {dtype = "int64"})
    local o = {model_factory = function() return crater.nn.Linear(6, 3) end, data = {x = x, y = y, batch_size = 16},
               optimizers = {"sgd", "adam", {"sgd", lr = 0.5, label = "fast"}}, epochs = 2, quiet = true}
    local r = lab.train_race(o)
    o.distributed = false
    local one = lab.train_race(o)
    for i = 1, 3 do
      assert.equal(one.contestants[i].label, r.contestants[i].label)
      assert.same(one.contestants[i].losses, r.contestants[i].losses)
    end
  end)

  it("hands the trials out dynamically: each runs once, and more than one rank works", function()
    local results, ranks = spread.map(12, function(i)
      local t0 = crater.clock()
      while crater.clock() - t0 < 0.03 do end   -- 30 ms of work each
      return {i = i, sq = i * i, name = "trial" .. i, fn = print}   -- the function is left out
    end)
    local workers = {}
    for i = 1, 12 do
      assert.same({i = i, sq = i * i, name = "trial" .. i}, results[i])
      workers[ranks[i]] = true
    end
    local count = 0
    for _ in pairs(workers) do count = count + 1 end
    assert.is_true(count >= 2, "only " .. count .. " rank(s) took trials")
  end)

  it("a trial that raises makes every rank raise the error of the lowest such index", function()
    local ok, err = pcall(spread.map, 2 * n, function(i)
      if i == 3 or i == 2 * n then error("trial " .. i .. " fails", 0) end
      return i
    end)
    assert.is_false(ok)
    assert.equal("trial 3 fails", err)
  end)

  it("rank 0 writes the one report", function()
    local base = tmpdir()
    local dir = base .. "-r" .. rank
    lab.race({fn = "booth", optimizers = {"sgd", "adam"}, steps = 20, out = dir, quiet = true})
    dist.barrier()
    local f = io.open(dir .. "/report.md")
    if f then f:close() end
    assert.equal(rank == 0, f ~= nil)
    if rank == 0 then os.execute("rm -rf '" .. dir .. "'"); os.remove(base) end
  end)
end)

describe("rank-aware helpers", function()
  it("save: rank 0 writes atomically and every rank loads the same value", function()
    local base = tmpdir()
    local path = base .. ".ckpt"
    dist.save(path, {w = crater.full({2, 2}, rank + 1), epoch = 3 + rank})   -- rank 0's value wins
    local v = dist.load(path)
    local here = crater.load(path)                     -- the file itself, on a shared disk
    dist.barrier()
    if rank == 0 then os.remove(path); os.remove(base) end
    assert.same({{1, 1}, {1, 1}}, v.w:totable())
    assert.equal(3, v.epoch)
    assert.equal(3, here.epoch)
  end)

  it("load of a missing file raises on every rank", function()
    local ok, err = pcall(dist.load, "/nonexistent/crater.ckpt")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("load: ", 1, true), tostring(err))
    assert.truthy(tostring(err):find("/nonexistent/crater.ckpt", 1, true), tostring(err))
  end)

  it("all_gather_object and broadcast_object carry Lua tables", function()
    local all = dist.all_gather_object({rank = rank, tag = "r" .. rank, t = crater.tensor({rank})})
    local b = dist.broadcast_object(rank == n - 1 and {from = "last", list = {1, 2, 3}} or nil, n - 1)
    for r = 0, n - 1 do
      assert.equal(r, all[r + 1].rank)
      assert.equal("r" .. r, all[r + 1].tag)
      assert.same({r}, all[r + 1].t:totable())
    end
    assert.same({from = "last", list = {1, 2, 3}}, b)
  end)

  it("progress bars draw on rank 0 only, unless all_ranks", function()
    local quiet = crater.progress(3)
    local loud = crater.progress(3, {all_ranks = true, desc = "x"})
    assert.equal(rank ~= 0, quiet.silent == true)
    assert.is_nil(loud.silent)
    assert.equal("[rank " .. rank .. "] x", loud.desc)
  end)
end)
