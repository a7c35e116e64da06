--- crater.nn.parallel: DistributedDataParallel, data-parallel training over
-- crater.distributed (MPI), with PyTorch's semantics
-- (https://pytorch.org/docs/1.13/generated/torch.nn.parallel.DistributedDataParallel.html).
--
-- `ddp = DistributedDataParallel(model, {bucket_mb = 25, broadcast_buffers = true})`
-- - at construction, checks that every rank's model has the same parameters and buffers
--   (names, dtypes, shapes), then broadcasts rank 0's values to all;
-- - `ddp(x)` is `model(x)` (buffers such as BatchNorm's running statistics are broadcast
--   from rank 0 first, as PyTorch does); `ddp.module` is the model, and the parameters,
--   `state_dict` ("module." prefixed) and `train`/`eval` pass through;
-- - after `loss:backward()`, every parameter's gradient is the mean over the ranks. The
--   gradients are packed into flat buckets of at most bucket_mb MB (parameters in
--   reverse order, one dtype per bucket) and each bucket is one all_reduce.
--
-- What is built: the reduction runs once backward has accumulated every gradient (a
-- gradient hook queues it with crater.autograd.queue_callback), bucket by bucket. It does
-- not overlap with backward: crater's engine runs the leaves' hooks only once it has
-- walked the whole graph (it commits every .grad at the end), and the MPI calls block.
-- PyTorch overlaps the two; README.md says when that would pay.
-- A parameter that got no gradient on a rank counts as zeros there.
local crater = require "crater"
local Module = require "crater.nn.module"

local M = {}

local DDP = Module:extend("DistributedDataParallel")
M.DistributedDataParallel = DDP

local function dist() return require "crater.distributed" end

-- Rank 0's value of t on every rank (a non-contiguous t goes through a copy).
local function broadcast_into(t)
  if t:is_contiguous() then return dist().broadcast(t, 0) end
  local c = t:contiguous()
  dist().broadcast(c, 0)
  return t:copy_(c)
end

-- One line per parameter and buffer: what must agree across the ranks.
local function signature(model)
  local lines = {}
  for _, kind in ipairs({"parameter", "buffer"}) do
    local map, names = (kind == "parameter" and model.named_parameters or model.named_buffers)(model)
    for _, n in ipairs(names) do
      local t = map[n]
      lines[#lines + 1] = string.format("%s %s %s {%s}", kind, n, t:dtype(), table.concat(t:shape(), ","))
    end
  end
  return lines
end

-- Raises on every rank when the models differ, naming the first difference.
local function check_same(model)
  local mine = signature(model)
  local all = dist().all_gather_bytes(table.concat(mine, "\n"))
  local ref = {}
  for l in (all[1] .. "\n"):gmatch("(.-)\n") do ref[#ref + 1] = l end
  for r = 2, #all do
    if all[r] ~= all[1] then
      local other = {}
      for l in (all[r] .. "\n"):gmatch("(.-)\n") do other[#other + 1] = l end
      local i = 1
      while ref[i] == other[i] do i = i + 1 end
      error(string.format("DistributedDataParallel: the models differ across ranks: rank 0 has %s, rank %d has %s",
        ref[i] or "nothing more", r - 1, other[i] or "nothing more"), 0)
    end
  end
end

--- Wraps model for data-parallel training; call crater.distributed.init() first.
-- @tparam Module model the model (every rank builds one of the same shape)
-- @tparam[opt=25] number bucket_mb the largest gradient bucket, in MB
-- @tparam[opt=true] boolean broadcast_buffers broadcast rank 0's buffers before each forward
function DDP:__init(model, o)
  if type(model) ~= "table" or type(model.named_parameters) ~= "function" then
    error("DistributedDataParallel: model must be a crater.nn.Module, got " .. type(model), 3)
  end
  if o ~= nil and type(o) ~= "table" then error("DistributedDataParallel: options must be a table, got " .. type(o), 3) end
  o = o or {}
  local mb = o.bucket_mb or 25
  if type(mb) ~= "number" or mb ~= mb or mb <= 0 then
    error("DistributedDataParallel: bucket_mb must be a positive number, got " .. tostring(mb), 3)
  end
  local ok, inited = pcall(function() return dist().is_initialized() end)
  if not ok then error("DistributedDataParallel: crater.distributed is not available: " .. tostring(inited), 3) end
  if not inited then error("DistributedDataParallel: call crater.distributed.init() first", 3) end
  self:add_module("module", model)
  self.require_sync = true
  self.broadcast_buffers = o.broadcast_buffers ~= false
  self.bucket_mb = mb
  check_same(model)
  crater.no_grad(function()
    for _, p in ipairs(model:parameters()) do broadcast_into(p) end
    local map, names = model:named_buffers()
    for _, n in ipairs(names) do broadcast_into(map[n]) end
  end)
  self:_make_buckets()
end

-- Buckets: parameters that require grad, each once, in reverse order (roughly the order
-- backward produces their gradients), cut at bucket_mb or where the dtype changes.  Each
-- bucket is one flat tensor; a parameter's slot is a view of it in the parameter's shape.
function DDP:_make_buckets()
  local seen, params = {}, {}
  for _, p in ipairs(self.module:parameters()) do
    if p.requires_grad and not seen[p] then seen[p] = true; params[#params + 1] = p end
  end
  local cap = self.bucket_mb * 1024 * 1024
  local buckets, cur = {}, nil
  for i = #params, 1, -1 do
    local p = params[i]
    local bytes = p:numel() * (p:dtype() == "float32" and 4 or 8)
    if cur == nil or cur.dtype ~= p:dtype() or (cur.bytes > 0 and cur.bytes + bytes > cap) then
      cur = {dtype = p:dtype(), bytes = 0, numel = 0, params = {}}
      buckets[#buckets + 1] = cur
    end
    cur.params[#cur.params + 1] = {p = p, offset = cur.numel}
    cur.numel, cur.bytes = cur.numel + p:numel(), cur.bytes + bytes
  end
  for _, b in ipairs(buckets) do
    b.flat = crater.zeros(b.numel, {dtype = b.dtype})
    for _, e in ipairs(b.params) do
      e.slot = b.flat:narrow(1, e.offset + 1, e.p:numel())
      e.view = e.slot:view(e.p:shape())
    end
  end
  self._buckets = buckets
  for _, p in ipairs(params) do
    p:register_hook(function()
      -- the first gradient of a synced backward queues the reduction for its end
      -- (crater.grad fills no .grad: nothing to reduce)
      if self._sync_forward and not self._queued and crater.autograd.backward_running() then
        self._queued = true
        crater.autograd.queue_callback(function() self:_reduce() end)
      end
    end)
  end
end

-- Every bucket: pack the gradients, one all_reduce (mean), unpack.
function DDP:_reduce()
  self._queued = false
  local all_reduce = dist().all_reduce
  crater.no_grad(function()
    for _, b in ipairs(self._buckets) do
      for _, e in ipairs(b.params) do
        local g = e.p.grad
        if g then e.slot:copy_(g:reshape(-1)) else e.slot:zero_() end
      end
      all_reduce(b.flat, {op = "mean"})
      for _, e in ipairs(b.params) do
        local g = e.p.grad
        if g then g:copy_(e.view) else e.p.grad = e.view:clone() end
      end
    end
  end)
end

--- The model's output; with broadcast_buffers, rank 0's buffers are copied in first.
function DDP:forward(...)
  self._sync_forward = self.require_sync
  self._queued = false
  if self.broadcast_buffers then
    local map, names = self.module:named_buffers()
    if #names > 0 then
      crater.no_grad(function() for _, n in ipairs(names) do broadcast_into(map[n]) end end)
    end
  end
  return self.module(...)
end

--- Runs fn(...) with gradient reduction off: the backward of a forward made inside
-- accumulates gradients locally (PyTorch's `with ddp.no_sync():`); returns fn's results.
function DDP:no_sync(fn, ...)
  if type(fn) ~= "function" then error("no_sync: expects a function, got " .. type(fn), 2) end
  local prev = self.require_sync
  self.require_sync = false
  local res = table.pack(pcall(fn, ...))
  self.require_sync = prev
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- The number of gradient buckets and their sizes in elements (for inspection).
function DDP:bucket_sizes()
  local s = {}
  for i, b in ipairs(self._buckets) do s[i] = b.numel end
  return s
end

function DDP:extra_repr() return string.format("bucket_mb=%g", self.bucket_mb) end

return M
