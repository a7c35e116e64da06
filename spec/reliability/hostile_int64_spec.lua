-- int64 is exact (issue #17, class 5): integers never pass through double on the way in or
-- out, int64 arithmetic with Lua integers stays int64, signed overflow wraps as in PyTorch
-- (two's complement, computed without undefined behaviour) and an int64 raised to a
-- negative integer power is refused.  Expected values are Lua's own integer arithmetic,
-- which wraps the same way (Lua 5.4 manual, 3.4.1).
local crater = require "crater"

local MAX, MIN = math.maxinteger, math.mininteger
local BIG = (1 << 53) + 1          -- the first integer no double holds
local I64 = {dtype = "int64"}

local function same_int(a, b)      -- math.type too: 2^53+1 must come back an integer
  assert.are.equal("integer", math.type(a))
  assert.are.equal(b, a)
end

describe("int64 values in and out", function()
  it("round-trips maxinteger, mininteger and 2^53+1 through tensor{}, item, get, totable", function()
    local t = crater.tensor({MAX, MIN, BIG, -BIG}, I64)
    same_int(t:get(1), MAX)
    same_int(t:get(2), MIN)
    same_int(t:get(3), BIG)
    same_int(t:get(4), -BIG)
    local tt = t:totable()
    same_int(tt[1], MAX); same_int(tt[3], BIG)
    same_int(t[3]:item(), BIG)
    same_int(crater.tensor(BIG, I64):totable(), BIG)
  end)

  it("is exact in full, fill_ and x[i] = v", function()
    same_int(crater.full({2}, BIG, I64):get(2), BIG)
    same_int(crater.full({1}, MAX, I64):item(), MAX)
    local x = crater.zeros(3, I64)
    x:fill_(MAX - 1)
    same_int(x:get(3), MAX - 1)
    x[2] = BIG
    same_int(x:get(2), BIG)
    same_int(x:get(1), MAX - 1)
    local m = crater.zeros(2, 2, I64)
    m[2] = MIN + 1                     -- a row view, filled
    assert.are.same({{0, 0}, {MIN + 1, MIN + 1}}, m:totable())
  end)

  it("copies int64 to int64 exactly (contiguous and strided)", function()
    local t = crater.tensor({{BIG, MAX}, {MIN, BIG + 2}}, I64)
    same_int(t:t():contiguous():get(1, 2), MIN)
    same_int(t:clone():get(2, 2), BIG + 2)
  end)

  it("arange with integer bounds is exact to the ends of the range", function()
    local a = crater.arange(MAX - 3, MAX, 1, I64)
    assert.are.same({MAX - 3, MAX - 2, MAX - 1}, a:totable())
    local b = crater.arange(MIN, MIN + 6, 2, I64)
    assert.are.same({MIN, MIN + 2, MIN + 4}, b:totable())
    local c = crater.arange(BIG + 4, BIG, -2, I64)
    assert.are.same({BIG + 4, BIG + 2}, c:totable())
    assert.are.same({0, 1, 2}, crater.arange(3, I64):totable())
    assert.has_error(function() crater.arange(MIN, MAX, 1, I64) end)   -- 2^64-1 elements
    assert.has_error(function() crater.arange(0, 5, 0, I64) end, "arange: step must be nonzero")
  end)
end)

describe("int64 arithmetic with Lua integers", function()
  it("stays int64 and exact past 2^53", function()
    local x = crater.tensor({BIG, 1}, I64)
    local y = x + BIG
    assert.are.equal("int64", y:dtype())
    assert.are.same({BIG + BIG, 1 + BIG}, y:totable())
    assert.are.same({0, 1 - BIG}, (x - BIG):totable())
    assert.are.same({BIG * 3, 3}, (x * 3):totable())
    assert.are.same({BIG * 2, 2}, (x + x):totable())
    local z = crater.tensor({7}, I64)
    z:add_(BIG)
    same_int(z:item(), 7 + BIG)
  end)

  it("wraps on signed overflow exactly as Lua's integers do", function()
    local x = crater.tensor({MAX, MIN, 3}, I64)
    assert.are.same({MAX + 1, MIN + 1, 4}, (x + 1):totable())
    assert.are.same({MAX * 2, MIN * 2, 6}, (x * 2):totable())
    assert.are.same({-MAX, -MIN, -3}, (-x):totable())          -- -MIN wraps to MIN
    assert.are.same({MAX, MIN, 3}, x:abs():totable())           -- abs(MIN) is MIN, as PyTorch
    assert.are.same({MIN - 1, MAX + 1}, (crater.tensor({MIN, MAX}, I64) - crater.tensor({1, -1}, I64)):totable())
    same_int(crater.tensor({MAX, MAX, 2}, I64):sum():item(), MAX + MAX + 2)
    same_int(crater.tensor({MAX, 3}, I64):prod():item(), MAX * 3)
    local y = crater.tensor({MAX}, I64)
    y:mul_(crater.tensor({4}, I64))
    same_int(y:item(), MAX * 4)
  end)

  it("wraps in int64 matrix products (found by the API fuzzer: a UBSan report before)", function()
    local a = crater.tensor({{(1 << 32) + 1, 2}, {MAX, 1}}, I64)
    local b = crater.tensor({(1 << 32) + 1, MAX}, I64)
    local v = ((1 << 32) + 1) * ((1 << 32) + 1) + 2 * MAX
    assert.are.same({v, MAX * ((1 << 32) + 1) + MAX}, a:matmul(b):totable())
    same_int(b:matmul(b):item(), ((1 << 32) + 1) * ((1 << 32) + 1) + MAX * MAX)
  end)

  it("raises int64 to integer powers in int64, wrapping", function()
    local x = crater.tensor({3, -2, 1 << 32}, I64)
    local p = x ^ 3
    assert.are.equal("int64", p:dtype())
    assert.are.same({27, -8, (1 << 32) * (1 << 32) * (1 << 32)}, p:totable())   -- 2^96 wraps to 0
    assert.are.same({9, 4, 0}, crater.pow(x, crater.tensor({2, 2, 2}, I64)):totable())
    local q = crater.tensor({5}, I64)
    q:pow_(2)
    same_int(q:item(), 25)
  end)

  it("refuses an int64 raised to a negative integer power, leaving the tensor alone", function()
    local x = crater.tensor({2, 3}, I64)
    local msg = "integers to negative integer powers are not allowed"
    assert.has_error(function() return x ^ -1 end, "pow: " .. msg)
    assert.has_error(function() return crater.pow(x, crater.tensor({1, -2}, I64)) end, "pow: " .. msg)
    assert.has_error(function() x:pow_(-2) end, "pow_: " .. msg)
    assert.are.same({2, 3}, x:totable())
    assert.are.equal("float32", (x ^ 0.5):dtype())   -- a float power is a float result
  end)

  it("finds a negative power in a hugely expanded exponent by looking at one row", function()
    local msg = "pow: integers to negative integer powers are not allowed"
    local e = crater.tensor({{1, -1}}, I64):expand(2 ^ 61, 2)   -- 2^62 elements, one row stored
    assert.has_error(function() return crater.pow(crater.tensor({3}, I64), e) end, msg)
    assert.has_error(function() return crater.tensor({3, 4}, I64) ^ e end, msg)
  end)

  it("draws randint over the full int64 range", function()
    crater.manual_seed(7)
    local r = crater.randint(MIN, MAX, {4000})
    assert.are.equal("int64", r:dtype())
    local neg, pos = 0, 0
    for _, v in ipairs(r:totable()) do
      assert.are.equal("integer", math.type(v))
      if v < 0 then neg = neg + 1 else pos = pos + 1 end
    end
    assert.is_true(neg > 1800 and pos > 1800)   -- a uniform draw: about half each
  end)
end)

describe("int64 in the float-only in-place ops", function()
  it("refuses lerp_ and addcdiv_ as PyTorch does, leaving the tensor alone", function()
    local x = crater.tensor({1, 2}, I64)
    assert.has_error(function() x:lerp_(crater.tensor({3, 4}, I64), 0.5) end,
      'lerp_: int64 tensors are not supported, as in PyTorch (convert with :to("float32") first)')
    assert.has_error(function() x:addcdiv_(x, crater.tensor({3, 4}, I64)) end,
      "addcdiv_: Integer division with addcdiv is no longer supported")
    assert.are.same({1, 2}, x:totable())
  end)
end)
