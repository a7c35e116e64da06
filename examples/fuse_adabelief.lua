--- AdaBelief written in Lua with crater.fuse: the same optimizer as the built-in
-- crater.optim.AdaBelief (adabelief_pytorch 0.2.1, RAdam's rectification included), its
-- update written as elementwise functions of tensors and numbers.  Optimizer:fused_update
-- traces each once and runs it in one pass over memory, like the built-in's C kernel
-- (src/optim/adabelief.c); the formulas are written in that kernel's order of operations,
-- so both give the same bits (spec/fuse/examples_spec.lua checks it).
-- At step t, with bc1 = 1 - b1^t, bc2 = 1 - b2^t:
--   p = p * (1 - lr * wd)  (weight_decouple; 1 - wd with fixed_decay)  or  g = g + wd * p
--   m = b1 * m + (1 - b1) * g;  s = b2 * s + (1 - b2) * (g - m)^2 + eps
--   not rectify: p = p - lr / bc1 * m / (sqrt(s) / sqrt(bc2) + eps)
--   rectify: rho = rho_inf - 2 t b2^t / bc2, rho_inf = 2 / (1 - b2) - 1;
--     rho >= 5: p = p - lr * r * m / (sqrt(s) + eps), r = sqrt(bc2 (rho-4)(rho-2) rho_inf /
--       ((rho_inf-4)(rho_inf-2) rho)) / bc1;  else p = p - lr / bc1 * m when
--       degenerated_to_sgd, else no step
-- The rule changes with the step (rho) and with weight_decouple, so the update is a table of
-- variants, one traced program each; a Lua function picks one per step.  amsgrad is left
-- out (it needs a state tensor that only some groups have).
-- Run: build/crater examples/fuse_adabelief.lua   (trains a small problem with both and
-- prints how far apart they end); loadfile(path)("--define-only") returns the class.
local crater = rawget(_G, "crater") or require "crater"
local Optimizer = crater.optim.Optimizer

local AdaBelief = Optimizer:extend("LuaAdaBelief", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-16,
  weight_decay = 0, weight_decouple = true, fixed_decay = false, rectify = true,
  degenerated_to_sgd = true, maximize = false})

function AdaBelief:validate(group)
  Optimizer.validate(self, group)
  self:check_betas(group)
end

-- One update per rule ("adam", "rectified", "sgd", "none") and decay ("decoupled" or "l2"):
-- Lua's if runs while tracing, so each variant is one straight program.
local function update(rule, l2)
  return function(p, g, m, s, decay, wd, b1, b2, eps, sbc2, coef)
    if l2 then g = g + wd * p else p = p * decay end
    m = b1 * m + (1 - b1) * g
    local r = g - m
    s = b2 * s + (1 - b2) * r * r + eps
    if rule == "adam" then p = p + coef * m / (s:sqrt() / sbc2 + eps)
    elseif rule == "rectified" then p = p + coef * m / (s:sqrt() + eps)
    elseif rule == "sgd" then p = p + coef * m end
    return p, m, s
  end
end
local variants = {}
for _, rule in ipairs({"adam", "rectified", "sgd", "none"}) do
  variants[rule .. "/decoupled"], variants[rule .. "/l2"] = update(rule, false), update(rule, true)
end

-- the step's rule and its coefficient, as the built-in computes them (lua/crater/optim/adabelief.lua)
local function rule_of(group, t)
  local b1, b2, lr = group.betas[1], group.betas[2], group.lr
  if not group.rectify then return "adam", -lr / (1 - b1 ^ t) end
  local b2t = b2 ^ t
  local rho_inf = 2 / (1 - b2) - 1
  local rho = rho_inf - 2 * t * b2t / (1 - b2t)
  if rho >= 5 then
    return "rectified", -math.sqrt((1 - b2t) * (rho - 4) / (rho_inf - 4) * (rho - 2) / rho * rho_inf
      / (rho_inf - 2)) / (1 - b1 ^ t) * lr
  elseif group.degenerated_to_sgd then
    return "sgd", -(1.0 / (1 - b1 ^ t)) * lr
  end
  return "none", 0
end

AdaBelief:fused_update(variants, {state = {"exp_avg", "exp_avg_var"},
  variant = function(group, state)
    local l2 = not group.weight_decouple and group.weight_decay ~= 0
    return (rule_of(group, state.step)) .. (l2 and "/l2" or "/decoupled")
  end,
  scalars = function(group, state)
    local lr, wd, t = group.lr, group.weight_decay, state.step
    local _, coef = rule_of(group, t)
    local decay = group.fixed_decay and 1.0 - wd or 1.0 - lr * wd
    return decay, wd, group.betas[1], group.betas[2], group.eps, math.sqrt(1 - group.betas[2] ^ t), coef
  end})

if ... == "--define-only" then return AdaBelief end

-- Least squares with badly scaled columns, float32: 300 steps with each AdaBelief.
crater.manual_seed(3)
local a = crater.randn(64, 8) * crater.tensor({0.1, 0.3, 1, 1, 2, 3, 5, 10})
local b = crater.randn(64)
local function run(cls, opts)
  local w = crater.zeros(8, {requires_grad = true})
  local opt = cls({w}, opts)
  local loss
  for _ = 1, 300 do
    opt:zero_grad()
    loss = ((a:matmul(w) - b) ^ 2):mean()
    loss:backward()
    opt:step()
  end
  return loss:item(), w:detach()
end
for _, opts in ipairs({{lr = 0.05}, {lr = 0.05, rectify = false, weight_decay = 0.01, weight_decouple = false}}) do
  local l1, w1 = run(AdaBelief, opts)
  local l2, w2 = run(crater.optim.AdaBelief, opts)
  print(string.format("rectify=%-5s  Lua AdaBelief loss %.6f, built-in %.6f; weights %s", tostring(opts.rectify ~= false),
    l1, l2, crater.eq(w1, w2):sum():item() == 8 and "bit for bit the same" or "DIFFERENT"))
end
