--- crater.optim.rules: the one check of optimizer and scheduler options.
-- A class declares a table of rules, option name -> rule, and `check` raises
-- "<Class>: <option> must be ..., got <value>" for a value that breaks its rule:
--   {"number", lo, hi, open = "lo"|"hi"|"both", inf = true}  a number in [lo, hi] (a nil
--       bound is none; open excludes that end), finite unless `inf`
--   {"integer", lo, hi}    an integer (an integral float will do) in [lo, hi], finite
--   {"boolean"}            true or false
--   {"function"}           a Lua function
--   {"choice", v1, v2...}  one of the values
--   {"list", r1, r2...}    a list of exactly as many entries, entry i checked by ri
--   {"per_group", r}       a list with one entry per param group, each checked by r
--   {"list_of", r}         a list of any length, each entry checked by r
-- `what` names the check as PyTorch does ("learning rate"); `false_ok` admits false and
-- `nil_ok` admits nil.
local M = {}

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end
M.finite = finite

--- A short printable form of a value for messages.
local function show(v)
  local mt = getmetatable(v)
  if type(v) == "userdata" and type(mt) == "table" and mt.__name == "crater.Tensor" then
    return string.format("a %s tensor of %d elements", v:dtype(), v:numel())
  elseif type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = show(x) end
    return "{" .. table.concat(parts, ", ") .. "}"
  elseif type(v) == "string" then
    return string.format("%q", v)
  elseif v ~= v then
    return "nan"
  end
  return tostring(v)
end
M.show = show

local function range_text(kind, lo, hi, open)
  local what = kind == "integer" and "an integer" or "a number"
  if kind == "integer" and lo == 1 and hi == nil then return "a positive integer" end
  local olo, ohi = open == "lo" or open == "both", open == "hi" or open == "both"
  if lo ~= nil and hi ~= nil then
    return string.format("in %s%s, %s%s", olo and "(" or "[", lo, hi, ohi and ")" or "]")
  elseif lo ~= nil then return string.format("%s %s %s", what, olo and ">" or ">=", lo)
  elseif hi ~= nil then return string.format("%s %s %s", what, ohi and "<" or "<=", hi) end
  return what
end

-- true when t is a plain list of exactly n entries and nothing else
local function exact_list(t, n)
  if type(t) ~= "table" or getmetatable(t) ~= nil then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  if count ~= n then return false end
  for i = 1, n do if t[i] == nil then return false end end
  return true
end

--- Raises "<who>: <label> must be ..., got <v>" unless v satisfies `rule`; `groups` is
-- the number of param groups (for "per_group").
function M.check(who, label, v, rule, groups)
  local kind = rule[1]
  if (v == false and rule.false_ok) or (v == nil and rule.nil_ok) then return end
  local function bad(must)
    error(string.format("%s: %s must be %s, got %s%s", who, label, must, show(v),
      rule.what and " (invalid " .. rule.what .. ")" or ""), 0)
  end
  if kind == "number" or kind == "integer" then
    local lo, hi, open = rule[2], rule[3], rule.open
    local ok = type(v) == "number" and v == v and (kind == "number" or v == math.floor(v))
      and (lo == nil or v > lo or (v == lo and open ~= "lo" and open ~= "both"))
      and (hi == nil or v < hi or (v == hi and open ~= "hi" and open ~= "both"))
    if not ok then bad(range_text(kind, lo, hi, open)) end
    if not rule.inf and not finite(v) then bad("finite") end
  elseif kind == "boolean" then
    if type(v) ~= "boolean" then bad("a boolean") end
  elseif kind == "function" then
    if type(v) ~= "function" then bad("a function") end
  elseif kind == "choice" then
    for i = 2, #rule do if v == rule[i] then return end end
    local names = {}
    for i = 2, #rule do names[i - 1] = show(rule[i]) end
    bad("one of " .. table.concat(names, ", "))
  elseif kind == "list" then
    if not exact_list(v, #rule - 1) then bad(string.format("a list of %d numbers", #rule - 1)) end
    for i = 2, #rule do M.check(who, string.format("%s[%d]", label, i - 1), v[i - 1], rule[i], groups) end
  elseif kind == "list_of" then
    local n = type(v) == "table" and #v or -1
    if not exact_list(v, n) then bad("a list") end
    for i = 1, n do M.check(who, string.format("%s[%d]", label, i), v[i], rule[2], groups) end
  elseif kind == "per_group" then
    if not exact_list(v, groups) then bad(string.format("a list of %d values, one per param group", groups)) end
    for i = 1, groups do M.check(who, string.format("%s[%d]", label, i), v[i], rule[2], groups) end
  else
    error("rules: unknown rule kind " .. show(kind), 2)
  end
end

--- Checks obj[k] against rules[k] for every rule, in name order (the same message every run).
function M.check_all(who, obj, rules, groups)
  local keys = {}
  for k in pairs(rules) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do M.check(who, k, obj[k], rules[k], groups) end
end

return M
