--- `crater sweep`: a hyper-parameter sweep on a test function from the command line.
-- Runs crater.lab.sweep and writes report.md and the heat map into the output folder.
-- Under mpirun the settings are spread over the ranks; rank 0 prints and writes.
local race_cli = require "crater.cli.race"
local M = {}

M.usage = [[
usage: crater sweep <function> --grid KEY=V1,V2,... [--grid ...] [options]
       crater sweep <function> --random KEY=log:LO:HI [--random ...] --n N [options]

Sweeps the hyper-parameters of one optimizer on a test function, one race per seed,
and writes report.md and heatmap.png/svg (two grid keys) or sweep.png/svg (one)
into the output folder.

  <function>          rosenbrock beale saddle monkey_saddle himmelblau rastrigin
                      booth ackley styblinski_tang quadratic
  --opt NAME          the optimizer (default sgd), with fixed settings after colons,
                      e.g. sgd:nesterov=true
  --grid KEY=LIST     values of one hyper-parameter, comma separated; every
                      combination of the --grid keys is run
  --random KEY=DIST   log:LO:HI, uniform:LO:HI or a comma list to pick from; with
                      --n draws (default 10)
  --seeds LIST        seeds, comma separated (default 0); mean and std over them
  --steps N           steps per run (default 500)
  --jitter J          move the start by J * randn per seed (default 0)
  --metric NAME       final_loss (default), best_loss or distance
  --tol T, --start X,Y,..., --dim N, --cond C   as in crater race
  --out DIR           output folder (default out/sweep-<function>)
  -h, --help          this text

Under mpirun (mpirun -np 4 crater sweep ...) the settings are spread over the ranks
with a dynamic work queue; rank 0 prints the table and writes the report.

example:
  crater sweep rosenbrock --opt momentum --grid lr=1e-4,3e-4,1e-3 \
      --grid momentum=0.5,0.9,0.99 --seeds 0,1 --steps 300 --out out/sweep
]]

local function fail(msg)
  io.stderr:write("crater sweep: ", msg, "\n(see crater sweep --help)\n")
  return 1
end

local function list_of(s)
  local t = {}
  for w in s:gmatch("[^,]+") do t[#t + 1] = race_cli.value(w) end
  return t
end

--- Parses the words after `crater sweep`; returns the options or raises.
function M.parse(args)
  local o = {grid = nil, random = nil}
  local single = {["--opt"] = 1, ["--seeds"] = 1, ["--steps"] = 1, ["--jitter"] = 1, ["--metric"] = 1,
                  ["--tol"] = 1, ["--start"] = 1, ["--dim"] = 1, ["--cond"] = 1, ["--out"] = 1, ["--n"] = 1}
  local f, i = {}, 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then o.help = true
    elseif a == "--grid" or a == "--random" or single[a] then
      local v = args[i + 1]
      if v == nil then error(a .. " needs a value", 0) end
      if single[a] then f[a:sub(3)] = v
      else
        local k, vals = v:match("^([%w_]+)=(.+)$")
        if not k then error(a .. " takes KEY=VALUES, got '" .. v .. "'", 0) end
        local kind = a:sub(3)
        o[kind] = o[kind] or {}
        if kind == "grid" then o.grid[k] = list_of(vals)
        else
          local d, lo, hi = vals:match("^(%a+):([^:]+):([^:]+)$")
          if d == "log" or d == "uniform" then o.random[k] = {d, tonumber(lo), tonumber(hi)}
          else o.random[k] = list_of(vals) end
        end
      end
      i = i + 1
    elseif a:sub(1, 1) == "-" then error("unknown option " .. a, 0)
    elseif o.fn == nil then o.fn = a
    else error("unexpected argument '" .. a .. "' (one function per sweep)", 0) end
    i = i + 1
  end
  if o.grid and o.random then error("give --grid or --random, not both", 0) end
  local function num(name, int)
    if f[name] == nil then return nil end
    local v = tonumber(f[name])
    if int then v = v and math.tointeger(v) end
    if v == nil then error("--" .. name .. " must be " .. (int and "an integer" or "a number") .. ", got '" .. f[name] .. "'", 0) end
    return v
  end
  o.steps, o.dim, o.n = num("steps", true), num("dim", true), num("n", true)
  o.jitter, o.tol, o.cond = num("jitter"), num("tol"), num("cond")
  if f.seeds then
    o.seeds = {}
    for w in f.seeds:gmatch("[^,]+") do
      local s = math.tointeger(tonumber(w))
      if not s then error("--seeds must be integers separated by commas, got '" .. f.seeds .. "'", 0) end
      o.seeds[#o.seeds + 1] = s
    end
  end
  if f.start then
    o.start = list_of(f.start)
    for _, v in ipairs(o.start) do
      if type(v) ~= "number" then error("--start must be numbers separated by commas, got '" .. f.start .. "'", 0) end
    end
  end
  o.optimizer = f.opt and race_cli.parse_opt(f.opt) or "sgd"
  o.metric, o.out = f.metric, f.out
  return o
end

--- Runs `crater sweep ...`; returns 0 on success, 1 on a usage or run error.
function M.main(args)
  local ok, o = pcall(M.parse, args)
  if not ok then return fail(o) end
  if o.help then io.write(M.usage) return 0 end
  if not o.fn then return fail("name a function, e.g. crater sweep rosenbrock --grid lr=1e-3,1e-2") end
  if not (o.grid or o.random) then return fail("give --grid KEY=V1,V2,... or --random KEY=log:LO:HI") end
  local crater = rawget(_G, "crater") or require "crater"
  local okf, fn = pcall(crater.lab.functions.get, o.fn, {dim = o.dim, cond = o.cond})
  if not okf then return fail((tostring(fn):gsub("^functions%.get: ", ""))) end
  local okd, dist = pcall(require("crater.lab.spread").launched)
  if not okd then return fail(dist) end
  local oks, r = pcall(crater.lab.sweep, {fn = fn, optimizer = o.optimizer, grid = o.grid, random = o.random,
    n = o.n, seeds = o.seeds, steps = o.steps, jitter = o.jitter, metric = o.metric, tol = o.tol, start = o.start})
  if not oks then return fail((tostring(r):gsub("^sweep: ", ""))) end
  if dist and not dist.is_main() then return 0 end   -- rank 0 prints and writes the report
  print(string.format("%s: %d setting(s) x %d seed(s), %s\n", fn.name, #r.specs, #r.seeds, r.metric))
  print(r:table())
  local path, msg = r:report(o.out or ("out/sweep-" .. fn.name:gsub("[^%w_.-]", "_")))
  print("\nreport: " .. path)
  if msg then print(msg) end
  return 0
end

return M
