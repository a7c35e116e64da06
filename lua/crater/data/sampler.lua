--- crater.data.DistributedSampler: each rank's share of a data set, as PyTorch's
-- (https://pytorch.org/docs/1.13/data.html#torch.utils.data.distributed.DistributedSampler).
--
-- `DistributedSampler(dataset, {num_replicas=, rank=, shuffle=true, seed=0, drop_last=false})`
-- dataset: a tensor (its rows), a row count, or anything with a length.  num_replicas and
-- rank default to crater.distributed's world (a world of one before init).  Every rank
-- draws the same permutation of 1..N (a function of seed and epoch only), pads it by
-- repeating its start to a multiple of the world size (drop_last: cuts it down instead),
-- and rank r takes every num_replicas-th index from position r+1: the shards are
-- disjoint and, without drop_last, cover the data set.  Call `set_epoch(e)` before each
-- epoch for a new order, as in PyTorch.  `DataLoader(x, y, {sampler = s, batch_size=})`
-- iterates over this rank's rows.
local core = require "crater.core"
local crater = require "crater"

local Sampler = {}
Sampler.__index = Sampler
Sampler.__name = "DistributedSampler"

local function world()
  local ok, d = pcall(require, "crater.distributed")
  if ok and d.is_initialized() then return d.world_size(), d.rank() end
  return 1, 0
end

local function count_of(dataset)
  if type(dataset) == "number" then return dataset end
  if type(dataset) == "userdata" and type(dataset.dim) == "function" then
    if dataset:dim() == 0 then error("DistributedSampler: dataset must have at least one dimension", 3) end
    return dataset:size(1)
  end
  local ok, n = pcall(function() return #dataset end)
  if ok and math.type(n) == "integer" then return n end
  error("DistributedSampler: dataset must be a tensor, a row count or have a length, got " .. type(dataset), 3)
end

--- Makes a sampler; see the module's description for the options.
function Sampler.new(dataset, o)
  if o ~= nil and type(o) ~= "table" then error("DistributedSampler: options must be a table, got " .. type(o), 2) end
  o = o or {}
  local n = count_of(dataset)
  if math.type(n) ~= "integer" or n < 0 then error("DistributedSampler: the row count must be a non-negative integer, got " .. tostring(n), 2) end
  local w, r = world()
  w, r = o.num_replicas or w, o.rank or r
  if math.type(w) ~= "integer" or w < 1 then error("DistributedSampler: num_replicas must be a positive integer, got " .. tostring(w), 2) end
  if math.type(r) ~= "integer" or r < 0 or r >= w then
    error(string.format("DistributedSampler: rank must be an integer from 0 to %d, got %s", w - 1, tostring(r)), 2)
  end
  local seed = o.seed or 0
  if math.type(seed) ~= "integer" then error("DistributedSampler: seed must be an integer, got " .. tostring(seed), 2) end
  local drop_last = o.drop_last or false
  -- PyTorch's sizes: pad up to a multiple of w, or (drop_last) cut down to one
  local per = (drop_last and n % w ~= 0) and (n - w) // w + 1 or (n + w - 1) // w
  if drop_last and n < w then per = 0 end
  return setmetatable({n = n, num_replicas = w, rank = r, shuffle = o.shuffle ~= false, seed = seed,
    drop_last = drop_last, epoch = 0, num_samples = per, total_size = per * w}, Sampler)
end

--- Sets the epoch; the order of indices() is a function of (seed, epoch).
function Sampler:set_epoch(e)
  if math.type(e) ~= "integer" then error("set_epoch: the epoch must be an integer, got " .. tostring(e), 2) end
  self.epoch = e
end

--- The number of indices this rank gets per epoch.
function Sampler:__len() return self.num_samples end

--- This rank's indices for the current epoch: a 1-based int64 tensor of num_samples rows.
function Sampler:indices()
  local n, total = self.n, self.total_size
  if total == 0 then return crater.zeros(0, {dtype = "int64"}) end
  local all = self.shuffle and core.randperm(n, self.seed * 1000003 + self.epoch)
    or crater.arange(1, n + 1, 1, {dtype = "int64"})
  if total > n then                    -- pad with the start, repeated if need be
    local parts, have = {all}, n
    while have < total do
      local take = math.min(n, total - have)
      parts[#parts + 1] = all:narrow(1, 1, take)
      have = have + take
    end
    all = crater.cat(parts, 1)
  elseif total < n then
    all = all:narrow(1, 1, total)
  end
  return all:view(self.num_samples, self.num_replicas):select(2, self.rank + 1):contiguous()
end

return setmetatable(Sampler, { __call = function(_, ...) return Sampler.new(...) end })
