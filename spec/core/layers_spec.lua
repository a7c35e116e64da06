-- The layers of src/ (issue #18): spec/layers.lua, which `make check-layers` runs, passes on
-- the tree and catches each kind of crossing.
local layers = dofile("spec/layers.lua")

describe("check-layers", function()
  it("finds no include that crosses a layer in src/", function()
    assert.are.same({}, layers.check_tree("."))
  end)

  it("refuses an upward include, naming the file, the line and both layers", function()
    assert.are.same({ 'src/core/tensor.c:2: the core layer includes "../autograd/autograd.h" of the tape layer above it' },
      layers.check_file("src/core/tensor.c", '#include "tensor.h"\n#include "../autograd/autograd.h"\n'))
    assert.are.same({ 'src/ops/nn.c:1: the tape layer includes "../optim/optim.h" of the optim layer above it' },
      layers.check_file("src/ops/nn.c", '#include "../optim/optim.h"\n'))
    assert.are.same({ 'src/data/idx.c:1: the data layer includes "../ops/ops.h" of the tape layer above it' },
      layers.check_file("src/data/idx.c", ' # include "../ops/ops.h"\n'))
  end)

  it("refuses Lua's, BLAS's and MPI's headers outside the layers allowed them", function()
    assert.are.same({ "src/core/tensor.c:1: the core layer includes <lua.h>, which only bind and main may" },
      layers.check_file("src/core/tensor.c", "#include <lua.h>\n"))
    assert.are.same({ "src/core/tensor.c:1: the core layer includes <lauxlib.h>, which only bind and main may" },
      layers.check_file("src/core/tensor.c", '#include "lauxlib.h"\n'))
    assert.are.same({ "src/data/csv.c:1: the data layer includes <cblas.h>, which only optim and tape may" },
      layers.check_file("src/data/csv.c", "#include <cblas.h>\n"))
    assert.are.same({ "src/ops/shape.c:1: the tape layer includes <mpi.h>, which only bind may" },
      layers.check_file("src/ops/shape.c", "#include <mpi.h>\n"))
  end)

  it("allows its own layer, the layers below and the C library", function()
    assert.are.same({}, layers.check_file("src/optim/muon.c", '#include <cblas.h>\n#include "kernel.h"\n#include "../ops/ops.h"\n'))
    assert.are.same({}, layers.check_file("src/lua/ltensor.c", '#include "lbind.h"\n#include "../data/data.h"\n#include <lua.h>\n'))
    assert.are.same({}, layers.check_file("src/core/parallel.c", '#include <pthread.h>\n#include "tensor.h"\n'))
    assert.are.same({ "src/weird/x.c: not in a known layer (add its folder to spec/layers.lua)" },
      layers.check_file("src/weird/x.c", ""))
  end)
end)
