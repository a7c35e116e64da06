--- crater.save / crater.load: checkpoints of tensors and nested tables.
--
-- File format, version 1 (all integers little-endian):
--
--     offset  size  field
--     0       8     magic "CRATER\0\1"
--     8       4     format version (u32) = 1
--     12      8     body length in bytes (u64)
--     20      4     CRC-32 (zlib) of the body (u32)
--     24      ...   body: one value
--
-- A value is a one-byte tag followed by its payload:
--
--     "b" boolean   u8 (0 or 1)
--     "i" integer   i64
--     "f" float     f64 (IEEE 754 double)
--     "s" string    u64 length, bytes
--     "t" tensor    u8 dtype (0 float32, 1 float64, 2 int64), u8 flags (bit 0:
--                   requires_grad), u8 ndim, ndim x i64 sizes, then the elements in
--                   row-major order, little-endian (numel x 4 or 8 bytes)
--     "T" table     u64 pair count, then each pair as key value, value value (keys are
--                   strings, numbers or booleans)
--
-- The file is written to a temporary file beside path, flushed, fsynced and renamed over
-- path, so a crash mid-save leaves the previous checkpoint intact.  Loading checks the
-- magic, version, length and checksum before decoding, and every size while decoding: a
-- truncated, corrupted or foreign file is an error naming the file, never a crash.
local core = require "crater.core"
local internal = core.internal

local M = {}

local MAGIC = "CRATER\0\1"
local VERSION = 1
local HEADER = "<c8I4I8I4"
local HEADER_SIZE = string.packsize(HEADER)
local DTYPES = { float32 = 0, float64 = 1, int64 = 2 }
local DTYPE_NAMES = { [0] = "float32", [1] = "float64", [2] = "int64" }
local DTYPE_SIZE = { [0] = 4, [1] = 8, [2] = 8 }
-- tensors are stored as their bytes in memory order, which the format says is little-endian
assert(string.pack("=i4", 1) == string.pack("<i4", 1), "crater checkpoints need a little-endian host")

local is_tensor = core.is_tensor

-- Tables nest at most this deep, in save and in load alike: a file that one writes the
-- other reads.
local MAX_DEPTH = 200

