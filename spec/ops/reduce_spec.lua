-- Reductions over all elements and over each dim, with and without keepdim, and the
-- softmax family; every expected value is worked out by hand.
local crater = require "crater"
local H = dofile("spec/core/helpers.lua")
local d, i64 = H.d, H.i

-- x[i][j][k] = 100 i + 10 j + k for i <= 2, j <= 3, k <= 2
local function cube()
  local t = {}
  for i = 1, 2 do
    t[i] = {}
    for j = 1, 3 do t[i][j] = { 100 * i + 10 * j + 1, 100 * i + 10 * j + 2 } end
  end
  return d(t)
end

describe("sum and mean", function()
  local m = d({ { 1, 2, 3 }, { 4, 5, 6 } })
  it("over all elements give a 0-d tensor", function()
    assert.equal(0, m:sum():dim())
    assert.equal(21, m:sum():item())
    assert.equal(3.5, m:mean():item())
    assert.equal(21, crater.sum(m):item())
  end)

  it("over each dim, with and without keepdim", function()
    assert.same({ 5, 7, 9 }, m:sum(1):totable())
    assert.same({ { 5, 7, 9 } }, m:sum(1, true):totable())
    assert.same({ 6, 15 }, m:sum(2):totable())
    assert.same({ { 6 }, { 15 } }, m:sum(2, true):totable())
    assert.same({ 6, 15 }, m:sum(-1):totable())
    assert.same({ 2.5, 3.5, 4.5 }, m:mean(1):totable())
    assert.same({ { 2 }, { 5 } }, m:mean(2, true):totable())
  end)

  it("over each dim of a 3-d tensor", function()
    local x = cube()
    -- sum over i: (100+200) + 2*(10j + k)
    assert.same({ { 322, 324 }, { 342, 344 }, { 362, 364 } }, x:sum(1):totable())
    -- sum over j: 3*100 i + 60 + 3k
    assert.same({ { 363, 366 }, { 663, 666 } }, x:sum(2):totable())
    assert.same({ 2, 1, 2 }, x:sum(2, true):shape())
    -- sum over k: 2(100 i + 10 j) + 3
    assert.same({ { 223, 243, 263 }, { 423, 443, 463 } }, x:sum(3):totable())
    assert.same({ { { 111.5 }, { 121.5 }, { 131.5 } }, { { 211.5 }, { 221.5 }, { 231.5 } } }, x:mean(3, true):totable())
  end)

  it("work on strided views", function()
    assert.same({ 6, 15 }, d({ { 1, 4 }, { 2, 5 }, { 3, 6 } }):t():sum(2):totable())
  end)

  it("keep int64 for sum and give 0 over no elements", function()
    assert.equal("int64", i64({ 1, 2 }):sum():dtype())
    assert.equal(0, crater.zeros(0):sum():item())
    assert.same({ 0, 0 }, crater.zeros(2, 0):sum(2):totable())
    assert.is_true(crater.zeros(0):mean():item() ~= crater.zeros(0):mean():item())   -- NaN
  end)
end)

describe("prod, max, min, argmax, argmin", function()
  local m = d({ { 1, 5, 3 }, { 4, 2, 6 } })
  it("prod over all and per dim", function()
    assert.equal(720, m:prod():item())
    assert.same({ 4, 10, 18 }, m:prod(1):totable())
    assert.same({ { 15 }, { 48 } }, m:prod(2, true):totable())
  end)

  it("max and min over all elements", function()
    assert.equal(6, m:max():item())
    assert.equal(1, m:min():item())
  end)

  it("max and min over a dim return values and 1-based int64 indices", function()
    local v, idx = m:max(2)
    assert.same({ 5, 6 }, v:totable())
    assert.same({ 2, 3 }, idx:totable())
    assert.equal("int64", idx:dtype())
    v, idx = m:min(1, true)
    assert.same({ { 1, 2, 3 } }, v:totable())
    assert.same({ { 1, 2, 1 } }, idx:totable())
  end)

  it("max(a, b) of two tensors is maximum", function()
    assert.same({ { 2, 5, 3 }, { 4, 2, 6 } }, m:max(d({ 2, 1, 0 })):totable())
  end)

  it("argmax and argmin give 1-based indices, the first of ties", function()
    assert.equal(6, m:argmax():item())
    assert.equal(1, m:argmin():item())
    assert.same({ 2, 1, 2 }, m:argmax(1):totable())
    assert.same({ { 1 }, { 2 } }, m:argmin(2, true):totable())
    assert.same({ 1 }, d({ { 3, 3, 1 } }):argmax(2):totable())
  end)

  it("propagate NaN", function()
    local n = d({ 1, 0 / 0, 3 })
    assert.is_true(n:max():item() ~= n:max():item())
    assert.equal(2, n:argmax():item())
  end)

  it("refuse an empty tensor", function()
    assert.error_matches(function() crater.zeros(0):max() end, "max: cannot take the max of an empty tensor", 1, true)
    assert.error_matches(function() crater.zeros(0):argmin() end, "argmin: cannot take the argmin of an empty tensor", 1, true)
  end)
end)

