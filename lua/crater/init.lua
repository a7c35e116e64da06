--- crater: tensors, autograd, optimizers and schedulers for Lua 5.4.
-- `local crater = require "crater"` gives the tensor functions (crater.zeros, crater.matmul, ...),
-- autograd (crater.grad, crater.no_grad), and, loaded on first use, crater.nn, crater.optim,
-- crater.data, crater.lab, crater.autograd, crater.save/load, crater.progress, the
-- foreign files crater.safetensors, crater.npy and crater.npz, and crater.distributed
-- (MPI; a module of its own).
-- @module crater
local core = require "crater.core"

local crater = { core = core, _VERSION = "crater 0.1.0" }
-- crater's public functions from crater.core: this list (facts, constructors, settings,
-- autograd), and every row of the op table (src/ops/ops.def: crater.add, crater.sum,
-- crater.matmul, ...) but the internal ones. The binding registers its internals (optimizer
-- kernels, file readers, im2col helpers, autograd and test hooks) in crater.core.internal
-- only, where the Lua modules and specs read them, so that none leaks into crater.
local exports = {
  "Tensor", "arange", "clock", "dim", "dtype", "empty", "enable_grad", "eye", "full", "get",
  "get_default_dtype", "get_num_threads", "grad", "is_contiguous", "is_grad_enabled", "is_tensor",
  "item", "linspace", "manual_seed", "memory", "nelement", "no_grad", "numel", "ones", "rand",
  "randint", "randn", "randperm", "register_hook", "reset_peak_memory", "retain_grad",
  "set_default_dtype", "set_flush_denormal", "set_grad_enabled", "set_num_threads", "shape",
  "size", "stride", "tensor", "totable", "zeros",
}
for _, name in ipairs(exports) do crater[name] = assert(core[name], name) end
for _, op in ipairs(core.internal.ops) do
  if op.kind ~= "internal" then crater[op.name] = core[op.name] end
end
package.loaded["crater.core.internal"] = core.internal

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
