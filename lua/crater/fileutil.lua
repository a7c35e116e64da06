--- crater.fileutil: what the foreign-file modules (crater.safetensors, crater.npy,
-- crater.npz) share: the tensor test, errors that name the function and the file, and
-- the atomic write under the caller's name.
local core = require "crater.core"
local internal = core.internal

local M = {}

M.is_tensor = core.is_tensor

--- Runs f(...) and returns its results; an error becomes "fn: path: message" (kept as it
-- is when it already starts with "fn: ") raised at the caller's caller.
function M.call(fn, path, f, ...)
  local res = table.pack(pcall(f, ...))
  if not res[1] then
    local msg = tostring(res[2])
    if msg:sub(1, #fn + 2) == fn .. ": " then error(msg, 3) end
    error(fn .. ": " .. path .. ": " .. msg, 3)
  end
  return table.unpack(res, 2, res.n)
end

--- Replaces path with the bytes s atomically (crater.save's writer); errors name fn.
function M.write(fn, path, s)
  local ok, err = pcall(internal.write_atomic, path, s)
  if not ok then error((tostring(err):gsub("^save: ", fn .. ": ")), 3) end
end

--- Raises "fn: path must be a string" unless path is one.
function M.check_path(fn, path)
  if type(path) ~= "string" then error(fn .. ": path must be a string, got " .. type(path), 3) end
  internal.check_path(path, fn)
end

--- The names to read: the list `names` (each a string that `have` holds, else an error
-- saying "no <what> named ..."), or every name of `all` when names is nil.
function M.pick(names, have, all, what)
  if names == nil then return all end
  for i, n in ipairs(names) do
    if type(n) ~= "string" then error(string.format("name %d of the list is a %s, not a string", i, type(n)), 0) end
    if have[n] == nil then error(string.format("no %s named %q", what, n), 0) end
  end
  return names
end

return M
