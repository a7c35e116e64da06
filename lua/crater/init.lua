--- crater: tensors, autograd, optimizers and schedulers for Lua 5.4.
-- `local crater = require "crater"` gives the tensor functions (crater.zeros, crater.matmul, ...),
-- autograd (crater.grad, crater.no_grad), and, loaded on first use, crater.nn, crater.optim,
-- crater.data, crater.lab, crater.autograd, crater.save/load, crater.progress, the
-- foreign files crater.safetensors, crater.npy and crater.npz, and crater.distributed
-- (MPI; a module of its own).
-- @module crater
local core = require "crater.core"

local crater = { core = core, _VERSION = "crater 0.1.0" }
-- Internals of the binding (optimizer kernels, file and im2col helpers) stay in crater.core.
local internal = {
  bytes = true, from_bytes = true, check_path = true, read_file = true, file_kind = true, col2im = true,
  im2col = true, crc32 = true, csv_read = true, gz_write = true, idx_read = true, isatty = true,
  write_atomic = true, set_anomaly = true, fail_alloc = true, linear = true,
  max_pool2d = true, avg_pool2d = true, Tensor_mt = true, backward = true, fail_io = true, io_log = true,
  checked_grad = true, clear_grads = true, function_op = true, function_record = true, version = true,
  check_list = true, prodigy_stats = true, lamb_stats = true, lars_norms = true, sum_squares = true,
  adafactor_means = true, adafactor_factored = true, adafactor_factors = true, adafactor_vector = true,
  raw_read = true, raw_peek = true, deflate = true, capi = true, set_data = true,
  queue_callback = true, backward_running = true,
  fuse_ops = true, fuse_maxreg = true, fuse_compile = true, fuse_new = true, fuse_sum = true,
}
for k, v in pairs(core) do
  if not internal[k] and not k:match("_step$") then crater[k] = v end
end

for k, v in pairs(require "crater.tensor") do crater[k] = v end

local submodules = {
  nn = "crater.nn", optim = "crater.optim", data = "crater.data", lab = "crater.lab",
  autograd = "crater.autograd", safetensors = "crater.safetensors", npy = "crater.npy", npz = "crater.npz",
  distributed = "crater.distributed", fuse = "crater.fuse",
}

-- __lazy names the fields __index loads on first use, so that the REPL completes them
setmetatable(crater, {
  __lazy = submodules,
  __index = function(t, k)
    local name = submodules[k]
    if name then
      local m = require(name)
      rawset(t, k, m)
      return m
    end
  end,
})

--- Saves a tensor or a nested table of tensors, numbers, strings and booleans to path, atomically.
-- @param path file name
-- @param value what to save
-- @usage crater.save("model.ct", model:state_dict())
function crater.save(path, value) return require("crater.checkpoint").save(path, value) end

--- Loads what crater.save wrote; a truncated, corrupted or foreign file is an error.
-- @param path file name
-- @usage local sd = crater.load("model.ct")
function crater.load(path) return require("crater.checkpoint").load(path) end

--- A progress bar over a count or an iterable: `for i in crater.progress(100, {desc="train"}) do`.
-- @param n a count or a list
-- @param opts `{desc=}`
function crater.progress(n, opts) return require("crater.progress")(n, opts) end

return crater
