-- Hostile foreign files (issue #22, "Bad input"): safetensors, .npy and .npz readers get
-- every truncation of small files, flips of every header byte, absurd sizes (2^62
-- elements), duplicate names and shapes that disagree with their bytes.  Each is refused
-- with an error naming the function, the file and the field, without a crash, a leak or
-- an allocation beyond the file's size plus a small cap; a file that still loads after a
-- flip of a byte that does not matter gives the same values.
local crater = require "crater"
local memcheck = require "spec.helpers.memcheck"

local FX = "spec/fixtures/interop"
local CAP = 1 << 20   -- what a reader may allocate beyond the file's size

local function read(p) local f = assert(io.open(p, "rb")); local s = f:read("a"); f:close(); return s end
local function write(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end
local function flip(s, i, mask) return s:sub(1, i - 1) .. string.char(s:byte(i) ~ mask) .. s:sub(i + 1) end

local dir
setup(function() dir = io.popen("mktemp -d"):read("l") end)
teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

-- Writes s, loads it with load(path); returns ok and the result or the message, and
-- checks that nothing beyond #s + CAP was allocated on the way.
local function try(load, s)
  local p = dir .. "/f"
  write(p, s)
  local before = crater.memory().bytes
  crater.reset_peak_memory()
  local ok, v = pcall(load, p)
  local peak = crater.memory().peak_bytes - before
  assert(peak <= #s + CAP, string.format("%d bytes allocated for a file of %d", peak, #s))
  return ok, v, p
end

-- Asserts that load refuses s with "fn: path: ..." and the plain text want (or one of a list).
local function refuses(load, fn, s, want)
  local ok, err, p = try(load, s)
  assert(not ok, "accepted a bad file")
  err = tostring(err)
  local prefix = fn .. ": " .. p .. ": "
  assert(err:find(prefix, 1, true), "error does not name the function and file: " .. err)
  if want == nil then return err end
  for _, w in ipairs(type(want) == "table" and want or {want}) do
    if err:find(w, 1, true) then return err end
  end
  error("unexpected message: " .. err .. "\nexpected: " .. table.concat(type(want) == "table" and want or {want}, " | "))
end

local function same_values(a, b)
  for k, t in pairs(a) do
    assert(b[k] ~= nil, "missing " .. k)
    assert.equal(t:dtype(), b[k]:dtype())
    assert.same(t:totable(), b[k]:totable())
  end
  for k in pairs(b) do assert(a[k] ~= nil, "extra " .. k) end
end

-- ------------------------------------------------------------------ safetensors
local stload = crater.safetensors.load
local ST = "safetensors.load"
local function st(header, data) return string.pack("<I8", #header) .. header .. (data or "") end

describe("crater.safetensors.load on hostile files", function()
  memcheck.hooks(before_each, after_each)
  local good
  setup(function() good = read(FX .. "/dtypes.safetensors") end)

  it("refuses every truncation of a small file", function()
    for n = 0, #good - 1 do
      refuses(stload, ST, good:sub(1, n), {"too short for the 8-byte header length", "runs past the end of the file",
        "the data is", "runs past the data"})
    end
  end)

  it("refuses appended junk (the tensors must cover the buffer)", function()
    refuses(stload, ST, good .. "\0", "bytes but the tensors cover")
  end)

  it("refuses every flip of the header length, naming it", function()
    for i = 1, 8 do
      for _, mask in ipairs({0x01, 0x10, 0x80, 0xff}) do
        refuses(stload, ST, flip(good, i, mask), "header")
      end
    end
  end)

  it("refuses or loads every flip of a header byte, naming what is wrong", function()
    local n = string.unpack("<I8", good)
    local refused, reference = 0, stload(FX .. "/dtypes.safetensors")
    for i = 9, 8 + n do
      for _, mask in ipairs({0x01, 0x20, 0x80}) do
        local ok, v = try(stload, flip(good, i, mask))
        if ok then
          -- only a name, a metadata text or the padding can change and still load
          local m, want = 0, 0
          for _ in pairs(v) do m = m + 1 end
          for _ in pairs(reference) do want = want + 1 end
          assert.equal(want, m)
        else
          refused = refused + 1
          assert.is_truthy(v:find(ST .. ": ", 1, true) and (v:find("header", 1, true) or v:find("field '", 1, true)
            or v:find("the data is", 1, true) or v:find('tensor "', 1, true)), v)
        end
      end
    end
    assert.is_true(refused > n)   -- most flips break the JSON, a dtype, a shape or an offset
  end)

  it("refuses absurd sizes before allocating", function()
    refuses(stload, ST, st('{"x":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]}}', "abcd"),
      "tensor \"x\": field 'shape' {4611686018427387904} holds more elements than the file's 4 data bytes")
    refuses(stload, ST, st('{"x":{"dtype":"F64","shape":[65536,65536,65536,65536],"data_offsets":[0,8]}}', "abcdefgh"),
      "field 'shape' {65536,65536,65536,65536} holds more elements")
    refuses(stload, ST, st('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,9223372036854775808]}}', "abcd"),
      "field 'data_offsets' must be [begin, end]")
    refuses(stload, ST, st('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,400000000]}}', "abcd"),
      "field 'data_offsets' [0, 400000000] runs past the data (4 bytes)")
    refuses(stload, ST, string.pack("<I8", 100000001) .. "{}", "header length 100000001 exceeds the limit of 100000000 bytes")
    refuses(stload, ST, string.pack("<i8", -1) .. "{}", "header length of 2^63 or more exceeds the limit")
    refuses(stload, ST, string.pack("<I8", 1000) .. "{}", "header length 1000 runs past the end of the file (2 bytes")
  end)

  it("loads an empty tensor whose other size is 2^62 (legal, as in PyTorch)", function()
    write(dir .. "/e", st('{"x":{"dtype":"F32","shape":[4611686018427387904,0],"data_offsets":[0,0]}}'))
    assert.same({4611686018427387904, 0}, stload(dir .. "/e").x:shape())
  end)

  it("refuses duplicate names", function()
    local e = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
    refuses(stload, ST, st('{"w":' .. e .. ',"w":' .. e .. '}', "abcd"), 'duplicate key "w"')
    refuses(stload, ST, st('{"__metadata__":{"a":"1","a":"2"},"w":' .. e .. '}', "abcd"), 'duplicate key "a"')
  end)

  it("refuses a shape that disagrees with its bytes, naming both", function()
    refuses(stload, ST, st('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', "abcdefgh"),
      "tensor \"w\": field 'shape' {3} of F32 needs 12 bytes, field 'data_offsets' [0, 8] gives 8")
    refuses(stload, ST, st('{"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,4]}}', "abcd"),
      "field 'shape' {2,2} of BF16 needs 8 bytes")
  end)

  it("refuses offsets that overlap, leave a gap or leave bytes over", function()
    local function two(a, b, data)
      return st(string.format('{"a":{"dtype":"F32","shape":[1],"data_offsets":[%d,%d]},'
        .. '"b":{"dtype":"F32","shape":[1],"data_offsets":[%d,%d]}}', a, a + 4, b, b + 4), data)
    end
    refuses(stload, ST, two(0, 2, "abcdef"), "field 'data_offsets' [2, 6] overlaps another tensor")
    refuses(stload, ST, two(0, 0, "abcd"), "overlaps another tensor")
    refuses(stload, ST, two(0, 6, "abcdefghij"), "field 'data_offsets' [6, 10] leaves a gap (the previous tensor ends at 4)")
    refuses(stload, ST, two(4, 8, "abcdefghijkl"), "field 'data_offsets' [4, 8] leaves a gap (the previous tensor ends at 0)")
    refuses(stload, ST, two(0, 4, "abcdefghi"), "the data is 9 bytes but the tensors cover 8")
  end)

  it("refuses bad JSON and bad fields, naming them", function()
    local e = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
    local cases = {
      {'[]', "header does not start with '{'"},
      {'{"w":' .. e, "header: invalid JSON at byte"},
      {'{"w":' .. e .. '} x', "text after the value"},
      {'{"w\255":' .. e .. '}', "header: invalid JSON at byte 3 (not UTF-8)"},
      {'{"w":' .. e .. ',"__metadata__":' .. string.rep("[", 100) .. string.rep("]", 100) .. '}',
        "nested more than 64 levels deep"},
      {'{"__metadata__":{"k":1},"w":' .. e .. '}', "field '__metadata__': value of \"k\" is not a string"},
      {'{"__metadata__":[],"w":' .. e .. '}', "field '__metadata__' must be an object"},
      {'{"w":{"dtype":"U64","shape":[1],"data_offsets":[0,4]}}', "field 'dtype' is \"U64\", which crater does not read"},
      {'{"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}', "field 'dtype' is \"F8_E4M3\""},
      {'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}', "unknown field \"x\""},
      {'{"w":{"shape":[1],"data_offsets":[0,4]}}', "field 'dtype' is missing"},
      {'{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', "field 'shape' has size 1.5 at 1"},
      {'{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', "field 'shape' has size -1 at 1"},
      {'{"w":{"dtype":"F32","shape":{},"data_offsets":[0,4]}}', "field 'shape' must be a list"},
      {'{"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}', "at most 8 sizes"},
      {'{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', "field 'data_offsets' must be [begin, end]"},
      {'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', "field 'data_offsets' must be [begin, end]"},
      {'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"v":3}', "tensor \"v\": the entry must be an object"},
      {'{"w":"\\ud800"}', "unpaired surrogate"},
      {'{"w":01}', "bad number"},
    }
    for _, c in ipairs(cases) do refuses(stload, ST, st(c[1], "abcd"), c[2]) end
  end)

  it("parses a large header in linear time (20,000 tensors, a 2 MB escaped metadata string)", function()
    local parts = {'"__metadata__":{"big":"' .. string.rep('a\\"\\u00e9', 250000) .. '"}'}
    for i = 1, 20000 do parts[#parts + 1] = string.format('"t%d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}', i) end
    write(dir .. "/big", st("{" .. table.concat(parts, ",") .. "}"))
    local t0 = os.clock()
    local t, meta = stload(dir .. "/big", {"t7"})
    assert.same({0}, t.t7:shape())
    assert.equal(250000 * 4, #meta.big)
    assert.is_true(os.clock() - t0 < 10, "took " .. (os.clock() - t0) .. " s")
  end)

  it("refuses a directory and a FIFO without blocking", function()
    os.execute("mkfifo '" .. dir .. "/fifo'")
    for _, fn in ipairs({stload, crater.npy.load, crater.npz.load}) do
      assert.error_matches(function() fn(dir) end, "is a directory, not a regular file", 1, true)
      assert.error_matches(function() fn(dir .. "/fifo") end, "is a FIFO, not a regular file", 1, true)
    end
  end)
end)

-- ------------------------------------------------------------------ .npy
local npyload = crater.npy.load
local NPY = "npy.load"
local function npy(header, data, version)
  version = version or 1
  local h = header .. "\n"
  return "\147NUMPY" .. string.char(version, 0) .. string.pack(version == 1 and "<I2" or "<I4", #h) .. h .. (data or "")
end

describe("crater.npy.load on hostile files", function()
  memcheck.hooks(before_each, after_each)

  for _, name in ipairs({"f4_v1.npy", "i8_v2.npy", "f8_fortran.npy", "f2_big.npy"}) do
    it("refuses every truncation of " .. name, function()
      local good = read(FX .. "/" .. name)
      for n = 0, #good - 1 do
        refuses(npyload, NPY, good:sub(1, n), {"truncated header", "not a .npy file", "runs past the end of the data",
          "field 'shape'"})
      end
      refuses(npyload, NPY, good .. "\0", "field 'shape'")
    end)
  end

  it("refuses or loads every flip of every header byte, never crashing", function()
    local good = read(FX .. "/f4_v1.npy")
    local refused = 0
    for i = 1, 128 do
      for _, mask in ipairs({0x01, 0x02, 0x80}) do
        local ok, v = try(npyload, flip(good, i, mask))
        if ok then
          assert.equal(12, v:numel())   -- '<' to '=' or '>' (same size), or a flip in the padding that stays blank
        else
          refused = refused + 1
          assert.is_truthy(v:find(NPY .. ": ", 1, true), v)
        end
      end
    end
    assert.is_true(refused > 300)
  end)

  it("refuses absurd sizes before allocating", function()
    refuses(npyload, NPY, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }", "abcd"),
      "field 'shape' (4611686018427387904) holds more elements than the 4 data bytes")
    refuses(npyload, NPY, npy("{'descr': '<f8', 'fortran_order': True, 'shape': (65536, 65536, 65536, 65536), }"),
      "field 'shape' (65536, 65536, 65536, 65536) holds more elements")
    refuses(npyload, NPY, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"),
      "field 'shape' has a size past 2^63-1")
    refuses(npyload, NPY, "\147NUMPY\2\0" .. string.pack("<I4", 0xffffffff) .. "{}",
      "header length 4294967295 exceeds the limit of 10000 bytes")
    refuses(npyload, NPY, "\147NUMPY\1\0" .. string.pack("<I2", 5000) .. "{}", "header length 5000 runs past the end")
  end)

  it("refuses duplicate, missing and unknown keys", function()
    refuses(npyload, NPY, npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "abcd"),
      'header: duplicate key "descr"')
    refuses(npyload, NPY, npy("{'descr': '<f4', 'shape': (1,), }", "abcd"), 'header: key "fortran_order" is missing')
    refuses(npyload, NPY, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "abcd"),
      'header: unknown key "x"')
    refuses(npyload, NPY, npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "abcd"),
      "field 'fortran_order' must be True or False")
    refuses(npyload, NPY, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1), }", "abcd"),
      "a 1-tuple needs its comma")
  end)

  it("refuses a shape that disagrees with its bytes, naming both", function()
    refuses(npyload, NPY, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", "abcdefgh"),
      "field 'shape' (3) of \"<f4\" needs 12 bytes, the data has 8")
    refuses(npyload, NPY, npy("{'descr': '>i8', 'fortran_order': True, 'shape': (2, 2), }", string.rep("x", 40)),
      "field 'shape' (2, 2) of \">i8\" needs 32 bytes, the data has 40")
  end)

  it("refuses object arrays, other versions and bad magic", function()
    refuses(npyload, NPY, npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "\128\3N."),
      "object arrays (pickles) are refused")
    refuses(npyload, NPY, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "abcd", 4),
      "unsupported version 4.0")
    refuses(npyload, NPY, "\147NUMPZ\1\0\0\0", "not a .npy file (bad magic)")
    refuses(npyload, NPY, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\255", "abcd"),
      "a non-ASCII byte before version 3.0")
  end)
