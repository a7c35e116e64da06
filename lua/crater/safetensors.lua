--- crater.safetensors: Hugging Face's safetensors files, as PyTorch and others write them.
--
-- Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian header
-- length N, N bytes of JSON `{name: {"dtype": "F32", "shape": [2, 3], "data_offsets":
-- [begin, end]}, ..., "__metadata__": {str: str}}`, then the byte buffer; offsets count
-- from the buffer's start, and the tensors tile it exactly.
--
-- Loading refuses what the format's reference reader refuses, naming the field: a header
-- length over 100,000,000 bytes (the reference's limit) or past the file, JSON that is
-- invalid, not UTF-8 or has a duplicate key, an unknown dtype, a shape whose byte count
-- is not its offsets' span, offsets out of bounds, overlapping or leaving a gap, and a
-- buffer shorter or longer than the tensors.  Nothing is sized from the file before it
-- is checked against the file's length.
--
-- dtypes: F32 and F64 load as themselves, F16 and BF16 become float32 (exactly), I64,
-- I32, I16, I8, U8, U16, U32 and BOOL become int64; U64 and the F8 types are refused.
-- Saving writes F32, F64 and I64.
local internal = require("crater.core").internal
local json = require "crater.json"
local fu = require "crater.fileutil"

local M = {}

local MAX_HEADER = 100000000
local KINDS = {
  F64 = "float64", F32 = "float32", F16 = "float16", BF16 = "bfloat16", I64 = "int64", I32 = "int32",
  I16 = "int16", I8 = "int8", U8 = "uint8", U16 = "uint16", U32 = "uint32", BOOL = "bool",
}
local SIZES = { F64 = 8, F32 = 4, F16 = 2, BF16 = 2, I64 = 8, I32 = 4, I16 = 2, I8 = 1, U8 = 1, U16 = 2,
                U32 = 4, BOOL = 1 }
local SAVE_DTYPES = { float32 = "F32", float64 = "F64", int64 = "I64" }
local TENSOR_FIELDS = { dtype = true, shape = true, data_offsets = true }

local function list_str(t)
  local parts = {}
  for i, v in ipairs(t) do parts[i] = tostring(v) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function is_uint(v) return math.type(v) == "integer" and v >= 0 end

-- Checks one tensor entry of the header against the buffer of `buflen` bytes; returns
-- the entry as {name, kind, shape, begin, end}.
local function check_entry(name, e, buflen)
  local function bad(fmt, ...) error(string.format("tensor %q: " .. fmt, name, ...), 0) end
  if not json.is_object(e) then bad("the entry must be an object") end
  for k in pairs(e) do
    if not TENSOR_FIELDS[k] then bad("unknown field %q (expected dtype, shape, data_offsets)", tostring(k)) end
  end
  local dt = e.dtype
  if type(dt) ~= "string" then bad("field 'dtype' is missing or not a string") end
  if KINDS[dt] == nil then
    bad("field 'dtype' is %q, which crater does not read (F32 F64 F16 BF16 I64 I32 I16 I8 U8 U16 U32 BOOL)", dt)
  end
  local shape = e.shape
  if not json.is_array(shape) or #shape > 8 then
    bad("field 'shape' must be a list of at most 8 sizes")
  end
  local off = e.data_offsets
  if not json.is_array(off) or #off ~= 2 or not is_uint(off[1]) or not is_uint(off[2]) or off[1] > off[2] then
    bad("field 'data_offsets' must be [begin, end] with 0 <= begin <= end")
  end
  if off[2] > buflen then
    bad("field 'data_offsets' [%d, %d] runs past the data (%d bytes)", off[1], off[2], buflen)
  end
  local numel, empty = 1, false
  for i, s in ipairs(shape) do
    if not is_uint(s) then bad("field 'shape' has size %s at %d, not a non-negative integer", tostring(s), i) end
    empty = empty or s == 0
  end
  for _, s in ipairs(empty and {} or shape) do
    -- numel * s would pass the buffer (or overflow): no such tensor fits in the file
    if numel > buflen // s then
      bad("field 'shape' %s holds more elements than the file's %d data bytes", list_str(shape), buflen)
    end
    numel = numel * s
  end
  if empty then numel = 0 end
  if numel * SIZES[dt] ~= off[2] - off[1] then
    bad("field 'shape' %s of %s needs %d bytes, field 'data_offsets' [%d, %d] gives %d", list_str(shape), dt,
      numel * SIZES[dt], off[1], off[2], off[2] - off[1])
  end
  return { name = name, kind = KINDS[dt], shape = shape, first = off[1], last = off[2] }
end

-- Reads and checks the header; returns the entries by name, the metadata, the byte
-- offset of the buffer, and the tensor names in file order.
local function read_header(path, fn)
  local head, size = internal.read_file(path, fn, 8, true)
  if #head < 8 then error(string.format("file of %d bytes is too short for the 8-byte header length", #head), 0) end
  local n = string.unpack("<i8", head)
  if n < 0 or n > MAX_HEADER then   -- negative: a u64 past 2^63
    error(string.format("header length %s exceeds the limit of %d bytes", n < 0 and "of 2^63 or more"
      or tostring(n), MAX_HEADER), 0)
  end
  if n > size - 8 then
    error(string.format("header length %d runs past the end of the file (%d bytes after the length)", n, size - 8), 0)
  end
  local text = internal.read_file(path, fn, 8 + n, true):sub(9)
  if #text < n then error("the file shrank while it was read", 0) end
  if text:sub(1, 1) ~= "{" then error("header does not start with '{'", 0) end
  local ok, hdr = pcall(json.decode, text)
  if not ok then error("header: " .. hdr, 0) end
  if not json.is_object(hdr) then error("header: not a JSON object", 0) end
  local buflen = size - 8 - n
  local entries, order, meta = {}, {}, nil
  for name, e in pairs(hdr) do
    if name == "__metadata__" then
      if not json.is_object(e) then error("field '__metadata__' must be an object", 0) end
      for k, v in pairs(e) do
        if type(v) ~= "string" then error(string.format("field '__metadata__': value of %q is not a string", k), 0) end
      end
      meta = e
    else
      entries[name] = check_entry(name, e, buflen)
      order[#order + 1] = entries[name]
    end
  end
  -- the tensors must tile the buffer: sorted by offsets, each begins where the last ended
  table.sort(order, function(a, b)
    if a.first ~= b.first then return a.first < b.first end
    if a.last ~= b.last then return a.last < b.last end
    return a.name < b.name
  end)
  local at = 0
  for _, e in ipairs(order) do
    if e.first ~= at then
      error(string.format("tensor %q: field 'data_offsets' [%d, %d] %s (the previous tensor ends at %d)", e.name,
        e.first, e.last, e.first < at and "overlaps another tensor" or "leaves a gap", at), 0)
    end
    at = e.last
  end
  if at ~= buflen then
    error(string.format("the data is %d bytes but the tensors cover %d", buflen, at), 0)
  end
  local names = {}
  for i, e in ipairs(order) do names[i] = e.name end
  return entries, meta or {}, 8 + n, names
end

--- Loads the tensors of a safetensors file, or only the named ones (their bytes alone are
-- read).
-- @param path the file
-- @param names optional list of tensor names; a name the file lacks is an error
-- @return a table name -> tensor, and the metadata (a table of strings, maybe empty)
-- @usage net:load_state_dict(crater.safetensors.load("mlp.safetensors"), {torch_names = true})
function M.load(path, names)
  local fn = "safetensors.load"
  fu.check_path(fn, path)
  if names ~= nil and type(names) ~= "table" then error(fn .. ": names must be a list of strings", 2) end
  return fu.call(fn, path, function()
    local entries, meta, base, all = read_header(path, fn)
    local want = fu.pick(names, entries, all, "tensor")
    local out = {}
    for _, n in ipairs(want) do
      local e = entries[n]
      out[n] = internal.raw_read(path, fn, { offset = base + e.first, stored = e.last - e.first }, e.kind, false, false,
        e.shape)
    end
    return out, meta
  end)
end

--- The names, dtypes and shapes in a safetensors file, without reading any tensor.
-- @return a table name -> {dtype = "F32", shape = {...}}, and the metadata
function M.info(path)
  local fn = "safetensors.info"
  fu.check_path(fn, path)
  return fu.call(fn, path, function()
    local entries, meta = read_header(path, fn)
    local out = {}
    for n, e in pairs(entries) do
      local dt
      for k, v in pairs(KINDS) do if v == e.kind then dt = k end end
      out[n] = { dtype = dt, shape = e.shape }
    end
    return out, meta
  end)
end

--- Saves tensors (float32 as F32, float64 as F64, int64 as I64) to a safetensors file,
-- atomically, with optional string metadata.  Tensors are stored in name order.
-- @param path the file
-- @param tensors a table name -> tensor
-- @param metadata optional table of string -> string
-- @usage crater.safetensors.save("net.safetensors", net:state_dict(), {format = "pt"})
function M.save(path, tensors, metadata)
  local fn = "safetensors.save"
  fu.check_path(fn, path)
  if type(tensors) ~= "table" then error(fn .. ": tensors must be a table name -> tensor, got " .. type(tensors), 2) end
  if metadata ~= nil and type(metadata) ~= "table" then
    error(fn .. ": metadata must be a table of strings, got " .. type(metadata), 2)
  end
  local names = {}
  for k, t in pairs(tensors) do
    if type(k) ~= "string" or k == "" or k == "__metadata__" or not utf8.len(k) then
      error(fn .. ": tensor name " .. tostring(k) .. " must be a non-empty UTF-8 string other than __metadata__", 2)
    end
    if not fu.is_tensor(t) then error(string.format("%s: value of %q is a %s, not a tensor", fn, k, type(t)), 2) end
    names[#names + 1] = k
  end
  table.sort(names)
  local fields, data, at = {}, {}, 0
  for _, k in ipairs(names) do
    local t = tensors[k]
    local bytes = internal.bytes(t)
    fields[#fields + 1] = string.format('%s:{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}', json.quote(k),
      SAVE_DTYPES[t:dtype()], table.concat(t:shape(), ","), at, at + #bytes)
    data[#data + 1] = bytes
    at = at + #bytes
  end
  if metadata ~= nil then
    local mk, parts = {}, {}
    for k, v in pairs(metadata) do
      if type(k) ~= "string" or type(v) ~= "string" or not utf8.len(k) or not utf8.len(v) then
        error(string.format("%s: metadata must map UTF-8 strings to UTF-8 strings (key %s)", fn, tostring(k)), 2)
      end
      mk[#mk + 1] = k
    end
    table.sort(mk)
    for i, k in ipairs(mk) do parts[i] = json.quote(k) .. ":" .. json.quote(metadata[k]) end
    table.insert(fields, 1, '"__metadata__":{' .. table.concat(parts, ",") .. "}")
  end
  local header = "{" .. table.concat(fields, ",") .. "}"
  header = header .. string.rep(" ", (8 - #header % 8) % 8)   -- the buffer starts 8-aligned, as the reference's
  fu.write(fn, path, string.pack("<I8", #header) .. header .. table.concat(data))
end

return M
