-- DistributedDataParallel and DistributedSampler under mpirun (2 and 3 ranks; see
-- test-dist in the Makefile).  The reference for DDP is the same training in one process,
-- computed on every rank without any collective: with per-rank batches of B/n rows, n
-- ranks must end where one process with the whole batch of B rows ends.
local crater = require "crater"
local dist = require "crater.distributed"
local nn = crater.nn
local rank, n = dist.init()
local DDP = nn.parallel.DistributedDataParallel

local function make_model(seed, dtype)
  crater.manual_seed(seed)
  local m = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
  if dtype == "float64" then           -- the parameters converted, leaves again
    for _, mod in ipairs(m:modules()) do
      for _, name in ipairs(mod._param_names) do
        local t = mod[name]:detach():to("float64")
        t.requires_grad = true
        rawset(mod, name, t)
      end
    end
  end
  return m
end

-- The largest relative difference ||a - b|| / ||b|| over the parameters.
local function rel_diff(ma, mb)
  local pa, pb, worst = ma:parameters(), mb:parameters(), 0
  for i = 1, #pa do
    local d = (pa[i]:detach() - pb[i]:detach()):norm():item() / pb[i]:detach():norm():item()
    worst = math.max(worst, d)
  end
  return worst
end

local B = 12                                   -- divisible by 2 and by 3
local STEPS = 50

local function train_pair(dtype)
  crater.manual_seed(7)
  local X = crater.randn(STEPS * B, 5, {dtype = dtype})
  local Y = crater.randn(STEPS * B, 3, {dtype = dtype})
  -- rank 0 builds the reference's initial weights; the others start elsewhere, so the
  -- match also shows that construction broadcast rank 0's parameters
  local ref = make_model(1, dtype)
  local ddp = DDP(make_model(rank == 0 and 1 or 100 + rank, dtype))
  local o_ref = crater.optim.Adam(ref:parameters(), {lr = 1e-2})
  local o_ddp = crater.optim.Adam(ddp:parameters(), {lr = 1e-2})
  local per = B // n
  local mse = nn.functional.mse_loss
  for s = 0, STEPS - 1 do
    o_ref:zero_grad()
    mse(ref(X:narrow(1, s * B + 1, B)), Y:narrow(1, s * B + 1, B)):backward()
    o_ref:step()
    o_ddp:zero_grad()
    local at = s * B + rank * per + 1
    mse(ddp(X:narrow(1, at, per)), Y:narrow(1, at, per)):backward()
    o_ddp:step()
  end
  return ref, ddp
end

