-- Joining and indexing: cat, stack, gather, scatter_add, index_select, masked_fill, where.
-- Indices are 1-based int64 at the Lua surface.
local crater = require "crater"
local H = dofile("spec/core/helpers.lua")
local d, i64 = H.d, H.i

describe("cat and stack", function()
  local a, b = d({ { 1, 2 }, { 3, 4 } }), d({ { 5, 6 } })
  it("cat joins along a dim (the first by default)", function()
    assert.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, crater.cat({ a, b }):totable())
    assert.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, crater.cat({ a, b }, 1):totable())
    assert.same({ { 1, 2, 1, 3 }, { 3, 4, 2, 4 } }, crater.cat({ a, a:t() }, 2):totable())
    assert.same({ { 1, 2, 1 }, { 3, 4, 3 } }, crater.cat({ a, a:narrow(2, 1, 1) }, -1):totable())
    assert.same({ 1, 2, 3 }, crater.cat({ d({ 1 }), d({ 2, 3 }) }):totable())
  end)

  it("cat promotes dtypes and accepts empty pieces", function()
    assert.equal("float64", crater.cat({ crater.tensor({ 1 }), d({ 2 }) }):dtype())
    assert.same({ 1, 2 }, crater.cat({ d({ 1, 2 }), crater.zeros(0, { dtype = "float64" }) }):totable())
  end)

  it("stack adds a new dim", function()
    local x, y = d({ 1, 2 }), d({ 3, 4 })
    assert.same({ { 1, 2 }, { 3, 4 } }, crater.stack({ x, y }):totable())
    assert.same({ { 1, 3 }, { 2, 4 } }, crater.stack({ x, y }, 2):totable())
    assert.same({ { 1, 3 }, { 2, 4 } }, crater.stack({ x, y }, -1):totable())
    assert.same({ 3, 2, 2 }, crater.stack({ a, a, a }):shape())
  end)

  it("name the function, positions and shapes on mismatch", function()
    assert.error_matches(function() crater.cat({ a, crater.zeros(2, 3) }, 1) end,
      "cat: sizes of tensors must match except in dim 1: shapes {2,2} (position 1) and {2,3} (position 2)", 1, true)
    assert.error_matches(function() crater.stack({ d({ 1, 2 }), d({ 1 }) }) end,
      "stack: stack expects each tensor to be equal size, but got {2} at position 1 and {1} at position 2", 1, true)
    assert.error_matches(function() crater.cat({}) end, "cat: expected a non-empty list of tensors", 1, true)
    assert.error_matches(function() crater.cat({ a, 3 }) end, "cat: element 2 of the list is not a tensor", 1, true)
    assert.error_matches(function() crater.cat({ a, b }, 3) end, "dimension 3 out of range", 1, true)
    assert.error_matches(function() crater.cat({ d(1), d(2) }) end, "cat: zero-dimensional tensor (at position 1) cannot be concatenated", 1, true)
    assert.error_matches(function() crater.stack({ a }, 4) end, "dimension 4 out of range", 1, true)
  end)
end)

describe("gather and scatter_add", function()
  local x = d({ { 1, 2, 3 }, { 4, 5, 6 } })
  it("gather picks x[i][idx[i][j]] along dim 2 and x[idx[i][j]][j] along dim 1", function()
    assert.same({ { 3, 1 }, { 5, 5 } }, x:gather(2, i64({ { 3, 1 }, { 2, 2 } })):totable())
    assert.same({ { 4, 2, 6 } }, x:gather(1, i64({ { 2, 1, 2 } })):totable())
    assert.same({ { 3 }, { 4 } }, crater.gather(x, 2, i64({ { 3 }, { 1 } })):totable())
  end)

  it("scatter_add adds src into the indexed places", function()
    local z = crater.zeros(2, 3, { dtype = "float64" })
    assert.same({ { 12, 0, 1 }, { 0, 5, 0 } },
      z:scatter_add(2, i64({ { 3, 1, 1 }, { 2, 2, 2 } }), d({ { 1, 5, 7 }, { 1, 2, 2 } })):totable())
  end)

  it("refuses bad indices, naming the function", function()
    assert.error_matches(function() x:gather(2, i64({ { 1, 4 } })) end, "gather: index value 4 out of range for size 3", 1, true)
    assert.error_matches(function() x:gather(2, i64({ { 0 } })) end, "gather: index value 0 out of range for size 3", 1, true)
    assert.error_matches(function() x:gather(2, crater.tensor({ { 1, 2 } })) end, "gather: index must be an int64 tensor, got float32", 1, true)
    assert.error_matches(function() x:gather(2, i64({ 1, 2 })) end, "gather: index {2} and input {2,3} must have the same number of dims", 1, true)
    assert.error_matches(function() x:gather(3, i64({ { 1 } })) end, "dimension 3 out of range", 1, true)
  end)
end)

