-- The split of the binding (issue #18 item 6): crater.core holds what the public crater API
-- is made of, crater.core.internal the rest (optimizer kernels, file readers, autograd and
-- test hooks), which must not leak into crater.core and from there into scripts.
local crater = require "crater"
local core = require "crater.core"

-- crater.core's names that crater does not export, each with why it is there
local not_exported = {
  internal = "the internals' table",
  capi = "the C interface of separately built modules (crater.distributed)",
}

describe("crater.core", function()
  it("holds only what crater exports, and the names listed here", function()
    local stray = {}
    for k, v in pairs(core) do
      if not rawequal(rawget(crater, k), v) and not not_exported[k] then stray[#stray + 1] = k end
    end
    table.sort(stray)
    assert.same({}, stray)
  end)

  it("has each function crater exports from it", function()
    for _, k in ipairs({ "zeros", "tensor", "grad", "no_grad", "enable_grad", "manual_seed", "randperm",
      "register_hook", "retain_grad", "memory", "set_num_threads", "clock", "add", "matmul", "sum" }) do
      assert.is_function(core[k], k)
      assert.equal(core[k], crater[k], k)
    end
  end)

  it("leaves crater.fuse's entry points and the tensor metatable to core.internal", function()
    for _, k in ipairs({ "fuse_compile", "fuse_new", "fuse_sum", "fuse_ops", "fuse_super", "fuse_maxreg",
      "Tensor_mt", "version" }) do
      assert.is_nil(rawget(core, k), k)
      assert.is_not_nil(core.internal[k], k)
    end
    assert.equal(getmetatable(crater.zeros(1)), core.internal.Tensor_mt)
  end)
end)

describe("crater.core.internal", function()
  it("is the module crater.core.internal", function()
    assert.equal(core.internal, require "crater.core.internal")
  end)

  -- one or more from each binding file: loptim.c, ldata.c, lautograd.c, the op table
  for _, k in ipairs({ "adam_step", "sgd_step", "sum_squares", "clear_grads", "read_file", "write_atomic",
    "fail_io", "function_record", "fail_alloc", "backward", "bytes", "im2col", "check_list" }) do
    it("has " .. k .. ", which neither crater.core nor crater has", function()
      assert.is_function(core.internal[k])
      assert.is_nil(rawget(core, k))
      assert.is_nil(rawget(crater, k))
    end)
  end

  it("is what the modules use: a checkpoint round trip and an Adam step still work", function()
    local path = os.tmpname()
    crater.save(path, { w = crater.tensor({ 1, 2 }) })
    assert.same({ 1, 2 }, crater.load(path).w:totable())
    os.remove(path)
    local p = crater.tensor({ 1 }, { requires_grad = true })
    local opt = crater.optim.Adam({ p }, { lr = 0.5 })
    local loss = (p * p):sum()
    loss:backward()
    opt:step()
    assert.near(0.5, p:get(1), 1e-6)   -- Adam's first step moves by lr * sign(g)
  end)
end)

describe("the public API (/work/shared/API.md)", function()
  it("still has its names in crater", function()
    for _, k in ipairs({ "tensor", "zeros", "grad", "no_grad", "enable_grad", "manual_seed", "save", "load" }) do
      assert.is_function(crater[k], k)
    end
    for _, k in ipairs({ "nn", "optim", "lab", "data", "autograd" }) do assert.is_table(crater[k], k) end
    assert.is_function(crater.autograd.gradcheck)
    assert.is_not_nil(crater.data.DataLoader)
    assert.is_function(crater.data.fashion_mnist)
    assert.is_function(crater.nn.utils.clip_grad_norm_)
    assert.is_table(crater.nn.init)
    assert.is_not_nil(crater.optim.Optimizer)
    assert.is_not_nil(crater.optim.lr_scheduler.LRScheduler)
  end)
end)
