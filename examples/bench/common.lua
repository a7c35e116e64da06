--- Helpers shared by the crater side of `make bench`: a wall clock, repeated timing, and the
-- `BENCH <name> <median> <min> <max> <unit>` line that run.lua reads (see run.lua's header).
-- Load it from a bench script with `local bench = dofile(arg[0]:match("^(.-)[^/]*$") .. "common.lua")`.
-- @module bench.common
local crater = rawget(_G, "crater") or require "crater"

local bench = {}

--- Monotonic wall time in seconds: crater.clock when the build has it, else `date +%s%N`
-- (a few milliseconds per read, so callers time batches that last far longer).
-- @treturn number seconds
function bench.clock()
  if crater.clock then return crater.clock() end
  local p = io.popen("date +%s%N")
  local ns = p:read("n")
  p:close()
  return ns * 1e-9
end

--- Median, minimum and maximum of a list of numbers.
-- @tparam {number,...} v the samples (not modified)
-- @treturn number median
-- @treturn number min
-- @treturn number max
function bench.stats(v)
  local s = table.move(v, 1, #v, 1, {})
  table.sort(s)
  local n = #s
  local med = n % 2 == 1 and s[(n + 1) // 2] or 0.5 * (s[n // 2] + s[n // 2 + 1])
  return med, s[1], s[n]
end

--- Prints one result line `BENCH <name> <median> <min> <max> <unit>`.
-- @tparam string name dotted row name without spaces, e.g. "op.add2"
-- @tparam {number,...} v the samples, already in unit
-- @tparam string unit e.g. "us/op", "GB/s", "ms", "samples/s", "MiB"
function bench.report(name, v, unit)
  local med, lo, hi = bench.stats(v)
  print(string.format("BENCH %s %.6g %.6g %.6g %s", name, med, lo, hi, unit))
  io.stdout:flush()
end

--- Times fn: `warmup` untimed calls, then `reps` timed ones.
-- @tparam function fn the work of one repetition (usually a loop over a batch)
-- @tparam[opt=5] integer reps timed repetitions
-- @tparam[opt=1] integer warmup untimed calls first
-- @treturn {number,...} seconds per repetition
function bench.time(fn, reps, warmup)
  for _ = 1, warmup or 1 do fn() end
  local t = {}
  for r = 1, reps or 5 do
    collectgarbage("step")
    local t0 = bench.clock()
    fn()
    t[r] = bench.clock() - t0
  end
  return t
end

--- Maps a list through f: `bench.map(secs, function(s) return 1e3 * s end)`.
-- @tparam {number,...} v list
-- @tparam function f function of one element
-- @treturn {number,...} new list
function bench.map(v, f)
  local r = {}
  for i, x in ipairs(v) do r[i] = f(x) end
  return r
end

--- Peak resident set size of this process in MiB (VmHWM from /proc/self/status), or nil.
-- @treturn number|nil MiB
function bench.peak_rss()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local kb = s:match("VmHWM:%s*(%d+)")
  return kb and tonumber(kb) / 1024
end

--- Reads `--key value` pairs from the script's arguments into a table of defaults.
-- @tparam table defaults option names and default values (numbers are converted)
-- @treturn table the options
function bench.args(defaults)
  local o, argv, i = {}, arg or {}, 1
  for k, v in pairs(defaults) do o[k] = v end
  while i <= #argv do
    local k = argv[i]:match("^%-%-(.+)$")
    if not k or argv[i + 1] == nil then error("bench: bad argument " .. argv[i]) end
    o[k] = type(defaults[k]) == "number" and tonumber(argv[i + 1]) or argv[i + 1]
    i = i + 2
  end
  return o
end

--- A function steps(k) that trains k batches of loader (starting a new epoch when one
-- ends): zero_grad, crit(model(x), y):backward(), step, and a GC step.
function bench.trainer(model, opt, crit, loader)
  local it = loader:iter()
  return function(k)
    for _ = 1, k do
      local xb, yb = it()
      if xb == nil then it = loader:iter(); xb, yb = it() end
      opt:zero_grad()
      crit(model(xb), yb):backward()
      opt:step()
      collectgarbage("step")   -- Lua's GC cannot see tensors' C memory: free last step's graph now
    end
  end
end

--- Adam's update written for crater.fuse, in the order of the built-in kernel
-- (src/optim/adam.c): p + (-(lr/bc1) * m) / (sqrt(v)/sqrt(bc2) + eps), so both give the same
-- bits. fuse_step.lua and instr.lua race it against the kernel.
function bench.fuse_adam(p, g, m, v, nstep, b1, b2, eps, bc2s)
  m = b1 * m + (1 - b1) * g
  v = b2 * v + (1 - b2) * g * g
  p = p + nstep * m / (v:sqrt() / bc2s + eps)
  return p, m, v
end

--- steps Adam-like steps of cls (lr = 1e-3) on the 2-D Rosenbrock function from (-1.5, 2):
-- record f, backward, step, zero_grad, as torch_bench.py does; returns the end point.
-- rosenbrock.lua times it with the built-in Adam, fuse_step.lua races a Lua Adam on it.
function bench.rosenbrock(cls, steps)
  local x = crater.tensor({ -1.5, 2 }, { requires_grad = true })
  local opt = cls({ x }, { lr = 1e-3 })
  for _ = 1, steps do
    local f = (1 - x[1]) ^ 2 + 100 * (x[2] - x[1] ^ 2) ^ 2
    f:backward()
    opt:step()
    opt:zero_grad()
  end
  return x
end

return bench