-- The place of the value being encoded, for messages ("value.model.weight"): built from
-- the key stack only when an error names it, so deep tables cost linear memory.
local function where(keys, depth)
  local parts = { "value" }
  for i = 1, depth do parts[#parts + 1] = tostring(keys[i]) end
  return table.concat(parts, ".")
end

local function encode(v, out, seen, keys, depth)
  local tv = type(v)
  if tv == "boolean" then
    out[#out + 1] = string.pack("<c1B", "b", v and 1 or 0)
  elseif tv == "number" then
    if math.type(v) == "integer" then out[#out + 1] = string.pack("<c1i8", "i", v)
    else out[#out + 1] = string.pack("<c1d", "f", v) end
  elseif tv == "string" then
    out[#out + 1] = string.pack("<c1s8", "s", v)
  elseif is_tensor(v) then
    local shape = v:shape()
    local parts = { string.pack("<c1BBB", "t", DTYPES[v:dtype()], v.requires_grad and 1 or 0, #shape) }
    for _, s in ipairs(shape) do parts[#parts + 1] = string.pack("<i8", s) end
    out[#out + 1] = table.concat(parts)
    out[#out + 1] = internal.bytes(v)
  elseif tv == "table" then
    if seen[v] then error("save: the table at " .. where(keys, depth) .. " contains itself (a cycle)", 0) end
    if depth >= MAX_DEPTH then
      error(string.format("save: tables nested too deeply (more than %d levels, at %s)", MAX_DEPTH, where(keys, depth)), 0)
    end
    seen[v] = true
    local sorted = {}
    for k in pairs(v) do
      local tk = type(k)
      if tk ~= "string" and tk ~= "number" and tk ~= "boolean" then
        error("save: unsupported key type " .. tk .. " in " .. where(keys, depth), 0)
      end
      sorted[#sorted + 1] = k
    end
    -- a stable order (integers first, then by string form) makes equal values give equal files
    table.sort(sorted, function(a, b)
      local ta, tb = type(a) == "number", type(b) == "number"
      if ta ~= tb then return ta end
      if ta then return a < b end
      return tostring(a) < tostring(b)
    end)
    out[#out + 1] = string.pack("<c1I8", "T", #sorted)
    for _, k in ipairs(sorted) do
      encode(k, out, seen, keys, depth)
      keys[depth + 1] = k
      encode(v[k], out, seen, keys, depth + 1)
    end
    keys[depth + 1] = nil
    seen[v] = nil
  else
    error("save: cannot save a " .. tv .. " (at " .. where(keys, depth) .. "); checkpoints hold tensors, "
      .. "tables, numbers, strings and booleans", 0)
  end
end

--- Serialises value (a tensor, or a nested table of tensors, numbers, strings and booleans)
-- into a byte string in crater's checkpoint format (header included).
function M.dumps(value)
  local out = {}
  encode(value, out, {}, {}, 0)
  local body = table.concat(out)
  return string.pack(HEADER, MAGIC, VERSION, #body, internal.crc32(body)) .. body
end

-- An unsigned 64-bit field read with "I8" arrives as a negative Lua integer above 2^63-1.
local function u64(n)
  if n >= 0 then return tostring(n) end
  local q = (n >> 1) // 5   -- unsigned n // 10 (>> shifts in zeros)
  return tostring(q) .. tostring(n - q * 10)
end

-- Decoding: d = {s = body, pos = next byte}; every read checks the bytes are there.
local function need(d, n, what)
  if n < 0 or d.pos + n - 1 > #d.s then
    error(string.format("corrupt checkpoint (%s at byte %d runs past the end)", what, d.pos + HEADER_SIZE - 1), 0)
  end
end

local decode
local function decode_tensor(d)
  need(d, 3, "tensor header")
  local code, flags, nd, pos = string.unpack("<BBB", d.s, d.pos)
  d.pos = pos
  local dtype = DTYPE_NAMES[code]
  if dtype == nil then error("corrupt checkpoint (unknown dtype code " .. code .. ")", 0) end
  if nd > 8 then error("corrupt checkpoint (tensor with " .. nd .. " dimensions)", 0) end
  local shape, numel = {}, 1
  for i = 1, nd do
    need(d, 8, "tensor size")
    shape[i], d.pos = string.unpack("<i8", d.s, d.pos)
    if shape[i] < 0 or shape[i] > #d.s then error("corrupt checkpoint (tensor size " .. u64(shape[i]) .. ")", 0) end
    if shape[i] > 0 and numel > #d.s // shape[i] then   -- numel * size would pass the body (or overflow)
      error("corrupt checkpoint (tensor of more elements than the file holds)", 0)
    end
    numel = numel * shape[i]
  end
  local nbytes = numel * DTYPE_SIZE[code]
  need(d, nbytes, "tensor data")
  local t = internal.from_bytes(d.s:sub(d.pos, d.pos + nbytes - 1), dtype, shape)
  d.pos = d.pos + nbytes
  if flags & 1 == 1 then
    if code == 2 then error("corrupt checkpoint (an int64 tensor flagged requires_grad)", 0) end
    t.requires_grad = true
  end
  return t
end

decode = function(d, depth)
  if depth > MAX_DEPTH then
    error(string.format("corrupt checkpoint (tables nested too deeply: more than %d levels)", MAX_DEPTH), 0)
  end
  need(d, 1, "value tag")
  local tag = d.s:sub(d.pos, d.pos)
  d.pos = d.pos + 1
  if tag == "b" then
    need(d, 1, "boolean"); local v = d.s:byte(d.pos); d.pos = d.pos + 1
    return v ~= 0
  elseif tag == "i" then
    need(d, 8, "integer"); local v; v, d.pos = string.unpack("<i8", d.s, d.pos); return v
  elseif tag == "f" then
    need(d, 8, "float"); local v; v, d.pos = string.unpack("<d", d.s, d.pos); return v
  elseif tag == "s" then
    need(d, 8, "string length")
    local n = string.unpack("<I8", d.s, d.pos)
    if n < 0 or n > #d.s then error("corrupt checkpoint (string of " .. u64(n) .. " bytes)", 0) end
    need(d, 8 + n, "string")
    local v; v, d.pos = string.unpack("<s8", d.s, d.pos); return v
  elseif tag == "t" then
    return decode_tensor(d)
  elseif tag == "T" then
    need(d, 8, "table size")
    local n; n, d.pos = string.unpack("<I8", d.s, d.pos)
    if n < 0 or n > #d.s then error("corrupt checkpoint (table of " .. u64(n) .. " pairs)", 0) end
    local t = {}
    for _ = 1, n do
      local k = decode(d, depth + 1)
      if k == nil or (type(k) == "number" and k ~= k) or is_tensor(k) or type(k) == "table" then
        error("corrupt checkpoint (bad table key)", 0)
      end
      t[k] = decode(d, depth + 1)
    end
    return t
  end
  error(string.format("corrupt checkpoint (unknown tag 0x%02x at byte %d)", tag:byte(), d.pos + HEADER_SIZE - 2), 0)
end

--- Decodes a byte string made by dumps (checks magic, version, length and checksum).
-- Raises an error without a "load:" prefix on a bad string; load adds the file name.
function M.loads(s)
  if #s < HEADER_SIZE or s:sub(1, 6) ~= MAGIC:sub(1, 6) then
    if s:sub(1, 6) == MAGIC:sub(1, 6) then error("truncated checkpoint (" .. #s .. " bytes, header incomplete)", 0) end
    error("not a crater checkpoint (bad magic)", 0)
  end
  local magic, version, len, crc = string.unpack(HEADER, s)
  if magic ~= MAGIC then error("not a crater checkpoint (bad magic)", 0) end
  if version ~= VERSION then
    error("unsupported checkpoint format version " .. version .. " (this crater reads version " .. VERSION .. ")", 0)
  end
  if len < 0 or len > #s then   -- checked before anything is sized from it
    error(string.format("truncated checkpoint (%d of %s body bytes)", #s - HEADER_SIZE, u64(len)), 0)
  end
  local body = s:sub(HEADER_SIZE + 1)
  if #body < len then error(string.format("truncated checkpoint (%d of %d body bytes)", #body, len), 0) end
  if #body > len then error(string.format("corrupt checkpoint (%d bytes after the end)", #body - len), 0) end
  if internal.crc32(body) ~= crc then error("corrupt checkpoint (checksum mismatch)", 0) end
  local d = { s = body, pos = 1 }
  local v = decode(d, 0)
  if d.pos ~= #body + 1 then error("corrupt checkpoint (trailing bytes in the body)", 0) end
  return v
end

--- Saves value (a tensor, or a nested table of tensors, numbers, strings and booleans, such
-- as a model's and an optimizer's state dicts) to path, atomically: a crash mid-save leaves
-- the previous file intact.
-- @usage crater.save("ckpt.bin", {model = net:state_dict(), optim = opt:state_dict(), epoch = 3})
function M.save(path, value)
  if type(path) ~= "string" then error("save: path must be a string, got " .. type(path), 2) end
  local ok, s = pcall(M.dumps, value)
  if not ok then error(tostring(s), 2) end
  internal.write_atomic(path, s)
end

--- Loads what crater.save wrote to path.  A missing, truncated, corrupted or foreign file
-- is an error naming the file.
-- @usage local ck = crater.load("ckpt.bin"); net:load_state_dict(ck.model)
function M.load(path)
  if type(path) ~= "string" then error("load: path must be a string, got " .. type(path), 2) end
  -- the header first, then exactly the body it declares: never more than that is read
  local ok, v = pcall(function()
    local head, size = internal.read_file(path, "load", HEADER_SIZE, true)
    local s = head
    if #head == HEADER_SIZE and head:sub(1, #MAGIC) == MAGIC then
      local len = select(3, string.unpack(HEADER, head))
      if len < 0 or len > size - HEADER_SIZE then
        error(string.format("truncated checkpoint (%d of %s body bytes)", size - HEADER_SIZE, u64(len)), 0)
      end
      s = internal.read_file(path, "load", HEADER_SIZE + len)
    end
    return M.loads(s)
  end)
  if not ok then
    v = tostring(v)
    if v:find("^load: ") then error(v, 2) end
    error("load: " .. path .. ": " .. v, 2)
  end
  return v
end

return M
