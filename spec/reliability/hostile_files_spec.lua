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
    core.gz_write(p, "\0\0\8\1" .. string.pack(">I4", 4) .. "\1\2\3\4")
    gz = read(p)
  end)
  local function refuses(s, pattern)
    write(p, s)
    local ok, err = pcall(core.idx_read, p, "float32", 1, 0)
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
    local ok, err = pcall(core.csv_read, p, 0)
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
