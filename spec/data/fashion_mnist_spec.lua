local crater = require "crater"
local core = require "crater.core"

-- Writes a small IDX file: magic 0 0 8 nd, big-endian sizes, bytes.
local function idx_bytes(sizes, bytes)
  local parts = { string.char(0, 0, 8, #sizes) }
  for _, s in ipairs(sizes) do parts[#parts + 1] = string.pack(">I4", s) end
  parts[#parts + 1] = string.char(table.unpack(bytes))
  return table.concat(parts)
end

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

local function write_set(prefix, n, images_extra, labels)
  local img = {}
  for i = 1, n * 784 do img[i] = (i * 7) % 256 end
  core.internal.gz_write(dir .. "/" .. prefix .. "-images-idx3-ubyte.gz", idx_bytes({ n, 28, 28 }, img) .. (images_extra or ""))
  core.internal.gz_write(dir .. "/" .. prefix .. "-labels-idx1-ubyte.gz", idx_bytes({ n }, labels))
end

describe("crater.data.fashion_mnist on generated IDX files", function()
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)   -- os.tmpname's path has no quote

  it("decodes images to [0,1] float32 N x 784 and labels to 1-based int64", function()
    write_set("t10k", 3, nil, { 0, 9, 4 })
    local x, y = crater.data.fashion_mnist("test", { dir = dir })
    assert.same({ 3, 784 }, x:shape())
    assert.equal("float32", x:dtype())
    assert.same({ 1, 10, 5 }, y:totable())
    assert.equal("int64", y:dtype())
    assert.near(7 / 255, x:get(1, 1), 1e-7)
    assert.near(((785 * 7) % 256) / 255, x:get(2, 1), 1e-7)
  end)

  it("refuses a truncated file, naming it", function()
    local full = idx_bytes({ 2, 28, 28 }, { 1, 2, 3 })     -- header promises 1568 bytes
    core.internal.gz_write(dir .. "/train-images-idx3-ubyte.gz", full)
    core.internal.gz_write(dir .. "/train-labels-idx1-ubyte.gz", idx_bytes({ 2 }, { 1, 2 }))
    assert.error_matches(function() crater.data.fashion_mnist("train", { dir = dir }) end,
      "train-images-idx3-ubyte.gz: truncated IDX file (header promises 1568 data bytes, found 3)", 1, true)
  end)

  it("refuses a file longer than its header says", function()
    write_set("train", 1, "extra", { 3 })
    assert.error_matches(function() crater.data.fashion_mnist("train", { dir = dir }) end,
      "IDX file is longer than its header says", 1, true)
  end)

  it("refuses a foreign file and a cut gzip stream", function()
    core.internal.gz_write(dir .. "/train-images-idx3-ubyte.gz", "PK\3\4 this is a zip archive")
    assert.error_matches(function() crater.data.fashion_mnist("train", { dir = dir }) end,
      "not an IDX file (magic bytes 50 4b 03 04)", 1, true)
    -- a gzip file cut in half
    write_set("train", 2, nil, { 1, 2 })
    local path = dir .. "/train-images-idx3-ubyte.gz"
    local f = io.open(path, "rb"); local s = f:read("a"); f:close()
    f = io.open(path, "wb"); f:write(s:sub(1, #s // 2)); f:close()
    assert.error_matches(function() crater.data.fashion_mnist("train", { dir = dir }) end,
      "train-images-idx3-ubyte.gz: ", 1, true)
  end)

  it("refuses images that are not 28x28 and label counts that differ", function()
    core.internal.gz_write(dir .. "/train-images-idx3-ubyte.gz", idx_bytes({ 1, 2, 2 }, { 1, 2, 3, 4 }))
    assert.error_matches(function() crater.data.fashion_mnist("train", { dir = dir }) end,
      "holds images of shape {1,2,2}, expected {N,28,28}", 1, true)
    write_set("train", 2, nil, { 1 })
    core.internal.gz_write(dir .. "/train-labels-idx1-ubyte.gz", idx_bytes({ 1 }, { 1 }))
    assert.error_matches(function() crater.data.fashion_mnist("train", { dir = dir }) end,
      "holds 1 labels for 2 images", 1, true)
  end)

  it("names the Debian package when the directory is missing", function()
    assert.error_matches(function() crater.data.fashion_mnist("train", { dir = dir .. "/nope" }) end,
      "install the Debian package dataset-fashion-mnist", 1, true)
  end)

  it("refuses an unknown split", function()
    assert.error_matches(function() crater.data.fashion_mnist("valid", { dir = dir }) end,
      "fashion_mnist: split must be 'train' or 'test', got 'valid'", 1, true)
  end)

  it("refuses a header whose sizes exceed the cap before allocating", function()
    core.internal.gz_write(dir .. "/big.gz", string.char(0, 0, 8, 2) .. string.pack(">I4>I4", 0x7fffffff, 0x7fffffff))
    assert.error_matches(function() core.internal.idx_read(dir .. "/big.gz", "float32", 1, 0, 1000) end,
      "exceeds the limit of 1000 elements", 1, true)
  end)
end)
