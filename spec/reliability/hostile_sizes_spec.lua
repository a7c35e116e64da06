-- Issue #17, class 1: size arithmetic.  Every product or sum of sizes, strides and offsets
-- is checked: an overflow is a Lua error naming the function and the sizes, a tensor of
-- more than 2^63-1 elements is never made, and no view reaches outside its storage (the
-- suite runs under ASan+UBSan in `make asan`).  Sizes at the edges (0, 1, 2^31+-1,
-- 2^32+-1, 2^62, maxinteger) that are legal keep giving the right answer.  No case
-- allocates more than a few bytes: large tensors here are expanded views.
local crater = require "crater"
local F = require "crater.nn.functional"
local core = crater.core

local MAX = math.maxinteger
local P31, P32, P62 = 1 << 31, 1 << 32, 1 << 62

-- f raises an error whose message contains msg (plain text)
local function err(f, msg)
  local ok, e = pcall(f)
  assert.is_false(ok, "expected an error containing: " .. msg)
  assert.truthy(tostring(e):find(msg, 1, true), tostring(e))
end

local function shape(t) return table.concat(t:shape(), ",") end

-- a large tensor of one element's storage: zeros(1, ..., 1):expand(sizes)
local function big(...)
  local sizes = { ... }
  local ones = {}
  for i = 1, #sizes do ones[i] = 1 end
  return crater.zeros(ones):expand(sizes)
end

describe("sizes: numel of constructors", function()
  it("refuses element counts past 2^63-1, naming the function and the shape", function()
    err(function() crater.zeros(P62, 4) end, "zeros: sizes overflow: shape {4611686018427387904,4} has more than 2^63-1 elements")
    err(function() crater.ones(P32, P32) end, "ones: sizes overflow: shape {4294967296,4294967296}")
    err(function() crater.empty(P31 + 1, P32 - 1) end, "empty: sizes overflow")
    err(function() crater.rand(MAX, 2) end, "rand: sizes overflow")
    err(function() crater.randn(2, 2, MAX) end, "randn: sizes overflow")
    err(function() crater.full({ P32, P32 }, 1) end, "full: sizes overflow")
    err(function() crater.randint(0, 5, { P62, 2 }) end, "randint: sizes overflow")
    err(function() crater.eye(P32, P32) end, "eye: sizes overflow")
  end)

  it("refuses byte counts past 2^63-1 before allocating", function()
    -- (2^31-1)(2^32+1) elements fit in int64; their bytes do not
    err(function() crater.zeros(P31 - 1, P32 + 1) end, "zeros: sizes overflow: shape {2147483647,4294967297} of float32 needs more than 2^63-1 bytes")
    err(function() crater.zeros(MAX, { dtype = "float64" }) end, "of float64 needs more than 2^63-1 bytes")
    err(function() crater.linspace(0, 1, MAX) end, "linspace: sizes overflow")
  end)

  it("refuses a product of nonzero sizes past 2^63-1 even with a zero size", function()
    -- so that any product of some of a tensor's sizes fits (flatten, reshape, pooling)
    err(function() crater.zeros(0, P62, P62) end, "zeros: sizes overflow: shape {0,4611686018427387904,4611686018427387904} has more than 2^63-1 elements (not counting its zero sizes)")
    assert.are.equal("0,2147483648,2147483648", shape(crater.zeros(0, P31, P31)))
  end)

  it("from_bytes checks the sizes against the bytes before allocating", function()
    err(function() core.internal.from_bytes("", "float32", { P62, 4 }) end, "from_bytes: sizes overflow")
    err(function() core.internal.from_bytes("abcd", "float32", { 1 << 40 }) end,
      "from_bytes: 4 bytes do not make a float32 tensor of 1099511627776 elements")
    err(function() core.internal.from_bytes("abcd", "float64", { 1 << 61 }) end, "from_bytes: 4 bytes do not make a float64")
    assert.are.same({ 1, 2 }, core.internal.from_bytes(core.internal.bytes(crater.tensor({ 1, 2 })), "float32", { 2 }):totable())
  end)
end)

