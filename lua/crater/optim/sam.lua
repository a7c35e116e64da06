--- SAM: sharpness-aware minimization (Foret et al. 2021), as davda54/sam sam.py. Each step
-- first climbs to the worst point of a rho-ball around w, then steps the base optimizer
-- with the gradient taken there:
--   e = rho * g / ||g||  (adaptive: e = rho * p^2 * g / ||p * g||, ASAM)
--   w' = w + e;  g' = grad f(w');  w = w;  base step with g'
-- Use it as `loss:backward(); sam:step(closure)`, where the closure recomputes the loss and
-- calls backward (SAM zeroes the gradients before calling it; the closure must not).
-- `param_groups` are the base optimizer's (with `rho` and `adaptive` in each), so
-- schedulers work on SAM. State: `opt.state[p].old_p`; `state_dict` is the base's.
-- https://arxiv.org/abs/2010.01412
-- @param params the parameters (or groups)
-- @param base_class an optimizer class (crater.optim.SGD, ...)
-- @tparam table opts `rho = 0.05`, `adaptive = false` and the base class's options
-- @usage local sam = crater.optim.SAM(model:parameters(), crater.optim.SGD, {lr = 0.1, momentum = 0.9})
local rules = require "crater.optim.rules"
local internal = require("crater.core").internal

local SAM = {__name = "SAM"}
SAM.__index = function(self, k)
  if k == "param_groups" or k == "defaults" then return rawget(self, "base_optimizer")[k] end
  return SAM[k]
end

local crater = require "crater"

local function new(_, params, base_class, opts)
  if type(base_class) ~= "table" or type(base_class.defaults) ~= "table" then
    error("SAM: base_class must be an optimizer class such as crater.optim.SGD, got " .. type(base_class), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("SAM: options must be a table, got " .. type(opts), 2) end
  local rho = opts.rho == nil and 0.05 or opts.rho
  local adaptive = opts.adaptive
  if adaptive == nil then adaptive = false end
  for _, c in ipairs({{"rho", rho, {"number", 0, what = "rho"}}, {"adaptive", adaptive, {"boolean"}}}) do
    local ok, err = pcall(rules.check, "SAM", c[1], c[2], c[3])
    if not ok then error(err, 2) end
  end
  local base_opts = {}
  for k, v in pairs(opts) do if k ~= "rho" and k ~= "adaptive" then base_opts[k] = v end end
  -- groups may carry their own rho and adaptive: the base optimizer sees them without
  local own = {}
  if type(params) == "table" and type(params[1]) == "table" and getmetatable(params[1]) == nil then
    local stripped = {}
    for i, g in ipairs(params) do
      local s = {}
      for k, v in pairs(g) do if k ~= "rho" and k ~= "adaptive" then s[k] = v end end
      stripped[i], own[i] = s, {rho = g.rho, adaptive = g.adaptive}
    end
    params = stripped
  end
  local ok, base = pcall(base_class, params, base_opts)
  if not ok then error("SAM: " .. tostring(base), 2) end
  for i, g in ipairs(base.param_groups) do
    g.rho = own[i] and own[i].rho or rho
    g.adaptive = own[i] and own[i].adaptive
    if g.adaptive == nil then g.adaptive = adaptive end
  end
  return setmetatable({base_optimizer = base, state = setmetatable({}, {__mode = "k"})}, SAM)
end
setmetatable(SAM, {__call = new})

function SAM:zero_grad(...) return self.base_optimizer:zero_grad(...) end

-- ||(|p| if adaptive else 1) * g|| over every parameter with a gradient
-- The step's two temporaries per parameter, made at its first step: old_p (the point
-- the base optimizer steps from) and e (the adaptive scale), so later steps allocate none.
local function buffers(self, p)
  local st = self.state[p]
  if st == nil then
    st = {old_p = crater.empty_like(p), e = crater.empty_like(p)}
    self.state[p] = st
  end
  return st
end

local function grad_norm(self)
  local sum = 0
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      local g = p.grad
      if g ~= nil then
        if group.adaptive then            -- ||abs(p) * g||, as the reference
          local e = buffers(self, p).e
          local n = math.sqrt(internal.sum_squares(e:copy_(p):abs_():mul_(g)))
          sum = sum + n * n
        elseif g:is_contiguous() then
          sum = sum + internal.sum_squares(p, true)
        else
          sum = sum + internal.sum_squares(g:contiguous())
        end
      end
    end
  end
  return math.sqrt(sum)
end

function SAM:first_step(zero_grad)
  crater.no_grad(function()
    local norm = grad_norm(self)
    for _, group in ipairs(self.param_groups) do
      local scale = group.rho / (norm + 1e-12)
      for _, p in ipairs(group.params) do
        local g = p.grad
        if g ~= nil then
          local st = buffers(self, p)
          st.old_p:copy_(p)
          if group.adaptive then          -- e = p^2 * g * scale, in the reference's order
            p:add_(st.e:copy_(p):mul_(p):mul_(g):mul_(scale))
          else
            p:add_(st.e:copy_(g):mul_(scale))
          end
        end
      end
    end
  end)
  if zero_grad then self:zero_grad() end
end

function SAM:second_step(zero_grad)
  crater.no_grad(function()
    for _, group in ipairs(self.param_groups) do
      for _, p in ipairs(group.params) do
        local st = self.state[p]
        if p.grad ~= nil and st and st.old_p then p:copy_(st.old_p) end
      end
    end
  end)
  self.base_optimizer:step()
  if zero_grad then self:zero_grad() end
end

--- One SAM step; refused without a closure (changing nothing).
function SAM:step(closure)
  if type(closure) ~= "function" then
    error("SAM: step needs a closure that recomputes the loss and calls backward", 2)
  end
  self:first_step(true)
  crater.enable_grad(closure)
  self:second_step()
end

function SAM:state_dict() return self.base_optimizer:state_dict() end

--- Loads a state_dict that SAM:state_dict made (the base's, with rho and adaptive in its groups).
function SAM:load_state_dict(sd)
  if type(sd) ~= "table" or type(sd.param_groups) ~= "table" then
    error("SAM: load_state_dict: expected a table with 'state' and 'param_groups'", 2)
  end
  local inner, own = {}, {}
  for k, v in pairs(sd) do inner[k] = v end
  inner.param_groups = {}
  for i, g in ipairs(sd.param_groups) do
    local c = {}
    for k, v in pairs(g) do if k ~= "rho" and k ~= "adaptive" then c[k] = v end end
    inner.param_groups[i], own[i] = c, {rho = g.rho, adaptive = g.adaptive}
    for _, r in ipairs({{"rho", g.rho == nil and 0.05 or g.rho, {"number", 0, what = "rho"}},
                        {"adaptive", g.adaptive == nil or g.adaptive, {"boolean"}}}) do
      local ok, err = pcall(rules.check, "SAM: load_state_dict", r[1], r[2], r[3])
      if not ok then error(err, 2) end
    end
  end
  local ok, err = pcall(self.base_optimizer.load_state_dict, self.base_optimizer, inner)
  if not ok then error(err, 2) end
  for i, g in ipairs(self.param_groups) do
    if own[i].rho ~= nil then g.rho = own[i].rho end
    if own[i].adaptive ~= nil then g.adaptive = own[i].adaptive end
  end
end

function SAM:__tostring() return "SAM over " .. tostring(self.base_optimizer) end

return SAM
