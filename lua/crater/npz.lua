--- crater.npz: NumPy's .npz archives (np.savez, np.savez_compressed): a zip file of .npy
-- members, stored (method 0) or deflated (method 8, through zlib).
--
-- Loading trusts nothing: the end record must close the file, the central directory must
-- lie inside it, every member's local header must agree with its central entry (name,
-- method), members must not overlap, names must be unique, and each member's CRC-32 and
-- size are checked while it is read; zip64 sizes in a member's extra field (NumPy writes
-- them) are read, zip64 archives (over 4 GiB or 65535 members), encryption and other
-- methods are refused.  Each member gets the checks of crater.npy.
local internal = require("crater.core").internal
local fu = require "crater.fileutil"
local npy = require "crater.npy"

local M = {}

local EOCD, CEN, LOC = "PK\5\6", "PK\1\2", "PK\3\4"
local MAX_COMMENT = 65535

-- Reads n bytes at offset of path (a stored region).
local function read_at(path, fn, offset, n)
  return internal.raw_peek(path, fn, { offset = offset, stored = n }, n)
end

-- The zip64 extended information extra field (id 1) of a central entry: the values that
-- are 0xffffffff in the entry itself, in the order size, compressed size, offset.
local function zip64_extra(extra, e, name)
  local pos = 1
  while pos + 3 <= #extra do
    local id, len = string.unpack("<I2I2", extra, pos)
    if pos + 3 + len > #extra then error(string.format("member %q: extra field runs past its end", name), 0) end
    if id == 1 then
      local p = pos + 4
      for _, k in ipairs({ "size", "csize", "offset" }) do
        if e[k] == 0xffffffff then
          if p + 7 > pos + 3 + len then error(string.format("member %q: zip64 extra field too short", name), 0) end
          e[k], p = string.unpack("<i8", extra, p)
          if e[k] < 0 then error(string.format("member %q: zip64 %s past 2^63", name, k), 0) end
        end
      end
    end
    pos = pos + 4 + len
  end
  for _, k in ipairs({ "size", "csize", "offset" }) do
    if e[k] == 0xffffffff then error(string.format("member %q: %s is 0xffffffff without a zip64 extra field", name, k), 0) end
  end
end

