local crater = require "crater"
local nn = crater.nn
local F = nn.functional
local H = require "spec.nn.helpers"

local cases = dofile("spec/fixtures/nn_losses.lua")

local function to_lua_opts(o)
  local r = {}
  for k, v in pairs(o) do r[k] = type(v) == "table" and H.t(v) or v end
  return r
end

describe("nn losses match PyTorch 1.13 (values and gradients, float64)", function()
  for _, c in ipairs(cases) do
    it(c.name, function()
      local x = crater.tensor(c.input, { dtype = "float64", requires_grad = true })
      local y = crater.tensor(c.target, { dtype = c.target_int and "int64" or "float64" })
      local out = F[c.fn](x, y, to_lua_opts(c.opts))
      assert.same(c.out_shape, out:shape())
      H.close(out, c.out, 1e-10, "value")
      if c.R then (out * H.t(c.R)):sum():backward() else out:backward() end
      H.close(x.grad, c.grad, 1e-9, "gradient")
    end)
  end
end)

describe("nn loss modules", function()
  it("call the functional form with their options", function()
    local x = crater.tensor({ { 2.0, 0.5, -1.0 } })
    local y = crater.tensor({ 1 }, { dtype = "int64" })
    local m = nn.CrossEntropyLoss({ reduction = "sum", label_smoothing = 0.1 })
    assert.is_true(crater.allclose(m(x, y), F.cross_entropy(x, y, { reduction = "sum", label_smoothing = 0.1 })))
  end)

  it("MSELoss of a hand example: ((1-0)^2 + (3-1)^2) / 2 = 2.5", function()
    local l = nn.MSELoss()(crater.tensor({ 1, 3 }), crater.tensor({ 0, 1 }))
    assert.near(2.5, l:item(), 1e-6)
  end)

  it("BCEWithLogitsLoss stays finite for logits of +-1000", function()
    local x = crater.tensor({ -1000, 1000 })
    local l = nn.BCEWithLogitsLoss({ reduction = "none" })(x, crater.tensor({ 1, 0 }))
    assert.near(1000, l:get(1), 1e-3)
    assert.near(1000, l:get(2), 1e-3)
  end)

  it("refuses an unknown reduction, naming the loss", function()
    assert.error_matches(function() nn.L1Loss({ reduction = "avg" }) end,
      "L1Loss: reduction must be 'mean', 'sum' or 'none', got 'avg'", 1, true)
  end)

  it("refuses a class target out of range (targets are 1-based)", function()
    local x = crater.zeros(2, 3)
    assert.error_matches(function() nn.CrossEntropyLoss()(x, crater.tensor({ 1, 4 }, { dtype = "int64" })) end,
      "CrossEntropyLoss: target 4 out of range for 3 classes", 1, true)
    assert.error_matches(function() F.nll_loss(x, crater.tensor({ 0, 1 }, { dtype = "int64" })) end,
      "nll_loss: target 0 out of range for 3 classes", 1, true)
  end)

  it("refuses float class targets of the wrong shape and mismatched shapes", function()
    assert.error_matches(function() F.cross_entropy(crater.zeros(2, 3), crater.tensor({ 1, 2, 3 }, { dtype = "int64" })) end,
      "cross_entropy: input {2,3} and target {3} do not match", 1, true)
    assert.error_matches(function() nn.MSELoss()(crater.zeros(2, 3), crater.zeros(3, 2)) end,
      "MSELoss: input {2,3} and target {3,2} have different shapes", 1, true)
  end)
end)
