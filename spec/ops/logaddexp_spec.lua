-- crater.logaddexp(x, y) = log(e^x + e^y), as torch.logaddexp: values worked by hand
-- (log 2 = 0.69314718055994531, e = 2.7182818284590452), broadcasting, dtype rules and
-- the gradient d/dx = 1 / (1 + e^(y - x)).  Its float64 gradcheck comes from the op
-- table (spec/autograd/gradcheck_spec.lua).
local crater = require "crater"
local H = dofile("spec/core/helpers.lua")
local d, i64 = H.d, H.i
local LN2 = 0.69314718055994531

describe("logaddexp", function()
  it("gives log 2 at 0 and 2 + log(1 + 1/e) at (1, 2)", function()
    -- 2 + log(1 + e^-1) = 2 + log(1.36787944117144233) = 2.31326168751822284
    H.close(crater.logaddexp(d({ 0, 1 }), d({ 0, 2 })), { LN2, 2.31326168751822284 }, 1e-15)
  end)

  it("agrees with log(e^x + e^y) where that does not overflow", function()
    local xs, ys, want = { -3, -0.5, 0.25, 4 }, { 1.5, -0.5, -2, 3.5 }, {}
    for k = 1, #xs do want[k] = math.log(math.exp(xs[k]) + math.exp(ys[k])) end
    H.close(d(xs):logaddexp(d(ys)), want, 1e-15)
  end)

  it("is stable where e^x overflows or underflows: x + log 2 at x = y = +-1000", function()
    H.close(crater.logaddexp(d({ 1000, -1000, 1000 }), d({ 1000, -1000, 0 })),
      { 1000 + LN2, -1000 + LN2, 1000 }, 1e-15)
  end)

  it("gives equal infinities themselves, inf with -inf inf, and NaN with NaN", function()
    local inf = math.huge
    H.close(crater.logaddexp(d({ inf, -inf, inf, 0 / 0 }), d({ inf, -inf, -inf, 1 })),
      { inf, -inf, inf, 0 / 0 })
  end)

  it("broadcasts (2,1) with (3) to (2,3), and takes a Lua number on either side", function()
    local z = crater.logaddexp(d({ { 0 }, { 1 } }), d({ 0, 1, 2 }))
    assert.same({ 2, 3 }, z:shape())
    H.close(z, { { LN2, 1.31326168751822284, 2.12692801104297249 },
                 { 1.31326168751822284, 1 + LN2, 2.31326168751822284 } }, 1e-15)
    H.close(d({ 0 }):logaddexp(0), { LN2 }, 1e-15)
    H.close(crater.logaddexp(0, d({ 0 })), { LN2 }, 1e-15)
  end)

  it("promotes dtypes as PyTorch: float32 with float64 is float64, int64 with a float is the float", function()
    assert.equal("float64", crater.logaddexp(crater.tensor({ 0 }), d({ 0 })):dtype())
    assert.equal("float32", crater.logaddexp(i64({ 0 }), crater.tensor({ 0 })):dtype())
    assert.equal("float32", crater.logaddexp(i64({ 0 }), 0.5):dtype())
    H.close(crater.tensor({ 0 }):logaddexp(crater.tensor({ 0 })), { LN2 }, 1e-7)
  end)

  it("refuses two int64 tensors, as PyTorch (no integer kernel)", function()
    assert.error_matches(function() crater.logaddexp(i64({ 1 }), i64({ 2 })) end,
      "logaddexp: int64 tensors are not supported, as in PyTorch", 1, true)
  end)

  it("names both shapes when they do not broadcast", function()
    assert.error_matches(function() crater.logaddexp(d({ 1, 2 }), d({ 1, 2, 3 })) end,
      "logaddexp: shapes {2} and {3} cannot be broadcast", 1, true)
  end)

  it("has gradients 1/(1+e) and 1/(1+1/e) at (1, 2), and 1 and 0 at (inf, 0)", function()
    local x, y = d({ 1, math.huge }, true), d({ 2, 0 }, true)
    local z = crater.logaddexp(x, y)
    assert.equal("LogaddexpBackward", z.grad_fn)
    local g = crater.grad(z:sum(), { x, y })
    H.close(g[1], { 0.26894142136999512, 1 }, 1e-15)
    H.close(g[2], { 0.73105857863000488, 0 }, 1e-15)
  end)

  it("sums the gradient of a broadcast input back to its shape", function()
    local x, y = d({ { 0 }, { 0 } }, true), d({ 0, 0, 0 }, true)
    local g = crater.grad(crater.logaddexp(x, y):sum(), { x, y })
    H.close(g[1], { { 1.5 }, { 1.5 } }, 1e-15)   -- three halves per row
    H.close(g[2], { 1, 1, 1 }, 1e-15)            -- two halves per column
  end)

  it("has a second derivative (gradgradcheck in float64)", function()
    assert.is_true(crater.autograd.gradgradcheck(function(a, b) return crater.logaddexp(a, b):sum() end,
      { crater.randn({ 3 }, { dtype = "float64", requires_grad = true }),
        crater.randn({ 3 }, { dtype = "float64", requires_grad = true }) }))
  end)

  it("has help and a reference entry made from the op table", function()
    local e = require("crater.doc_core").logaddexp
    assert.equal("crater.logaddexp(x, y) / x:logaddexp(y)", e.sig)
    assert.truthy(e.desc:find("log(e^x + e^y), computed stably", 1, true))
  end)
end)
