--- Pretty printing of Lua values for the REPL.
-- Nested tables are indented up to a depth limit, cycles are marked, tensors
-- inside tables are summarised as `[float32 2x3]`, values with `__tostring`
-- (tensors at top level, modules) print as their string, and ANSI colour is
-- used only when asked for.
local pretty = {}

local COLORS = { number = "\27[36m", string = "\27[32m", tensor = "\27[35m",
                 error = "\27[31m", dim = "\27[90m" }
local RESET = "\27[0m"

local MAX_ITEMS = 60      -- entries shown per table before "... (n more)"
local LINE = 72           -- a table that fits on this many columns stays on one line

--- Wraps `s` in the ANSI colour of `kind` when `color` is true.
-- @param s string
-- @param kind "number", "string", "tensor", "error" or "dim"
-- @param color boolean
function pretty.paint (s, kind, color)
  if not color or not COLORS[kind] then return s end
  return COLORS[kind] .. s .. RESET
end

--- Is `v` a crater tensor (a userdata whose metatable is named "crater.Tensor")?
pretty.is_tensor = require("crater.core").is_tensor

--- tostring(v), or `<tostring failed: msg>` if its __tostring raises.
function pretty.safe_tostring (v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  if ok then s = "'__tostring' must return a string" end
  return "<tostring failed: " .. tostring(s) .. ">"
end

--- A tensor's one-word summary, such as `[float32 2x3]`.
function pretty.tensor_summary (t)
  local ok, dtype, shape = pcall(function () return t:dtype(), t:shape() end)
  if not ok then return "[tensor: " .. tostring(dtype) .. "]" end
  local dims = #shape == 0 and "scalar" or table.concat(shape, "x")
  return "[" .. dtype .. " " .. dims .. "]"
end

local function quote (s)
  return (string.format("%q", s):gsub("\\\n", "\\n"):gsub("\r", "\\r"))
end

local function is_identifier (k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local function has_tostring (v)
  local mt = debug.getmetatable(v)
  return mt ~= nil and mt.__tostring ~= nil
end

-- Sorts keys: the array part 1..n first, then numbers, then strings, then the rest.
local function sorted_keys (t)
  local n, keys = #t, {}
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  local rank = { number = 1, string = 2 }
  table.sort(keys, function (a, b)
    local ra, rb = rank[type(a)] or 3, rank[type(b)] or 3
    if ra ~= rb then return ra < rb end
    if ra < 3 then return a < b end
    return tostring(a) < tostring(b)
  end)
  return n, keys
end

local format

local function format_table (t, opts, depth, ancestors)
  if ancestors[t] then return pretty.paint("<cycle>", "dim", opts.color) end
  if depth >= opts.depth then return pretty.paint("{...}", "dim", opts.color) end
  ancestors[t] = true
  local n, keys = sorted_keys(t)
  local items, shown = {}, 0
  local total = n + #keys
  for i = 1, n do
    if shown == MAX_ITEMS then break end
    items[#items + 1] = format(t[i], opts, depth + 1, ancestors)
    shown = shown + 1
  end
  for _, k in ipairs(keys) do
    if shown == MAX_ITEMS then break end
    local key = is_identifier(k) and k
      or "[" .. (type(k) == "string" and quote(k) or format(k, opts, depth + 1, ancestors)) .. "]"
    items[#items + 1] = key .. " = " .. format(t[k], opts, depth + 1, ancestors)
    shown = shown + 1
  end
  ancestors[t] = nil
  if total > shown then
    items[#items + 1] = pretty.paint("... (" .. (total - shown) .. " more)", "dim", opts.color)
  end
  if #items == 0 then return "{}" end
  local flat = "{" .. table.concat(items, ", ") .. "}"
  local visible = flat:gsub("\27%[[%d;]*m", "")
  if #visible <= LINE and not flat:find("\n") then return flat end
  local pad = string.rep("  ", depth + 1)
  local lines, short = {}, not flat:find("\n")
  for _, it in ipairs(items) do short = short and #it <= 24 end
  if short then       -- short items (numbers, summaries): fill lines, as pprint's compact mode
    local cur = ""
    for i, it in ipairs(items) do
      it = it .. (i < #items and "," or "")
      local w = #cur:gsub("\27%[[%d;]*m", "") + #it:gsub("\27%[[%d;]*m", "")
      if cur ~= "" and #pad + w + 1 > LINE + 16 then lines[#lines + 1] = cur; cur = it
      else cur = cur == "" and it or cur .. " " .. it end
    end
    lines[#lines + 1] = cur
    return "{\n" .. pad .. table.concat(lines, "\n" .. pad) .. "\n" .. string.rep("  ", depth) .. "}"
  end
  return "{\n" .. pad .. table.concat(items, ",\n" .. pad) .. "\n" .. string.rep("  ", depth) .. "}"
end

format = function (v, opts, depth, ancestors)
  local tv = type(v)
  if tv == "number" then return pretty.paint(tostring(v), "number", opts.color) end
  if tv == "string" then return pretty.paint(quote(v), "string", opts.color) end
  if pretty.is_tensor(v) then
    if depth == 0 then return pretty.paint(pretty.safe_tostring(v), "tensor", opts.color) end
    return pretty.paint(pretty.tensor_summary(v), "tensor", opts.color)
  end
  if tv == "table" and not has_tostring(v) then return format_table(v, opts, depth, ancestors) end
  local s = pretty.safe_tostring(v)
  if s:match("^<tostring failed") then return pretty.paint(s, "error", opts.color) end
  if depth > 0 and s:find("\n") then   -- a module's tree inside a table: indent it
    s = s:gsub("\n", "\n" .. string.rep("  ", depth))
  end
  return s
end

--- Formats a value for the REPL.
-- @param v any value
-- @tparam[opt] table opts
-- @tparam[opt=false] boolean opts.color use ANSI colours
-- @tparam[opt=3] integer opts.depth nesting shown before `{...}`
-- @return string
-- @usage print(pretty.format({1, {a = "x"}}))   --> {1, {a = "x"}}
function pretty.format (v, opts)
  opts = opts or {}
  return format(v, { color = opts.color or false, depth = opts.depth or 3 }, 0, {})
end

--- A tensor's shape as error messages write it: `{2,3}`.
function pretty.shape_str(t) return "{" .. table.concat(t:shape(), ",") .. "}" end

return pretty
