--- Rprop: resilient backpropagation (PyTorch's torch.optim.Rprop).
-- Update, with g the gradient (negated when maximize), per coordinate:
--   s = sign(g * prev): step = clamp(step * (s > 0 and etaplus or s < 0 and etaminus or 1),
--                                    step_sizes[1], step_sizes[2])
--   where s < 0, g counts as 0 (the "Rprop-" variant without backtracking)
--   p = p - sign(g) * step;  prev = g
-- Step sizes start at lr. A NaN gradient leaves its coordinate unchanged, as in PyTorch
-- (torch.sign(NaN) is 0 there). State: `step`, `prev`, `step_size`.
-- https://pytorch.org/docs/1.13/generated/torch.optim.Rprop.html
-- @tparam[opt=1e-2] number lr initial step size
-- @tparam[opt={0.5, 1.2}] table etas {etaminus, etaplus}, 0 < etaminus < 1 < etaplus
-- @tparam[opt={1e-6, 50}] table step_sizes {minimal, maximal} step size
-- @tparam[opt=false] boolean maximize maximize the objective instead
-- @usage local opt = crater.optim.Rprop(model:parameters(), {lr = 0.01})
-- luacheck: ignore 581 (the "not (a <= b)" tests are there to treat NaN as PyTorch does)
local Optimizer = require "crater.optim.optimizer"
local crater = require "crater"
local internal = require("crater.core").internal

local Rprop = Optimizer:extend("Rprop", {lr = 1e-2, etas = {0.5, 1.2}, step_sizes = {1e-6, 50},
  maximize = false}, {step_sizes = {"list", {"number", 0}, {"number", 0, inf = true}}})
Rprop.state_keys = {"step", "prev", "step_size"}
Rprop.state_rules = {step = "count", prev = "param", step_size = "param"}

function Rprop:validate(group)
  Optimizer.validate(self, group)   -- etas and step_sizes: two finite numbers each
  local e = group.etas
  if not (0 < e[1] and e[1] < 1 and 1 < e[2]) then
    error(string.format("Rprop: etas must satisfy 0 < etaminus < 1 < etaplus, got {%s, %s}",
      tostring(e and e[1]), tostring(e and e[2])), 0)
  end
  local s = group.step_sizes
  if not (s[1] <= s[2]) then
    error("Rprop: step_sizes must be {min, max} with min <= max", 0)
  end
end

function Rprop:init_state(p, state, group)
  if state.step == nil then
    local zeros_like = crater.zeros_like
    -- one assignment: a failed allocation leaves the state empty, not half made
    local prev, step_size = zeros_like(p), zeros_like(p):fill_(group.lr)
    state.step, state.prev, state.step_size = 0, prev, step_size
  end
end

function Rprop:update(p, g, state, group)
  state.step = state.step + 1
  internal.rprop_step(self, p, g, state, group)
end
Optimizer.kernel_update(Rprop.update, internal.rprop_step)   -- a step with nothing new: one C call

return Rprop