describe("index_select", function()
  local x = d({ { 1, 2, 3 }, { 4, 5, 6 } })
  it("selects rows or columns, repeating as asked", function()
    assert.same({ { 4, 5, 6 }, { 1, 2, 3 }, { 4, 5, 6 } }, x:index_select(1, i64({ 2, 1, 2 })):totable())
    assert.same({ { 3, 1 }, { 6, 4 } }, crater.index_select(x, 2, i64({ 3, 1 })):totable())
    assert.same({ { 2 }, { 5 } }, x:t():index_select(1, i64({ 2 })):t():totable())
  end)

  it("refuses bad indices", function()
    assert.error_matches(function() x:index_select(1, i64({ 3 })) end, "index_select: index value 3 out of range for size 2", 1, true)
    assert.error_matches(function() x:index_select(1, i64({ { 1 } })) end, "index_select: index must be 1-D, got shape {1,1}", 1, true)
    assert.error_matches(function() x:index_select(1, d({ 1 })) end, "index_select: index must be an int64 tensor, got float64", 1, true)
  end)
end)

describe("masked_fill and where", function()
  local x = d({ { 1, 2, 3 }, { 4, 5, 6 } })
  it("masked_fill writes v where the mask is nonzero, broadcasting the mask", function()
    assert.same({ { 0, 2, 0 }, { 4, 5, 6 } }, x:masked_fill(i64({ { 1, 0, 1 }, { 0, 0, 0 } }), 0):totable())
    assert.same({ { 1, 9, 3 }, { 4, 9, 6 } }, x:masked_fill(i64({ 0, 1, 0 }), 9):totable())
    assert.same({ { 1, 2, 3 }, { 4, 5, 6 } }, x:totable())
    assert.same({ { -1, -1, -1 }, { 4, 5, 6 } }, x:masked_fill(x:lt(4), -1):totable())
  end)

  it("masked_fill_ works in place", function()
    local y = x:clone()
    assert.equal(y, y:masked_fill_(y:gt(4), 0))
    assert.same({ { 1, 2, 3 }, { 4, 0, 0 } }, y:totable())
  end)

  it("where picks from a where the condition holds, else from b, broadcasting all three", function()
    assert.same({ { 1, 0, 3 }, { 0, 0, 0 } }, crater.where(x:le(3):mul(x:ne(2)), x, 0):totable())
    assert.same({ { 1, 20, 3 }, { 10, 20, 30 } }, crater.where(i64({ { 1, 0, 1 }, { 0, 0, 0 } }), x, d({ 10, 20, 30 })):totable())
    assert.same({ { 7, 7 }, { 8, 8 } }, crater.where(i64({ { 1 }, { 0 } }), d({ 7, 7 }), 8):totable())
    assert.same({ 2, 0 }, x:lt(3):sum(2):totable())
    -- the method form is PyTorch's x:where(cond, y)
    assert.same({ { 1, 0, 3 }, { 0, 0, 0 } }, x:where(i64({ { 1, 0, 1 }, { 0, 0, 0 } }), 0):totable())
  end)

  it("refuse shapes that do not broadcast", function()
    assert.error_matches(function() x:masked_fill(i64({ 1, 0 }), 0) end,
      "masked_fill: shapes {2,3} and {2} cannot be broadcast (size 3 vs 2 at dim 2)", 1, true)
    assert.error_matches(function() crater.where(i64({ 1, 0 }), x, 0) end,
      "where: shapes {2} and {2,3} cannot be broadcast", 1, true)
    assert.error_matches(function() x:masked_fill_(i64({ 1, 0 }), 0) end, "masked_fill_: shapes {2,3} and {2} cannot be broadcast", 1, true)
  end)
end)
