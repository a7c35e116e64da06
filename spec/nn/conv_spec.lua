-- core.internal._conv2d, the per-image convolution F.conv2d takes, against the batch im2col path
-- it replaced (core.internal.im2col, one matmul, core.internal._conv_out: separate ops, each with its own
-- specs), on odd sizes, strides, paddings and thread counts; by hand; and to second order.
local crater = require "crater"
local core = require "crater.core"
local F = crater.nn.functional

-- The im2col reference: cols (C*kh*kw, B*L), W (Cout, C*kh*kw) x cols, swapped to (B,Cout,Ho,Wo).
local function conv_ref(x, w, b, s, p)
  local cout, kh, kw = w:size(1), w:size(3), w:size(4)
  local ho, wo = (x:size(3) + 2 * p[1] - kh) // s[1] + 1, (x:size(4) + 2 * p[2] - kw) // s[2] + 1
  local cols = core.internal.im2col(x, kh, kw, s[1], s[2], p[1], p[2])
  return core.internal._conv_out(w:view(cout, -1):matmul(cols), b, x:size(1), ho, wo)
end

-- value and the gradients of sum(out * r) for x, w, b, under fn
local function run(fn, x, w, b, r)
  local xs, ws, bs = x:clone():requires_grad_(), w:clone():requires_grad_(), b and b:clone():requires_grad_()
  local out = fn(xs, ws, bs)
  local g = crater.grad((out * r):sum(), bs and { xs, ws, bs } or { xs, ws })
  return out, g
end

local function max_diff(a, b) return (a - b):abs():max():item() end

local cases = {   -- B, C, H, W, Cout, kh, kw, stride, padding, bias
  { 1, 1, 5, 5, 1, 3, 3, { 1, 1 }, { 0, 0 }, true },
  { 5, 3, 7, 5, 4, 3, 3, { 1, 1 }, { 1, 1 }, true },        -- 5 images: 5 parts of 1
  { 37, 2, 6, 9, 3, 2, 3, { 2, 1 }, { 1, 2 }, false },      -- 37 images: 13 parts of 3, the last short
  { 17, 4, 9, 8, 5, 3, 2, { 3, 2 }, { 2, 0 }, true },
  { 3, 2, 4, 4, 6, 1, 1, { 1, 1 }, { 0, 0 }, true },        -- 1x1 kernel
  { 2, 3, 5, 6, 2, 5, 6, { 1, 1 }, { 0, 0 }, true },        -- the window is the whole image
  { 40, 8, 12, 11, 16, 3, 3, { 1, 1 }, { 1, 1 }, true },    -- large enough to be split over threads
}

