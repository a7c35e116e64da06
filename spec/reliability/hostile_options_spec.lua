-- Hostile options (issue #17, class 8): every option of an optimizer or a scheduler is
-- checked for type, finiteness, range and length; load_state_dict checks everything
-- before it changes anything; in-place functions check every argument before their
-- first write, so a refused call leaves the tensor bit for bit as it was.
local crater = require "crater"
local core = require "crater.core"
local optim = crater.optim
local lr_scheduler = optim.lr_scheduler

local NAN, INF = 0 / 0, math.huge

-- x's bytes, shape and dtype: what a refused call must leave alone
local function snapshot(x)
  return {bytes = core.bytes(x), shape = table.concat(x:shape(), ","), dtype = x:dtype()}
end

local function assert_refused_unchanged(x, f, pattern)
  local before = snapshot(x)
  local ok, err = pcall(f, x)
  assert.is_false(ok, "the call was accepted")
  if pattern then assert.matches(pattern, tostring(err)) end
  assert.same(before, snapshot(x))
end

local function vec() return crater.tensor({1.5, -2, 3, 0.25}, {dtype = "float64"}) end

describe("in-place tensor methods refuse before their first write", function()
  -- every method of the tensor whose name ends in "_", with arguments no form accepts
  it("every in-place method, given four strings, refuses and changes nothing", function()
    local names = {}
    for name, f in pairs(crater.Tensor) do
      if type(f) == "function" and name:sub(-1) == "_" and name:sub(1, 1) ~= "_" then
        names[#names + 1] = name
      end
    end
    table.sort(names)
    assert.is_true(#names >= 30, "found only " .. #names .. " in-place methods")
    for _, name in ipairs(names) do
      local x = vec()
      assert_refused_unchanged(x, function(t) return t[name](t, "abc", "abc", "abc", "abc") end)
    end
  end)

  it("normal_ and uniform_ refuse a bad argument without zeroing the tensor", function()
    assert_refused_unchanged(vec(), function(x) return x:normal_("abc") end)
    assert_refused_unchanged(vec(), function(x) return x:normal_(0, "abc") end)
    assert_refused_unchanged(vec(), function(x) return x:uniform_("abc") end)
    assert_refused_unchanged(vec(), function(x) return x:uniform_(0, {}) end)
  end)

  it("uniform_ refuses from > to and non-finite bounds, as PyTorch", function()
    assert_refused_unchanged(vec(), function(x) return x:uniform_(2, 1) end, "uniform_: .*from=2%.0 > to=1%.0")
    assert_refused_unchanged(vec(), function(x) return x:uniform_(0, INF) end, "uniform_: .*finite")
    assert_refused_unchanged(vec(), function(x) return x:uniform_(NAN, 1) end, "uniform_")
    assert_refused_unchanged(vec(), function(x) return x:uniform_(-1e308, 1e308) end, "to %- from")
    local x = vec():uniform_(1, 1)   -- an empty range [1, 1) gives 1, as in PyTorch
    assert.same({1, 1, 1, 1}, x:totable())
  end)

  it("normal_ refuses a negative or non-finite std and a non-finite mean", function()
    assert_refused_unchanged(vec(), function(x) return x:normal_(0, -1) end, "normal_: .*std >= 0.*std=%-1%.0")
    assert_refused_unchanged(vec(), function(x) return x:normal_(0, NAN) end, "normal_")
    assert_refused_unchanged(vec(), function(x) return x:normal_(0, INF) end, "normal_")
    assert_refused_unchanged(vec(), function(x) return x:normal_(INF, 1) end, "normal_: mean")
    assert.same({5, 5, 5, 5}, vec():normal_(5, 0):totable())
  end)

  it("arguments a call would ignore are refused (zero_(v), mul_(2, 3), fill_(1, 2))", function()
    assert_refused_unchanged(vec(), function(x) return x:zero_("abc") end, "zero_: expected at most 0 arguments")
    assert_refused_unchanged(vec(), function(x) return x:mul_(2, 3) end, "mul_: expected at most 1 argument")
    assert_refused_unchanged(vec(), function(x) return x:fill_(1, 2) end, "fill_")
    assert_refused_unchanged(vec(), function(x) return x:relu_(1) end, "relu_: expected at most 0")
    assert_refused_unchanged(vec(), function(x) return x:clamp_(0, 1, 2) end, "clamp_")
    assert_refused_unchanged(vec(), function(x) return crater.core.add_(x, 1, 2, 3) end, "add_")
  end)

  it("add_ and sub_ with a number refuse an alpha that is not a number", function()
    assert_refused_unchanged(vec(), function(x) return x:add_(1, "a") end, "number expected")
    assert_refused_unchanged(vec(), function(x) return x:sub_(1, {}) end, "number expected")
    assert.same({3.5, 0, 5, 2.25}, vec():add_(1, 2):totable())   -- x + 1 * 2
  end)

  it("shape, dtype and leaf errors leave the tensor unchanged", function()
    assert_refused_unchanged(vec(), function(x) return x:copy_(crater.zeros(3)) end, "copy_")
    assert_refused_unchanged(vec(), function(x) return x:add_(crater.zeros(3)) end, "add_")
    assert_refused_unchanged(vec(), function(x) return x:addcmul_(crater.ones(4), crater.ones(3)) end, "addcmul_")
    assert_refused_unchanged(vec(), function(x) return x:masked_fill_(crater.zeros(3):gt(0), 1) end, "masked_fill_")
    local leaf = crater.tensor({1, 2}, {requires_grad = true})
    for _, f in ipairs({
      function(x) return x:fill_(0) end, function(x) return x:uniform_() end,
      function(x) return x:normal_() end, function(x) return x:zero_() end,
      function(x) return x:add_(1) end, function(x) return x:relu_() end,
    }) do
      assert_refused_unchanged(leaf, f, "leaf")
    end
  end)

  it("requires_grad_ takes a boolean", function()
    assert_refused_unchanged(vec(), function(x) return x:requires_grad_("yes") end, "requires_grad_: flag must be a boolean")
    assert.is_true(vec():requires_grad_().requires_grad)
  end)
end)

describe("crater.nn.init refuses before writing", function()
  local init = crater.nn.init
  local function weight() return crater.tensor({{1, 2, 3}, {4, 5, 6}}) end
  it("uniform_ with a > b, normal_ with std < 0 or NaN, bad types", function()
    assert_refused_unchanged(weight(), function(w) return init.uniform_(w, 2, 1) end, "uniform_")
    assert_refused_unchanged(weight(), function(w) return init.uniform_(w, "a") end, "uniform_")
    assert_refused_unchanged(weight(), function(w) return init.normal_(w, 0, -1) end, "normal_")
    assert_refused_unchanged(weight(), function(w) return init.normal_(w, 0, NAN) end, "normal_")
    assert_refused_unchanged(weight(), function(w) return init.constant_(w, "a") end, "fill_")
    assert_refused_unchanged(weight(), function(w) return init.xavier_uniform_(w, NAN) end, "uniform_")
    assert_refused_unchanged(weight(), function(w) return init.xavier_normal_(w, -1) end, "normal_")
    assert_refused_unchanged(weight(), function(w) return init.kaiming_uniform_(w, {a = NAN}) end, "uniform_")
    assert_refused_unchanged(weight(), function(w) return init.kaiming_normal_(w, {mode = "x"}) end, "mode")
  end)
  it("a good call still fills within its range", function()
    local w = init.uniform_(weight(), -0.5, 0.5)
    for _, row in ipairs(w:totable()) do
      for _, v in ipairs(row) do assert.is_true(v >= -0.5 and v < 0.5) end
    end
  end)
end)

describe("crater.set_num_threads checks its range before converting", function()
  local n0 = crater.get_num_threads()
  after_each(function() crater.set_num_threads(n0) end)
  it("refuses NaN, 0, negative, 2^40, non-integer floats and non-numbers", function()
    for _, v in ipairs({NAN, 0, -1, 2 ^ 40, 1 << 40, 1.5, INF, math.mininteger}) do
      local ok, err = pcall(crater.set_num_threads, v)
      assert.is_false(ok, tostring(v))
      assert.matches("set_num_threads: n must be an integer in %[1, 1024%]", err)
      assert.equal(n0, crater.get_num_threads())
    end
    assert.is_false(pcall(crater.set_num_threads, "x"))
    assert.is_false(pcall(crater.set_num_threads))
  end)
  it("accepts 1 and an integral float", function()
    crater.set_num_threads(1)
    assert.equal(1, crater.get_num_threads())
    crater.set_num_threads(2.0)
    assert.equal(2, crater.get_num_threads())
  end)
end)