describe("sizes: arange", function()
  it("refuses non-finite bounds, a zero or NaN step and counts past 2^53", function()
    err(function() crater.arange(0, math.huge) end, "arange: unsupported range: 0 -> inf")
    err(function() crater.arange(-math.huge, 0) end, "arange: unsupported range: -inf -> 0")
    err(function() crater.arange(0, 0 / 0) end, "arange: unsupported range")
    err(function() crater.arange(0, 10, 0) end, "arange: step must be nonzero")
    err(function() crater.arange(0, 10, 0 / 0) end, "arange: step must be nonzero")
    err(function() crater.arange(0, 1e300, 1e-300) end, "arange: range 0 -> 1e+300 with step 1e-300 has too many elements")
    err(function() crater.arange(-1e308, 1e308) end, "arange: range -1e+308 -> 1e+308 with step 1 has too many elements (inf)")
    err(function() crater.arange(0, 2 ^ 60) end, "arange: range 0 -> 1.15292e+18 with step 1 has too many elements")
  end)

  it("stays right near the edges", function()
    assert.are.same({ 0, 2 ^ 61 }, crater.arange(0, P62, 1 << 61, { dtype = "float64" }):totable())
    assert.are.equal(0, crater.arange(0, 10, math.huge):numel())   -- as PyTorch
    assert.are.same({ 1 }, crater.arange(1, 2):totable())
  end)
end)

describe("sizes: view and reshape", function()
  it("refuses sizes whose product overflows (the issue's example)", function()
    err(function() crater.zeros(2, 3):view(7, 7905747460161236407, 6) end,
      "view: shape {7,7905747460161236407,6} is invalid for input of size 6 (shape {2,3})")
    err(function() crater.zeros(2, 3):reshape(7, 7905747460161236407, 6) end, "reshape: shape {7,7905747460161236407,6} is invalid")
    err(function() crater.zeros(6):view(-1, P62, 4) end, "view: shape {-1,4611686018427387904,4} is invalid for input of size 6")
    err(function() crater.zeros(6):view(MAX) end, "view: shape {9223372036854775807} is invalid")
    err(function() crater.zeros(0):view(0, P62, P62) end, "view: shape {0,4611686018427387904,4611686018427387904} is invalid")
    err(function() crater.zeros(4):view(P32 + 1, -1) end, "view: shape {4294967297,-1} is invalid for input of size 4")
  end)

  it("stays right near the edges", function()
    assert.are.equal("0,2147483648,2147483648", shape(crater.zeros(0):view(0, P31, P31)))
    assert.are.equal("2,3", shape(crater.zeros(6):view(-1, 3)))
    local e = big(P62)
    assert.are.equal("1,1,4611686018427387904", shape(e:unsqueeze(1):unsqueeze(1)))
  end)

  it("flatten of an expanded view too large to copy says so", function()
    err(function() big(P31, P31):flatten() end, "flatten: sizes overflow: shape {2147483648,2147483648} of float32 needs more than 2^63-1 bytes")
  end)
end)

describe("sizes: narrow", function()
  it("refuses start + length past 2^63-1 (the issue's example), before any write", function()
    local x = crater.zeros(5)
    err(function() x:narrow(1, 2, MAX):fill_(1) end,
      "narrow: start + length (2 + 9223372036854775807) overflows for dim 1 of size 5")
    err(function() x:narrow(1, -1, MAX) end, "narrow: start + length (5 + 9223372036854775807) overflows")
    err(function() x:narrow(1, 1, MAX) end, "narrow: range [1, 9223372036854775807] out of bounds for size 5 of dim 1")
    err(function() x:narrow(1, 6, 1) end, "range [6, 6] out of bounds for size 5")
    err(function() x:narrow(1, P31 + 1, 1) end, "start 2147483649 out of range for size 5")
    err(function() x:narrow(1, 7, 0) end, "start 7 out of range for size 5")
    err(function() x:narrow(1, math.mininteger, 1) end, "out of range for size 5")
    assert.are.same({ 0, 0, 0, 0, 0 }, x:totable())
  end)

  it("narrows to the exact end, and writes land in the right place", function()
    local x = crater.zeros(5)
    assert.are.equal(0, x:narrow(1, 6, 0):numel())
    x:narrow(1, 2, 4):fill_(1)
    assert.are.same({ 0, 1, 1, 1, 1 }, x:totable())
    local e = big(MAX)   -- 2^63-1 elements: the largest legal tensor
    assert.are.equal(MAX, e:numel())
    assert.are.equal(1, e:narrow(1, MAX, 1):numel())
    assert.are.equal(0, e:narrow(1, -1, 1):item())
    assert.are.equal(0, e:narrow(1, -1, 0):numel())
    err(function() e:narrow(1, MAX, 2) end, "narrow: start + length (9223372036854775807 + 2) overflows for dim 1 of size 9223372036854775807")
  end)
end)

