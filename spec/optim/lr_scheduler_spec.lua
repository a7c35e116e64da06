-- Parity with PyTorch 1.13: every scheduler in spec/fixtures/schedulers.lua (made by
-- spec/fixtures/gen_schedulers.py) is rebuilt here and driven the same way; every lr,
-- and every cycled momentum, must agree to 1e-12 relative.
local lr_scheduler = require "crater.optim.lr_scheduler"
local cases = dofile("spec/fixtures/schedulers.lua")

-- The generator's LAMBDAS, with the same arithmetic.
local LAMBDAS = {
  pow095 = function(e) return 0.95 ^ e end,
  every7 = function(e) return 1.0 / (1 + e // 7) end,
  noam = function(e) return math.min((e + 1) ^ -0.5, (e + 1) * 10 ^ -1.5) end,
  const095 = function() return 0.95 end,
  every5 = function(e) return e % 5 == 0 and 0.9 or 1.0 end,
  inv_lin = function(x) return 1.0 / (1.0 + 0.1 * x) end,
}

-- The generator's optimizers: two groups, lr 0.1 and 0.05; SGD with momentum 0.9 or Adam.
local function make_optimizer(kind)
  if kind == "adam" then
    return {param_groups = {{lr = 0.1, betas = {0.9, 0.999}}, {lr = 0.05, betas = {0.9, 0.999}}},
            defaults = {lr = 0.1, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0}}
  end
  return {param_groups = {{lr = 0.1, momentum = 0.9, dampening = 0}, {lr = 0.05, momentum = 0.9, dampening = 0}},
          defaults = {lr = 0.1, momentum = 0.9, dampening = 0, weight_decay = 0}}
end

local function build(opt, name, opts)
  local o = {}
  for k, v in pairs(opts) do
    if k == "lr_lambda" or k == "scale_fn" then
      if type(v) == "table" then
        local fns = {}
        for i, n in ipairs(v) do fns[i] = LAMBDAS[n] end
        v = fns
      else
        v = LAMBDAS[v]
      end
    elseif k == "schedulers" then
      local parts = {}
      for i, s in ipairs(v) do parts[i] = build(opt, s.name, s.opts) end
      v = parts
    end
    o[k] = v
  end
  return lr_scheduler[name](opt, o)
end

local function momentum_of(g)
  return g.betas and g.betas[1] or g.momentum
end

-- Runs a case; returns the lr and momentum traces shaped like the fixture's.
local function run(case, opt)
  local s = build(opt, case.name, case.opts)
  local groups = opt.param_groups
  local lr, mom = {}, {}
  for i, g in ipairs(groups) do lr[i], mom[i] = {g.lr}, {momentum_of(g)} end
  local args = case.metrics or case.epochs
  for t = 1, args and #args or case.steps do
    if args then s:step(args[t]) else s:step() end
    for i, g in ipairs(groups) do
      lr[i][#lr[i] + 1] = g.lr
      mom[i][#mom[i] + 1] = momentum_of(g)
    end
  end
  return lr, mom, s
end

local function assert_close(expected, got, what)
  assert.are.equal(#expected, #got, what .. ": number of groups")
  for i = 1, #expected do
    assert.are.equal(#expected[i], #got[i], what .. ": length of group " .. i)
    for t = 1, #expected[i] do
      local e, a = expected[i][t], got[i][t]
      local ok = e == a or math.abs(e - a) <= 1e-12 * math.max(math.abs(e), math.abs(a))
      if not ok then
        error(string.format("%s: group %d, entry %d (after %d steps): expected %.17g, got %.17g",
                            what, i, t, t - 1, e, a), 2)
      end
    end
  end
end

local function describe_opts(opts)
  local keys = {}
  for k in pairs(opts) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = opts[k]
    if type(v) == "table" then
      local items = {}
      for i, x in ipairs(v) do items[i] = type(x) == "table" and (x.name or "?") or tostring(x) end
      v = "{" .. table.concat(items, ",") .. "}"
    end
    parts[#parts + 1] = k .. "=" .. tostring(v)
  end
  return table.concat(parts, " ")
end

describe("lr_scheduler parity with PyTorch 1.13", function()
  local seen = {}
  for n, case in ipairs(cases) do
    seen[case.name] = (seen[case.name] or 0) + 1
    local how = case.metrics and "metrics" or case.epochs and "step(epoch)" or case.steps .. " steps"
    it(string.format("#%d %s {%s} (%s, %s)", n, case.name, describe_opts(case.opts), how, case.optimizer), function()
      local opt = make_optimizer(case.optimizer)
      for i, lr0 in ipairs(case.initial_lr or {}) do opt.param_groups[i].initial_lr = lr0 end
      local lr, mom = run(case, opt)
      assert_close(case.lr, lr, case.name .. " lr")
      if case.momentum then assert_close(case.momentum, mom, case.name .. " momentum") end
    end)
  end

  it("covers every PyTorch scheduler with at least two settings", function()
    for _, name in ipairs {"LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
                           "ExponentialLR", "PolynomialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
                           "CyclicLR", "OneCycleLR", "SequentialLR", "ChainedScheduler", "ReduceLROnPlateau"} do
      assert.is_true((seen[name] or 0) >= 2, name)
    end
  end)

  -- PyTorch 1.13's CyclicLR cycles only `momentum`; later versions also cycle Adam's
  -- betas[1] with the same formula, which crater does: the SGD fixtures apply to betas[1].
  for n, case in ipairs(cases) do
    if case.name == "CyclicLR" and case.opts.cycle_momentum ~= false then
      it(string.format("#%d CyclicLR cycles betas[1] of an Adam-like optimizer like momentum", n), function()
        local opt = make_optimizer("adam")
        local lr, mom = run(case, opt)
        assert_close(case.lr, lr, "CyclicLR lr")
        assert_close(case.momentum, mom, "CyclicLR betas[1]")
        for _, g in ipairs(opt.param_groups) do assert.are.equal(0.999, g.betas[2]) end
      end)
    end
  end
end)
