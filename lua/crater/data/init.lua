--- crater.data: datasets and batching.  fashion_mnist reads Debian's dataset-fashion-mnist
-- files (IDX, gzip) in C; DataLoader cuts tensors into (optionally shuffled) batches; csv
-- reads a numeric CSV file into a tensor.
local internal = require("crater.core").internal

local data = {}
data.DataLoader = require "crater.data.loader"
data.DistributedSampler = require "crater.data.sampler"

local DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"

local function exists(path)
  return internal.file_kind(path) ~= nil   -- stat, never open: a FIFO would block
end

-- The path of an IDX file in dir, gzipped or not; nil when neither exists.
local function idx_path(dir, name)
  for _, p in ipairs({ dir .. "/" .. name .. ".gz", dir .. "/" .. name }) do
    if exists(p) then return p end
  end
end

--- Loads the Fashion-MNIST training (60000) or test (10000) set.
-- @param split "train" (default) or "test"
-- @tparam[opt="/usr/share/datasets/fashion-mnist"] string dir directory holding
-- train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and
-- t10k-labels-idx1-ubyte.gz (as installed by the Debian package dataset-fashion-mnist)
-- @return images (N x 784 float32 in [0, 1]) and labels (N int64, 1-based: 1 = T-shirt/top ... 10 = Ankle boot)
-- @usage local x, y = crater.data.fashion_mnist("train")
function data.fashion_mnist(split, o)
  split = split or "train"
  if o ~= nil and type(o) ~= "table" then error("fashion_mnist: options must be a table, got " .. type(o), 2) end
  local dir = (o and o.dir) or DEFAULT_DIR
  if type(dir) ~= "string" then error("fashion_mnist: dir must be a string, got " .. type(dir), 2) end
  local ok_path, msg = pcall(internal.check_path, dir, "fashion_mnist")
  if not ok_path then error(msg, 2) end
  local prefix = ({ train = "train", test = "t10k" })[split]
  if prefix == nil then
    error("fashion_mnist: split must be 'train' or 'test', got '" .. tostring(split) .. "'", 2)
  end
  local ipath = idx_path(dir, prefix .. "-images-idx3-ubyte")
  local lpath = idx_path(dir, prefix .. "-labels-idx1-ubyte")
  if ipath == nil or lpath == nil then
    local what = (ipath == nil) and "images" or "labels"
    error(string.format("fashion_mnist: no %s %s file (%s-%s-idx%d-ubyte.gz) in %s; "
      .. "install the Debian package dataset-fashion-mnist (apt install dataset-fashion-mnist) "
      .. "or pass {dir=} naming a directory that holds the IDX files", split, what, prefix, what,
      what == "images" and 3 or 1, dir), 2)
  end
  local cap = 100000 * 28 * 28
  local ok, images = pcall(internal.idx_read, ipath, "float32", 1 / 255, 0, cap)
  if not ok then error("fashion_mnist: " .. tostring(images):gsub("^idx_read: ", ""), 2) end
  local ok2, labels = pcall(internal.idx_read, lpath, "int64", 1, 1, cap)
  if not ok2 then error("fashion_mnist: " .. tostring(labels):gsub("^idx_read: ", ""), 2) end
  local s = images:shape()
  if #s ~= 3 or s[2] ~= 28 or s[3] ~= 28 then
    error("fashion_mnist: " .. ipath .. " holds images of shape {" .. table.concat(s, ",")
      .. "}, expected {N,28,28}", 2)
  end
  if labels:dim() ~= 1 or labels:size(1) ~= s[1] then
    error(string.format("fashion_mnist: %s holds %d labels for %d images", lpath, labels:size(1), s[1]), 2)
  end
  if labels:max():item() > 10 then
    error("fashion_mnist: " .. lpath .. " holds a label above 9; not a Fashion-MNIST label file", 2)
  end
  return images:view(s[1], 784), labels
end

--- The Fashion-MNIST class names, indexed by 1-based label.
data.fashion_mnist_classes = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
  "Shirt", "Sneaker", "Bag", "Ankle boot" }

--- Reads a numeric CSV file (comma separated, every row the same number of fields) into a
-- (rows, cols) tensor, parsing in C.
-- @tparam[opt=false] boolean header whether the first line holds column names
-- @tparam[opt="float32"] string dtype "float32" or "float64"
-- @return the tensor, and the list of column names when header is set
-- @usage local t, names = crater.data.csv("runs.csv", {header = true})
function data.csv(path, o)
  if type(path) ~= "string" then error("csv: path must be a string, got " .. type(path), 2) end
  if o ~= nil and type(o) ~= "table" then error("csv: options must be a table, got " .. type(o), 2) end
  o = o or {}
  local names
  if o.header then
    local ok, head = pcall(internal.read_file, path, "csv", 1 << 20, true)   -- a header line is short
    if not ok then error(head, 2) end
    local line = head:match("^[^\n]*")
    names = {}
    for field in (line:gsub("\r$", "") .. ","):gmatch("([^,]*),") do
      names[#names + 1] = field:match("^%s*\"?(.-)\"?%s*$")
    end
  end
  local ok, t = pcall(internal.csv_read, path, o.header and 1 or 0)
  if not ok then error((tostring(t):gsub("^[^:]*:%d+: ", "")), 2) end
  local dtype = o.dtype or "float32"
  if dtype ~= "float64" then t = t:to(dtype) end
  return t, names
end

return data