describe("sizes: select, index and get", function()
  it("refuses indices out of range, printing them unwrapped", function()
    local x = crater.zeros(5)
    err(function() x:select(1, MAX) end, "index 9223372036854775807 out of range for size 5 of dim 1")
    err(function() x:select(1, math.mininteger) end, "out of range for size 5 of dim 1")
    err(function() return x[P31 + 1] end, "index: index 2147483649 out of range for size 5 of dim 1")
    err(function() return x[math.mininteger] end, "index: index -9223372036854775808 out of range")
    err(function() x:get(P32 + 1) end, "index 4294967297 out of range for size 5 of dim 1")
    err(function() x[{ MAX }] = 1 end, "out of range for size 5")
  end)

  it("indexes the far end of the largest legal tensor", function()
    local base = crater.zeros(1)
    local e = base:expand(MAX)
    base:fill_(3)
    assert.are.equal(3, e[MAX]:item())
    assert.are.equal(3, e[-1]:item())
    assert.are.equal(3, e:select(1, -MAX):item())
    assert.are.equal(3, e:get(MAX))
    err(function() e:get(math.mininteger) end, "index -9223372036854775808 out of range for size 9223372036854775807")
    err(function() return e[math.mininteger] end, "out of range for size 9223372036854775807")
  end)

  it("names element counts past 2^31 exactly", function()
    err(function() big(P31 + 1):item() end, "item: a tensor with 2147483649 elements cannot be converted")
  end)
end)

describe("sizes: expand and broadcasting", function()
  it("refuses expanded shapes of more than 2^63-1 elements", function()
    err(function() big(1, 1):expand(P62, 4) end, "expand: sizes overflow: shape {4611686018427387904,4} has more than 2^63-1 elements")
    err(function() big(1, 1):expand(P32, P32) end, "expand: sizes overflow")
    err(function() big(1, 1):expand(P31 + 1, P32 - 1) end, "expand: sizes overflow")
    err(function() big(1, 1):expand(MAX, 2) end, "expand: sizes overflow")
    err(function() big(1):expand(2, MAX) end, "expand: sizes overflow")
    err(function() big(1):expand(-2) end, "size -2 is negative")
    err(function() crater.zeros(1, 1, 1, 1):expand(1, 1, P32, P32) end, "expand: sizes overflow: shape {1,1,4294967296,4294967296}")
  end)

  it("keeps legal large expands working", function()
    local e = big(P31 - 1, P32 + 1)   -- 2^63 - 2^31 - 1 elements
    assert.are.equal((P31 - 1) * (P32 + 1), e:numel())
    assert.are.same({ 0, 0 }, e:stride())
    assert.are.equal(0, e[P31 - 1][P32 + 1]:item())
    assert.are.equal("2147483647,4294967297", shape(e:expand(-1, -1)))
    assert.are.equal(P62, big(P62):numel())
  end)

  it("refuses broadcast results of more than 2^63-1 elements", function()
    err(function() return big(P62) + crater.zeros(4, 1) end, "add: sizes overflow: shape {4,4611686018427387904}")
    err(function() return crater.where(crater.zeros(4, 1, 1), big(P62, 1), big(1, 4)) end, "where: sizes overflow")
    -- a legal broadcast too large to hold: refused on its bytes, not allocated
    err(function() return big(P62) * crater.zeros(1) end, "mul: sizes overflow: shape {4611686018427387904} of float32 needs")
  end)
end)

