-- Hostile files (issue #17, class 7): crater.save never replaces a device, FIFO or
-- directory; the gzip reader requires its trailer; an empty CSV field is an error naming
-- its own line and column.  Special files are made in a private temp dir, never /dev.
local crater = require "crater"
local core = crater.core

local function write(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end
local function read(p) local f = assert(io.open(p, "rb")); local s = f:read("a"); f:close(); return s end

describe("crater.save onto a special file", function()
  local dir
  setup(function() dir = io.popen("mktemp -d"):read("l") end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  local function kind(p) return io.popen("stat -c %F '" .. p .. "'"):read("l") end

  it("refuses a FIFO, a device node and a directory and leaves them as they were", function()
    assert.is_true(os.execute("mkfifo '" .. dir .. "/fifo'"))
    assert.is_true(os.execute("mkdir '" .. dir .. "/sub'"))
    local cases = {{"fifo", "a FIFO", "fifo"}, {"sub", "a directory", "directory"}}
    if os.execute("mknod '" .. dir .. "/dev' c 1 3 2>/dev/null") then
      cases[#cases + 1] = {"dev", "a character device", "character special file"}
    end
    for _, c in ipairs(cases) do
      local p = dir .. "/" .. c[1]
      local ok, err = pcall(crater.save, p, {x = 1})
      assert.is_false(ok)
      assert.matches("save: " .. p .. " is " .. c[2] .. ", not a regular file", err, 1, true)
      assert.matches(c[3], kind(p), 1, true)
    end
    assert.equal("", io.popen("ls -A '" .. dir .. "/sub'"):read("a"))   -- no temp file left inside
  end)

  it("refuses a link to a FIFO, and still replaces a regular file or a new path", function()
    os.execute("ln -s '" .. dir .. "/fifo' '" .. dir .. "/link'")
    local ok, err = pcall(crater.save, dir .. "/link", 1)
    assert.is_false(ok)
    assert.matches("not a regular file", err, 1, true)
    crater.save(dir .. "/new.ct", 1)
    crater.save(dir .. "/new.ct", 2)
    assert.equal(2, crater.load(dir .. "/new.ct"))
  end)
end)

describe("the gzip reader", function()
  local p = os.tmpname()
  teardown(function() os.remove(p) end)
  local gz
  setup(function()
    core.internal.gz_write(p, "\0\0\8\1" .. string.pack(">I4", 4) .. "\1\2\3\4")
    gz = read(p)
  end)
  local function refuses(s, pattern)
    write(p, s)
    local ok, err = pcall(core.internal.idx_read, p, "float32", 1, 0)
    assert.is_false(ok)
    assert.matches(pattern, err, 1, true)
  end

  it("requires the trailer", function()
    for cut = 1, 8 do refuses(gz:sub(1, -1 - cut), "truncated gzip stream") end
  end)

  it("checks the CRC32 and ISIZE", function()
    refuses(gz:sub(1, -9) .. string.char(gz:byte(-8) ~ 1) .. gz:sub(-7), "incorrect data check")
    refuses(gz:sub(1, -2) .. string.char(gz:byte(-1) ~ 1), "incorrect length check")
  end)
end)

describe("the CSV reader on empty fields", function()
  local p = os.tmpname()
  teardown(function() os.remove(p) end)
  local function refuses(s, where)
    write(p, s)
    local ok, err = pcall(core.internal.csv_read, p, 0)
    assert.is_false(ok)
    assert.matches(where .. ": empty field", err, 1, true)
  end

  it("names the line and column of an empty or blank field", function()
    refuses("1, \n2,3\n", "line 1, column 2")   -- strtod would have read the 2 of line 2
    refuses("1,\t\r\n2,3\n", "line 1, column 2")
    refuses("1,2\n,3\n", "line 2, column 1")
    refuses("1,2\n3,4\n5,", "line 3, column 2")
    refuses("1,,2\n", "line 1, column 2")
  end)
end)

describe("loading from a special file", function()
  local dir
  setup(function()
    dir = io.popen("mktemp -d"):read("l")
    assert.is_true(os.execute("mkfifo '" .. dir .. "/fifo'"))   -- opening it for reading would block
    assert.is_true(os.execute("mkdir '" .. dir .. "/sub'"))
    os.execute("ln -s '" .. dir .. "/fifo' '" .. dir .. "/link'")
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  local readers = {
    {"load", function(p) return crater.load(p) end},
    {"csv", function(p) return crater.data.csv(p) end},
    {"csv", function(p) return crater.data.csv(p, {header = true}) end},
    {"idx_read", function(p) return core.internal.idx_read(p, "float32", 1, 0) end},
  }

  it("refuses a FIFO, a link to one and a directory, naming the kind, without blocking", function()
    for _, r in ipairs(readers) do
      for _, c in ipairs({{"fifo", "a FIFO"}, {"link", "a FIFO"}, {"sub", "a directory"}}) do
        local p = dir .. "/" .. c[1]
        local ok, err = pcall(r[2], p)
        assert.is_false(ok)
        assert.matches(r[1] .. ": " .. p .. " is " .. c[2] .. ", not a regular file", err, 1, true)
      end
      local ok, err = pcall(r[2], "/dev/null")   -- read-only use of a device node
      assert.is_false(ok)
      assert.matches("/dev/null is a character device, not a regular file", err, 1, true)
    end
  end)

  it("fashion_mnist looks in a directory holding FIFOs without blocking", function()
    os.execute("mkfifo '" .. dir .. "/train-images-idx3-ubyte.gz' '" .. dir .. "/train-labels-idx1-ubyte.gz'")
    local ok, err = pcall(crater.data.fashion_mnist, "train", {dir = dir})
    assert.is_false(ok)
    assert.matches("fashion_mnist: " .. dir .. "/train-images-idx3-ubyte.gz is a FIFO", err, 1, true)
  end)
end)

describe("crater.load reads only what the header declares", function()
  local p = os.tmpname()
  teardown(function() os.remove(p) end)
  local good = require("crater.checkpoint").dumps({x = 1, s = "abc"})

  it("refuses a file longer than its header declares, naming both sizes", function()
    write(p, good .. string.rep("x", 1000))
    local ok, err = pcall(crater.load, p)
    assert.is_false(ok)
    assert.matches(string.format("load: %s is %d bytes, more than the %d its header declares", p,
      #good + 1000, #good), err, 1, true)
  end)

  it("refuses a header that declares more than the file holds before reading the body", function()
    -- a body length of 2^62 in a 30-byte file: sized from the file, not the header
    write(p, good:sub(1, 12) .. string.pack("<I8", 1 << 62) .. good:sub(21))
    local ok, err = pcall(crater.load, p)
    assert.is_false(ok)
    assert.matches(string.format("truncated checkpoint (%d of 4611686018427387904 body bytes)", #good - 24), err, 1, true)
    write(p, good:sub(1, 10))
    ok, err = pcall(crater.load, p)
    assert.is_false(ok)
    assert.matches("truncated checkpoint (10 bytes, header incomplete)", err, 1, true)
    write(p, good)
    assert.same({x = 1, s = "abc"}, crater.load(p))
  end)
end)

describe("a path with a NUL byte", function()
  local dir
  setup(function() dir = io.popen("mktemp -d"):read("l") end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("is refused by every function that takes a path, and names no other file", function()
    local p = dir .. "/a\0b"
    write(dir .. "/a", "1,2\n")   -- what the truncated C string would name
    local calls = {
      {"save", function() crater.save(p, 1) end},
      {"load", function() crater.load(p) end},
      {"csv", function() crater.data.csv(p) end},
      {"csv", function() crater.data.csv(p, {header = true}) end},
      {"fashion_mnist", function() crater.data.fashion_mnist("train", {dir = p}) end},
      {"idx_read", function() core.internal.idx_read(p, "float32") end},
      {"report", function() require("crater.lab.report").mkdir(p) end},   -- every report goes through it
    }
    for _, c in ipairs(calls) do
      local ok, err = pcall(c[2])
      assert.is_false(ok, c[1])
      assert.matches(c[1] .. ": the path contains a NUL byte (at byte " .. #dir + 3 .. ")", err, 1, true)
    end
    assert.equal("1,2\n", read(dir .. "/a"))   -- untouched by save
  end)
end)

describe("checkpoint nesting", function()
  local p = os.tmpname()
  teardown(function() os.remove(p) end)
  local function nest(depth, key)
    local t = {}
    for _ = 1, depth do t = {[key] = t} end
    return t
  end

  it("has the same limit in save and load: 200 tables round-trip, 201 are refused by both", function()
    crater.save(p, nest(199, "k"))   -- 199 wrappers around the innermost table: 200 tables
    local v, depth = crater.load(p), 1
    while next(v) do v, depth = v.k, depth + 1 end
    assert.equal(200, depth)
    local ok, err = pcall(crater.save, p, nest(200, "k"))
    assert.is_false(ok)
    assert.matches("save: tables nested too deeply (more than 200 levels, at value" .. string.rep(".k", 200) .. ")",
      err, 1, true)
    -- a file holding 201 levels, made by hand, is refused by load
    local body = string.rep(string.pack("<c1I8", "T", 1) .. string.pack("<c1s8", "s", "k"), 201)
      .. string.pack("<c1I8", "T", 0)
    write(p, string.pack("<c8I4I8I4", "CRATER\0\1", 1, #body, core.internal.crc32(body)) .. body)
    ok, err = pcall(crater.load, p)
    assert.is_false(ok)
    assert.matches("tables nested too deeply: more than 200 levels", err, 1, true)
  end)

  it("saving deep tables with long keys costs memory linear in the output", function()
    -- 199 levels of 20,000-byte keys: 4 MB of output.  Building each level's place name
    -- eagerly ("value.k.k...") would allocate 199*200/2 * 20,000 bytes = 398 MB.
    local value = nest(199, string.rep("k", 20000))
    collectgarbage("collect")
    collectgarbage("stop")
    local before = collectgarbage("count")
    local s = require("crater.checkpoint").dumps(value)
    local used = (collectgarbage("count") - before) * 1024
    collectgarbage("restart")
    assert.is_true(#s > 199 * 20000)
    assert.is_true(used < 8 * #s, string.format("%.0f bytes allocated for a %d-byte file", used, #s))
  end)
end)

describe("the gzip reader after a member", function()
  local p = os.tmpname()
  teardown(function() os.remove(p) end)
  local idx = "\0\0\8\1" .. string.pack(">I4", 4) .. "\1\2\3\4"

  local function gz(s)
    core.internal.gz_write(p, s)
    return read(p)
  end

  it("refuses junk after the last member, naming its byte", function()
    local one = gz(idx)
    for _, junk in ipairs({"x", "\0", "\0\0\0\0\0\0\0\0", "garbage after the stream"}) do
      write(p, one .. junk)
      local ok, err = pcall(core.internal.idx_read, p, "float32", 1, 0)
      assert.is_false(ok)
      assert.matches(string.format("junk after the gzip member (byte %d is 0x%02x", #one, junk:byte(1)), err, 1, true)
    end
  end)

  it("reads concatenated members as one stream, as gzip -d does", function()
    local a, b = gz(idx:sub(1, 5)), gz(idx:sub(6))
    write(p, a .. b)
    assert.same({1, 2, 3, 4}, core.internal.idx_read(p, "float32", 1, 0):totable())
    write(p, a .. b:sub(1, 5))   -- a second member cut short
    local ok, err = pcall(core.internal.idx_read, p, "float32", 1, 0)
    assert.is_false(ok)
    assert.matches("truncated gzip stream", err, 1, true)
  end)
end)
