-- Bad files for the two readers: the checkpoint reader (crater.load) and the IDX reader
-- (crater.data's Fashion-MNIST files).  Every flip of a header byte and of a sample of the
-- payload, every truncation, appended junk and length fields of 2^64-1 must be refused
-- with an error saying what is wrong, never a crash, a huge allocation or a wrong value.
local crater = require "crater"
local memcheck = require "spec.helpers.memcheck"
local ckpt = require "crater.checkpoint"

local core = crater.core

local function write(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end

-- a body with a valid header and checksum, so the decoder itself sees it
local function wrap(body)
  return string.pack("<c8I4I8I4", "CRATER\0\1", 1, #body, core.internal.crc32(body)) .. body
end

local function refuses(s, pattern)
  local ok, err = pcall(ckpt.loads, s)
  assert.is_false(ok, "accepted a bad checkpoint")
  assert.is_string(err)
  if pattern then assert.matches(pattern, err) end
  return err
end

describe("the checkpoint reader", function()
  memcheck.hooks(before_each, after_each)
  local good
  setup(function()
    good = ckpt.dumps({w = crater.tensor({{1, 2}, {3, 4}}), i = crater.tensor({5}, {dtype = "int64"}),
                       name = "net", epoch = 3, lr = 0.5, ok = true, list = {1, 2}})
  end)

  it("refuses every flip of every header byte, naming the field", function()
    local fields = {
      {1, 8, "not a crater checkpoint %(bad magic%)"},
      {9, 12, "unsupported checkpoint format version"},
      {13, 20, "checkpoint %("},   -- truncated (length too big) or bytes after the end (too small)
      {21, 24, "corrupt checkpoint %(checksum mismatch%)"},
    }
    for _, f in ipairs(fields) do
      for i = f[1], f[2] do
        for _, mask in ipairs({0x01, 0x80, 0xff}) do
          local s = good:sub(1, i - 1) .. string.char(good:byte(i) ~ mask) .. good:sub(i + 1)
          refuses(s, f[3])
        end
      end
    end
  end)

  it("refuses every flip of a payload byte (the checksum catches it)", function()
    for i = 25, #good do
      local s = good:sub(1, i - 1) .. string.char(good:byte(i) ~ 0x10) .. good:sub(i + 1)
      refuses(s, "checksum mismatch")
    end
  end)

  it("decodes or refuses every payload flip that comes with a valid checksum", function()
    local body = good:sub(25)
    for i = 1, #body do
      for _, mask in ipairs({0x01, 0x40, 0xff}) do
        local b = body:sub(1, i - 1) .. string.char(body:byte(i) ~ mask) .. body:sub(i + 1)
        local ok, err = pcall(ckpt.loads, wrap(b))
        if not ok then assert.matches("^corrupt checkpoint %(", err) end
      end
    end
  end)

  it("refuses every truncation", function()
    for n = 0, #good - 1 do
      refuses(good:sub(1, n), n < 6 and "checkpoint" or "^truncated checkpoint")
    end
  end)

  it("refuses appended junk", function()
    refuses(good .. "\0", "^corrupt checkpoint %(1 bytes after the end%)")
    refuses(good .. good, "bytes after the end")
  end)

  it("refuses length fields of 2^64-1 before sizing anything from them", function()
    local max = string.pack("<I8", -1)   -- 0xffffffffffffffff
    refuses(good:sub(1, 12) .. max .. good:sub(21), "^truncated checkpoint %(%d+ of 18446744073709551615 body bytes%)")
    refuses(wrap("s" .. max .. "abc"), "^corrupt checkpoint %(string of 18446744073709551615 bytes%)")
    refuses(wrap("T" .. max), "^corrupt checkpoint %(table of 18446744073709551615 pairs%)")
    refuses(wrap("t\0\0\1" .. max), "^corrupt checkpoint %(tensor size 18446744073709551615%)")
  end)

  it("refuses tensor sizes whose product passes the file (no overflow to a small count)", function()
    -- 8 dims of 2^16 make 2^128 elements; modulo 2^64 that would be 0
    local s = "t\0\0\8" .. string.rep(string.pack("<i8", 65536), 8)
    refuses(wrap(s .. string.rep("\0", 70000)), "^corrupt checkpoint %(tensor")
  end)

  it("refuses unknown tags and dtypes and cycles of depth", function()
    refuses(wrap("x"), "unknown tag 0x78")
    refuses(wrap("t\7\0\0"), "unknown dtype code 7")
    refuses(wrap(string.rep("T" .. string.pack("<I8", 1) .. "i" .. string.pack("<i8", 1), 300)),
      "nested too deeply")
  end)

  it("names the file when crater.load refuses it", function()
    local p = os.tmpname()
    write(p, good:sub(1, 30))
    local ok, err = pcall(crater.load, p)
    os.remove(p)
    assert.is_false(ok)
    assert.matches("load: " .. p .. ": truncated checkpoint", err, 1, true)
  end)
end)

describe("the IDX reader", function()
  memcheck.hooks(before_each, after_each)
  local p = os.tmpname()
  teardown(function() os.remove(p) end)

  -- a 3-record IDX file of 2x2 images
  local head = "\0\0\8\3" .. string.pack(">I4I4I4", 3, 2, 2)
  local data = string.rep("\1\2\3\4", 3)
  local good = head .. data

  local function read_plain(s)
    write(p, s)
    return pcall(core.internal.idx_read, p, "float32", 1, 0)
  end
  local function read_gz(s)
    core.internal.gz_write(p, s)
    return pcall(core.internal.idx_read, p, "float32", 1, 0)
  end

  it("reads the good file both ways", function()
    for _, read in ipairs({read_plain, read_gz}) do
      local ok, t = read(good)
      assert.is_true(ok, t)
      assert.same({3, 2, 2}, t:shape())
      assert.same({{3, 4}, {1, 2}}, {{t:get(1, 2, 1), t:get(1, 2, 2)}, {t:get(3, 1, 1), t:get(3, 1, 2)}})
    end
  end)

  it("refuses every flip of every header byte", function()
    for _, read in ipairs({read_plain, read_gz}) do
      for i = 1, #head do
        for _, mask in ipairs({0x01, 0x80, 0xff}) do
          local s = good:sub(1, i - 1) .. string.char(good:byte(i) ~ mask) .. good:sub(i + 1)
          local ok, err = read(s)
          -- a flip that shrinks a size leaves a longer file; one that grows it, a short one
          assert.is_false(ok, "accepted header flip at byte " .. i)
          assert.matches("idx_read: " .. p .. ": ", err, 1, true)
        end
      end
    end
  end)

  it("refuses every truncation and appended junk", function()
    for _, read in ipairs({read_plain, read_gz}) do
      for n = 0, #good - 1 do
        local ok, err = read(good:sub(1, n))
        assert.is_false(ok)
        assert.matches(n < 4 and "not an IDX file" or n < #head and "truncated IDX header"
          or "promises 12 data bytes", err)
      end
      local ok, err = read(good .. "x")
      assert.is_false(ok)
      assert.matches("longer than its header says", err)
    end
  end)

  it("checks declared sizes against the file before allocating (no gzip bomb)", function()
    local before = crater.memory().peak_bytes
    crater.reset_peak_memory()
    -- 4 dims of 2^15: 2^60 elements promised by a file of 20 bytes
    local ok, err = read_plain("\0\0\8\4" .. string.pack(">I4I4I4I4", 32768, 32768, 32768, 32768))
    assert.is_false(ok)
    assert.matches("exceeds the limit", err)
    -- under the cap but far more than the file holds, plain and gzip
    ok, err = read_plain("\0\0\8\1" .. string.pack(">I4", 1000000) .. "abc")
    assert.is_false(ok)
    assert.matches("promises 1000000 data bytes, more than a plain file of 11 bytes can hold", err, 1, true)
    ok, err = read_gz("\0\0\8\1" .. string.pack(">I4", 100000000) .. "abc")
    assert.is_false(ok)
    assert.matches("promises 100000000 data bytes, more than a gzip file of", err, 1, true)
    assert.is_true(crater.memory().peak_bytes - crater.memory().bytes < 4096, "allocated for a lying header")
    assert.is_true(before >= 0)
  end)

  it("refuses corrupt gzip data with zlib's reason", function()
    local gz = p .. ".gz"
    core.internal.gz_write(gz, good)
    local f = assert(io.open(gz, "rb"))
    local s = f:read("a")
    f:close()
    write(p, s:sub(1, 12) .. string.char(s:byte(13) ~ 0xff) .. s:sub(14))
    os.remove(gz)
    local ok, err = pcall(core.internal.idx_read, p, "float32", 1, 0)
    assert.is_false(ok)
    assert.matches("idx_read: " .. p .. ": ", err, 1, true)
  end)
end)
