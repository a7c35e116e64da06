--- `make bench-instr`: instructions per step of the small-op loop, counted by callgrind.
-- Wall time on these shared machines moves by 1.6x between runs; an instruction count does
-- not, so this is the figure the small-op work is judged by. Each workload runs twice under
-- `valgrind --tool=callgrind`, for N1 and N2 iterations; (Ir(N2) - Ir(N1)) / (N2 - N1) is
-- the cost of one iteration with start-up removed and the collector's work amortised.
-- The Rosenbrock step is also run cut short after each phase, so the differences say where
-- its instructions go; the collector's and the finalisers' share come from callgrind's
-- inclusive counts of lua_gc and the box finaliser.
-- Runs are made repeatable (see FIXED below): the same build gives the same counts.
-- The build must not use AVX-512 (valgrind cannot decode it): the Makefile builds
-- build-v3 with -march=x86-64-v3.
-- Usage: build-v3/crater examples/bench/instr.lua [--n1 2000] [--n2 20000]
--        build-v3/crater examples/bench/instr.lua --work <workload> <iterations>
local crater = rawget(_G, "crater") or require "crater"

-- The workloads. Each returns a function that runs n iterations.
local work = {}

local function rosenbrock(phases)
  return function(n)
    local x = crater.tensor({ -1.5, 2 }, { requires_grad = true })
    local opt = crater.optim.Adam({ x }, { lr = 1e-3 })
    for _ = 1, n do
      local f = (1 - x[1]) ^ 2 + 100 * (x[2] - x[1] ^ 2) ^ 2
      if phases > 1 then f:backward() end
      if phases > 2 then opt:step() end
      if phases > 3 then opt:zero_grad() end
    end
  end
end
work.forward, work.backward, work.adam, work.rosenbrock = rosenbrock(1), rosenbrock(2), rosenbrock(3), rosenbrock(4)

function work.add2(n)
  local a, b = crater.tensor { 1, 2 }, crater.tensor { 3, 4 }
  for _ = 1, n do local _ = a + b end
end

function work.add2_grad(n)
  local a, b = crater.tensor({ 1, 2 }, { requires_grad = true }), crater.tensor { 3, 4 }
  for _ = 1, n do local _ = a + b end
end

-- Lua's share of add2 (instr_floor.c, built next to the exe): the metamethod call alone, and
-- the call making a box-sized userdata
local function floor(kind)
  return function(n)
    package.cpath = arg[-1]:match("^(.-)[^/]*$") .. "?.so;" .. package.cpath
    local make = require("instr_floor")[kind]
    local a, b = make(), make()
    for _ = 1, n do local _ = a + b end
  end
end
work.floor_call, work.floor_box = floor("call"), floor("box")

