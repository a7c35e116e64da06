--- Lookahead: k steps of any inner optimizer, then a step back toward where they started
-- (Zhang et al. 2019), as michaelrzhang/lookahead lookahead_pytorch.py (its la_steps and
-- la_alpha are k and alpha here). Every k inner steps:
--   p = alpha * p + (1 - alpha) * slow;  slow = p
-- where slow holds the parameters of the last such step (the start at first).
-- pullback_momentum = "reset" zeroes the inner optimizer's momentum_buffer there ("none"
-- leaves it). `param_groups` is the inner optimizer's, so schedulers work on a Lookahead
-- as on its inner optimizer. `opt:state_dict()` holds the inner optimizer's state and,
-- unlike the reference's, the slow weights and the step counter, so a resumed run
-- continues bit for bit. State: `opt.state[p].cached_params` (the slow weights).
-- https://arxiv.org/abs/1907.08610
-- @tparam crater.optim.Optimizer inner the optimizer that takes the fast steps
-- @tparam[opt=5] integer k inner steps per lookahead step
-- @tparam[opt=0.8] number alpha how far the slow weights move toward the fast ones
-- @tparam[opt="none"] string pullback_momentum "none" or "reset"
-- @usage local opt = crater.optim.Lookahead(crater.optim.SGD(params, {lr = 0.1, momentum = 0.9}), {k = 5})
local rules = require "crater.optim.rules"

local Lookahead = {__name = "Lookahead"}
Lookahead.__index = function(self, k)
  if k == "param_groups" or k == "defaults" then return rawget(self, "optimizer")[k] end
  return Lookahead[k]
end

local RULES = {k = {"integer", 1}, alpha = {"number", 0, 1}, pullback_momentum = {"choice", "none", "reset"}}
local DEFAULTS = {k = 5, alpha = 0.8, pullback_momentum = "none"}

local crater = require "crater"

local function new(_, inner, opts)
  if type(inner) ~= "table" or type(inner.step) ~= "function" or type(inner.param_groups) ~= "table" then
    error("Lookahead: inner must be an optimizer, got " .. type(inner), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("Lookahead: options must be a table, got " .. type(opts), 2) end
  local o = {}
  for k, v in pairs(opts) do
    if DEFAULTS[k] == nil then
      error(string.format("Lookahead: unknown option '%s' (the options are alpha, k, pullback_momentum)", tostring(k)), 2)
    end
    o[k] = v
  end
  for k, d in pairs(DEFAULTS) do
    if o[k] == nil then o[k] = d end
    local ok, err = pcall(rules.check, "Lookahead", k, o[k], RULES[k])
    if not ok then error(err, 2) end
  end
  local self = setmetatable({optimizer = inner, k = o.k, alpha = o.alpha, pullback_momentum = o.pullback_momentum,
    la_step = 0, state = setmetatable({}, {__mode = "k"})}, Lookahead)
  crater.no_grad(function()
    for _, group in ipairs(inner.param_groups) do
      for _, p in ipairs(group.params) do self.state[p] = {cached_params = p:clone()} end
    end
  end)
  return self
end
setmetatable(Lookahead, {__call = new})

function Lookahead:zero_grad(...) return self.optimizer:zero_grad(...) end

--- One inner step, and every k of them the lookahead step; returns the closure's loss.
function Lookahead:step(closure)
  local loss = self.optimizer:step(closure)
  self.la_step = self.la_step + 1
  if self.la_step >= self.k then
    self.la_step = 0
    local a = self.alpha
    crater.no_grad(function()
      for _, group in ipairs(self.optimizer.param_groups) do
        for _, p in ipairs(group.params) do
          local st = self.state[p]
          if st == nil then st = {cached_params = p:clone()}; self.state[p] = st end   -- added later
          p:mul_(a):add_(st.cached_params, 1.0 - a)
          st.cached_params:copy_(p)
          local inner = self.optimizer.state[p]
          if self.pullback_momentum == "reset" and inner and inner.momentum_buffer then
            inner.momentum_buffer:zero_()
          end
        end
      end
    end)
  end
  return loss
end

--- The inner optimizer's state_dict plus `lookahead = {la_step =, cached_params = {[i] = t}}`.
function Lookahead:state_dict()
  local sd = self.optimizer:state_dict()
  local cached, i = {}, 0
  for _, group in ipairs(self.optimizer.param_groups) do
    for _, p in ipairs(group.params) do
      i = i + 1
      cached[i] = self.state[p] and self.state[p].cached_params
    end
  end
  sd.lookahead = {la_step = self.la_step, cached_params = cached}
  return sd
end

function Lookahead:load_state_dict(sd)
  if type(sd) ~= "table" then error("Lookahead: load_state_dict: expected a table", 2) end
  local la = sd.lookahead
  local params = {}
  for _, group in ipairs(self.optimizer.param_groups) do
    for _, p in ipairs(group.params) do params[#params + 1] = p end
  end
  if la ~= nil then   -- checked whole before anything changes
    if type(la) ~= "table" or math.type(la.la_step) ~= "integer" or la.la_step < 0 or type(la.cached_params) ~= "table" then
      error("Lookahead: load_state_dict: 'lookahead' must hold la_step (an integer >= 0) and cached_params", 2)
    end
    for i, p in ipairs(params) do
      local c = la.cached_params[i]
      if not (crater.is_tensor(c) and c:numel() == p:numel()) then
        error(string.format("Lookahead: load_state_dict: cached_params[%d] must be a tensor of %d elements", i, p:numel()), 2)
      end
    end
  end
  local inner = {}
  for k, v in pairs(sd) do if k ~= "lookahead" then inner[k] = v end end
  local ok, err = pcall(self.optimizer.load_state_dict, self.optimizer, inner)
  if not ok then error(err, 2) end
  if la ~= nil then
    self.la_step = la.la_step
    for i, p in ipairs(params) do
      self.state[p] = {cached_params = la.cached_params[i]:to(p:dtype()):reshape(p:shape()):clone()}
    end
  end
end

function Lookahead:__tostring()
  return string.format("Lookahead (k = %d, alpha = %s, pullback_momentum = %s) over %s", self.k,
    tostring(self.alpha), self.pullback_momentum, tostring(self.optimizer))
end

return Lookahead
