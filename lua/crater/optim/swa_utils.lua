--- crater.optim.swa_utils: stochastic weight averaging, as torch.optim.swa_utils (1.13).
--   AveragedModel(model[, avg_fn]) keeps a copy of model whose parameters are a running
--     average: `update_parameters(model)` copies model's parameters the first time and then
--     sets p_avg = avg_fn(p_avg, p, n_averaged) (default: the equal-weight mean
--     p_avg + (p - p_avg) / (n + 1)); `n_averaged` counts the updates; calling it runs the copy.
--   update_bn(loader, model) recomputes every BatchNorm's running statistics with one pass
--     over the loader (cumulative averages: the averaged weights never saw those batches).
--   SWALR(opt, {swa_lr =, anneal_epochs = 10, anneal_strategy = "cos"|"linear"}) anneals each
--     group's lr from its current value to swa_lr over anneal_epochs steps, then holds it.
-- https://pytorch.org/docs/1.13/optim.html#stochastic-weight-averaging
-- @usage local swa = crater.optim.swa_utils
-- local avg = swa.AveragedModel(model); local sched = swa.SWALR(opt, {swa_lr = 0.05})
-- ... after each epoch past swa_start: avg:update_parameters(model); sched:step()
-- swa.update_bn(loader, avg)
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local M = {}

local crater = require "crater"

-- A copy of a module tree: tables copied (shared ones once), tensors cloned with their
-- requires_grad, functions and metatables shared.
local function copy_tree(v, memo)
  if crater.is_tensor(v) then
    if memo[v] == nil then
      local c = v:detach():clone()
      if v.requires_grad then c.requires_grad = true end
      memo[v] = c
    end
    return memo[v]
  end
  if type(v) ~= "table" then return v end
  if memo[v] then return memo[v] end
  local t = {}
  memo[v] = t
  for k, x in pairs(v) do t[copy_tree(k, memo)] = copy_tree(x, memo) end
  return setmetatable(t, getmetatable(v))
end

local Averaged = {__name = "AveragedModel"}
Averaged.__index = Averaged

--- AveragedModel(model[, avg_fn]): avg_fn(averaged, current, n_averaged) returns the new
-- average of one parameter (tensors; the default is the equal-weight mean).
function M.AveragedModel(model, avg_fn)
  if type(model) ~= "table" or type(model.parameters) ~= "function" then
    error("AveragedModel: model must be a crater.nn module, got " .. type(model), 2)
  end
  if avg_fn ~= nil and type(avg_fn) ~= "function" then
    error("AveragedModel: avg_fn must be a function, got " .. type(avg_fn), 2)
  end
  return setmetatable({module = copy_tree(model, {}), n_averaged = 0,
    avg_fn = avg_fn or function(avg, p, n) return avg + (p - avg) / (n + 1) end}, Averaged)
end

function Averaged:__call(...) return self.module(...) end
function Averaged:forward(...) return self.module(...) end
function Averaged:parameters() return self.module:parameters() end
function Averaged:modules() return self.module:modules() end
function Averaged:train(mode) self.module:train(mode); return self end
function Averaged:eval() self.module:eval(); return self end

--- Folds model's current parameters into the average (they must match one for one).
function Averaged:update_parameters(model)
  local mine, theirs = self.module:parameters(), model:parameters()
  if #mine ~= #theirs then
    error(string.format("AveragedModel: update_parameters: model has %d parameters, the average %d", #theirs, #mine), 2)
  end
  for i, p in ipairs(mine) do
    if p:numel() ~= theirs[i]:numel() then
      error(string.format("AveragedModel: update_parameters: parameter %d has %d elements, the average's %d",
        i, theirs[i]:numel(), p:numel()), 2)
    end
  end
  crater.no_grad(function()
    for i, p in ipairs(mine) do
      local q = theirs[i]:detach()
      if self.n_averaged == 0 then p:copy_(q)
      else p:copy_(self.avg_fn(p:detach(), q, self.n_averaged)) end
    end
  end)
  self.n_averaged = self.n_averaged + 1
end

--- One pass over loader (batches are tensors or lists whose first entry is the input) with
-- every BatchNorm's statistics reset and averaged cumulatively; the model's mode is kept.
function M.update_bn(loader, model)
  local bns = {}
  for _, m in ipairs(model:modules()) do
    if m.running_mean ~= nil and m.running_var ~= nil and m.num_batches_tracked ~= nil then bns[#bns + 1] = m end
  end
  if #bns == 0 then return end
  local was_training = (model.module or model).training ~= false
  local momenta = {}
  for i, m in ipairs(bns) do
    m.running_mean:zero_(); m.running_var:fill_(1); m.num_batches_tracked:zero_()
    momenta[i], m.momentum = m.momentum, false   -- false: the cumulative average
  end
  model:train(true)
  local iter = type(loader) == "table" and loader.iter and function() return loader:iter() end
    or function() return ipairs(loader) end
  local ok, err = pcall(function()
    crater.no_grad(function()
      for a, b in iter() do
        local batch = b ~= nil and type(a) == "number" and b or a   -- ipairs gives (i, batch)
        if type(batch) == "table" and not crater.is_tensor(batch) then batch = batch[1] end
        model(batch)
      end
    end)
  end)
  for i, m in ipairs(bns) do m.momentum = momenta[i] end
  model:train(was_training)
  if not ok then error(err, 2) end
end

--- SWALR: torch's formula, t = min(1, step / max(1, anneal_epochs)) with step counting the
-- scheduler's steps, alpha = (1 - cos(pi t)) / 2 ("cos") or t ("linear"), and each group's
-- lr = swa_lr * alpha + lr_prev * (1 - alpha), lr_prev the lr that the previous alpha
-- explains.  `swa_lr` is one number or one per group (kept in the groups as `swa_lr`).
local SWALR = LRScheduler:extend("SWALR")
SWALR.field_rules = {anneal_epochs = {"integer", 0}, anneal_strategy = {"choice", "cos", "linear"}}

function SWALR:init(optimizer, opts)
  local who = "SWALR"
  B.optimizer(who, optimizer)
  opts = B.options(who, opts, {"swa_lr", "anneal_epochs", "anneal_strategy"})
  if opts.swa_lr == nil then B.fail("SWALR: swa_lr is required") end
  local swa = B.per_group(who, "swa_lr", opts.swa_lr, optimizer)
  self.anneal_strategy = opts.anneal_strategy or "cos"
  B.choice(who, "anneal_strategy", self.anneal_strategy, {"cos", "linear"})
  self.anneal_epochs = B.integer(who, "anneal_epochs", opts.anneal_epochs == nil and 10 or opts.anneal_epochs, 0)
  for i, g in ipairs(optimizer.param_groups) do g.swa_lr = swa[i] end
  LRScheduler.init(self, optimizer, opts)
end

function SWALR:_anneal(t)
  if self.anneal_strategy == "linear" then return t end
  return (1 - math.cos(math.pi * t)) / 2
end

function SWALR:get_lr()
  local step = self._step_count - 1
  if self.anneal_epochs == 0 then step = math.max(1, step) end
  local prev_alpha = self:_anneal(math.max(0, math.min(1, (step - 1) / math.max(1, self.anneal_epochs))))
  local alpha = self:_anneal(math.max(0, math.min(1, step / math.max(1, self.anneal_epochs))))
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do
    local prev = prev_alpha == 1 and g.swa_lr or (g.lr - prev_alpha * g.swa_lr) / (1 - prev_alpha)
    out[i] = g.swa_lr * alpha + prev * (1 - alpha)
  end
  return out
end
M.SWALR = SWALR

return M
