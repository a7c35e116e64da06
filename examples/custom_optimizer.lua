-- Writing a new optimizer in Lua: Lion, AdaBelief and signSGD, each a defaults table plus
-- its update written as one elementwise function of tensors and numbers.  `fused_update`
-- hands it to crater.fuse, which traces it once and runs it in one pass over memory, as
-- fast as a built-in kernel and with the bits the same ops give one by one.  The base class
-- makes the state tensors (zeros like p), counts `state.step`, and gives param groups,
-- maximize, state_dict/load_state_dict and schedulers.
-- Run: build/crater examples/custom_optimizer.lua   (or lua5.4 with LUA_PATH/CPATH set)
local crater = rawget(_G, "crater") or require "crater"
local Optimizer = crater.optim.Optimizer

--- Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"):
--   c = beta1*m + (1-beta1)*g;  p = p*(1 - lr*wd) - lr*sign(c);  m = beta2*m + (1-beta2)*g
local Lion = Optimizer:extend("Lion", {lr = 1e-4, betas = {0.9, 0.99}, weight_decay = 0, maximize = false})

function Lion:validate(group)
  Optimizer.validate(self, group)
  self:check_betas(group)
end

Lion:fused_update(function(p, g, m, lr, wd, b1, b2)
  local c = m:lerp(g, 1 - b1)             -- the interpolated momentum
  p = p * (1 - lr * wd) - lr * c:sign()   -- decoupled weight decay, then a sign step
  m = m:lerp(g, 1 - b2)
  return p, m
end, {state = {"exp_avg"}, step = false,
      scalars = function(group) return group.lr, group.weight_decay, group.betas[1], group.betas[2] end})

--- AdaBelief (Zhuang et al. 2020): Adam whose second moment tracks (g - m)^2, the
-- "belief" in the gradient, instead of g^2.
--   m = b1*m + (1-b1)*g;  s = b2*s + (1-b2)*(g-m)^2 + eps
--   p = p*(1 - lr*wd) - lr/(1-b1^t) * m / (sqrt(s/(1-b2^t)) + eps)
local AdaBelief = Optimizer:extend("AdaBelief", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-16,
  weight_decay = 0, maximize = false})

function AdaBelief:validate(group)
  Optimizer.validate(self, group)
  self:check_betas(group)
end

AdaBelief:fused_update(function(p, g, m, s, lr, wd, b1, b2, eps, bc1, bc2)
  m = m:lerp(g, 1 - b1)
  local d = g - m
  s = b2 * s + (1 - b2) * d * d + eps
  p = p * (1 - lr * wd) - (lr / bc1) * m / ((s / bc2):sqrt() + eps)
  return p, m, s
end, {state = {"exp_avg", "exp_avg_var"}, scalars = function(group, state)
  local b1, b2, t = group.betas[1], group.betas[2], state.step
  return group.lr, group.weight_decay, b1, b2, group.eps, 1 - b1 ^ t, 1 - b2 ^ t
end})

--- signSGD (Bernstein et al. 2018) with momentum: m = beta*m + (1-beta)*g; p = p - lr*sign(m)
-- (beta = 0: plain signSGD, the sign of the gradient).
local SignSGD = Optimizer:extend("SignSGD", {lr = 1e-2, momentum = 0, maximize = false},
  {momentum = {"number", 0, 1, open = "hi", what = "momentum value"}})

SignSGD:fused_update(function(p, g, m, lr, beta)
  m = beta * m + (1 - beta) * g
  return p - lr * m:sign(), m
end, {state = {"momentum_buffer"}, step = false,
      scalars = function(group) return group.lr, group.momentum end})

if ... == "--define-only" then return {Lion = Lion, AdaBelief = AdaBelief, SignSGD = SignSGD} end

-- A small problem: logistic regression on two Gaussian blobs (float64, fixed seed).
crater.manual_seed(7)
local n = 256
local x = crater.randn(n, 2, {dtype = "float64"})
local y = crater.zeros(n, {dtype = "float64"})
for i = 1, n do
  if i <= n / 2 then x[i] = x[i] + 1.5; y[i] = 1 else x[i] = x[i] - 1.5 end
end
local function loss_of(w, b)
  local z = x:matmul(w) + b
  -- softplus(z) - y*z is the logistic loss, stable for both signs of z
  return (z:softplus() - y * z):mean()
end

-- Trains from a fixed start for `steps`; returns the final loss and the parameters.
local function train(cls, opts, steps, start)
  local w = crater.zeros(2, {dtype = "float64", requires_grad = true})
  local b = crater.zeros(1, {dtype = "float64", requires_grad = true})
  local opt = cls({w, b}, opts)
  local sched = crater.optim.lr_scheduler.StepLR(opt, {step_size = 50, gamma = 0.5})
  if start then
    opt:load_state_dict(start.opt)
    sched:load_state_dict(start.sched)
    crater.no_grad(function() w:copy_(start.w); b:copy_(start.b) end)
  end
  local loss
  for _ = 1, steps do
    opt:zero_grad()
    loss = loss_of(w, b)
    loss:backward()
    opt:step()
    sched:step()
  end
  return loss:item(), w, b, opt, sched
end

for _, case in ipairs({{Lion, {lr = 0.05, weight_decay = 0.01}}, {AdaBelief, {lr = 0.05}},
    {SignSGD, {lr = 0.05, momentum = 0.9}}}) do
  local cls, opts = case[1], case[2]
  local full_loss, full_w = train(cls, opts, 200)
  -- the same run, stopped at step 100, saved to disk, restored and resumed
  local _, w, b, opt, sched = train(cls, opts, 100)
  local path = os.tmpname()
  crater.save(path, {w = w:detach(), b = b:detach(), opt = opt:state_dict(), sched = sched:state_dict()})
  local resumed_loss, resumed_w, _, resumed_opt = train(cls, opts, 100, crater.load(path))
  os.remove(path)
  print(string.format("%-9s loss %.6f after 200 steps (lr now %.4g); resumed from disk: %.6f, %s",
    cls.__name, full_loss, resumed_opt.param_groups[1].lr, resumed_loss,
    crater.allclose(full_w, resumed_w, 0, 0) and "identical" or "DIFFERENT"))
end
