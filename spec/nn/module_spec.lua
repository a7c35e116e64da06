local crater = require "crater"
local nn = crater.nn

local function same_values(a, b) return (a - b):abs():max():item() == 0 end

describe("nn.Module", function()
  local function net()
    crater.manual_seed(1)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2, { bias = false }))
  end

  it("is callable and applies its layers in order", function()
    local m = net()
    local x = crater.randn(5, 4)
    local y = m(x)
    assert.same({ 5, 2 }, y:shape())
    local by_hand = m[3](m[2](m[1](x)))
    assert.is_true(crater.allclose(y, by_hand))
  end)

  it("names parameters as PyTorch does (0.weight, 0.bias, 2.weight)", function()
    local map, names = net():named_parameters()
    assert.same({ "0.weight", "0.bias", "2.weight" }, names)
    assert.same({ 3, 4 }, map["0.weight"]:shape())
    assert.same({ 3 }, map["0.bias"]:shape())
    assert.same({ 2, 3 }, map["2.weight"]:shape())
  end)

  it("lists parameters that require grad, in registration order", function()
    local ps = net():parameters()
    assert.equal(3, #ps)
    for _, p in ipairs(ps) do assert.is_true(p.requires_grad) end
    assert.same({ 2, 3 }, ps[3]:shape())
  end)

  it("nests modules and prefixes their names", function()
    local Block = nn.Module:extend("Block")
    function Block:__init()
      self.fc = self:add_module("fc", nn.Linear(2, 2))
      self.bn = self:add_module("bn", nn.BatchNorm1d(2))
    end
    function Block:forward(x) return self.bn(self.fc(x)) end
    local m = nn.Sequential(Block(), nn.Linear(2, 1))
    local _, names = m:named_parameters()
    assert.same({ "0.fc.weight", "0.fc.bias", "0.bn.weight", "0.bn.bias", "1.weight", "1.bias" }, names)
    local sd = m:state_dict()
    assert.is_not_nil(sd["0.bn.running_mean"])
    assert.is_not_nil(sd["0.bn.num_batches_tracked"])
    assert.equal(2, #m:children())
    assert.equal(2, #m[1]:children())
  end)

  it("train and eval set the mode of every descendant", function()
    local m = nn.Sequential(nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.2)))
    m:eval()
    assert.is_false(m.training)
    assert.is_false(m[2][1].training)
    m:train()
    assert.is_true(m[2][1].training)
  end)

  it("zero_grad zeroes accumulated gradients", function()
    local m = net()
    m(crater.randn(2, 4)):sum():backward()
    m:zero_grad()
    for _, p in ipairs(m:parameters()) do
      if p.grad then assert.equal(0, p.grad:abs():sum():item()) end
    end
  end)

  it("state_dict round-trips through load_state_dict", function()
    local a = net()
    crater.manual_seed(2)
    local b = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2, { bias = false }))
    local x = crater.randn(3, 4)
    assert.is_false(crater.allclose(a(x), b(x)))
    b:load_state_dict(a:state_dict())
    assert.is_true(same_values(a(x), b(x)))
  end)

  it("load_state_dict names missing and unexpected keys", function()
    local m = net()
    local sd = m:state_dict()
    sd["0.bias"] = nil
    sd["9.weight"] = crater.zeros(1)
    assert.error_matches(function() m:load_state_dict(sd) end,
      "Sequential: load_state_dict: missing keys: 0.bias; unexpected keys: 9.weight", 1, true)
  end)

  it("load_state_dict refuses a shape mismatch and changes nothing", function()
    local m = net()
    local before = m[1].bias:clone()
    local sd = m:state_dict()
    sd["0.bias"] = crater.zeros(7)
    sd["0.weight"] = crater.zeros(3, 4)
    assert.error_matches(function() m:load_state_dict(sd) end,
      "size mismatch for 0.bias: checkpoint {7}, model {3}", 1, true)
    assert.is_true(same_values(before, m[1].bias))
  end)

  it("load_state_dict with strict=false skips absent keys", function()
    local m = net()
    local missing = m:load_state_dict({ ["0.bias"] = crater.ones(3) }, false)
    assert.same({ 1, 1, 1 }, m[1].bias:totable())
    assert.equal(2, #missing)
  end)

  it("prints the module tree", function()
    local s = tostring(net())
    assert.equal("Sequential(\n  (0): Linear(in_features=4, out_features=3, bias=true)\n"
      .. "  (1): ReLU()\n  (2): Linear(in_features=3, out_features=2, bias=false)\n)", s)
  end)
end)
