local crater = require "crater"
local init = crater.nn.init

describe("nn.init", function()
  it("calculate_gain has PyTorch's values", function()
    assert.equal(1, init.calculate_gain("linear"))
    assert.equal(1, init.calculate_gain("conv2d"))
    assert.equal(1, init.calculate_gain("sigmoid"))
    assert.near(5 / 3, init.calculate_gain("tanh"), 1e-15)
    assert.near(math.sqrt(2), init.calculate_gain("relu"), 1e-15)
    assert.near(math.sqrt(2 / (1 + 0.01 ^ 2)), init.calculate_gain("leaky_relu"), 1e-15)
    assert.near(math.sqrt(2 / (1 + 5)), init.calculate_gain("leaky_relu", math.sqrt(5)), 1e-15)
    assert.equal(0.75, init.calculate_gain("selu"))
    assert.error_matches(function() init.calculate_gain("swish") end, "unsupported nonlinearity swish", 1, true)
  end)

  it("fans: dims 2 and 1 times the receptive field", function()
    local fi, fo = init.calculate_fan_in_and_fan_out(crater.zeros(64, 32, 3, 3))
    assert.same({ 288, 576 }, { fi, fo })
    assert.error_matches(function() init.calculate_fan_in_and_fan_out(crater.zeros(5)) end,
      "fewer than 2 dimensions", 1, true)
  end)

  -- bounds and second moments against the closed forms
  local function check_uniform(t, bound)
    assert.is_true(t:abs():max():item() <= bound * (1 + 1e-6))
    assert.is_true(t:abs():max():item() > 0.97 * bound)
    assert.near(bound * bound / 3, (t * t):mean():item(), 0.04 * bound * bound / 3)
  end
  local function check_normal(t, std)
    assert.near(0, t:mean():item(), 4 * std / math.sqrt(t:numel()))
    assert.near(std * std, (t * t):mean():item(), 0.04 * std * std)
  end

  it("xavier_uniform_ and xavier_normal_ use gain * sqrt(2 / (fan_in + fan_out))", function()
    crater.manual_seed(7)
    check_uniform(init.xavier_uniform_(crater.empty(200, 100), 2), 2 * math.sqrt(6 / 300))
    check_normal(init.xavier_normal_(crater.empty(200, 100)), math.sqrt(2 / 300))
  end)

  it("kaiming_uniform_ and kaiming_normal_ use gain / sqrt(fan)", function()
    crater.manual_seed(8)
    check_uniform(init.kaiming_uniform_(crater.empty(100, 300), { nonlinearity = "relu" }), math.sqrt(6 / 300))
    check_uniform(init.kaiming_uniform_(crater.empty(100, 300), { a = math.sqrt(5) }), 1 / math.sqrt(300))
    check_normal(init.kaiming_normal_(crater.empty(300, 100), { mode = "fan_out", nonlinearity = "relu" }),
      math.sqrt(2 / 300))
    assert.error_matches(function() init.kaiming_normal_(crater.empty(3, 3), { mode = "fan" }) end,
      "kaiming_normal_: mode must be 'fan_in' or 'fan_out', got 'fan'", 1, true)
  end)

  it("uniform_, normal_, constant_, zeros_, ones_ fill in place and return the tensor", function()
    crater.manual_seed(9)
    local t = crater.empty(100, 100)
    assert.equal(t, init.uniform_(t, 2, 3))
    assert.is_true(t:min():item() >= 2 and t:max():item() < 3)
    check_normal(init.normal_(crater.empty(100, 100), 0, 0.5), 0.5)
    assert.same({ 7, 7 }, init.constant_(crater.empty(2), 7):totable())
    assert.same({ 0, 0 }, init.zeros_(crater.empty(2)):totable())
    assert.same({ 1, 1 }, init.ones_(crater.empty(2)):totable())
  end)

  it("fills a parameter without recording a graph", function()
    local w = crater.zeros(3, 3, { requires_grad = true })
    init.xavier_uniform_(w)
    assert.is_true(w.is_leaf)
    assert.is_true(w.requires_grad)
  end)
end)
