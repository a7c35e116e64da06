--- crater.data.DataLoader: mini-batches of tensors.
-- `DataLoader(x, y, {batch_size=1, shuffle=false, seed=nil, drop_last=false, sampler=nil})`; iterate
-- with `for xb, yb in loader:iter() do ... end`.  Batches are rows of x and y gathered
-- in C (index_select), or narrow views when not shuffling.  With shuffle, epoch e's order
-- is a function of (seed, e), so a resumed run that sets the epoch sees the same batches.
local core = require "crater.core"
local crater = require "crater"

local DataLoader = {}
DataLoader.__index = DataLoader
DataLoader.__name = "DataLoader"

--- Makes a loader over the rows of x (and y, which may be nil).
-- @tparam[opt=1] number batch_size rows per batch
-- @tparam[opt=false] boolean shuffle a new random order every epoch
-- @tparam[opt=nil] number seed shuffling seed (default: drawn from crater's generator once)
-- @tparam[opt=false] boolean drop_last skip a last batch smaller than batch_size
-- @tparam[opt=nil] DistributedSampler sampler take the rows (and their order) from
--   sampler:indices() each epoch: this rank's shard (call sampler:set_epoch(e))
-- @usage loader = crater.data.DataLoader(x, y, {batch_size = 128, shuffle = true, seed = 1})
-- for xb, yb in loader:iter() do ... end
function DataLoader.new(x, y, o)
  if getmetatable(x) == nil or type(x.dim) ~= "function" then
    error("DataLoader: x must be a tensor, got " .. type(x), 2)
  end
  if o == nil and type(y) == "table" and getmetatable(y) == nil then y, o = nil, y end
  if o ~= nil and type(o) ~= "table" then error("DataLoader: options must be a table, got " .. type(o), 2) end
  o = o or {}
  local bs = o.batch_size or 1
  if math.type(bs) ~= "integer" or bs <= 0 then
    error("DataLoader: batch_size must be a positive integer, got " .. tostring(bs), 2)
  end
  if x:dim() == 0 then error("DataLoader: x must have at least one dimension", 2) end
  if y ~= nil and (y:dim() == 0 or y:size(1) ~= x:size(1)) then
    error(string.format("DataLoader: x has %d rows but y has shape {%s}", x:size(1),
      table.concat(y:shape(), ",")), 2)
  end
  local sampler = o.sampler
  if sampler ~= nil then
    if type(sampler) ~= "table" or type(sampler.indices) ~= "function" then
      error("DataLoader: sampler must be a crater.data.DistributedSampler (or have indices()), got " .. type(sampler), 2)
    end
    if o.shuffle then error("DataLoader: sampler and shuffle are mutually exclusive (the sampler shuffles)", 2) end
    if sampler.n ~= nil and sampler.n ~= x:size(1) then
      error(string.format("DataLoader: the sampler is over %d rows but x has %d", sampler.n, x:size(1)), 2)
    end
  end
  local seed = o.seed
  if o.shuffle and seed == nil then seed = crater.randint(0, 1 << 31, { 1 }):get(1) end
  return setmetatable({ x = x, y = y, batch_size = bs, shuffle = o.shuffle or false,
                        drop_last = o.drop_last or false, seed = seed, epoch = 0,
                        n = x:size(1), sampler = sampler }, DataLoader)
end

--- The number of batches per epoch.
function DataLoader:__len()
  local n = self.sampler and #self.sampler or self.n
  if self.drop_last then return n // self.batch_size end
  return (n + self.batch_size - 1) // self.batch_size
end

--- Sets the epoch counter (the next iter() uses epoch e + 1's order); for resuming.
function DataLoader:set_epoch(e) self.epoch = e end

--- Returns an iterator over this epoch's batches: `for xb, yb in loader:iter() do`.
function DataLoader:iter()
  self.epoch = self.epoch + 1
  local perm = self.shuffle and core.randperm(self.n, self.seed * 1000003 + self.epoch) or nil
  if self.sampler then perm = self.sampler:indices() end   -- this rank's rows, in the sampler's order
  local x, y, bs, n = self.x, self.y, self.batch_size, perm and perm:size(1) or self.n
  local nb, i = #self, 0
  return function()
    i = i + 1
    if i > nb then return nil end
    local start = (i - 1) * bs + 1
    local len = math.min(bs, n - start + 1)
    if perm == nil then
      return x:narrow(1, start, len), y and y:narrow(1, start, len)
    end
    local idx = perm:narrow(1, start, len)
    return x:index_select(1, idx), y and y:index_select(1, idx)
  end
end

return setmetatable(DataLoader, { __call = function(_, ...) return DataLoader.new(...) end })
