--- LambdaLR: sets each group's lr to its initial lr times a function of the epoch,
--   lr_t = initial_lr * lr_lambda(t),  t = 0, 1, 2, ...
-- The function may be any Lua function (or callable table); give a list of them for one
-- per param group. This is the quickest way to write a custom schedule.
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.LambdaLR.html
-- @usage local s = lr_scheduler.LambdaLR(opt, function(epoch) return 0.95 ^ epoch end)
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"

local LambdaLR = LRScheduler:extend("LambdaLR")

--- Builds a LambdaLR: `LambdaLR(opt, fn)`, `LambdaLR(opt, {fn1, fn2})` or
-- `LambdaLR(opt, {lr_lambda = fn, last_epoch = -1})`.
-- @param optimizer the optimizer
-- @param lr_lambda a function of the epoch returning a factor, or a list of them (one per group)
-- @tparam[opt=-1] number last_epoch the index of the last epoch, to resume
function LambdaLR:init(optimizer, lr_lambda, opts)
  B.optimizer("LambdaLR", optimizer)
  self.lr_lambdas, opts = B.lambdas("LambdaLR", optimizer, lr_lambda, opts)
  LRScheduler.init(self, optimizer, opts)
end

function LambdaLR:get_lr()
  local out = {}
  for i, base in ipairs(self.base_lrs) do out[i] = base * B.call_lambda(self, i, self.last_epoch) end
  return out
end

--- The state; functions are code, not state: a plain function saves as `false`, a
-- callable table saves its fields (as PyTorch saves a callable object's __dict__).
function LambdaLR:state_dict()
  local sd = LRScheduler.state_dict(self)
  sd.lr_lambdas = {}
  for i, fn in ipairs(self.lr_lambdas) do sd.lr_lambdas[i] = type(fn) == "table" and B.deepcopy(fn) or false end
  return sd
end

--- Restores the state, keeping this scheduler's functions (callable tables get their
-- saved fields back).
function LambdaLR:load_state_dict(sd)
  local fns = self.lr_lambdas
  LRScheduler.load_state_dict(self, sd)
  self.lr_lambdas = fns
  for i, st in ipairs(type(sd.lr_lambdas) == "table" and sd.lr_lambdas or {}) do
    if type(st) == "table" and type(fns[i]) == "table" then
      for k, v in pairs(st) do fns[i][k] = B.deepcopy(v) end
    end
  end
end

return LambdaLR
