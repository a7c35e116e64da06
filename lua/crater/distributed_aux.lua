--- The Lua half of crater.distributed: rank-aware printing, checkpoints written by rank 0,
-- and Lua values over the collectives.  The C module (build/lib/crater/distributed.so)
-- calls this file with its function table when it is loaded; use the functions as
-- `crater.distributed.print(...)`, `crater.distributed.save(path, v)`, and so on.
local checkpoint = require "crater.checkpoint"

return function(dist)
  local function alone() return not dist.is_initialized() or dist.world_size() == 1 end

  --- print(...) on rank 0 only (everywhere before init).
  function dist.print(...)
    if not dist.is_initialized() or dist.rank() == 0 then print(...) end
  end

  --- print(...) on every rank, prefixed with "[rank r/n]".
  function dist.print_all(...)
    if not dist.is_initialized() then return print(...) end
    print(string.format("[rank %d/%d]", dist.rank(), dist.world_size()), ...)
  end

  -- Runs fn on the root only; every rank then raises the root's error, if it had one.
  local function on_root(fname, root, fn)
    local ok, err = true, nil
    if dist.rank() == root then ok, err = pcall(fn) end
    local msg = dist.broadcast_bytes(ok and "" or tostring(err), root)
    if msg ~= "" then error(msg:find("^" .. fname .. ":") and msg or (fname .. ": on rank " .. root .. ": " .. msg), 0) end
  end

  --- Collective: rank 0 writes value to path with crater.save (atomic: a temporary file
  -- renamed over path), then every rank returns, so every rank can read it afterwards.  An
  -- error on rank 0 is raised on every rank.
  function dist.save(path, value)
    if alone() then return checkpoint.save(path, value) end
    on_root("save", 0, function() checkpoint.save(path, value) end)
  end

  --- Collective: rank 0 reads path and broadcasts the bytes; every rank returns the value
  -- (so the file need only be on rank 0's disk).  An error on rank 0 is raised on all.
  function dist.load(path)
    if alone() then return checkpoint.load(path) end
    local value, bytes
    on_root("load", 0, function()     -- crater.load's own checks and messages
      value = checkpoint.load(path)
      bytes = checkpoint.dumps(value)
    end)
    bytes = dist.broadcast_bytes(bytes, 0)
    if dist.rank() == 0 then return value end
    return checkpoint.loads(bytes)
  end

  --- Collective: the list of every rank's value (tables of numbers, strings, booleans and
  -- tensors, as crater.save takes), rank r's at index r+1.
  function dist.all_gather_object(v)
    local all = dist.all_gather_bytes(checkpoint.dumps(v))
    for i, s in ipairs(all) do all[i] = checkpoint.loads(s) end
    return all
  end

  --- Collective: root's value on every rank.
  function dist.broadcast_object(v, root)
    root = root or 0
    return checkpoint.loads(dist.broadcast_bytes(dist.rank() == root and checkpoint.dumps(v) or nil, root))
  end

  return dist
end
