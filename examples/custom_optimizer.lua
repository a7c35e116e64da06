-- Writing a new optimizer in Lua: Lion and AdaBelief, each a defaults table plus an
-- `update` made of in-place tensor methods (nothing allocated after the first step).
-- They get param groups, state_dict/load_state_dict and schedulers from Optimizer.
-- Run: build/crater examples/custom_optimizer.lua   (or lua5.4 with LUA_PATH/CPATH set)
local crater = rawget(_G, "crater") or require "crater"
local Optimizer = crater.optim.Optimizer

--- Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"):
--   c = beta1*m + (1-beta1)*g;  p = p*(1 - lr*wd) - lr*sign(c);  m = beta2*m + (1-beta2)*g
local Lion = Optimizer:extend("Lion", {lr = 1e-4, betas = {0.9, 0.99}, weight_decay = 0})
Lion.state_keys = {"exp_avg"}

function Lion:validate(group)
  Optimizer.validate(self, group)
  self:check_betas(group)
end

function Lion:update(p, g, state, group)
  local b1, b2 = group.betas[1], group.betas[2]
  if state.exp_avg == nil then state.exp_avg = crater.zeros_like(p) end
  self.scratch = self.scratch or setmetatable({}, {__mode = "k"})   -- not saved
  local c = self.scratch[p] or crater.zeros_like(p)
  self.scratch[p] = c
  local m = state.exp_avg
  c:copy_(m):lerp_(g, 1 - b1)                 -- the interpolated momentum
  p:mul_(1 - group.lr * group.weight_decay)   -- decoupled weight decay
  p:add_(c:sign_(), -group.lr)
  m:lerp_(g, 1 - b2)
end

--- AdaBelief (Zhuang et al. 2020): Adam whose second moment tracks (g - m)^2, the
-- "belief" in the gradient, instead of g^2.
--   m = b1*m + (1-b1)*g;  s = b2*s + (1-b2)*(g-m)^2 + eps
--   p = p - lr/(1-b1^t) * m / (sqrt(s/(1-b2^t)) + eps)
local AdaBelief = Optimizer:extend("AdaBelief", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-16,
  weight_decay = 0})
AdaBelief.state_keys = {"step", "exp_avg", "exp_avg_var"}

function AdaBelief:validate(group)
  Optimizer.validate(self, group)
  self:check_betas(group)
end

function AdaBelief:update(p, g, state, group)
  local b1, b2, eps = group.betas[1], group.betas[2], group.eps
  if state.step == nil then
    state.step, state.exp_avg, state.exp_avg_var = 0, crater.zeros_like(p), crater.zeros_like(p)
  end
  self.scratch = self.scratch or setmetatable({}, {__mode = "k"})
  local d = self.scratch[p] or crater.zeros_like(p)
  self.scratch[p] = d
  state.step = state.step + 1
  local m, s, t = state.exp_avg, state.exp_avg_var, state.step
  p:mul_(1 - group.lr * group.weight_decay)
  m:lerp_(g, 1 - b1)
  d:copy_(g):sub_(m)
  s:mul_(b2):addcmul_(d, d, 1 - b2):add_(eps)
  d:copy_(s):mul_(1 / (1 - b2 ^ t)):sqrt_():add_(eps)   -- the denominator
  p:addcdiv_(m, d, -group.lr / (1 - b1 ^ t))
end

if ... == "--define-only" then return {Lion = Lion, AdaBelief = AdaBelief} end

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

for _, case in ipairs({{Lion, {lr = 0.05, weight_decay = 0.01}}, {AdaBelief, {lr = 0.05}}}) do
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
