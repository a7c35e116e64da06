local crater = require "crater"
local DataLoader = crater.data.DataLoader

local function rows(n) return crater.arange(1, n + 1, 1, { dtype = "float64" }):view(n, 1) end

local function collect(loader)
  local seen = {}
  for xb, yb in loader:iter() do
    local b = {}
    for i = 1, xb:size(1) do
      assert.equal(xb:get(i, 1), yb:get(i))     -- rows of x and y stay paired
      b[#b + 1] = xb:get(i, 1)
    end
    seen[#seen + 1] = b
  end
  return seen
end

describe("crater.data.DataLoader", function()
  it("cuts rows into batches in order, the last one short", function()
    local l = DataLoader(rows(7), crater.arange(1, 8), { batch_size = 3 })
    assert.equal(3, #l)
    assert.same({ { 1, 2, 3 }, { 4, 5, 6 }, { 7 } }, collect(l))
  end)

  it("drop_last skips the short batch", function()
    local l = DataLoader(rows(7), crater.arange(1, 8), { batch_size = 3, drop_last = true })
    assert.equal(2, #l)
    assert.same({ { 1, 2, 3 }, { 4, 5, 6 } }, collect(l))
  end)

  it("shuffle visits every row once per epoch, in a new order each epoch", function()
    local l = DataLoader(rows(50), crater.arange(1, 51), { batch_size = 8, shuffle = true, seed = 3 })
    local e1, e2 = collect(l), collect(l)
    local function flat(bs)
      local all = {}
      for _, b in ipairs(bs) do for _, v in ipairs(b) do all[#all + 1] = v end end
      return all
    end
    local a, b = flat(e1), flat(e2)
    assert.are_not.same(a, b)
    table.sort(a); table.sort(b)
    local want = {}
    for i = 1, 50 do want[i] = i end
    assert.same(want, a)
    assert.same(want, b)
  end)

  it("the same seed and epoch give the same batches (resuming)", function()
    local a = DataLoader(rows(20), crater.arange(1, 21), { batch_size = 4, shuffle = true, seed = 11 })
    local b = DataLoader(rows(20), crater.arange(1, 21), { batch_size = 4, shuffle = true, seed = 11 })
    collect(a)
    local second = collect(a)
    b:set_epoch(1)
    assert.same(second, collect(b))
  end)

  it("works without labels", function()
    local n = 0
    for xb, yb in DataLoader(rows(5), { batch_size = 2 }):iter() do
      n = n + xb:size(1)
      assert.is_nil(yb)
    end
    assert.equal(5, n)
  end)

  it("refuses x and y with different row counts and a bad batch size", function()
    assert.error_matches(function() DataLoader(rows(5), crater.zeros(4)) end,
      "DataLoader: x has 5 rows but y has shape {4}", 1, true)
    assert.error_matches(function() DataLoader(rows(5), nil, { batch_size = 0 }) end,
      "DataLoader: batch_size must be a positive integer, got 0", 1, true)
  end)
end)