describe("var, std, norm", function()
  local m = d({ { 1, 2, 3, 4 }, { 2, 4, 6, 8 } })
  it("var and std are unbiased by default", function()
    -- {1,2,3,4}: mean 2.5, squared deviations sum to 5
    H.close(m[1]:var(), 5 / 3, 1e-15)
    H.close(m[1]:var({ unbiased = false }), 5 / 4, 1e-15)
    H.close(m:var(2), { 5 / 3, 20 / 3 }, 1e-15)
    H.close(m:std(2, { keepdim = true }), { { math.sqrt(5 / 3) }, { math.sqrt(20 / 3) } }, 1e-15)
    H.close(m:var(1), { 0.5, 2, 4.5, 8 }, 1e-15)
    H.close(m:std(), math.sqrt((1 + 4 + 9 + 16 + 4 + 16 + 36 + 64 - 30 * 30 / 8) / 7), 1e-14)
  end)

  it("norm: 2 by default, p, inf and per dim", function()
    local v = d({ 3, -4 })
    H.close(v:norm(), 5, 1e-15)
    H.close(v:norm(1), 7, 1e-15)
    H.close(v:norm("inf"), 4, 1e-15)
    H.close(v:norm(3), (27 + 64) ^ (1 / 3), 1e-14)
    H.close(d({ { 3, 4 }, { 6, 8 } }):norm(2, 2), { 5, 10 }, 1e-15)
    H.close(d({ { 3, 4 }, { 6, 8 } }):norm(2, 1, true), { { math.sqrt(45), math.sqrt(80) } }, 1e-15)
  end)
end)

describe("softmax, log_softmax, logsumexp", function()
  local function softmax_row(r)
    local s, out = 0, {}
    for _, v in ipairs(r) do s = s + math.exp(v) end
    for k, v in ipairs(r) do out[k] = math.exp(v) / s end
    return out
  end

  it("softmax over the last dim and over the first", function()
    local x = d({ { 1, 2, 3 }, { 1, 1, 1 } })
    H.close(x:softmax(2), { softmax_row({ 1, 2, 3 }), { 1 / 3, 1 / 3, 1 / 3 } }, 1e-14)
    local c = softmax_row({ 2, 1 })
    H.close(d({ { 2, 0 }, { 1, 0 } }):softmax(1), { { c[1], 0.5 }, { c[2], 0.5 } }, 1e-14)
    H.close(crater.softmax(x, -1), { softmax_row({ 1, 2, 3 }), { 1 / 3, 1 / 3, 1 / 3 } }, 1e-14)
  end)

  it("softmax is stable for large inputs", function()
    H.close(d({ 1000, 1001 }):softmax(1), softmax_row({ 0, 1 }), 1e-14)
    H.close(crater.tensor({ 1000, 1000 }):softmax(1), { 0.5, 0.5 }, 1e-7)
  end)

  it("log_softmax is x - logsumexp(x)", function()
    local lse = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    H.close(d({ 1, 2, 3 }):log_softmax(1), { 1 - lse, 2 - lse, 3 - lse }, 1e-14)
    H.close(d({ 1000, 1000 }):log_softmax(1), { -math.log(2), -math.log(2) }, 1e-14)
    H.close(d({ -math.huge, 0 }):log_softmax(1), { -math.huge, 0 })
  end)

  it("softmax over a middle dim of a 3-d tensor", function()
    local x = cube()
    local y = x:softmax(2)
    local c = softmax_row({ 0, 10, 20 })
    H.close(y:select(1, 2):select(2, 1), c, 1e-12)
    H.close(y:sum(2), { { 1, 1 }, { 1, 1 } }, 1e-14)
  end)

  it("logsumexp over a dim, with keepdim, stable at large values and -inf", function()
    local x = d({ { 0, math.log(3) }, { 1000, 1000 } })
    H.close(x:logsumexp(2), { math.log(4), 1000 + math.log(2) }, 1e-14)
    H.close(x:logsumexp(2, true), { { math.log(4) }, { 1000 + math.log(2) } }, 1e-14)
    H.close(x:logsumexp(1), { 1000, 1000 + math.log(1 + 3 * math.exp(-1000)) }, 1e-14)
    H.close(d({ -math.huge, -math.huge }):logsumexp(1), -math.huge)
  end)

  it("refuse an out-of-range dim", function()
    assert.error_matches(function() d({ 1, 2 }):softmax(2) end, "dimension 2 out of range (the tensor has 1 dims)", 1, true)
    assert.error_matches(function() d({ 1, 2 }):logsumexp(3) end, "dimension 3 out of range", 1, true)
  end)
end)

describe("bad reduction arguments", function()
  local m = crater.zeros(2, 3)
  it("name the function and the dim", function()
    assert.error_matches(function() m:sum(3) end, "bad argument #1 to 'sum' (dimension 3 out of range (the tensor has 2 dims))", 1, true)
    assert.error_matches(function() m:mean(0) end, "dimension 0 out of range", 1, true)
    assert.error_matches(function() m:max(-3) end, "dimension -3 out of range", 1, true)
    assert.error_matches(function() m:sum("a") end, "number expected, got string", 1, true)
    assert.error_matches(function() m:sum(1.5) end, "number has no integer representation", 1, true)
  end)
end)
