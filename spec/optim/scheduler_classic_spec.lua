-- The classic schedules, against their formulas and values worked by hand.
local L = require "crater.optim.lr_scheduler"

local function near(expected, got, what)
  assert.are.equal(#expected, #got, what .. ": length")
  for t = 1, #expected do
    local e, a = expected[t], got[t]
    if math.abs(e - a) > 1e-14 * math.max(1, math.abs(e)) then
      error(string.format("%s: entry %d: expected %.17g, got %.17g", what, t, e, a), 2)
    end
  end
end

-- lrs from t = 0 to n - 1 of a schedule with lr0 (default 1)
local function run(factory, n, lr0)
  return L.trace(factory, n, {lr = lr0 or 1})
end

describe("PowerLR", function()
  it("is lr0 / (1 + t/s)^c: halves at t = s for c = 1", function()
    near({1, 2 / 3, 1 / 2, 2 / 5, 1 / 3}, run(function(o) return L.PowerLR(o, {s = 2}) end, 5), "c=1")
  end)
  it("with c = 2 squares the denominator", function()
    near({0.5, 0.5 / 2.25, 0.5 / 4, 0.5 / 6.25},
         run(function(o) return L.PowerLR(o, {s = 2, c = 2}) end, 4, 0.5), "c=2")
  end)
  it("follows the formula over 60 steps and for each group", function()
    local lrs = L.trace(function(o) return L.PowerLR(o, {s = 7, c = 0.5}) end, 60, {lr = {0.3, 0.01}})
    for g, lr0 in ipairs {0.3, 0.01} do
      local want = {}
      for t = 0, 59 do want[t + 1] = lr0 / (1 + t / 7) ^ 0.5 end
      near(want, lrs[g], "group " .. g)
    end
  end)
end)

describe("ExponentialDecayLR", function()
  it("is lr0 * 0.1^(t/s): a tenth every s steps, smoothly", function()
    local lrs = run(function(o) return L.ExponentialDecayLR(o, {s = 10}) end, 21)
    near({1, 10 ^ -0.5, 0.1, 0.01}, {lrs[1], lrs[6], lrs[11], lrs[21]}, "t = 0, 5, 10, 20")
  end)
  it("with staircase drops only at multiples of s", function()
    local lrs = run(function(o) return L.ExponentialDecayLR(o, {s = 3, staircase = true, rate = 0.5}) end, 8, 0.8)
    near({0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2}, lrs, "staircase")
  end)
  it("jumps with step(epoch)", function()
    local opt = {param_groups = {{lr = 2}}}
    local s = L.ExponentialDecayLR(opt, {s = 4})
    s:step(8)
    near({2 * 0.01}, {opt.param_groups[1].lr}, "t = 8")
  end)
end)

describe("PiecewiseConstantLR", function()
  it("uses values[k] while t <= boundaries[k], then the last value", function()
    local lrs = run(function(o)
      return L.PiecewiseConstantLR(o, {boundaries = {2, 5}, values = {0.1, 0.01, 0.001}})
    end, 9)
    assert.same({0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001}, lrs)
  end)
  it("sets the same values in every group and checks its lists", function()
    local lrs = L.trace(function(o) return L.PiecewiseConstantLR(o, {boundaries = {1}, values = {3, 4}}) end,
                        3, {groups = 2})
    assert.same({{3, 3, 4}, {3, 3, 4}}, lrs)
    local opt = {param_groups = {{lr = 1}}}
    assert.error_matches(function() L.PiecewiseConstantLR(opt, {boundaries = {1, 2}, values = {1, 2}}) end,
      "PiecewiseConstantLR: values must have one more element than boundaries (2), got 2", 1, true)
    assert.error_matches(function() L.PiecewiseConstantLR(opt, {boundaries = {3, 2}, values = {1, 2, 3}}) end,
      "PiecewiseConstantLR: boundaries must be increasing, got 2 after 3", 1, true)
  end)
end)

describe("WarmupCosineLR", function()
  it("warms up linearly from 0, then follows a half cosine to 0 (worked by hand)", function()
    local c = math.sqrt(2) / 2
    near({0, 0.25, 0.5, 0.75, 1, (1 + c) / 2, 0.5, (1 - c) / 2, 0, 0},
         run(function(o) return L.WarmupCosineLR(o, {warmup_steps = 4, total_steps = 8}) end, 10), "w=4 T=8")
  end)
  it("starts at warmup_start_factor and ends at eta_min", function()
    local lr0, w, T, f, eta = 0.2, 5, 40, 0.1, 0.001
    local want = {}
    for t = 0, 49 do
      if t < w then want[#want + 1] = lr0 * (f + (1 - f) * t / w)
      elseif t <= T then want[#want + 1] = eta + (lr0 - eta) * (1 + math.cos(math.pi * (t - w) / (T - w))) / 2
      else want[#want + 1] = eta end
    end
    near(want, run(function(o)
      return L.WarmupCosineLR(o, {warmup_steps = w, total_steps = T, warmup_start_factor = f, eta_min = eta})
    end, 50, lr0), "formula")
  end)
  it("refuses total_steps not past warmup_steps", function()
    local opt = {param_groups = {{lr = 1}}}
    assert.error_matches(function() L.WarmupCosineLR(opt, {warmup_steps = 5, total_steps = 5}) end,
      "WarmupCosineLR: total_steps (5) must be greater than warmup_steps (5)", 1, true)
  end)
end)

describe("OneCycleLR as the 1cycle policy", function()
  it("rises from max_lr/25 to max_lr at pct_start and ends at max_lr/25/1e4 (linear, by hand)", function()
    local lrs = run(function(o) return L.OneCycleLR(o, {max_lr = 1, total_steps = 11, pct_start = 0.5,
                                                          anneal_strategy = "linear"}) end, 11)
    -- phase 1 ends at step 0.5*11 - 1 = 4.5; phase 2 runs from 4.5 to 10
    local lo, hi, fin = 0.04, 1, 0.04 / 1e4
    local want = {}
    for t = 0, 10 do
      if t <= 4.5 then want[t + 1] = (hi - lo) * (t / 4.5) + lo
      else want[t + 1] = (fin - hi) * ((t - 4.5) / 5.5) + hi end
    end
    near(want, lrs, "1cycle")
    near({fin}, {lrs[11]}, "final lr")
  end)
end)