describe("sizes: cat and stack", function()
  it("refuses size sums past 2^63-1 (the issue's example)", function()
    local e = big(P62)
    err(function() crater.cat({ e, e, e, e }) end,
      "cat: sizes overflow: the sizes along dim 1 pass 2^63-1 at position 2 (4611686018427387904 so far + 4611686018427387904)")
    err(function() crater.cat({ big(MAX), crater.zeros(1) }) end, "cat: sizes overflow: the sizes along dim 1 pass 2^63-1 at position 2")
    err(function() crater.cat({ big(1, P62), big(1, P62) }, 2) end, "cat: sizes overflow: the sizes along dim 2")
    err(function() crater.stack({ e, e, e, e }) end, "stack: sizes overflow: shape {4,4611686018427387904}")
    err(function() crater.cat({ e, crater.zeros(3) }) end, "cat: sizes overflow: shape {4611686018427387907} of float32 needs")
  end)

  it("stays right for legal sums", function()
    local r = crater.cat({ crater.zeros(1):expand(3), crater.ones(2) })
    assert.are.same({ 0, 0, 0, 1, 1 }, r:totable())
    assert.are.same({ { 1, 1 }, { 1, 1 } }, crater.stack({ crater.ones(2), crater.ones(2) }):totable())
  end)
end)

describe("sizes: conv2d, im2col, col2im and pooling", function()
  local x1 = function() return crater.full({ 1, 1, 1, 1 }, 7) end

  it("refuses the issue's kernel expanded to 2^32x2^32 with padding 2^31", function()
    err(function()
      local w = crater.zeros(1, 1, 1, 1):expand(1, 1, P32, P32)
      return F.conv2d(x1(), w, nil, { padding = P31 })
    end, "expand: sizes overflow: shape {1,1,4294967296,4294967296}")
    -- a legal 2^31x2^31 kernel: the columns (2^62 rows of about 2^62) overflow
    err(function() return F.conv2d(x1(), big(1, 1, P31, P31), nil, { padding = P31 }) end,
      "conv2d: sizes overflow: shape {4611686018427387904,4611686027017322500} has more than 2^63-1 elements")
  end)

  it("refuses padding whose doubling overflows, and bad strides, naming conv2d", function()
    local w = crater.ones(1, 1, 1, 1)
    err(function() return F.conv2d(x1(), w, nil, { padding = MAX }) end, "conv2d: sizes overflow: input {1,1,1,1} with kernel 1x1, stride 1x1 and padding 9223372036854775807x9223372036854775807")
    err(function() return F.conv2d(x1(), w, nil, { padding = P62 }) end, "conv2d: sizes overflow")
    err(function() return F.conv2d(x1(), w, nil, { padding = { 0, P62 } }) end, "conv2d: sizes overflow")
    err(function() return F.conv2d(x1(), w, nil, { stride = 0 }) end, "conv2d: stride must be positive, got 0x0")
    err(function() return F.conv2d(x1(), w, nil, { stride = -1 }) end, "conv2d: stride must be positive, got -1x-1")
    err(function() return F.conv2d(x1(), w, nil, { padding = -1 }) end, "conv2d: padding must be non-negative")
    err(function() return F.conv2d(x1(), big(1, 1, P31, 1)) end, "conv2d: kernel 2147483648x1 (padding 0x0) is larger than the input")
    -- output positions past 2^63-1: a tall expanded image with padding
    err(function() return F.conv2d(big(1, 1, P62, 1), w, nil, { padding = 1 }) end, "conv2d: sizes overflow")
  end)

  it("gives the right answer with strides and padding near the edges", function()
    local w = crater.ones(1, 1, 1, 1)
    -- one output position, reading padding: PyTorch gives 0
    local y = F.conv2d(x1(), w, nil, { stride = MAX, padding = 1 << 61 })
    assert.are.equal("1,1,1,1", shape(y))
    assert.are.equal(0, y:item())
    local z = F.conv2d(x1(), w, nil, { stride = MAX })
    assert.are.equal(7, z:item())
    assert.are.equal(7, F.max_pool2d(x1(), P31, { padding = 1 << 30 }):item())
    assert.are.equal(7, F.max_pool2d(x1(), 1, { stride = MAX }):item())
  end)

  it("refuses pooling outputs past 2^63-1", function()
    -- (2^62 + 1) x 2 positions
    err(function() return F.max_pool2d(big(1, 1, P62, 1), 2, { stride = 1, padding = 1 }) end,
      "max_pool2d: sizes overflow: input {1,1,4611686018427387904,1} with kernel 2x2, stride 1x1 and padding 1x1")
    err(function() return F.avg_pool2d(big(1, 1, P62, 1), 2, { stride = 1, padding = 1 }) end, "avg_pool2d: sizes overflow")
    err(function() return F.max_pool2d(x1(), 2, { stride = 0 }) end, "max_pool2d: stride must be positive")
    err(function() return F.max_pool2d(x1(), 2, { padding = MAX }) end, "max_pool2d: sizes overflow")
    err(function() return F.max_pool2d(x1(), 0) end, "max_pool2d: kernel size must be positive")
  end)

  it("im2col, col2im and the conv output check their sizes", function()
    err(function() return core.internal.im2col(x1(), P32, P32, 1, 1, P31, P31) end, "im2col: sizes overflow: 1 channels of kernel 4294967296x4294967296")
    err(function() return core.internal.im2col(big(1, P31, 1, 1), P31, P31, 1, 1, P31, P31) end, "im2col: sizes overflow")
    err(function() return core.internal.col2im(crater.zeros(1, 1), -5, 1, 1, 1, 1, 1, 10, 0) end, "col2im: columns of shape {1,1} do not fit a -5x1 image")
    err(function() return core.internal.col2im(crater.zeros(1, 1), 1, 1, P32, P32, 1, 1, P31, P31) end, "col2im: columns of shape {1,1} do not fit")
    err(function() return core.internal.col2im(crater.zeros(1, 1), 1, 1, 1, 1, 1, 1, MAX, 0) end, "col2im: columns")
    err(function() return core.internal._conv_out(crater.zeros(1, 1), nil, P32, P32, P32) end, "conv_out: {1,1} (float32) does not fit 4294967296 images of 4294967296x4294967296")
    err(function() return core.internal._conv_out(crater.zeros(1, 0), nil, 0, P62, P62) end, "conv_out: {1,0} (float32) does not fit 0 images")
    local cols = core.internal.im2col(crater.tensor({ { { { 1, 2 }, { 3, 4 } } } }), 1, 1, 1, 1, 0, 0)
    assert.are.same({ { 1, 2, 3, 4 } }, cols:totable())
  end)
end)

