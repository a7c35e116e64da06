--- The check of a list argument for the Lua modules: the binding's own (ct_lua_list), so
-- a list read here and one read in C are refused alike.  Returns #t, or raises
-- "fn: what has a hole: element 2 is nil ..." (also a negative, huge or non-integer
-- __len, or no table) at `level` (default 2: the caller of the function that asks; 0:
-- no position, for messages that a pcall re-raises).
local check = require("crater.core").internal.check_list

return function(t, fn, what, max, level)
  local ok, n = pcall(check, t, fn, what, max)
  if not ok then error(n, level == 0 and 0 or (level or 2) + 1) end
  return n
end