-- The members of the archive: a list of {name=, method=, crc=, csize=, size=, data=}
-- (data: the offset of the member's bytes), after every structural check.
local function members(path, fn)
  local _, fsize = internal.read_file(path, fn, 0, true)
  if fsize < 22 then error(string.format("file of %d bytes is too short for a zip end record", fsize), 0) end
  local tail_len = math.min(fsize, 22 + MAX_COMMENT)
  local tail = read_at(path, fn, fsize - tail_len, tail_len)
  -- the last end record whose comment reaches exactly the end of the file
  local at
  local i = #tail - 21
  while i >= 1 do
    if tail:sub(i, i + 3) == EOCD and string.unpack("<I2", tail, i + 20) == #tail - i - 21 then at = i; break end
    i = i - 1
  end
  if at == nil then error("no zip end record (not a zip file, truncated, or junk after its end)", 0) end
  local disk, cd_disk, n_disk, n, cd_size, cd_off = string.unpack("<I2I2I2I2I4I4", tail, at + 4)
  local eocd_pos = fsize - tail_len + at - 1
  if n == 0xffff or cd_size == 0xffffffff or cd_off == 0xffffffff then
    error("zip64 archives (over 4 GiB or 65535 members) are not supported", 0)
  end
  if disk ~= 0 or cd_disk ~= 0 or n_disk ~= n then error("end record: multi-disk archives are not supported", 0) end
  if cd_off + cd_size ~= eocd_pos then
    error(string.format("end record: the central directory (%d bytes at %d) does not end at the end record (byte %d)",
      cd_size, cd_off, eocd_pos), 0)
  end
  if n * 46 > cd_size then error(string.format("end record: %d members cannot fit in %d bytes", n, cd_size), 0) end
  local cd = read_at(path, fn, cd_off, cd_size)
  local list, names, pos = {}, {}, 1
  for k = 1, n do
    if pos + 45 > #cd or cd:sub(pos, pos + 3) ~= CEN then
      error(string.format("central directory: entry %d has no signature at byte %d", k, cd_off + pos - 1), 0)
    end
    local flags, method, _, _, crc, csize, size, nlen, elen, clen, dstart, _, _, off =
      string.unpack("<I2I2I2I2I4I4I4I2I2I2I2I2I4I4", cd, pos + 8)
    if pos + 45 + nlen + elen + clen > #cd then error(string.format("central directory: entry %d runs past its end", k), 0) end
    local name = cd:sub(pos + 46, pos + 45 + nlen)
    local e = { name = name, method = method, crc = crc, csize = csize, size = size, offset = off }
    zip64_extra(cd:sub(pos + 46 + nlen, pos + 45 + nlen + elen), e, name)
    pos = pos + 46 + nlen + elen + clen
    if flags & 1 ~= 0 then error(string.format("member %q is encrypted", name), 0) end
    if method ~= 0 and method ~= 8 then
      error(string.format("member %q: compression method %d (only 0, stored, and 8, deflate)", name, method), 0)
    end
    if dstart ~= 0 then error(string.format("member %q: multi-disk archives are not supported", name), 0) end
    if method == 0 and e.csize ~= e.size then
      error(string.format("member %q: stored with compressed size %d but size %d", name, e.csize, e.size), 0)
    end
    local key = name:gsub("%.npy$", "")
    if names[key] then error(string.format("duplicate member name %q", key), 0) end
    names[key] = true
    e.key = key
    -- the local header must agree, and tells where the data starts
    if e.offset > cd_off - 30 then error(string.format("member %q: local header offset %d is past the data", name, e.offset), 0) end
    local loc = read_at(path, fn, e.offset, 30)
    if loc:sub(1, 4) ~= LOC then error(string.format("member %q: no local header at byte %d", name, e.offset), 0) end
    local _, lflags, lmethod, _, _, _, _, _, lnlen, lelen = string.unpack("<I2I2I2I2I2I4I4I4I2I2", loc, 5)
    if lmethod ~= method or (lflags & 1) ~= 0 then
      error(string.format("member %q: the local header disagrees with the central directory (method)", name), 0)
    end
    if e.offset + 30 + lnlen + lelen > cd_off or read_at(path, fn, e.offset + 30, lnlen) ~= name then
      error(string.format("member %q: the local header disagrees with the central directory (name)", name), 0)
    end
    e.data = e.offset + 30 + lnlen + lelen
    if e.csize > cd_off - e.data then
      error(string.format("member %q: %d bytes at byte %d run into the central directory (byte %d)", name, e.csize,
        e.data, cd_off), 0)
    end
    list[k] = e
  end
  if pos ~= #cd + 1 then error(string.format("central directory: %d bytes after its %d entries", #cd + 1 - pos, n), 0) end
  local sorted = { table.unpack(list) }
  table.sort(sorted, function(a, b) return a.offset < b.offset end)
  for k = 2, #sorted do
    local p = sorted[k - 1]
    if sorted[k].offset < p.data + p.csize then
      error(string.format("members %q and %q overlap", p.name, sorted[k].name), 0)
    end
  end
  return list
end

--- Loads the arrays of an .npz file, or only the named ones, as tensors.  Names are the
-- member names without ".npy", as np.load gives them.
-- @param path the file
-- @param names optional list of names; a name the archive lacks is an error
-- @return a table name -> tensor
-- @usage local d = crater.npz.load("data.npz"); print(d.x)
function M.load(path, names)
  local fn = "npz.load"
  fu.check_path(fn, path)
  if names ~= nil and type(names) ~= "table" then error(fn .. ": names must be a list of strings", 2) end
  return fu.call(fn, path, function()
    local list, byname, all = members(path, fn), {}, {}
    for i, e in ipairs(list) do byname[e.key], all[i] = e, e.key end
    local want = fu.pick(names, byname, all, "array")
    local out = {}
    for _, n in ipairs(want) do
      local e = byname[n]
      local region = { offset = e.data, stored = e.csize, size = e.size, deflate = e.method == 8 and 1 or 0, crc = e.crc }
      local ok, t = pcall(npy._read, path, fn, region, e.size)
      if not ok then
        local msg, pre = tostring(t), fn .. ": " .. path .. ": "
        if msg:sub(1, #pre) == pre then msg = msg:sub(#pre + 1) end
        error(string.format("member %q: %s", e.name, msg), 0)
      end
      out[n] = t
    end
    return out
  end)
end

--- Saves tensors to an .npz file that np.load reads, atomically: one member "name.npy"
-- per tensor, in name order, deflated when opts.compress is true (np.savez_compressed),
-- stored otherwise (np.savez).
-- @param path the file
-- @param tensors a table name -> tensor
-- @param opts `{compress = false}`
function M.save(path, tensors, opts)
  local fn = "npz.save"
  fu.check_path(fn, path)
  if type(tensors) ~= "table" then error(fn .. ": tensors must be a table name -> tensor, got " .. type(tensors), 2) end
  if opts ~= nil and type(opts) ~= "table" then error(fn .. ": options must be a table, got " .. type(opts), 2) end
  local compress = opts ~= nil and opts.compress or false
  local names = {}
  for k, t in pairs(tensors) do
    if type(k) ~= "string" or k == "" or #k > 60000 then error(fn .. ": names must be non-empty strings", 2) end
    if not fu.is_tensor(t) then error(string.format("%s: value of %q is a %s, not a tensor", fn, k, type(t)), 2) end
    names[#names + 1] = k
  end
  table.sort(names)
  if #names > 65534 then error(fn .. ": more than 65534 arrays (zip64 is not written)", 2) end
  local body, central, at = {}, {}, 0
  for _, k in ipairs(names) do
    local raw = npy.dumps(tensors[k], fn)
    local data = compress and internal.deflate(raw) or raw
    local name = k .. ".npy"
    if at + #data + 30 + #name > 0xfffffffe then error(fn .. ": the archive would pass 4 GiB (zip64 is not written)", 2) end
    local crc, method = internal.crc32(raw), compress and 8 or 0
    -- version 2.0, no flags, DOS time 1980-01-01 00:00 so that the same arrays make the same file
    body[#body + 1] = string.pack("<c4I2I2I2I2I2I4I4I4I2I2", LOC, 20, 0, method, 0, 0x21, crc, #data, #raw, #name, 0)
      .. name .. data
    central[#central + 1] = string.pack("<c4I2I2I2I2I2I2I4I4I4I2I2I2I2I2I4I4", CEN, 20, 20, 0, method, 0, 0x21, crc,
      #data, #raw, #name, 0, 0, 0, 0, 0x1a4 << 16, at) .. name
    at = at + 30 + #name + #data
  end
  local cd = table.concat(central)
  local eocd = string.pack("<c4I2I2I2I2I4I4I2", EOCD, 0, 0, #names, #names, #cd, at, 0)
  fu.write(fn, path, table.concat(body) .. cd .. eocd)
end

return M
