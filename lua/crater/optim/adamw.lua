--- AdamW: Adam with decoupled weight decay (PyTorch's torch.optim.AdamW).
-- Update at step t: p = p * (1 - lr * weight_decay), then Adam's update without the L2
-- term (see adam.lua): the decay does not pass through the adaptive denominator
-- (Loshchilov & Hutter). PyTorch scales the decay by lr, as here; the paper uses a
-- separate schedule multiplier. State: as Adam.
-- https://pytorch.org/docs/1.13/generated/torch.optim.AdamW.html
-- @tparam[opt=1e-3] number lr learning rate
-- @tparam[opt={0.9, 0.999}] table betas coefficients of the running averages of g and g^2
-- @tparam[opt=1e-8] number eps term added to the denominator
-- @tparam[opt=1e-2] number weight_decay decoupled weight decay
-- @tparam[opt=false] boolean amsgrad use the maximum of past v (AMSGrad)
-- @tparam[opt=false] boolean maximize maximize the objective instead
-- @usage local opt = crater.optim.AdamW(model:parameters(), {lr = 1e-3, weight_decay = 0.05})
local Adam = require "crater.optim.adam"

local AdamW = Adam:extend("AdamW", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8,
  weight_decay = 1e-2, amsgrad = false, maximize = false})
AdamW.decoupled = true

return AdamW