describe("sizes: matrix products", function()
  it("refuses dims past BLAS's int before copying anything", function()
    local a, b = big(1, P31), big(P31, 1)
    err(function() return a:matmul(b) end, "matmul: sizes 1x2147483648 times 2147483648x1 pass BLAS's limit of 2^31-1 per dim")
    err(function() return crater.mm(big(P32 + 1, 1), crater.ones(1, 1)) end, "mm: sizes 4294967297x1 times 1x1 pass BLAS's limit")
    err(function() return crater.bmm(big(1, 1, P31), big(1, P31, 1)) end, "bmm: sizes 1x2147483648")
    err(function() return F.linear(big(1, P31), big(1, P31)) end, "linear: sizes 1x2147483648 times 2147483648x1 pass BLAS's limit")
    err(function() return a:matmul(crater.ones(2, 1)) end, "matmul: shapes {1,2147483648} and {2,1} do not match")
  end)

  it("stays right for ordinary shapes", function()
    assert.are.same({ { 11 } }, crater.tensor({ { 1, 2 } }):matmul(crater.tensor({ { 3 }, { 4 } })):totable())
    assert.are.same({ { 0 } }, crater.zeros(1, 0):matmul(crater.zeros(0, 1)):totable())
  end)
end)

describe("sizes: shape strings", function()
  it("long shapes in messages are cut short, never written past their buffer", function()
    local x = crater.zeros(6)
    local ok, e = pcall(x.view, x, MAX, MAX, MAX, MAX, MAX, MAX, MAX, MAX)
    assert.is_false(ok)
    assert.truthy(e:find("view: shape {9223372036854775807,9223372036854775807,9223372036854775807,9223372036854775807...} is invalid", 1, true), e)
  end)
end)

describe("broadcasting empty giants", function()
  it("refuses a broadcast shape whose nonzero sizes overflow, even with no elements", function()
    local a = crater.zeros(1, 0):expand(4611686018427387902, 0)   -- legal: 2^62 fits
    assert.has_error(function() return a + crater.zeros(3, 1, 1) end,
      "add: sizes overflow: shape {3,4611686018427387902,0} has more than 2^63-1 elements")
    assert.is_false(crater.allclose(a, crater.zeros(3, 1, 1)))
    assert.are.same({3, 0}, (crater.zeros(3, 1) + crater.zeros(1, 0)):shape())   -- an ordinary empty broadcast
  end)
end)
