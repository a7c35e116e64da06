-- I/O faults during crater.save: the n-th write, flush, fsync, close or rename of the
-- atomic writer fails with ENOSPC or EIO (crater.core.internal.fail_io).  Every fault must be a Lua
-- error naming the cause, the previous checkpoint must stay loadable and byte-for-byte
-- unchanged, no temporary file may be left beside it, and a failed fsync is never
-- retried on the same file (nothing is renamed into place after any fault).
local crater = require "crater"
local memcheck = require "spec.helpers.memcheck"

local core = crater.core

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- the names in dir (ls -A), as a list
local function listdir(dir)
  local out = {}
  local p = io.popen("ls -A '" .. dir .. "'")
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

local MESSAGE = {ENOSPC = "No space left on device", EIO = "Input/output error"}

describe("crater.save under I/O faults", function()
  memcheck.hooks(before_each, after_each)
  local dir, path, old_bytes
  -- about 2.4 MiB, so the writer makes three 1 MiB writes
  local function new_value()
    return {w = crater.arange(0, 600000):to("float32"), step = 2, name = "new"}
  end
  local function old_value() return {w = crater.ones(5), step = 1, name = "old"} end

  setup(function()
    dir = io.popen("mktemp -d"):read("l")
    path = dir .. "/ckpt.ct"
  end)
  teardown(function()
    core.internal.fail_io(nil)
    os.execute("rm -rf '" .. dir .. "'")
  end)
  before_each(function()
    crater.save(path, old_value())
    old_bytes = read(path)
  end)

  local function assert_old_intact()
    assert.equal(old_bytes, read(path))
    local v = crater.load(path)
    assert.equal("old", v.name)
    assert.same({1, 1, 1, 1, 1}, v.w:totable())
    assert.same({"ckpt.ct"}, listdir(dir))
  end

  local function fault(n, kind, errname)
    core.internal.fail_io(n, kind, errname)
    local ok, err = pcall(crater.save, path, new_value())
    local log = core.internal.io_log()
    core.internal.fail_io(nil)
    return ok, err, log
  end

  it("writes with the steps w... f s c r d when nothing fails", function()
    crater.save(path, new_value())
    assert.equal("wwwfscrd", core.internal.io_log())
    assert.equal("new", crater.load(path).name)
  end)

  for _, errname in ipairs({"ENOSPC", "EIO"}) do
    for _, case in ipairs({{"write", 3}, {"flush", 1}, {"fsync", 1}, {"close", 1}, {"rename", 1}}) do
      local kind, count = case[1], case[2]
      it(string.format("a failed %s (%s) is an error and keeps the old checkpoint", kind, errname), function()
        for n = 0, count - 1 do
          local ok, err, log = fault(n, kind, errname)
          assert.is_false(ok)
          assert.matches("save: cannot ", err, 1, true)
          assert.matches(MESSAGE[errname], err, 1, true)
          -- the faulted step is the last one: no retry, no rename after it
          local letter = ({write = "w", flush = "f", fsync = "s", close = "c", rename = "r"})[kind]
          assert.equal(letter, log:sub(-1), "steps after a fault: " .. log)
          assert_old_intact()
        end
        crater.save(path, new_value())   -- and the next save works
        assert.equal("new", crater.load(path).name)
      end)
    end
  end

  it("never retries a failed fsync on the same file", function()
    local _, _, log = fault(0, "fsync", "EIO")
    assert.equal("wwwfs", log)   -- the one fsync, then the temporary file is dropped
  end)

  it("fails every step in turn (any kind) until the save goes through", function()
    local n = 0
    while true do
      local ok = fault(n, "any", "EIO")
      if ok then break end
      assert_old_intact()
      n = n + 1
    end
    assert.equal(7, n)   -- three writes, flush, fsync, close, rename; the directory sync is best effort
    assert.equal("new", crater.load(path).name)
  end)

  it("treats a failed directory sync as best effort: the new file is in place", function()
    local ok = fault(0, "dirsync", "EIO")
    assert.is_true(ok)
    assert.equal("new", crater.load(path).name)
    assert.same({"ckpt.ct"}, listdir(dir))
  end)

  it("refuses a path in a missing directory without touching anything", function()
    local ok, err = pcall(crater.save, dir .. "/missing/x.ct", old_value())
    assert.is_false(ok)
    assert.matches("cannot create a temporary file", err, 1, true)
    assert_old_intact()
  end)
end)