describe("core.internal._conv2d", function()
  after_each(function() crater.set_num_threads(2) end)

  for i, c in ipairs(cases) do
    it("matches the im2col path, values and gradients, on 1, 2 and 3 threads (case " .. i .. ")", function()
      local B, C, H, W, Cout, kh, kw, s, p, has_b = table.unpack(c)
      crater.manual_seed(i)
      local x = crater.randn({ B, C, H, W }, { dtype = "float64" })
      local w = crater.randn({ Cout, C, kh, kw }, { dtype = "float64" })
      local b = has_b and crater.randn({ Cout }, { dtype = "float64" }) or nil
      local ho, wo = (H + 2 * p[1] - kh) // s[1] + 1, (W + 2 * p[2] - kw) // s[2] + 1
      local r = crater.randn({ B, Cout, ho, wo }, { dtype = "float64" })
      local ref_out, ref_g = run(function(xs, ws, bs) return conv_ref(xs, ws, bs, s, p) end, x, w, b, r)
      for _, nt in ipairs({ 1, 2, 3 }) do
        crater.set_num_threads(nt)
        local out, g = run(function(xs, ws, bs) return core.internal._conv2d(xs, ws, bs, s[1], s[2], p[1], p[2]) end, x, w, b, r)
        assert.same(ref_out:shape(), out:shape())
        assert.is_true(max_diff(out, ref_out) < 1e-12, "value, " .. nt .. " threads")
        for k = 1, #ref_g do
          assert.same(ref_g[k]:shape(), g[k]:shape())
          assert.is_true(max_diff(g[k], ref_g[k]) < 1e-12, "gradient " .. k .. ", " .. nt .. " threads")
        end
      end
    end)
  end

  it("gives the same float32 bits on any thread count (fixed parts of the batch)", function()
    crater.manual_seed(7)
    local x, w, b = crater.randn(37, 3, 9, 9), crater.randn(8, 3, 3, 3), crater.randn(8)
    local r = crater.randn(37, 8, 9, 9)
    local res = {}
    for _, nt in ipairs({ 1, 2, 3 }) do
      crater.set_num_threads(nt)
      local out, g = run(function(xs, ws, bs) return F.conv2d(xs, ws, bs, { padding = 1 }) end, x, w, b, r)
      res[nt] = { out, g[1], g[2], g[3] }
    end
    for _, nt in ipairs({ 2, 3 }) do
      for k = 1, 4 do assert.equal(0, max_diff(res[nt][k], res[1][k]), "tensor " .. k .. ", " .. nt .. " threads") end
    end
  end)

  it("gives the weight's and bias's gradients when the input needs none", function()
    crater.manual_seed(5)
    local x, w, b = crater.randn(9, 2, 6, 6), crater.randn(4, 2, 3, 3), crater.randn(4)
    local r = crater.randn(9, 4, 6, 6)
    local ref = {}
    for k, fn in ipairs({ conv_ref, function(xs, ws, bs, s, p) return core.internal._conv2d(xs, ws, bs, s[1], s[2], p[1], p[2]) end }) do
      local ws, bs = w:clone():requires_grad_(), b:clone():requires_grad_()
      ref[k] = crater.grad((fn(x, ws, bs, { 1, 1 }, { 1, 1 }) * r):sum(), { ws, bs })
    end
    assert.is_true(max_diff(ref[1][1], ref[2][1]) < 1e-4 and max_diff(ref[1][2], ref[2][2]) < 1e-4)
  end)

  it("computes a case by hand", function()
    -- x = 1..9 as a 3x3 image, one 2x2 kernel {{1, 0}, {0, -1}}, bias 10: y = x[i][j] - x[i+1][j+1] + 10
    local x = crater.tensor({ { { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } } } }, { requires_grad = true })
    local w = crater.tensor({ { { { 1, 0 }, { 0, -1 } } } }, { requires_grad = true })
    local b = crater.tensor({ 10 }, { requires_grad = true })
    local y = core.internal._conv2d(x, w, b, 1, 1, 0, 0)
    assert.same({ { { { 6, 6 }, { 6, 6 } } } }, y:totable())
    y:sum():backward()
    assert.same({ 4 }, b.grad:totable())   -- the bias reaches each of the 4 outputs once
    -- each window adds +1 at its top-left and -1 at its bottom-right
    assert.same({ { { { 1, 1, 0 }, { 1, 0, -1 }, { 0, -1, -1 } } } }, x.grad:totable())
    assert.same({ { { { 12, 16 }, { 24, 28 } } } }, w.grad:totable())   -- window sums of x
  end)

  it("is differentiable twice (gradgradcheck, float64)", function()
    crater.manual_seed(3)
    local x = crater.randn({ 3, 2, 5, 4 }, { dtype = "float64", requires_grad = true })
    local w = crater.randn({ 3, 2, 3, 2 }, { dtype = "float64", requires_grad = true })
    local b = crater.randn({ 3 }, { dtype = "float64", requires_grad = true })
    assert.is_true(crater.autograd.gradgradcheck(function(xs, ws, bs)
      return (F.conv2d(xs, ws, bs, { stride = { 2, 1 }, padding = 1 }) ^ 2):sum()
    end, { x, w, b }))
    assert.is_true(crater.autograd.gradcheck(function(xs, ws, bs)
      return F.conv2d(xs, ws, bs, { stride = 2, padding = { 0, 1 } })
    end, { x, w, b }))
  end)

  it("refuses shapes and dtypes that do not match, naming conv2d", function()
    assert.error_matches(function() core.internal._conv2d(crater.zeros(1, 2, 5, 5), crater.zeros(3, 1, 3, 3), nil, 1, 1, 0, 0) end,
      "conv2d: input {1,2,5,5} does not match weight {3,1,3,3}", 1, true)
    assert.error_matches(function()
      core.internal._conv2d(crater.zeros(1, 1, 5, 5), crater.zeros(3, 1, 3, 3), crater.zeros(2), 1, 1, 0, 0)
    end, "conv2d: input {1,1,5,5} does not match weight {3,1,3,3} and bias {2}", 1, true)
    assert.error_matches(function()
      core.internal._conv2d(crater.zeros(1, 1, 5, 5), crater.zeros({ 3, 1, 3, 3 }, { dtype = "float64" }), nil, 1, 1, 0, 0)
    end, "conv2d: expected float operands of one dtype, got float32 and float64", 1, true)
    assert.error_matches(function() core.internal._conv2d(crater.zeros(1, 1, 2, 2), crater.zeros(1, 1, 3, 3), nil, 1, 1, 0, 0) end,
      "conv2d: kernel 3x3 (padding 0x0) is larger than the input {1,1,2,2}", 1, true)
    assert.error_matches(function() core.internal._conv2d(crater.zeros(1, 1, 5, 5), crater.zeros(1, 1, 3, 3), nil, 0, 1, 0, 0) end,
      "conv2d: stride must be positive, got 0x1", 1, true)
  end)

  it("promotes mixed dtypes through the im2col path, as PyTorch", function()
    local y = F.conv2d(crater.ones(1, 1, 3, 3), crater.ones({ 1, 1, 2, 2 }, { dtype = "float64" }))
    assert.equal("float64", y:dtype())
    assert.same({ { { { 4, 4 }, { 4, 4 } } } }, y:totable())
  end)
end)
