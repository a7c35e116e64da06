-- Writes the fuzzers' seed corpora from real files: spec/fuzz/corpus/idx/ (the first
-- records of Debian's Fashion-MNIST test files, gzip and plain, and its whole test labels) and
-- spec/fuzz/corpus/checkpoint/ (crater.save output for a model, an optimizer and tables).
-- Run from the repository root: lua5.4 spec/fuzz/make_corpus.lua (with build/lib on the cpath).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/lib/?.so;" .. package.cpath
local crater = require "crater"
local ckpt = require "crater.checkpoint"
local dir = "spec/fuzz/corpus/"

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- IDX: keep the header's layout, shrink the first size to k records
local src = "/usr/share/datasets/fashion-mnist/"
for _, c in ipairs({{"t10k-images-idx3-ubyte.gz", 3}, {"t10k-labels-idx1-ubyte.gz", 40}}) do
  local raw = io.popen("gunzip -c " .. src .. c[1]):read("a")
  local nd = raw:byte(4)
  local rec = 1
  for d = 2, nd do rec = rec * string.unpack(">I4", raw, 5 + 4 * (d - 1)) end
  local head = raw:sub(1, 4) .. string.pack(">I4", c[2]) .. raw:sub(9, 4 + 4 * nd)
  local body = raw:sub(4 + 4 * nd + 1, 4 + 4 * nd + c[2] * rec)
  local name = c[1]:gsub("%.gz$", "")
  write(dir .. "idx/" .. name, head .. body)
  crater.core.internal.gz_write(dir .. "idx/" .. name .. ".gz", head .. body)
end

-- checkpoints: the fuzzer reads byte 1 as a mode (even: the rest is a whole file; odd: the
-- rest is a body that gets a valid header and checksum, so mutations reach the decoder)
local function seed(name, value)
  local s = ckpt.dumps(value)
  write(dir .. "checkpoint/" .. name, "\1" .. s:sub(25))
  write(dir .. "checkpoint/whole-" .. name, "\0" .. s)
end
crater.manual_seed(0)
local net = crater.nn.Sequential(crater.nn.Linear(3, 4), crater.nn.ReLU(), crater.nn.Linear(4, 2))
local opt = crater.optim.Adam(net:parameters(), {lr = 0.01})
local x = crater.randn(5, 3)
net(x):sum():backward()
opt:step()
seed("model.ct", net:state_dict())
seed("optim.ct", opt:state_dict())
seed("mixed.ct", {
  a = crater.tensor({{1.5, -2}, {3, 4}}), b = crater.tensor({1e-300, 0.1}, {dtype = "float64"}),
  c = crater.tensor({-3, 2 ^ 40}, {dtype = "int64"}), s = crater.tensor(7), e = crater.zeros(0, 3),
  nested = {list = {1, 2.5, "three", true, false}, [7] = "seven", deep = {{{}}}},
})
seed("scalar.ct", 42)

-- foreign files (interop_fuzz): byte 1 picks the reader (mod 3: safetensors, .npy, .npz);
-- the seeds are the PyTorch/NumPy fixtures of spec/fixtures/gen_interop.py
local fx = "spec/fixtures/interop/"
os.execute("mkdir -p " .. dir .. "interop")
local seeds = {{0, "dtypes.safetensors"}, {0, "mlp_f32.safetensors"}, {1, "f4_v1.npy"}, {1, "f8_fortran.npy"},
               {1, "i8_v2.npy"}, {1, "f2_big.npy"}, {2, "stored.npz"}, {2, "deflated.npz"}}
for _, s in ipairs(seeds) do
  local f = assert(io.open(fx .. s[2], "rb"))
  write(dir .. "interop/" .. s[2], string.char(s[1]) .. f:read("a"))
  f:close()
end