end)

-- ------------------------------------------------------------------ .npz
local npzload = crater.npz.load
local NPZ = "npz.load"

describe("crater.npz.load on hostile files", function()
  memcheck.hooks(before_each, after_each)

  for _, name in ipairs({"stored.npz", "deflated.npz"}) do
    it("refuses every truncation of " .. name, function()
      local good = read(FX .. "/" .. name)
      for n = 0, #good - 1 do refuses(npzload, NPZ, good:sub(1, n)) end
      refuses(npzload, NPZ, good .. "junk", "no zip end record")
    end)

    it("refuses every flip of a byte that matters in " .. name .. ", and loads the same values otherwise", function()
      local good = read(FX .. "/" .. name)
      local reference, refused, crc = npzload(FX .. "/" .. name), 0, 0
      for i = 1, #good do
        local ok, v = try(npzload, flip(good, i, 0x01))
        if ok then same_values(reference, v)
        else
          refused = refused + 1
          if v:find("CRC-32 mismatch", 1, true) then crc = crc + 1 end
        end
      end
      assert.is_true(refused > #good / 2, refused .. " of " .. #good)
      assert.is_true(crc > 0)
    end)
  end

  it("refuses duplicate names", function()
    crater.npz.save(dir .. "/d.npz", {a = crater.zeros(2), b = crater.ones(2)})
    local s = read(dir .. "/d.npz"):gsub("b%.npy", "a.npy")
    refuses(npzload, NPZ, s, 'duplicate member name "a"')
  end)

  it("refuses absurd sizes before allocating", function()
    crater.npz.save(dir .. "/s.npz", {a = crater.zeros(3)})
    local s = read(dir .. "/s.npz")
    local cen = s:find("PK\1\2", 1, true)
    local function patch(str, at, fmt, v) return str:sub(1, at - 1) .. string.pack(fmt, v) .. str:sub(at + string.packsize(fmt)) end
    -- central directory sizes: compressed at +20, uncompressed at +24
    refuses(npzload, NPZ, patch(s, cen + 24, "<I4", 0xfffffff0), "stored with compressed size")
    refuses(npzload, NPZ, patch(patch(s, cen + 20, "<I4", 0xfffffff0), cen + 24, "<I4", 0xfffffff0),
      "run into the central directory")
    crater.npz.save(dir .. "/c.npz", {a = crater.zeros(3)}, {compress = true})
    local c = read(dir .. "/c.npz")
    cen = c:find("PK\1\2", 1, true)
    refuses(npzload, NPZ, patch(c, cen + 24, "<I4", 0xfffffff0), "field 'shape' (3) of \"<f4\" needs 12 bytes")
    -- a member whose .npy header claims 2^62 elements
    local member = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }", "abcd")
    local zip = string.pack("<c4I2I2I2I2I2I4I4I4I2I2", "PK\3\4", 20, 0, 0, 0, 0x21, crater.core.internal.crc32(member), #member,
      #member, 5, 0) .. "a.npy" .. member
    local cd = string.pack("<c4I2I2I2I2I2I2I4I4I4I2I2I2I2I2I4I4", "PK\1\2", 20, 20, 0, 0, 0, 0x21,
      crater.core.internal.crc32(member), #member, #member, 5, 0, 0, 0, 0, 0, 0) .. "a.npy"
    refuses(npzload, NPZ, zip .. cd .. string.pack("<c4I2I2I2I2I4I4I2", "PK\5\6", 0, 0, 1, 1, #cd, #zip, 0),
      "member \"a.npy\": field 'shape' (4611686018427387904) holds more elements")
  end)

  it("refuses a missing name and a foreign file", function()
    assert.error_matches(function() npzload(FX .. "/stored.npz", {"nope"}) end, 'no array named "nope"', 1, true)
    refuses(npzload, NPZ, string.rep("x", 100), "no zip end record")
  end)
end)
