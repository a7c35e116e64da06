--- crater.lab.spread: the lab's trials (race contestants, train-race contestants, and so
-- the settings of a sweep) spread over the ranks of an mpirun job.
-- `map(n, fn, o)` returns `{fn(1), ..., fn(n)}`.  Alone, or with `o.distributed == false`,
-- it is a plain loop.  Under mpirun (crater.distributed initialized, more than one rank)
-- it is a dynamic work queue: a rank takes the next trial index when it finishes one
-- (crater.distributed.work_queue, a counter on rank 0), so a slow trial holds up only its
-- own rank; then the results go to every rank, and every rank returns the same list.
-- Results travel in crater's checkpoint format: numbers, strings, booleans, tensors and
-- tables of them (anything else, such as a function, is left out; the caller puts its own
-- back).  A trial that raises makes every rank raise the error of the lowest such index,
-- after all trials ran.
local M = {}

local function world(o)
  if o and o.distributed == false then return nil end
  local d = package.loaded["crater.distributed"]
  if d and d.is_initialized() and d.world_size() > 1 then return d end
end

local function is_tensor(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__name == "crater.Tensor"
end

-- A copy of v with only what a checkpoint holds.
local function plain(v, seen)
  local t = type(v)
  if t == "number" or t == "string" or t == "boolean" then return v end
  if is_tensor(v) then return v end
  if t ~= "table" or seen[v] then return nil end
  seen[v] = true
  local out = {}
  for k, x in pairs(v) do
    local tk = type(k)
    if tk == "number" or tk == "string" or tk == "boolean" then out[k] = plain(x, seen) end
  end
  seen[v] = nil
  return out
end

--- When this process was started by mpirun (or another MPI launcher) with more than one
-- rank: crater.distributed, initialized.  Else nil.  The command line (`mpirun -np 4
-- crater sweep ...`) calls it, so the same command runs alone or spread.
function M.launched()
  local size = tonumber(os.getenv("OMPI_COMM_WORLD_SIZE") or os.getenv("PMI_SIZE") or os.getenv("PMIX_SIZE") or "")
  if size == nil or size < 2 then return nil end
  local ok, d = pcall(require, "crater.distributed")
  if not ok then error("started by mpirun, but crater.distributed is not built (no MPI): " .. tostring(d), 0) end
  d.init()
  return d
end

--- The results of fn(1..n), computed over the ranks; also the list of the rank that ran
-- each trial (all 0 when alone).
function M.map(n, fn, o)
  local d = world(o)
  local out, ranks = {}, {}
  if not d then
    for i = 1, n do out[i], ranks[i] = fn(i), 0 end
    return out, ranks
  end
  local q = d.work_queue(n)
  local mine = {}
  for i in q.next, q do
    local ok, r = pcall(fn, i)
    mine[#mine + 1] = ok and {i = i, value = plain(r, {})} or {i = i, err = tostring(r)}
  end
  q:close()
  local first_err
  for r, list in ipairs(d.all_gather_object(mine)) do
    for _, e in ipairs(list) do
      out[e.i], ranks[e.i] = e.value, r - 1
      if e.err and (first_err == nil or e.i < first_err.i) then first_err = e end
    end
  end
  if first_err then error(first_err.err, 0) end
  assert(#ranks == n, "spread: a trial went missing")
  return out, ranks
end

return M
