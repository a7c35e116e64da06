--- MultiplicativeLR: multiplies each group's lr by a function of the epoch at every step
-- after construction,  lr_t = lr_{t-1} * lr_lambda(t).
-- https://pytorch.org/docs/1.13/generated/torch.optim.lr_scheduler.MultiplicativeLR.html
-- @usage local s = lr_scheduler.MultiplicativeLR(opt, function(epoch) return 0.95 end)
local B = require "crater.optim.lr_scheduler.util"
local LRScheduler = require "crater.optim.lr_scheduler.base"
local LambdaLR = require "crater.optim.lr_scheduler.lambda_lr"

local MultiplicativeLR = LRScheduler:extend("MultiplicativeLR")

--- Builds a MultiplicativeLR: `MultiplicativeLR(opt, fn)`, `(opt, {fn1, fn2})` or
-- `(opt, {lr_lambda = fn})`.
-- @param optimizer the optimizer
-- @param lr_lambda a function of the epoch returning a factor, or a list of them (one per group)
-- @tparam[opt=-1] number last_epoch the index of the last epoch, to resume
function MultiplicativeLR:init(optimizer, lr_lambda, opts)
  B.optimizer("MultiplicativeLR", optimizer)
  self.lr_lambdas, opts = B.lambdas("MultiplicativeLR", optimizer, lr_lambda, opts)
  LRScheduler.init(self, optimizer, opts)
end

function MultiplicativeLR:get_lr()
  if self.last_epoch > 0 then
    local out = {}
    for i, g in ipairs(self.optimizer.param_groups) do
      out[i] = g.lr * B.call_lambda(self, i, self.last_epoch)
    end
    return out
  end
  return B.current(self)
end

MultiplicativeLR.state_dict = LambdaLR.state_dict
MultiplicativeLR.load_state_dict = LambdaLR.load_state_dict

return MultiplicativeLR
