--- Merges the busted JSON reports of every rank of one mpirun world (rank<r>.json in the
-- folder given) into one busted summary line, as `make test` prints it: a spec passed when
-- it passed on every rank, failed when it failed on any.  A rank that wrote no report (it
-- crashed, or mpirun's timeout ended the world) is an error.  Exits non-zero on anything
-- but success, or when mpirun's exit status (third argument) was not 0.
-- usage: lua5.4 spec/distributed/merge.lua DIR NP MPIRUN_STATUS
local json = require "dkjson"
local dir, np, rc = arg[1], tonumber(arg[2]), tonumber(arg[3]) or 0

local order, status, detail = {}, {}, {}
local worse = {success = 1, pending = 2, failure = 3, error = 4}
local counts = {success = 0, failure = 0, error = 0, pending = 0}
local extra_errors, duration = 0, 0

local function note(kind, e, rank)
  local name = e.name or (e.element and e.element.name) or "?"
  if status[name] == nil then order[#order + 1] = name end
  if status[name] == nil or worse[kind] > worse[status[name]] then
    status[name] = kind
    if kind == "failure" or kind == "error" then
      detail[name] = string.format("rank %d: %s\n%s", rank, tostring(e.message),
        e.trace and e.trace.traceback or "")
    end
  end
end

for r = 0, np - 1 do
  local f = io.open(string.format("%s/rank%d.json", dir, r))
  local text = f and f:read("a") or ""
  if f then f:close() end
  local rep = json.decode(text:match("(%b{})%s*$") or "")
  if type(rep) ~= "table" then
    extra_errors = extra_errors + 1
    print(string.format("rank %d wrote no report (it crashed or hung); its output:\n%s", r, text))
  else
    duration = math.max(duration, rep.duration or 0)
    for _, k in ipairs({"successes", "pendings", "failures", "errors"}) do
      local kind = ({successes = "success", pendings = "pending", failures = "failure", errors = "error"})[k]
      for _, e in ipairs(rep[k] or {}) do note(kind, e, r) end
    end
  end
end

for _, name in ipairs(order) do
  counts[status[name]] = counts[status[name]] + 1
  if detail[name] then print(string.format("%s: %s\n%s\n", status[name]:upper(), name, detail[name])) end
end
counts.error = counts.error + extra_errors
if rc ~= 0 and counts.failure + counts.error == 0 then
  print(string.format("mpirun exited with status %d", rc))
  counts.error = counts.error + 1
end
print(string.format("%d success%s / %d failure%s / %d error%s / %d pending : %.2f seconds (%d ranks)",
  counts.success, counts.success == 1 and "" or "es", counts.failure, counts.failure == 1 and "" or "s",
  counts.error, counts.error == 1 and "" or "s", counts.pending, duration, np))
os.exit((counts.failure + counts.error + counts.pending == 0 and rc == 0) and 0 or 1)
