--- crater.json: a strict JSON (RFC 8259) reader and a string writer, for the headers of
-- foreign files (safetensors).  Made for untrusted input: nesting is capped, a duplicate
-- object key is an error, every error gives the byte offset and what was expected, and
-- the work is linear in the input (strings are gathered in pieces, never by repeated
-- concatenation).  Objects become Lua tables; `null` becomes `json.null`; integers
-- without a fraction or exponent that fit in 64 bits stay Lua integers.
local M = {}

--- The value a JSON `null` decodes to.
M.null = setmetatable({}, { __tostring = function() return "null" end })

-- Decoded arrays and objects carry these metatables, so `[]` and `{}` stay apart.
local ARRAY, OBJECT = { __name = "json array" }, { __name = "json object" }
--- Whether v was decoded from a JSON array.
function M.is_array(v) return getmetatable(v) == ARRAY end
--- Whether v was decoded from a JSON object.
function M.is_object(v) return getmetatable(v) == OBJECT end

local MAX_DEPTH = 64

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function fail(s, pos, what)
  local near = pos <= #s and string.format("%q", s:sub(pos, pos + 9)):gsub("\\\n", "\\n") or "the end"
  error(string.format("invalid JSON at byte %d (%s, near %s)", pos - 1, what, near), 0)
end

local function skip_ws(s, pos)
  return (s:find("[^ \t\r\n]", pos)) or #s + 1
end

local function parse_string(s, pos)
  -- pos is just after the opening quote
  local parts, n = {}, 0
  while true do
    local i = s:find('["\\%c]', pos)
    if i == nil then fail(s, #s + 1, "unterminated string") end
    if i > pos then n = n + 1; parts[n] = s:sub(pos, i - 1) end
    local c = s:sub(i, i)
    if c == '"' then return table.concat(parts), i + 1 end
    if c ~= "\\" then fail(s, i, "control character in a string") end
    local e = s:sub(i + 1, i + 1)
    if ESCAPES[e] then
      n = n + 1; parts[n] = ESCAPES[e]; pos = i + 2
    elseif e == "u" then
      local hex = s:match("^%x%x%x%x", i + 2)
      if hex == nil then fail(s, i, "bad \\u escape") end
      local cp = tonumber(hex, 16)
      pos = i + 6
      if cp >= 0xD800 and cp <= 0xDBFF then   -- a high surrogate needs its low half
        local lo = s:match("^\\u(%x%x%x%x)", pos)
        local lcp = lo and tonumber(lo, 16)
        if lcp == nil or lcp < 0xDC00 or lcp > 0xDFFF then fail(s, i, "unpaired surrogate in \\u escape") end
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lcp - 0xDC00)
        pos = pos + 6
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        fail(s, i, "unpaired surrogate in \\u escape")
      end
      n = n + 1; parts[n] = utf8.char(cp)
    else
      fail(s, i, "bad escape")
    end
  end
end

local parse_value

local function parse_number(s, pos)
  local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  -- the strict grammar: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [-+]? [0-9]+)?
  local int, frac, exp = (num or ""):match("^(-?%d+)(%.?%d*)(.*)$")
  if int == nil or int:match("^-?0%d") or frac == "." or (exp ~= "" and not exp:match("^[eE][-+]?%d+$")) then
    fail(s, pos, "bad number")
  end
  local v
  if frac == "" and exp == "" then v = math.tointeger(tonumber(int)) end   -- nil past 64 bits
  if v == nil then v = tonumber(num) end
  if v == nil or v ~= v or v == math.huge or v == -math.huge then fail(s, pos, "number out of range") end
  return v, pos + #num
end

local function parse_object(s, pos, depth)
  local obj, seen = setmetatable({}, OBJECT), {}
  pos = skip_ws(s, pos)
  if s:sub(pos, pos) == "}" then return obj, pos + 1 end
  while true do
    if s:sub(pos, pos) ~= '"' then fail(s, pos, "expected a string key") end
    local key
    key, pos = parse_string(s, pos + 1)
    if seen[key] then fail(s, pos, string.format("duplicate key %q", key)) end
    seen[key] = true
    pos = skip_ws(s, pos)
    if s:sub(pos, pos) ~= ":" then fail(s, pos, "expected ':'") end
    obj[key], pos = parse_value(s, skip_ws(s, pos + 1), depth)
    pos = skip_ws(s, pos)
    local c = s:sub(pos, pos)
    if c == "}" then return obj, pos + 1 end
    if c ~= "," then fail(s, pos, "expected ',' or '}'") end
    pos = skip_ws(s, pos + 1)
  end
end

local function parse_array(s, pos, depth)
  local arr, n = setmetatable({}, ARRAY), 0
  pos = skip_ws(s, pos)
  if s:sub(pos, pos) == "]" then return arr, pos + 1 end
  while true do
    n = n + 1
    arr[n], pos = parse_value(s, pos, depth)
    pos = skip_ws(s, pos)
    local c = s:sub(pos, pos)
    if c == "]" then return arr, pos + 1 end
    if c ~= "," then fail(s, pos, "expected ',' or ']'") end
    pos = skip_ws(s, pos + 1)
  end
end

parse_value = function(s, pos, depth)
  local c = s:sub(pos, pos)
  if c == "{" or c == "[" then
    if depth >= MAX_DEPTH then fail(s, pos, "nested more than " .. MAX_DEPTH .. " levels deep") end
    return (c == "{" and parse_object or parse_array)(s, pos + 1, depth + 1)
  elseif c == '"' then
    return parse_string(s, pos + 1)
  elseif c == "-" or c:match("%d") then
    return parse_number(s, pos)
  elseif s:sub(pos, pos + 3) == "true" then return true, pos + 4
  elseif s:sub(pos, pos + 4) == "false" then return false, pos + 5
  elseif s:sub(pos, pos + 3) == "null" then return M.null, pos + 4
  end
  fail(s, pos, pos > #s and "unexpected end" or "expected a value")
end

--- Decodes the JSON text s (one value, surrounded by nothing but whitespace).  Raises
-- "invalid JSON at byte N (...)" on anything else, including invalid UTF-8.
-- @return the value
function M.decode(s)
  local bad = select(2, utf8.len(s))
  if bad then error(string.format("invalid JSON at byte %d (not UTF-8)", bad - 1), 0) end
  local v, pos = parse_value(s, skip_ws(s, 1), 0)
  pos = skip_ws(s, pos)
  if pos <= #s then fail(s, pos, "text after the value") end
  return v
end

--- s as a JSON string literal (quotes included); s must be UTF-8.
function M.quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local e = ({ ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" })[c]
    return e or string.format("\\u%04x", c:byte())
  end) .. '"'
end

return M