describe("DistributedDataParallel", function()
  it("matches one process with the whole batch after 50 Adam steps in float64 (1e-12)", function()
    local ref, ddp = train_pair("float64")
    assert.equal("float64", ddp:parameters()[1]:dtype())
    local d = rel_diff(ddp, ref)
    assert.is_true(d <= 1e-12, "relative difference " .. d)
    assert.is_true(rel_diff(ddp, make_model(1, "float64")) > 1e-3)   -- it did train
  end)

  it("matches one process with the whole batch after 50 Adam steps in float32 (1e-5)", function()
    local ref, ddp = train_pair("float32")
    local d = rel_diff(ddp, ref)
    assert.is_true(d <= 1e-5, "relative difference " .. d)
  end)

  it("gives the same result with many small buckets", function()
    crater.manual_seed(3)
    local x = crater.randn(n * 4, 5, {dtype = "float64"})
    local y = crater.randn(n * 4, 3, {dtype = "float64"})
    local one = DDP(make_model(1, "float64"))
    local many = DDP(make_model(1, "float64"), {bucket_mb = 100 / 2 ^ 20})   -- 100 bytes
    for _, m in ipairs({one, many}) do
      nn.functional.mse_loss(m(x:narrow(1, rank * 4 + 1, 4)), y:narrow(1, rank * 4 + 1, 4)):backward()
    end
    assert.equal(1, #one:bucket_sizes())
    assert.equal(4, #many:bucket_sizes())     -- 8x3 (192 bytes), 8x5 and 8 and 3: none fits with another
    assert.same({3, 24, 8, 40}, many:bucket_sizes())   -- reverse order: last bias first
    local po, pm = one:parameters(), many:parameters()
    for i = 1, #po do assert.same(po[i].grad:totable(), pm[i].grad:totable()) end
  end)

  it("averages the gradients over the ranks (each rank's grad is the mean of all)", function()
    local x = crater.ones(2, 5, {dtype = "float64"})
    local ddp = DDP(make_model(1, "float64"))
    -- loss = (rank + 1) * sum(model(x)): the local gradient is (rank + 1) * g0, g0 that of
    -- sum(model(x)) (the same on every rank), so the mean is (n + 1) / 2 * g0
    ;((rank + 1) * ddp(x):sum()):backward()
    local ref = make_model(1, "float64")
    ref(x):sum():backward()
    local got, g0 = ddp.module[1].weight.grad, ref[1].weight.grad
    local all = dist.all_gather(got)
    assert.is_true((got - g0 * ((n + 1) / 2)):abs():max():item() <= 1e-15 * g0:abs():max():item() * n)
    assert.is_true(g0:abs():max():item() > 0)
    for r = 2, n do assert.same(all[1]:totable(), all[r]:totable()) end
  end)

  it("reduces nothing after a backward that did not start from a forward of the wrapper", function()
    local ddp = DDP(make_model(1, "float64"))
    ;((rank + 1) * ddp.module[1].bias:sum()):backward()
    assert.same({rank + 1, rank + 1}, ddp.module[1].bias.grad:narrow(1, 1, 2):totable())
  end)

  it("no_sync accumulates locally; the next synced backward averages the sum", function()
    local ddp = DDP(make_model(1, "float64"))
    local w = ddp.module[1].weight
    ddp:no_sync(function()
      ((rank + 1) * ddp(crater.ones(1, 5, {dtype = "float64"})):sum()):backward()
    end)
    local local_grad = w.grad:clone()
    -- the local gradient of (rank + 1) * sum(model(ones)) is (rank + 1) times that of rank 0
    local g0 = dist.broadcast(local_grad:clone(), 0)
    ;((rank + 1) * ddp(crater.ones(1, 5, {dtype = "float64"})):sum()):backward()
    -- now: mean over ranks of 2 * (rank + 1) * g0 = (n + 1) * g0
    local expect = g0 * (n + 1)
    assert.is_true((local_grad - g0 * (rank + 1)):abs():max():item() < 1e-12)
    assert.is_true((w.grad - expect):abs():max():item() < 1e-12 * expect:abs():max():item())
  end)

  it("leaves crater.grad alone: no reduction, .grad untouched", function()
    local ddp = DDP(make_model(1, "float64"))
    local w = ddp.module[1].weight
    local g = crater.grad(((rank + 1) * ddp(crater.ones(1, 5, {dtype = "float64"}))):sum(), {w})[1]
    local all = dist.all_gather(g)
    assert.is_nil(w.grad)
    -- each rank's own gradient: rank r's is (r + 1) times rank 0's
    assert.is_true((all[n] - all[1] * n):abs():max():item() < 1e-12 * all[1]:abs():max():item() * n)
  end)

  it("passes forward, parameters and state_dict through to the model", function()
    local model = make_model(1, "float32")
    local ddp = DDP(model)
    local x = crater.randn(2, 5)
    local same = dist.all_gather(ddp.module[1].weight:detach())   -- broadcast at construction
    assert.same(model(x):detach():totable(), ddp(x):detach():totable())
    assert.equal(#model:parameters(), #ddp:parameters())
    assert.is_true(rawequal(model:parameters()[1], ddp:parameters()[1]))
    assert.is_not_nil(ddp:state_dict()["module.0.weight"])
    for r = 2, n do assert.same(same[1]:totable(), same[r]:totable()) end
  end)

  it("broadcasts rank 0's buffers at construction and before each forward", function()
    local m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    m[2].running_mean:fill_(rank + 1)
    local ddp = DDP(m)
    local after_init = m[2].running_mean:clone()
    m[2].running_mean:fill_(10 * (rank + 1))
    ddp:eval()
    ddp(crater.ones(3, 2))
    assert.same({1, 1}, after_init:totable())
    assert.same({10, 10}, m[2].running_mean:totable())
  end)

  it("refuses models that differ across ranks, on every rank", function()
    local ok, err = pcall(DDP, nn.Linear(3, rank == 0 and 2 or 4))
    assert.is_false(ok)
    assert.truthy(tostring(err):find("DistributedDataParallel: the models differ across ranks: rank 0 has " ..
      "parameter weight float32 {2,3}, rank 1 has parameter weight float32 {4,3}", 1, true), tostring(err))
  end)

  it("refuses bad options", function()
    assert.error_matches(function() DDP(make_model(1), {bucket_mb = 0}) end,
      "DistributedDataParallel: bucket_mb must be a positive number, got 0", 1, true)
    assert.error_matches(function() DDP(42) end, "DistributedDataParallel: model must be a crater.nn.Module, got number", 1, true)
  end)
end)

describe("DistributedSampler", function()
  -- every rank's indices, gathered: a list of n lists
  local function shards(s)
    local g = dist.all_gather(s:indices())
    local out = {}
    for r = 1, n do out[r] = g[r]:totable() end
    return out
  end

  it("gives disjoint shards that cover the data set (N divisible by the world)", function()
    local N = 6 * n
    local sh = shards(crater.data.DistributedSampler(N, {seed = 5}))
    local seen, count = {}, 0
    for _, list in ipairs(sh) do
      assert.equal(6, #list)
      for _, i in ipairs(list) do assert.is_nil(seen[i]); seen[i] = true; count = count + 1 end
    end
    assert.equal(N, count)
    for i = 1, N do assert.is_true(seen[i]) end
  end)

  it("pads by repeating the start when N is not divisible, as PyTorch (no shuffle)", function()
    -- N = n + 1: each rank gets 2, total 2n; the order is 1..N then 1..n-1 again
    local N = n + 1
    local sh = shards(crater.data.DistributedSampler(N, {shuffle = false}))
    local order = {}
    for i = 1, N do order[i] = i end
    for i = 1, 2 * n - N do order[N + i] = i end
    for r = 1, n do assert.same({order[r], order[r + n]}, sh[r]) end
  end)

  it("drop_last cuts the tail instead, still disjoint", function()
    local N = 2 * n + 1
    local s = crater.data.DistributedSampler(N, {drop_last = true, seed = 1})
    local sh = shards(s)
    local seen = {}
    for _, list in ipairs(sh) do
      assert.equal(2, #list)
      for _, i in ipairs(list) do assert.is_nil(seen[i]); seen[i] = true end
    end
    assert.equal(2, #s)
  end)

  it("set_epoch changes the order, and the same epoch gives the same one", function()
    local s = crater.data.DistributedSampler(40 * n, {seed = 2})
    local e0 = s:indices():totable()
    s:set_epoch(1)
    local e1 = s:indices():totable()
    s:set_epoch(0)
    assert.same(e0, s:indices():totable())
    assert.are_not.same(e0, e1)
  end)

  it("feeds a DataLoader this rank's rows, in the sampler's order", function()
    local N = 5 * n
    local x = crater.arange(1, N + 1, 1, {dtype = "float64"}):view(N, 1) * 10
    local s = crater.data.DistributedSampler(x, {seed = 9})
    local loader = crater.data.DataLoader(x, x, {batch_size = 2, sampler = s})
    local got = {}
    for xb in loader:iter() do for _, v in ipairs(xb:view(-1):totable()) do got[#got + 1] = v end end
    local expect = {}
    for i, k in ipairs(s:indices():totable()) do expect[i] = 10 * k end
    assert.same(expect, got)
    assert.equal(3, #loader)                   -- 5 rows in batches of 2
  end)

  it("refuses a bad rank and a sampler with shuffle", function()
    assert.error_matches(function() crater.data.DistributedSampler(10, {num_replicas = 2, rank = 2}) end,
      "DistributedSampler: rank must be an integer from 0 to 1, got 2", 1, true)
    local s = crater.data.DistributedSampler(4)
    assert.error_matches(function() crater.data.DataLoader(crater.zeros(4, 1), nil, {sampler = s, shuffle = true}) end,
      "DataLoader: sampler and shuffle are mutually exclusive", 1, true)
    assert.error_matches(function() crater.data.DataLoader(crater.zeros(5, 1), nil, {sampler = s}) end,
      "DataLoader: the sampler is over 4 rows but x has 5", 1, true)
  end)
end)
