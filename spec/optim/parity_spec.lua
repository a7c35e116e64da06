-- Every optimizer against PyTorch 1.13, step by step (spec/fixtures/optim_*.lua, made by
-- spec/fixtures/gen_optim.py): float64 to 1e-10 relative, float32 to 1e-5, and the
-- state_dict after the last step (keys and values) to the same tolerance. Errors are
-- norm-wise per tensor (max|got - want| / max|want|). A case carries a wider `tol` only
-- when PyTorch's own result moves by more than a tenth of the tolerance when its loss is
-- off by one rounding error (LBFGS's strong Wolfe search); the generator measures that.
local crater = require "crater"
local problems = require "spec.optim.problems"

local NAMES = {"sgd", "adam", "adamw", "adagrad", "rmsprop", "adadelta", "adamax", "nadam",
  "radam", "asgd", "rprop", "lbfgs"}
local TOL = {float64 = 1e-10, float32 = 1e-5}

local function describe_case(c)
  local opts = {}
  for k, v in pairs(c.options) do
    opts[#opts + 1] = k .. "=" .. (type(v) == "table" and "{" .. table.concat(v, ",") .. "}" or tostring(v))
  end
  table.sort(opts)
  return string.format("%s {%s} on %s in %s", c.optimizer, table.concat(opts, ", "), c.problem, c.dtype)
end

local function run_case(c)
  local params, f = problems.make(c.problem, c.dtype)
  local cls = crater.optim[c.optimizer]
  local opt
  if c.problem == "two_groups" then
    local g2 = {params = {params[2]}}
    for k, v in pairs(c.group2) do g2[k] = v end
    opt = cls({{params = {params[1]}}, g2}, c.options)
  else
    opt = cls(params, c.options)
  end
  local sign = c.options.maximize and -1 or 1
  local function closure()
    opt:zero_grad()
    local loss = f(params) * sign
    loss:backward()
    return loss
  end
  local tol, worst, losses = c.tol or TOL[c.dtype], 0, {}
  for s, want in ipairs(c.steps) do
    local loss
    if c.optimizer == "LBFGS" then
      loss = opt:step(closure)
    else
      loss = closure()
      opt:step()
    end
    losses[s] = loss:item()
    for i, p in ipairs(params) do
      local e = problems.max_rel(problems.values(p), want[i])
      assert(e <= tol, string.format("step %d, param %d: relative error %.3g > %g", s, i, e, tol))
      worst = math.max(worst, e)
    end
  end
  local e = problems.max_rel(losses, c.losses)
  assert(e <= tol, string.format("losses: relative error %.3g", e))
  return opt, tol
end

local function check_state(opt, c, tol)
  local sd = opt:state_dict()
  for idx, want in pairs(c.state) do
    local got = sd.state[idx]
    assert(got, "no state for parameter " .. idx)
    local keys = {}
    for k in pairs(got) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same(want._keys, keys)
    for k, v in pairs(want) do
      if k ~= "_keys" then
        local g = got[k]
        if type(v) == "table" then
          local e = problems.max_rel(problems.values(g), v)
          assert(e <= tol, string.format("state %d.%s: relative error %.3g", idx, k, e))
        else
          local gv = type(g) == "number" and g or g:item()
          local e = problems.max_rel({gv}, {v})
          assert(e <= tol, string.format("state %d.%s: %.17g vs %.17g", idx, k, gv, v))
        end
      end
    end
  end
  for gi, want in ipairs(c.param_groups) do
    local got = sd.param_groups[gi]
    for k, v in pairs(want) do
      assert.same(v, got[k], string.format("param_groups[%d].%s", gi, k))
    end
  end
end

for _, name in ipairs(NAMES) do
  describe(name .. " parity with PyTorch", function()
    local cases = dofile("spec/fixtures/optim_" .. name .. ".lua")
    for _, c in ipairs(cases) do
      it(describe_case(c), function()
        local opt, tol = run_case(c)
        check_state(opt, c, tol)
      end)
    end
  end)
end
