-- Matrix products: 1-D, 2-D, batched 3-D, transposed views, dtypes, and shape errors.
local crater = require "crater"
local H = dofile("spec/core/helpers.lua")
local d, i64 = H.d, H.i

-- the textbook triple loop, independent of BLAS
local function naive(a, b)
  local n, k, m = #a, #b, #b[1]
  local y = {}
  for i = 1, n do
    y[i] = {}
    for j = 1, m do
      local s = 0
      for q = 1, k do s = s + a[i][q] * b[q][j] end
      y[i][j] = s
    end
  end
  return y
end

describe("matmul", function()
  local A = { { 1, 2, 3 }, { 4, 5, 6 } }
  local B = { { 7, 8 }, { 9, 10 }, { 11, 12 } }

  it("multiplies 2x3 by 3x1 (worked by hand)", function()
    assert.same({ { 14 }, { 32 } }, crater.tensor(A):matmul(crater.tensor({ { 1 }, { 2 }, { 3 } })):totable())
  end)

  it("2-D by 2-D in float32 and float64, with mm and the function form", function()
    local want = { { 58, 64 }, { 139, 154 } }
    assert.same(want, crater.tensor(A):matmul(crater.tensor(B)):totable())
    assert.same(want, crater.matmul(d(A), d(B)):totable())
    assert.same(want, d(A):mm(d(B)):totable())
    assert.equal("float64", crater.mm(d(A), d(B)):dtype())
  end)

  it("1-D operands: dot, vector-matrix, matrix-vector", function()
    local v = d({ 1, 2, 3 })
    assert.equal(0, crater.matmul(v, v):dim())
    assert.equal(14, crater.matmul(v, v):item())
    assert.same({ 14, 32 }, d(A):matmul(v):totable())
    assert.same({ 58, 64 }, d({ 1, 2, 3 }):matmul(d(B)):totable())
    assert.equal(14, v:dot(v):item())
  end)

  it("passes transposed views and gives the product of the logical matrices", function()
    local at = d({ { 1, 4 }, { 2, 5 }, { 3, 6 } }):t()    -- A as a transposed view
    local bt = d({ { 7, 9, 11 }, { 8, 10, 12 } }):t()     -- B as a transposed view
    assert.is_false(at:is_contiguous())
    local want = { { 58, 64 }, { 139, 154 } }
    assert.same(want, at:matmul(d(B)):totable())
    assert.same(want, d(A):matmul(bt):totable())
    assert.same(want, at:matmul(bt):totable())
    assert.same({ { 58, 139 }, { 64, 154 } }, bt:t():t():t():matmul(at:t()):totable())
  end)

  it("handles views that BLAS cannot read directly (strided rows and columns)", function()
    local big = crater.arange(1, 37, { dtype = "float64" }):view(6, 6)
    local a = big:narrow(1, 1, 2):narrow(2, 1, 3)    -- rows 1..2, cols 1..3, row stride 6
    local s = big:view(36):narrow(1, 1, 18):view(3, 6):narrow(2, 1, 2)
    local e = big:view(6, 3, 2):select(3, 1):narrow(1, 1, 2)   -- column stride 2: {1,3,5},{7,9,11}
    assert.same({ 6, 2 }, e:stride())
    assert.same({ { 1, 3, 5 }, { 7, 9, 11 } }, e:totable())
    assert.same(naive(a:totable(), s:totable()), a:matmul(s):totable())
    assert.same(naive(e:totable(), B), e:matmul(d(B)):totable())
    assert.same(naive(B, e:totable()), d(B):matmul(e):totable())
  end)

  it("batched 3-D by 3-D and by a shared 2-D matrix, with bmm", function()
    local a = d({ A, { { 1, 0, 0 }, { 0, 1, 0 } } })
    local b = d({ B, { { 1, 1 }, { 2, 2 }, { 3, 3 } } })
    local y = a:matmul(b)
    assert.same({ 2, 2, 2 }, y:shape())
    assert.same({ { 58, 64 }, { 139, 154 } }, y[1]:totable())
    assert.same({ { 1, 1 }, { 2, 2 } }, y[2]:totable())
    assert.same(y:totable(), crater.bmm(a, b):totable())
    local shared = a:matmul(d(B))
    assert.same({ { 7, 8 }, { 9, 10 } }, shared[2]:totable())
    local left = d(A):matmul(b)      -- (2,3) x (B,3,2): broadcast over the batch
    assert.same({ { 14, 14 }, { 32, 32 } }, left[2]:totable())
  end)

  it("batched with transposed views", function()
    local a = d({ A, A })
    local bT = d({ { { 7, 9, 11 }, { 8, 10, 12 } }, { { 7, 9, 11 }, { 8, 10, 12 } } }):transpose(2, 3)
    assert.same({ { 58, 64 }, { 139, 154 } }, a:bmm(bT)[2]:totable())
    local aT = d({ { { 1, 4 }, { 2, 5 }, { 3, 6 } } }):transpose(2, 3)
    assert.same({ { { 58, 64 }, { 139, 154 } } }, aT:bmm(d({ B })):totable())
  end)

  it("multiplies random matrices like the triple loop", function()
    crater.manual_seed(5)
    local a, b = crater.randn(7, 5, { dtype = "float64" }), crater.randn(5, 4, { dtype = "float64" })
    H.close(a:matmul(b), naive(a:totable(), b:totable()), 1e-13)
    H.close(crater.tensor(a):matmul(crater.tensor(b)), naive(a:totable(), b:totable()), 1e-5)
  end)

  it("int64 and mixed dtypes", function()
    assert.same({ { 58, 64 }, { 139, 154 } }, i64(A):matmul(i64(B)):totable())
    assert.equal("int64", i64(A):matmul(i64(B)):dtype())
    assert.equal("float64", crater.tensor(A):matmul(d(B)):dtype())
  end)

  it("empty inner and outer sizes", function()
    assert.same({ { 0, 0 }, { 0, 0 } }, crater.zeros(2, 0):matmul(crater.zeros(0, 2)):totable())
    assert.same({ 0, 2 }, crater.zeros(0, 3):matmul(crater.zeros(3, 2)):shape())
  end)

  it("names both shapes when inner sizes differ", function()
    assert.error_matches(function() crater.matmul(crater.zeros(2, 3), crater.zeros(4, 5)) end,
      "matmul: shapes {2,3} and {4,5} do not match (inner sizes 3 and 4)", 1, true)
    assert.error_matches(function() crater.matmul(crater.zeros(3), crater.zeros(4)) end,
      "matmul: shapes {3} and {4} do not match (inner sizes 3 and 4)", 1, true)
    assert.error_matches(function() crater.matmul(crater.zeros(3), crater.zeros(4, 2)) end,
      "matmul: shapes {3} and {4,2} do not match (inner sizes 3 and 4)", 1, true)
    assert.error_matches(function() crater.matmul(crater.zeros(2, 3), crater.zeros(2)) end,
      "matmul: shapes {2,3} and {2} do not match (inner sizes 3 and 2)", 1, true)
    assert.error_matches(function() crater.mm(crater.zeros(2, 3), crater.zeros(3)) end,
      "mm: expected 2-D tensors, got shapes {2,3} and {3}", 1, true)
    assert.error_matches(function() crater.bmm(crater.zeros(2, 3), crater.zeros(3, 2)) end,
      "bmm: expected 3-D tensors, got shapes {2,3} and {3,2}", 1, true)
    assert.error_matches(function() crater.matmul(crater.zeros(2, 2, 2, 2), crater.zeros(2, 2)) end,
      "matmul: shapes {2,2,2,2} and {2,2}: only 1-D, 2-D and 3-D operands are supported", 1, true)
    assert.error_matches(function() crater.matmul(crater.zeros(2), 3) end, "crater.Tensor expected, got number", 1, true)
  end)

  it("names both shapes when batch sizes differ", function()
    assert.error_matches(function() crater.bmm(crater.zeros(2, 2, 3), crater.zeros(3, 3, 2)) end,
      "bmm: shapes {2,2,3} and {3,3,2} do not match (batch sizes 2 and 3)", 1, true)
  end)

  -- ct_gemm zeroes the result itself and asks BLAS to add onto it (beta 1): memory that held
  -- NaN and infinities (a freed tensor of the same size, which the allocator hands out again)
  -- must not reach the product, on either split of the threads, nor must -0 survive 0 + -0.
  it("ignores what the result's memory held before (reused NaN blocks)", function()
    for _, nt in ipairs({ 1, 2 }) do
      crater.set_num_threads(nt)
      for _, dt in ipairs({ "float32", "float64" }) do
        for _ = 1, 2 do
          do local _ = crater.full({ 300, 200 }, 0 / 0, { dtype = dt }) end   -- made, then dropped
          collectgarbage()
          -- 300x4 ones by 4x200 twos: every entry 4 * 2 = 8, by hand
          local y = crater.ones(300, 4, { dtype = dt }):matmul(crater.full({ 4, 200 }, 2, { dtype = dt }))
          assert.equal(8, y:min():item())
          assert.equal(8, y:max():item())
        end
        local z = crater.full({ 300, 2 }, -0.0, { dtype = dt }):matmul(crater.ones(2, 200, { dtype = dt }))
        assert.equal(math.huge, 1 / z:max():item())   -- 0 + (-0) = +0, as BLAS's beta 0
      end
    end
    crater.set_num_threads(2)
  end)
end)