-- crater.fuse's VM against the built-in kernel: one Adam update of E elements per iteration,
-- the VM's program written in the kernel's order (common.lua's bench.fuse_adam)
local E = 65536
local function adam_tensors()
  crater.manual_seed(1)
  return crater.randn(E), crater.randn(E) * 1e-3, crater.zeros(E), crater.zeros(E)
end
function work.fuse_vm(n)
  local bench = dofile(arg[0]:match("^(.-)[^/]*$") .. "common.lua")
  local adam = crater.fuse(bench.fuse_adam, {writes = {"p", "m", "v"}})
  local p, g, m, v = adam_tensors()
  for _ = 1, n do adam(p, g, m, v, -1e-3, 0.9, 0.999, 1e-8, 0.5) end
end
function work.adam_kernel(n)
  local p, g = adam_tensors()
  p.requires_grad = true
  p.grad = g
  local opt = crater.optim.Adam({ p }, { lr = 1e-3 })   -- one kernel call per step; E makes the Lua path negligible
  for _ = 1, n do opt:step() end
end

if arg[1] == "--work" then
  crater.set_num_threads(1)
  work[arg[2]](math.tointeger(arg[3]))
  return
end

-- 18,000 iterations apart: the collector runs at points that move with any change to the
-- code or its allocations, and over 2,000 iterations one collection more or less moved a
-- step's count by some hundreds; over 18,000 it moves it by a few tens
local opts = { n1 = 2000, n2 = 20000 }
local fuse_only = arg[1] == "--fuse"
for i = fuse_only and 2 or 1, #arg, 2 do
  local k = arg[i]:match("^%-%-(%w+)$")
  if not (k and opts[k] and math.tointeger(arg[i + 1])) then
    error("instr.lua: usage: instr.lua [--n1 N] [--n2 N]", 0)
  end
  opts[k] = math.tointeger(arg[i + 1])
end
assert(opts.n2 > opts.n1, "instr.lua: --n2 must exceed --n1")

local EXE, SCRIPT = arg[-1], arg[0]
local OUT = os.tmpname()
-- One count per build: no address randomisation, and Lua's hash seed fixed by a time()
-- that answers a constant (fixed_time.c, built by `make bench-instr` next to the exe).
local SHIM = EXE:match("^(.-)[^/]*$") .. "fixed_time.so"
local FIXED, shim = "", io.open(SHIM)
if shim then shim:close() end
if shim and os.execute("setarch -R true >/dev/null 2>&1") then
  FIXED = "LD_PRELOAD=" .. SHIM .. " setarch -R "
else
  io.stderr:write("instr.lua: no " .. SHIM .. " or setarch: counts move by some hundreds between runs\n")
end

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local s = p:read("a")
  p:close()
  return s
end

-- Total instructions of one run, and the inclusive counts of the named functions.
local function count(name, n, fns)
  sh(string.format("%svalgrind --tool=callgrind --callgrind-out-file=%s %s %s --work %s %d",
    FIXED, OUT, EXE, SCRIPT, name, n))
  local ann = sh("callgrind_annotate --inclusive=yes --threshold=100 " .. OUT)
  os.remove(OUT)
  local total = ann:match("([%d,]+) %S* *PROGRAM TOTALS")
  assert(total, "instr.lua: callgrind gave no total (is valgrind installed?)\n" .. ann)
  local function num(s) return tonumber((s:gsub(",", ""))) end
  local by = {}
  for _, f in ipairs(fns or {}) do
    by[f] = 0
    -- -flto's clones (ct_record.constprop.0, read_fields.lto_priv.0) count as the function
    for _, tail in ipairs({ " ", "%.[%w_.]+ " }) do
      for c in ann:gmatch("\n%s*([%d,]+)[^\n]-:" .. f .. tail) do by[f] = by[f] + num(c) end
    end
  end
  return num(total), by
end

-- Instructions per iteration of a workload, and of the named functions within it.
local function per_iter(name, fns)
  local t1, f1 = count(name, opts.n1, fns)
  local t2, f2 = count(name, opts.n2, fns)
  local d = opts.n2 - opts.n1
  local by = {}
  for f in pairs(f1) do by[f] = (f2[f] - f1[f]) / d end
  return (t2 - t1) / d, by
end

local function report(row, v, unit)
  print(string.format("BENCH instr.%s %.0f %.0f %.0f %s", row, v, v, v, unit))
  io.stdout:flush()
end

if fuse_only then   -- fuse_step.lua's note: instructions per element, Adam on 64K floats
  opts.n1, opts.n2 = 10, 30
  local vm, kernel = per_iter("fuse_vm") / E, per_iter("adam_kernel") / E
  for row, v in pairs({fuse_vm = vm, fuse_adam_kernel = kernel}) do
    print(string.format("BENCH instr.%s %.3g %.3g %.3g instr/elt", row, v, v, v))
  end
  print(string.format("# fuse: Adam on float32, instructions per element (callgrind, x86-64-v3): the VM %.1f, "
    .. "the built-in kernel %.1f (%.1fx)", vm, kernel, vm / kernel))
  return
end

local step, by = per_iter("rosenbrock",
  { "ct_lua_newbox", "lua_gc", "t_gc", "ct_record", "t_backward", "kernel_call", "read_fields" })
report("rosenbrock", step, "instr/step")
local fwd, bwd, adam = per_iter("forward"), per_iter("backward"), per_iter("adam")
print(string.format("# rosenbrock step: forward (10 recorded ops) %.0f, backward %.0f, " ..
  "Adam step %.0f, zero_grad %.0f instructions", fwd, bwd - fwd, adam - bwd, step - adam))
-- boxes: ct_lua_newbox inclusive, with the collector steps crater runs from it (lua_gc) and
-- the releases of the tensors of boxes freed since; finalisers: only boxes holding hooks have
-- one (a guard), none here
print(string.format("# within it: boxes %.0f (of it crater's collector steps %.0f), finalisers %.0f, " ..
  "graph recording (ct_record) %.0f, t_backward %.0f, Adam's kernel call %.0f (of it named field " ..
  "reads %.0f), so the optimizer's Lua around it %.0f", by.ct_lua_newbox, by.lua_gc, by.t_gc, by.ct_record,
  by.t_backward, by.kernel_call, by.read_fields, adam - bwd - by.kernel_call))
local add2 = per_iter("add2")
report("add2", add2, "instr/op")
report("add2_grad", per_iter("add2_grad"), "instr/op")
local call, box = per_iter("floor_call"), per_iter("floor_box")
print(string.format("# add2's floor in Lua (instr_floor.c): the __add call alone %.0f, the call making a " ..
  "box-sized userdata (allocation, metatable, collection) %.0f; crater's own share of add2 %.0f", call, box,
  add2 - box))
