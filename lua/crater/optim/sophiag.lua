--- SophiaG: Sophia with the Gauss-Newton-Bartlett Hessian estimate (Liu et al. 2023,
-- Liuhong99/Sophia sophia.py). Update, with g the gradient (negated when maximize):
--   p = p * (1 - lr * weight_decay)
--   m = b1 * m + (1 - b1) * g
--   p = p - lr * sign(m) * min(|m| / (rho * bs * h + 1e-15), 1)
-- and, at `opt:update_hessian()` (every k steps, after a backward of the sampled-label
-- loss as in the reference's training loop), h = b2 * h + (1 - b2) * g * g from each
-- parameter's current .grad. `opt:step(closure, {bs = 5120})` takes the batch size in
-- tokens (default 5120). Pick it for language-model pretraining, where the clipped
-- curvature-scaled step lets a higher lr through than AdamW. State: `step`, `exp_avg`,
-- `hessian`.
-- https://github.com/Liuhong99/Sophia
-- @tparam[opt=1e-4] number lr learning rate
-- @tparam[opt={0.965, 0.99}] table betas decays of m and of the Hessian estimate
-- @tparam[opt=0.04] number rho clipping scale
-- @tparam[opt=0.1] number weight_decay decoupled weight decay
-- @tparam[opt=false] boolean maximize maximize the objective instead
-- @usage local opt = crater.optim.SophiaG(model:parameters(), {lr = 2e-4})
local Optimizer = require "crater.optim.optimizer"
local internal = require("crater.core").internal

local SophiaG = Optimizer:extend("SophiaG", {lr = 1e-4, betas = {0.965, 0.99}, rho = 0.04,
  weight_decay = 0.1, maximize = false},
  {betas = Optimizer.BETAS, rho = {"number", 0, what = "rho parameter"}})
SophiaG.state_keys = {"step", "exp_avg", "hessian"}
SophiaG.state_rules = {step = "count", exp_avg = "param", hessian = "param"}

local crater = require "crater"

function SophiaG:init_state(p, state)
  if state.step == nil then
    local z = crater.zeros_like
    state.exp_avg, state.hessian, state.step = z(p), z(p), 0
  end
end

--- One step; `opts.bs` is the batch size in the clipping denominator (default 5120).
function SophiaG:step(closure, opts)
  local bs = 5120
  if opts ~= nil then
    if type(opts) ~= "table" then error("SophiaG: step: opts must be a table such as {bs = 5120}", 2) end
    bs = opts.bs == nil and 5120 or opts.bs
    if type(bs) ~= "number" or bs ~= bs or bs < 0 or bs == math.huge then
      error("SophiaG: step: bs must be a finite number >= 0, got " .. tostring(bs), 2)
    end
  end
  self._bs = bs
  return Optimizer.step(self, closure)
end

--- h = b2 * h + (1 - b2) * g * g for every parameter with a gradient; refused (changing
-- nothing) when no parameter has one yet.
local scalars = {rho_bs = 0}   -- what sophia_step reads besides the group and the state

function SophiaG:update_hessian()
  local any = false
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      if p.grad ~= nil then any = true end
    end
  end
  if not any then
    error("SophiaG: update_hessian: no parameter has a gradient yet (call backward first)", 2)
  end
  crater.no_grad(function()
    for _, group in ipairs(self.param_groups) do
      for _, p in ipairs(group.params) do
        if p.grad ~= nil then
          local st = self.state[p] or {}
          self:init_state(p, st, group)
          self.state[p] = st
          internal.sophia_hessian_step(self, p, true, st, group)
        end
      end
    end
  end)
end

function SophiaG:update(p, g, state, group)
  state.step = state.step + 1
  scalars.rho_bs = group.rho * (self._bs or 5120)
  internal.sophia_step(self, p, g, state, group, scalars)
end
Optimizer.kernel_update(SophiaG.update)

return SophiaG
