--- crater.nn: modules (layers, models), losses, crater.nn.functional and crater.nn.init.
-- @usage local nn = crater.nn
-- net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
-- loss = nn.CrossEntropyLoss()(net(x), y)
local nn = {}

nn.Module = require "crater.nn.module"
nn.functional = require "crater.nn.functional"
nn.init = require "crater.nn.init_"
for k, v in pairs(require "crater.nn.layers") do nn[k] = v end
for k, v in pairs(require "crater.nn.loss") do nn[k] = v end

-- crater.nn.utils (clip_grad_norm_, ...) and crater.nn.parallel (DistributedDataParallel)
-- live in their own files; load them on first use (__lazy: what the REPL completes
-- before it is loaded).
local lazy = { utils = "crater.nn.utils", parallel = "crater.nn.parallel" }
return setmetatable(nn, { __lazy = lazy, __index = function(t, k)
  if lazy[k] then
    local u = require(lazy[k])
    rawset(t, k, u)
    return u
  end
end })
