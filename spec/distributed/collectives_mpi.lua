-- crater.distributed's collectives under mpirun (make test runs this file with 2 and 3
-- ranks; see test-dist in the Makefile).  Every rank runs every spec; each spec makes all
-- its collective calls before it asserts, so a failed assertion on one rank cannot leave
-- the others waiting in a call it skipped.  Expected values are worked by hand from what
-- each rank contributes: rank r (0-based) of n.
local crater = require "crater"
local dist = require "crater.distributed"
local rank, n = dist.init()

local dtypes = {"float32", "float64", "int64"}
local tri = n * (n + 1) // 2         -- 1 + 2 + ... + n

describe("crater.distributed world", function()
  it("numbers the ranks 0..n-1 and names rank 0 the main one", function()
    local all = dist.all_gather(crater.tensor({dist.rank()}, {dtype = "int64"}))
    local expect = {}
    for r = 0, n - 1 do expect[#expect + 1] = {r} end
    assert.same(expect, all:totable())
    assert.equal(n, dist.world_size())
    assert.equal(rank == 0, dist.is_main())
    assert.is_true(dist.is_initialized())
    assert.is_true(dist.local_rank() >= 0 and dist.local_rank() < dist.local_size())
  end)

  it("init a second time changes nothing", function()
    local r2, n2 = dist.init()
    assert.equal(rank, r2)
    assert.equal(n, n2)
  end)

  it("barrier returns on every rank", function()
    dist.barrier()
    assert.equal(n, dist.world_size())
  end)
end)

describe("all_reduce", function()
  for _, dt in ipairs(dtypes) do
    it("sums {r+1, 2(r+1), -(r+1)} to n(n+1)/2 * {1, 2, -1} in " .. dt, function()
      local t = crater.tensor({rank + 1, 2 * (rank + 1), -(rank + 1)}, {dtype = dt})
      local back = dist.all_reduce(t, {op = "sum"})
      assert.is_true(rawequal(t, back))
      assert.same({tri, 2 * tri, -tri}, t:totable())
      assert.equal(dt, t:dtype())
    end)

    it("takes the max and the min over ranks in " .. dt, function()
      local hi = dist.all_reduce(crater.tensor({rank + 1, -(rank + 1)}, {dtype = dt}), {op = "max"})
      local lo = dist.all_reduce(crater.tensor({rank + 1, -(rank + 1)}, {dtype = dt}), {op = "min"})
      assert.same({n, -1}, hi:totable())
      assert.same({1, -n}, lo:totable())
    end)
  end

  for _, dt in ipairs({"float32", "float64"}) do
    it("averages in " .. dt .. " (mean = sum / n)", function()
      local t = dist.all_reduce(crater.tensor({{rank + 1}, {2 * rank}}, {dtype = dt}), {op = "mean"})
      local m = t:totable()
      assert.near((n + 1) / 2, m[1][1], 1e-6)
      assert.near(n - 1, m[2][1], 1e-6)
    end)
  end

  it("defaults to sum, and takes the op name alone", function()
    local a = dist.all_reduce(crater.tensor({1.5}, {dtype = "float64"}))
    local b = dist.all_reduce(crater.tensor({rank}, {dtype = "float64"}), "max")
    assert.equal(1.5 * n, a:item())
    assert.equal(n - 1, b:item())
  end)

  it("sums int64 values beyond 2^53 exactly", function()
    local big = (1 << 53) + 1
    local t = dist.all_reduce(crater.tensor({big + rank}, {dtype = "int64"}))
    assert.equal(n * big + n * (n - 1) // 2, t:get(1))
  end)

  it("reduces a 2^20-element tensor (rank r's is all r + 0.25)", function()
    local t = dist.all_reduce(crater.full({1024, 1024}, rank + 0.25, {dtype = "float64"}))
    local s = n * (n - 1) / 2 + 0.25 * n
    assert.equal(s, t:min():item())
    assert.equal(s, t:max():item())
  end)

  it("writes in place into the storage of a contiguous view (no copy)", function()
    local x = crater.zeros(4, 2, {dtype = "float64"})
    x[1] = 7
    x:narrow(1, 2, 2):fill_(rank + 1)
    dist.all_reduce(x:narrow(1, 2, 2))
    assert.same({{7, 7}, {tri, tri}, {tri, tri}, {0, 0}}, x:totable())
  end)

  it("counts as an in-place write: autograd refuses a saved tensor it changed", function()
    local w = crater.tensor({1, 2}, {dtype = "float64", requires_grad = true})
    local s = crater.tensor({3, 4}, {dtype = "float64"})
    local y = (w * s):sum()
    dist.all_reduce(s)
    assert.has_error(function() y:backward() end)
  end)

  it("handles an empty tensor and a 0-d tensor", function()
    local e = dist.all_reduce(crater.zeros(0, 3))
    local z = dist.all_reduce(crater.tensor(2.0, {dtype = "float64"}))
    assert.same({0, 3}, e:shape())
    assert.equal(2 * n, z:item())
  end)
end)

describe("broadcast", function()
  for _, dt in ipairs(dtypes) do
    it("copies the root's tensor to every rank in " .. dt, function()
      local root = n - 1
      local t = crater.tensor({10 * rank + 1, 10 * rank + 2, 10 * rank + 3}, {dtype = dt})
      local back = dist.broadcast(t, root)
      local z = dist.broadcast(crater.tensor({{rank}}, {dtype = dt}))   -- root 0 by default
      assert.is_true(rawequal(t, back))
      assert.same({10 * root + 1, 10 * root + 2, 10 * root + 3}, t:totable())
      assert.same({{0}}, z:totable())
    end)
  end
end)

describe("all_gather", function()
  for _, dt in ipairs(dtypes) do
    it("stacks every rank's tensor along a new first dim in " .. dt, function()
      local g = dist.all_gather(crater.tensor({{rank, 2 * rank}}, {dtype = dt}))
      local expect = {}
      for r = 0, n - 1 do expect[r + 1] = {{r, 2 * r}} end
      assert.same({n, 1, 2}, g:shape())
      assert.equal(dt, g:dtype())
      assert.same(expect, g:totable())
    end)
  end

  it("gathers 0-d tensors into a vector", function()
    local g = dist.all_gather(crater.tensor(rank + 0.5, {dtype = "float64"}))
    local expect = {}
    for r = 0, n - 1 do expect[r + 1] = r + 0.5 end
    assert.same(expect, g:totable())
  end)
end)

describe("reduce_scatter", function()
  for _, dt in ipairs(dtypes) do
    it("gives rank r the sum over ranks of rows 2r+1..2r+2 in " .. dt, function()
      -- rank q's row i holds (q + 1) * i, so the sum over ranks of row i is i * n(n+1)/2
      local rows = {}
      for i = 1, 2 * n do rows[i] = {(rank + 1) * i, -(rank + 1) * i} end
      local out = dist.reduce_scatter(crater.tensor(rows, {dtype = dt}))
      local a, b = 2 * rank + 1, 2 * rank + 2
      assert.same({{a * tri, -a * tri}, {b * tri, -b * tri}}, out:totable())
      assert.equal(dt, out:dtype())
    end)
  end

  it("takes max and mean", function()
    local hi = dist.reduce_scatter(crater.full({n}, rank, {dtype = "float64"}), {op = "max"})
    local avg = dist.reduce_scatter(crater.full({n, 2}, rank, {dtype = "float64"}), {op = "mean"})
    assert.same({n - 1}, hi:totable())
    assert.same({{(n - 1) / 2, (n - 1) / 2}}, avg:totable())
  end)
end)

describe("bytes helpers", function()
  it("all_gather_bytes returns every rank's string, of any length", function()
    local got = dist.all_gather_bytes(string.rep("x", rank) .. "|" .. rank)
    for r = 0, n - 1 do assert.equal(string.rep("x", r) .. "|" .. r, got[r + 1]) end
    assert.equal(n, #got)
  end)

  it("broadcast_bytes copies the root's string", function()
    local s = dist.broadcast_bytes(rank == 1 % n and "from the root\0with a zero" or nil, 1 % n)
    assert.equal("from the root\0with a zero", s)
  end)
end)

describe("work_queue", function()
  it("hands out 1..m, each index to exactly one rank", function()
    local q = dist.work_queue(20)
    local mine = {}
    for i in q.next, q do mine[#mine + 1] = i end
    q:close()
    local all = dist.all_gather_bytes(table.concat(mine, ","))
    local seen, count = {}, 0
    for _, s in ipairs(all) do
      for w in s:gmatch("%d+") do
        local i = tonumber(w)
        assert.is_nil(seen[i])
        seen[i], count = true, count + 1
      end
    end
    assert.equal(20, count)
    for i = 1, 20 do assert.is_true(seen[i]) end
  end)
end)

-- Bad input: every rank raises the same error, and the next collective still works.
describe("collectives refuse", function()
  local function after(fn)
    local ok, err = pcall(fn)
    local still = dist.all_reduce(crater.ones(1)):item()
    return ok, tostring(err), still
  end

  it("shapes that differ across ranks, naming the ranks and shapes", function()
    local ok, err, still = after(function() dist.all_reduce(crater.zeros(2, rank + 1)) end)
    assert.is_false(ok)
    assert.truthy(err:find("all_reduce: tensors differ across ranks: rank 0 float32 {2,1}, rank 1 float32 {2,2}", 1, true))
    if n > 2 then assert.truthy(err:find("rank 2 float32 {2,3}", 1, true)) end
    assert.equal(n, still)
  end)

  it("dtypes that differ across ranks", function()
    local ok, err = after(function()
      dist.broadcast(crater.zeros(3, {dtype = rank == 0 and "float64" or "float32"}))
    end)
    assert.is_false(ok)
    assert.truthy(err:find("broadcast: tensors differ across ranks: rank 0 float64 {3}, rank 1 float32 {3}", 1, true))
  end)

  it("different collectives called at once", function()
    local ok, err = after(function()
      if rank == 0 then dist.all_reduce(crater.zeros(2)) else dist.all_gather(crater.zeros(2)) end
    end)
    assert.is_false(ok)
    assert.truthy(err:find("the ranks called different collectives: rank 0 all_reduce, rank 1 all_gather", 1, true))
  end)

  it("different ops and different roots", function()
    local ok1, err1 = after(function() dist.all_reduce(crater.zeros(2), {op = rank == 0 and "sum" or "max"}) end)
    local ok2, err2 = after(function() dist.broadcast(crater.zeros(2), rank == 0 and 0 or 1) end)
    assert.is_false(ok1)
    assert.truthy(err1:find("the ranks asked for different ops: rank 0 'sum', rank 1 'max'", 1, true))
    assert.is_false(ok2)
    assert.truthy(err2:find("the ranks named different roots: rank 0 root 0, rank 1 root 1", 1, true))
  end)

  it("a non-contiguous tensor, on one rank only: every rank raises", function()
    local x = crater.zeros(3, 2)
    local ok, err = after(function() dist.all_reduce(rank == n - 1 and x:t() or x:t():contiguous()) end)
    assert.is_false(ok)
    assert.truthy(err:find(string.format("all_reduce: on rank %d: argument #1 is not contiguous (sizes {2,3}, strides {1,2})",
      n - 1), 1, true))
  end)

  it("a leaf that requires grad outside no_grad (and takes it inside)", function()
    local w = crater.ones(2, {requires_grad = true})
    local ok, err = after(function() dist.all_reduce(w) end)
    crater.no_grad(function() dist.all_reduce(w) end)
    assert.is_false(ok)
    assert.truthy(err:find("all_reduce: on rank 0 (and " .. (n - 1) .. " more): argument #1: a leaf tensor that requires grad", 1, true))
    assert.same({n, n}, w:detach():totable())
  end)

  it("a bad op, a bad root, mean on int64, a non-tensor", function()
    local _, e1 = after(function() dist.all_reduce(crater.zeros(1), {op = "prod"}) end)
    local _, e2 = after(function() dist.broadcast(crater.zeros(1), n) end)
    local _, e3 = after(function() dist.all_reduce(crater.zeros(1, {dtype = "int64"}), {op = "mean"}) end)
    local _, e4 = after(function() dist.all_gather({1, 2}) end)
    assert.truthy(e1:find("op must be \"sum\", \"mean\", \"max\" or \"min\", got 'prod'", 1, true))
    assert.truthy(e2:find("root must be a rank from 0 to " .. (n - 1) .. ", got " .. n, 1, true))
    assert.truthy(e3:find("op 'mean' needs a float32 or float64 tensor, got int64", 1, true))
    assert.truthy(e4:find("all_gather: on rank 0", 1, true))
    assert.truthy(e4:find("argument #1: expected a crater.Tensor, got table", 1, true))
  end)

  it("reduce_scatter of a first size not divisible by the world size", function()
    local ok, err = after(function() dist.reduce_scatter(crater.zeros(n + 1)) end)
    assert.is_false(ok)
    assert.truthy(err:find(string.format("first size %d is not divisible by the world size %d", n + 1, n), 1, true))
  end)
end)
