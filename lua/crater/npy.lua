--- crater.npy: NumPy's .npy files (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
--
-- Layout: "\x93NUMPY", a major and a minor version byte, the header length (u16 in
-- version 1.0, u32 in 2.0 and 3.0, little-endian), the header (a Python dict literal
-- `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and a
-- newline; UTF-8 in 3.0), then the elements.
--
-- Loading reads versions 1 to 3, little and big endian, C and Fortran order, of the
-- dtypes f2 and f4 (to float32), f8 (float64), i1 i2 i4 i8 u1 u2 u4 and b1 (to int64).
-- It refuses, naming the field: object arrays (pickles: crater never unpickles),
-- structured, string, complex, datetime and u8 arrays, a header past 10,000 bytes
-- (NumPy's own max_header_size), a header that is not exactly the three keys, and
-- a shape whose byte count is not the data's.  Saving writes version 1.0, C order,
-- '<f4', '<f8' or '<i8'.
local internal = require("crater.core").internal
local fu = require "crater.fileutil"

local M = {}

local MAGIC = "\147NUMPY"
local MAX_HEADER = 10000
local CODES = {   -- descr type letter and size -> crater's element kind
  b1 = "bool", u1 = "uint8", i1 = "int8", u2 = "uint16", i2 = "int16", u4 = "uint32", i4 = "int32",
  i8 = "int64", f2 = "float16", f4 = "float32", f8 = "float64",
}
local REFUSED = {
  O = "object arrays (pickles) are refused: crater never unpickles",
  V = "structured and void dtypes are not supported", S = "byte-string dtypes are not supported",
  U = "unicode-string dtypes are not supported", c = "complex dtypes are not supported",
  M = "datetime dtypes are not supported", m = "timedelta dtypes are not supported",
}
local SAVE_DESCR = { float32 = "<f4", float64 = "<f8", int64 = "<i8" }

-- A small reader of the Python literal in the header: a dict of the three keys, each a
-- string, a boolean or a tuple of integers.  Returns a table.
local function parse_dict(h)
  local pos = 1
  local function bad(what) error(string.format("header: %s at byte %d of %q", what, pos - 1, h:sub(1, 120)), 0) end
  local function ws() pos = h:find("[^ \t\r\n]", pos) or #h + 1 end
  local function str()
    local q = h:sub(pos, pos)
    if q ~= "'" and q ~= '"' then bad("expected a string") end
    local close = h:find(q, pos + 1, true)
    if close == nil then bad("unterminated string") end
    local s = h:sub(pos + 1, close - 1)
    if s:find("\\", 1, true) then bad("escapes in a string are not supported") end
    pos = close + 1
    return s
  end
  local out, seen = {}, {}
  ws()
  if h:sub(pos, pos) ~= "{" then bad("expected '{'") end
  pos = pos + 1
  while true do
    ws()
    if h:sub(pos, pos) == "}" then pos = pos + 1; break end
    local key = str()
    if key ~= "descr" and key ~= "fortran_order" and key ~= "shape" then bad(string.format("unknown key %q", key)) end
    if seen[key] then bad(string.format("duplicate key %q", key)) end
    seen[key] = true
    ws()
    if h:sub(pos, pos) ~= ":" then bad("expected ':'") end
    pos = pos + 1
    ws()
    local c = h:sub(pos, pos)
    if key == "descr" then
      if c == "[" then error("field 'descr': structured dtypes (a list of fields) are not supported", 0) end
      out.descr = str()
    elseif key == "fortran_order" then
      if h:sub(pos, pos + 3) == "True" then out.fortran_order = true; pos = pos + 4
      elseif h:sub(pos, pos + 4) == "False" then out.fortran_order = false; pos = pos + 5
      else bad("field 'fortran_order' must be True or False") end
    else
      if c ~= "(" then bad("field 'shape' must be a tuple") end
      pos = pos + 1
      local shape, comma = {}, false
      while true do
        ws()
        if h:sub(pos, pos) == ")" then pos = pos + 1; break end
        local digits = h:match("^%d+", pos)
        if digits == nil then bad("field 'shape' must hold non-negative integers") end
        local v = #digits <= 19 and math.tointeger(tonumber(digits)) or nil
        if v == nil then bad("field 'shape' has a size past 2^63-1") end
        if #shape >= 8 then bad("field 'shape' has more than 8 dimensions") end
        shape[#shape + 1] = v
        pos = pos + #digits
        if h:sub(pos, pos) == "L" then pos = pos + 1 end   -- Python 2's long literal
        ws()
        local sep = h:sub(pos, pos)
        comma = sep == ","
        if comma then pos = pos + 1
        elseif sep ~= ")" then bad("field 'shape': expected ',' or ')'") end
      end
      if #shape == 1 and not comma then bad("field 'shape': a 1-tuple needs its comma") end
      out.shape = shape
    end
    ws()
    local sep = h:sub(pos, pos)
    if sep == "," then pos = pos + 1
    elseif sep ~= "}" then bad("expected ',' or '}'") end
  end
  ws()
  if pos <= #h then bad("text after the dict") end
  for _, k in ipairs({ "descr", "fortran_order", "shape" }) do
    if out[k] == nil then error(string.format("header: key %q is missing", k), 0) end
  end
  return out
end

--- Parses the start of a .npy file (at least its magic, version, length and header).
-- @param s the first bytes
-- @param avail how many bytes the file (or member) has in all
-- @return {kind=, big=, fortran=, shape=, skip= (bytes before the data), version=}
function M.parse_header(s, avail)
  if #s < 10 or s:sub(1, 6) ~= MAGIC then
    if #s < 10 and s == MAGIC:sub(1, #s) then error(string.format("truncated header (%d bytes)", #s), 0) end
    error("not a .npy file (bad magic)", 0)
  end
  local major, minor = s:byte(7, 8)
  if major < 1 or major > 3 or minor ~= 0 then error(string.format("unsupported version %d.%d (1.0 to 3.0 are read)", major, minor), 0) end
  local hlen, start
  if major == 1 then hlen, start = string.unpack("<I2", s, 9) else
    if #s < 12 then error(string.format("truncated header (%d bytes)", #s), 0) end
    hlen, start = string.unpack("<I4", s, 9)
  end
  if hlen > MAX_HEADER then error(string.format("header length %d exceeds the limit of %d bytes", hlen, MAX_HEADER), 0) end
  if start - 1 + hlen > avail then
    error(string.format("header length %d runs past the end of the data (%d bytes)", hlen, avail), 0)
  end
  if #s < start - 1 + hlen then error(string.format("truncated header (%d of %d bytes)", #s, start - 1 + hlen), 0) end
  local h = s:sub(start, start + hlen - 1)
  if major < 3 and h:find("[\128-\255]") then error("header: a non-ASCII byte before version 3.0", 0) end
  if major == 3 and not utf8.len(h) then error("header: not UTF-8", 0) end
  if h:sub(-1) ~= "\n" then error("header: does not end with a newline", 0) end
  local d = parse_dict(h)
  local order, letter, size = d.descr:match("^([<>|=]?)(%a)(%d*)$")
  if letter == nil then error(string.format("field 'descr': %q is not a dtype crater reads", d.descr), 0) end
  if REFUSED[letter] then error(string.format("field 'descr' is %q: %s", d.descr, REFUSED[letter]), 0) end
  local kind = CODES[letter .. size]
  if kind == nil then
    error(string.format("field 'descr': %q is not a dtype crater reads (f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 b1)", d.descr), 0)
  end
  local data = avail - (start - 1 + hlen)
  local numel, esize, empty = 1, tonumber(size), false
  for _, n in ipairs(d.shape) do empty = empty or n == 0 end
  for _, n in ipairs(empty and {} or d.shape) do
    if numel > data // n then   -- the product passes the data (or would overflow)
      error(string.format("field 'shape' (%s) holds more elements than the %d data bytes", table.concat(d.shape, ", "),
        data), 0)
    end
    numel = numel * n
  end
  if empty then numel = 0 end
  if numel * esize ~= data then
    error(string.format("field 'shape' (%s) of %q needs %d bytes, the data has %d", table.concat(d.shape, ", "),
      d.descr, numel * esize, data), 0)
  end
  return { kind = kind, big = order == ">", fortran = d.fortran_order, shape = d.shape, skip = start - 1 + hlen,
           version = major }
end

-- The tensor of the .npy bytes in region (see internal.raw_read) of path, given its size.
function M._read(path, fn, region, avail)
  local head = internal.raw_peek(path, fn, region, math.min(avail, 12 + MAX_HEADER))
  local h = M.parse_header(head, avail)
  region.skip = h.skip
  return internal.raw_read(path, fn, region, h.kind, h.big, h.fortran, h.shape)
end


--- Loads a .npy file as a tensor (float32, float64 or int64).
-- @usage local x = crater.npy.load("x.npy")
function M.load(path)
  local fn = "npy.load"
  fu.check_path(fn, path)
  return fu.call(fn, path, function()
    local _, size = internal.read_file(path, fn, 0, true)
    return M._read(path, fn, { offset = 0, stored = size }, size)
  end)
end

--- The bytes of a .npy file (version 1.0, C order) holding t.
function M.dumps(t, fn)
  if not fu.is_tensor(t) then error((fn or "npy.dumps") .. ": expected a tensor, got " .. type(t), 2) end
  local shape = t:shape()
  local tuple = #shape == 1 and "(" .. shape[1] .. ",)" or "(" .. table.concat(shape, ", ") .. ")"
  local h = string.format("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", SAVE_DESCR[t:dtype()], tuple)
  -- padded with spaces and a newline so the data starts 64-aligned, as NumPy writes it
  h = h .. string.rep(" ", (64 - (10 + #h + 1) % 64) % 64) .. "\n"
  return MAGIC .. "\1\0" .. string.pack("<I2", #h) .. h .. internal.bytes(t)
end

--- Saves t to a .npy file, atomically.
-- @usage crater.npy.save("w.npy", net[1].weight)
function M.save(path, t)
  local fn = "npy.save"
  fu.check_path(fn, path)
  fu.write(fn, path, M.dumps(t, fn))
end

return M
