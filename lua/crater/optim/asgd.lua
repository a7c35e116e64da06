--- ASGD: averaged stochastic gradient descent (PyTorch's torch.optim.ASGD).
-- Update at step t, with g the gradient (negated when maximize):
--   g = g + weight_decay * p
--   p = p * (1 - lambd * eta) - eta * g
--   ax = ax + mu * (p - ax)                  (ax = p while mu == 1)
--   eta = lr / (1 + lambd * lr * t)^alpha;  mu = 1 / max(1, t - t0)
-- The averaged parameters are `state.ax`; copy them into the model for evaluation.
-- As PyTorch 1.13 keeps eta and mu in float32 0-d tensors, they are rounded to float32
-- here too. State: `step`, `eta`, `mu`, `ax`.
-- https://pytorch.org/docs/1.13/generated/torch.optim.ASGD.html
-- @tparam[opt=1e-2] number lr learning rate
-- @tparam[opt=1e-4] number lambd decay term
-- @tparam[opt=0.75] number alpha power for the eta update
-- @tparam[opt=1e6] number t0 step at which averaging starts
-- @tparam[opt=0] number weight_decay L2 penalty added to the gradient
-- @tparam[opt=false] boolean maximize maximize the objective instead
-- @usage local opt = crater.optim.ASGD(model:parameters(), {lr = 0.01, t0 = 100})
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local ASGD = Optimizer:extend("ASGD", {lr = 1e-2, lambd = 1e-4, alpha = 0.75, t0 = 1e6,
  weight_decay = 0, maximize = false},
  {lambd = {"number", 0}, alpha = {"number", 0}, t0 = {"number", 0, inf = true}})
ASGD.state_keys = {"step", "eta", "mu", "ax"}
ASGD.state_rules = {step = "count", eta = "number", mu = "number", ax = "param"}

local function f32(x) return (string.unpack("f", string.pack("f", x))) end

function ASGD:init_state(p, state, group)
  if state.step == nil then
    local zeros_like = crater.zeros_like
    state.step, state.eta, state.mu, state.ax = 0, f32(group.lr), 1.0, zeros_like(p)
  end
end

function ASGD:update(p, g, state, group)
  local t = state.step + 1
  state.step = t
  internal.asgd_step(self, p, g, state, group)   -- with this step's state.eta and state.mu
  local lr = group.lr
  state.eta = f32(lr / (1 + group.lambd * lr * t) ^ group.alpha)
  state.mu = f32(1 / math.max(1, t - group.t0))
end
Optimizer.kernel_update(ASGD.update)

return ASGD
