-- crater.distributed from the outside, in the single-process run of make test: a world of
-- one without mpirun, calls before init and after finalize, and the faults (an uncaught
-- error on one rank, a rank killed by a signal) that must end a whole mpirun job quickly.
-- Each case runs in a child process (build/crater), so MPI never starts inside busted.
local BUILD = os.getenv("CRATER_BUILD") or "build"
local EXE = BUILD .. "/crater"
-- mpirun refuses root without these two; 3 ranks on 2 cores need --oversubscribe.  The
-- sanitizer run preloads its runtime into busted: mpirun itself must not inherit it.
local MPIRUN = "env -u LD_PRELOAD OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " ..
  "timeout 60 mpirun --oversubscribe"

local function script(body)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(body)
  f:close()
  return path
end

-- Runs cmd; returns its output (stdout and stderr), its exit status and the seconds it took.
local function run(cmd)
  local t0 = os.time()
  local p = assert(io.popen(cmd .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("a")
  p:close()
  local status = tonumber(out:match("exit=(%d+)%s*$"))
  return out, status, os.time() - t0
end

describe("crater.distributed without mpirun", function()
  it("is a world of one: rank 0 of 1, and the collectives are identities", function()
    local path = script([[
      local d = require "crater.distributed"
      local r, n = d.init()
      local t = d.all_reduce(crater.tensor({1.5, -2}))
      local g = d.all_gather(crater.tensor({3, 4}, {dtype = "int64"}))
      local s = d.reduce_scatter(crater.tensor({5, 6}, {dtype = "float64"}), {op = "mean"})
      local b = d.broadcast(crater.tensor({7}))
      print(r, n, d.is_main(), t:get(1), t:get(2), table.concat(g:shape(), "x"), g:get(1, 2),
        s:get(1), s:get(2), b:get(1))
    ]])
    local out, status = run(EXE .. " " .. path)
    os.remove(path)
    assert.equal(0, status, out)
    assert.truthy(out:find("0\t1\ttrue\t1.5\t-2.0\t1x2\t4\t5.0\t6.0\t7.0", 1, true), out)
  end)

  it("refuses collectives before init and after finalize", function()
    local path = script([[
      local d = require "crater.distributed"
      print(select(2, pcall(d.all_reduce, crater.zeros(2))))
      print(select(2, pcall(d.rank)))
      print(d.is_initialized())
      print(select(2, pcall(crater.nn.parallel.DistributedDataParallel, crater.nn.Linear(2, 2))))
      d.init(); d.finalize()
      print(select(2, pcall(d.barrier)))
      print(select(2, pcall(d.init)))
    ]])
    local out, status = run(EXE .. " " .. path)
    os.remove(path)
    assert.equal(0, status, out)
    assert.truthy(out:find("all_reduce: crater.distributed.init() has not been called\n", 1, true), out)
    assert.truthy(out:find("rank: crater.distributed.init() has not been called\n", 1, true), out)
    assert.truthy(out:find("false\n", 1, true), out)
    assert.truthy(out:find("DistributedDataParallel: call crater.distributed.init() first", 1, true), out)
    assert.truthy(out:find("barrier: crater.distributed.init() has not been called (or finalize() has)", 1, true), out)
    assert.truthy(out:find("init: crater.distributed was finalized; MPI cannot start again", 1, true), out)
  end)
end)

describe("the command line under mpirun", function()
  it("mpirun -np 3 crater sweep prints the table of the sweep alone, once, and one report", function()
    local dir = os.tmpname()
    os.remove(dir)
    local args = " sweep booth --opt momentum --grid lr=0.001,0.01,0.03 --grid momentum=0.5,0.9 " ..
      "--seeds 0,1 --jitter 0.2 --steps 50 --out " .. dir
    local alone, s1 = run(EXE .. args)
    local spread, s3 = run(MPIRUN .. " -np 3 " .. EXE .. args)
    local f = io.open(dir .. "/report.md")
    assert.equal(0, s1, alone)
    assert.equal(0, s3, spread)
    assert.is_not_nil(f)
    f:close()
    os.execute("rm -rf '" .. dir .. "'")
    local function tbl(s) return s:match("(| setting .-)\n\nreport") end
    assert.is_not_nil(tbl(alone), alone)
    assert.equal(tbl(alone), tbl(spread))
    local _, copies = spread:gsub("| setting |", "")
    assert.equal(1, copies)
  end)
end)

describe("faults under mpirun", function()
  it("an uncaught error on one rank aborts the job, naming the rank and the error", function()
    -- ranks 0 and 2 wait in a collective that rank 1 never reaches
    local path = script([[
      local d = require "crater.distributed"
      local r = d.init()
      if r == 1 then error("boom on purpose") end
      d.all_reduce(crater.zeros(4))
      print("rank " .. r .. " should not get here")
    ]])
    local out, status, took = run(MPIRUN .. " -np 3 " .. EXE .. " " .. path)
    os.remove(path)
    assert.is_true(status ~= 0 and status ~= 124, out)   -- 124: timeout had to end it
    assert.truthy(out:find("crater: rank 1 of 3: [^\n]*boom on purpose"), out)
    assert.is_nil(out:find("should not get here", 1, true), out)
    assert.is_true(took <= 20, "took " .. took .. " s")
  end)

  it("a rank killed by a signal takes the job down within seconds", function()
    local path = script([[
      local d = require "crater.distributed"
      local r = d.init()
      d.barrier()
      if r == 1 then
        local pid = io.open("/proc/self/stat"):read("a"):match("^(%d+)")
        os.execute("kill -9 " .. pid)
      end
      d.all_reduce(crater.zeros(4))   -- ranks 0 and 2 wait here for rank 1 forever
      print("rank " .. r .. " should not get here")
    ]])
    local out, status, took = run(MPIRUN .. " -np 3 " .. EXE .. " " .. path)
    os.remove(path)
    assert.is_true(status ~= 0 and status ~= 124, out)
    assert.truthy(out:find("signal 9", 1, true), out)
    assert.is_nil(out:find("should not get here", 1, true), out)
    assert.is_true(took <= 15, "took " .. took .. " s")
  end)
end)
