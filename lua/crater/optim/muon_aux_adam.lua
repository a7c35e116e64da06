--- MuonWithAuxAdam: Muon for the hidden matrices and an Adam-style rule for everything
-- else (embeddings, heads, biases, gains), in one optimizer, as KellerJordan/Muon
-- muon.py's SingleDeviceMuonWithAuxAdam. Every param group says which it is:
--   {params = matrices, use_muon = true, lr = 0.02, momentum = 0.95, weight_decay = 0}
--     updated as crater.optim.Muon
--   {params = the rest, use_muon = false, lr = 3e-4, betas = {0.9, 0.95}, eps = 1e-10,
--    weight_decay = 0}, updated as
--     m = lerp(m, g, 1 - b1);  v = lerp(v, g^2, 1 - b2)
--     p = p * (1 - lr * weight_decay) - lr * (m / bc1) / (sqrt(v / bc2) + eps)
-- Options a group leaves out take the constructor's options (its second argument), else
-- the defaults of its kind above; a group that names an option of the other kind is
-- refused, as by the reference's key check (a constructor option of one kind only reaches
-- the groups of that kind). `use_muon` is required in every group.
-- Unlike the reference, p.grad is left as backward made it and a parameter without a
-- gradient is skipped. State: `momentum_buffer` (Muon groups); `step`, `exp_avg`,
-- `exp_avg_sq` (the others).
-- https://github.com/KellerJordan/Muon
-- @usage local opt = crater.optim.MuonWithAuxAdam({
--   {params = {model[1].weight, model[3].weight}, use_muon = true},
--   {params = {model[1].bias, model[3].bias}, use_muon = false, lr = 3e-4}})
local Optimizer = require "crater.optim.optimizer"
local internal = require("crater.core").internal
local Muon = require "crater.optim.muon"

local OWN = {lr = {0.02, 3e-4}, momentum = {0.95, nil}, betas = {nil, {0.9, 0.95}},
  eps = {nil, 1e-10}}   -- option -> {its Muon default, its Adam default} (nil: not of that kind)

local Aux = Optimizer:extend("MuonWithAuxAdam", {use_muon = Optimizer.required, lr = false,
  momentum = false, betas = false, eps = false, weight_decay = 0},
  {use_muon = {"boolean"}, lr = {"number", 0, false_ok = true, what = "learning rate"},
   momentum = {"number", 0, 1, false_ok = true, what = "momentum value"},
   betas = {"list", Optimizer.BETAS[2], Optimizer.BETAS[3], false_ok = true},
   eps = {"number", 0, false_ok = true, what = "epsilon value"}})
Aux.state_keys = function(group)
  return group.use_muon and {"momentum_buffer"} or {"step", "exp_avg", "exp_avg_sq"}
end
Aux.decoupled = true   -- adam_step reads it: AdamW's decay
Aux.state_rules = {momentum_buffer = "param", step = "count", exp_avg = "param", exp_avg_sq = "param"}

local crater = require "crater"

local function same(a, b)   -- numbers, or lists of numbers (betas)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- Fills the group's own defaults and refuses the other kind's options; then Muon's
-- checks (2-D or 4-D parameters) for a Muon group.
function Aux:validate(group)
  Optimizer.validate(self, group)
  local kind = group.use_muon and 1 or 2
  for _, k in ipairs({"betas", "eps", "lr", "momentum"}) do   -- in order: the same message every run
    local d = OWN[k][kind]
    -- an option of the other kind that only came from the constructor's defaults is dropped
    if d == nil and group[k] ~= false and same(group[k], self.defaults[k]) then group[k] = false end
    if d == nil and group[k] ~= false then
      error(string.format("MuonWithAuxAdam: a group with use_muon = %s takes no '%s'", tostring(group.use_muon), k), 0)
    end
    if group[k] == false and d ~= nil then group[k] = Optimizer.copy(d) end
  end
  if group.use_muon then Muon.validate(self, group) end   -- 2-D or 4-D parameters
end

function Aux:init_state(p, state, group)
  local C = crater
  if group.use_muon then
    if state.momentum_buffer == nil then state.momentum_buffer = C.zeros_like(p) end
  elseif state.step == nil then
    state.step, state.exp_avg, state.exp_avg_sq = 0, C.zeros_like(p), C.zeros_like(p)
  end
end

-- The Adam groups' update is the reference's adam_update (lerp-form moments, then
-- m_hat / (sqrt(v_hat) + eps) with p *= 1 - lr*wd first): AdamW's algebra exactly, so it
-- runs AdamW's fused kernel (the rounding differs by an ulp, not the formula).
function Aux:update(p, g, state, group)
  if group.use_muon then return Muon.update(self, p, g, state, group) end
  state.step = state.step + 1
  internal.adam_step(self, p, g, state, group)   -- no amsgrad or maximize in the group: false
end
Optimizer.kernel_update(Aux.update)

return Aux
