--- Start-up cost, crater side of `make bench`: the wall time of `crater -e ''` (interpreter
-- start and `require "crater"`) through /bin/sh, minus that of `sh -c true`, and the peak RSS
-- of such an idle process. torch_bench.py measures `python3 -c 'import torch'` the same way.
-- Prints `BENCH startup <median> <min> <max> ms` and `BENCH rss.idle <MiB> <MiB> <MiB> MiB`.
-- Usage: crater examples/bench/startup.lua [--exe build/crater] [--reps 20]
local bench = dofile(arg[0]:match("^(.-)[^/]*$") .. "common.lua")
local o = bench.args({ exe = arg[-1] or "build/crater", reps = 20 })

local function sh(cmd, reps)
  local t = {}
  for i = 1, reps do
    local t0 = bench.clock()
    assert(os.execute(cmd), "startup: command failed: " .. cmd)
    t[i] = bench.clock() - t0
  end
  return t
end

sh("true", 3)
local base = bench.stats(sh("true", 20))
local cmd = string.format("%q -e ''", o.exe)
sh(cmd, 2)
bench.report("startup", bench.map(sh(cmd, o.reps), function(s) return (s - base) * 1e3 end), "ms")

local p = io.popen(string.format("%q -e %q", o.exe,
  "local f = io.open('/proc/self/status'); print(f:read('a'):match('VmHWM:%s*(%d+)')); f:close()"))
local kb = tonumber(p:read("a"))
p:close()
if kb then bench.report("rss.idle", { kb / 1024 }, "MiB") end
