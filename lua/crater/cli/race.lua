--- `crater race`: an optimizer race on a test function from the command line.
-- Runs crater.lab.race and writes report.md and the pictures into the output folder.
local M = {}

M.usage = [[
usage: crater race <function> [options]

Races optimizers from the same start on a test function and writes report.md,
trajectories.png/svg (2-D functions) and loss.png/svg into the output folder.

  <function>          rosenbrock beale saddle monkey_saddle himmelblau rastrigin
                      booth ackley styblinski_tang quadratic
  --opt LIST          optimizers, comma separated (default: all); each a name with
                      optional settings after colons, e.g. adam:lr=0.05:amsgrad=true
                      names: sgd momentum nag adagrad rmsprop adadelta adam adamw
                      amsgrad nadam radam adamax asgd rprop lbfgs (all = every one
                      but amsgrad and lbfgs)
  --steps N           steps per optimizer (default 500)
  --start X,Y,...     starting point (default: the function's classic start)
  --tol T             record the first step where f - f* <= T (default 1e-4)
  --schedule NAME     lr schedule: cosine step exponential warmup_cosine onecycle
  --seed N            crater.manual_seed before each optimizer (default 0)
  --dim N             dimension of n-D functions (rosenbrock rastrigin ackley
                      styblinski_tang quadratic); --cond C for the quadratic
  --out DIR           output folder (default out/race-<function>)
  --show              also draw the loss curves in the terminal
  -h, --help          this text

Without an lr, each optimizer takes the function's suggested lr for its kind.
Under mpirun (mpirun -np 2 crater race ...) the contestants are spread over the
ranks; rank 0 prints the table and writes the report.
Pictures need gnuplot (Debian package gnuplot-nox); without it the numbers and
report.md are still written.

example:
  crater race rosenbrock --opt sgd,momentum,nag,adagrad,rmsprop,adadelta,adam,adamw,nadam \
      --steps 500 --out out/race
]]

local function fail(msg)
  io.stderr:write("crater race: ", msg, "\n(see crater race --help)\n")
  return 1
end

local function value(s)   -- also used by `crater sweep`
  if s == "true" then return true elseif s == "false" then return false end
  if tonumber(s) then return math.tointeger(tonumber(s)) or tonumber(s) end
  if s:find("/", 1, true) then          -- betas=0.9/0.99
    local t = {}
    for w in s:gmatch("[^/]+") do t[#t + 1] = tonumber(w) or w end
    return t
  end
  return s
end

-- "adam:lr=0.05:amsgrad=true" -> {"adam", lr = 0.05, amsgrad = true}
local function parse_opt(word)
  local parts = {}
  for p in word:gmatch("[^:]+") do parts[#parts + 1] = p end
  if #parts == 1 then return parts[1] end
  local spec = {parts[1]}
  for i = 2, #parts do
    local k, v = parts[i]:match("^([%w_]+)=(.+)$")
    if not k then error("bad setting '" .. parts[i] .. "' in '" .. word .. "' (expected key=value)", 0) end
    spec[k] = value(v)
  end
  return spec
end

M.value, M.parse_opt = value, parse_opt

--- Parses the words after `crater race`; returns the options or raises.
function M.parse(args)
  local o = {flags = {}}
  local needs = {["--opt"] = 1, ["--steps"] = 1, ["--start"] = 1, ["--tol"] = 1, ["--schedule"] = 1,
                 ["--seed"] = 1, ["--dim"] = 1, ["--cond"] = 1, ["--out"] = 1}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then o.help = true
    elseif a == "--show" then o.show = true
    elseif needs[a] then
      if args[i + 1] == nil then error(a .. " needs a value", 0) end
      o.flags[a:sub(3)] = args[i + 1]
      i = i + 1
    elseif a:sub(1, 1) == "-" then error("unknown option " .. a, 0)
    elseif o.fn == nil then o.fn = a
    else error("unexpected argument '" .. a .. "' (one function per race)", 0) end
    i = i + 1
  end
  local f = o.flags
  local function int(name)
    if f[name] == nil then return nil end
    local n = math.tointeger(tonumber(f[name]))
    if not n then error("--" .. name .. " must be an integer, got '" .. f[name] .. "'", 0) end
    return n
  end
  o.steps, o.seed, o.dim = int("steps"), int("seed"), int("dim")
  if f.tol then
    o.tol = tonumber(f.tol)
    if not o.tol then error("--tol must be a number, got '" .. f.tol .. "'", 0) end
  end
  if f.cond then
    o.cond = tonumber(f.cond)
    if not o.cond then error("--cond must be a number, got '" .. f.cond .. "'", 0) end
  end
  if f.start then
    o.start = {}
    for w in f.start:gmatch("[^,]+") do
      local v = tonumber(w)
      if not v then error("--start must be numbers separated by commas, got '" .. f.start .. "'", 0) end
      o.start[#o.start + 1] = v
    end
  end
  o.optimizers = {}
  for w in (f.opt or "all"):gmatch("[^,]+") do
    if w == "all" then
      for _, n in ipairs(require("crater.lab.contestants").all()) do o.optimizers[#o.optimizers + 1] = n end
    else
      o.optimizers[#o.optimizers + 1] = parse_opt(w)
    end
  end
  o.schedule, o.out = f.schedule, f.out
  return o
end

--- Runs `crater race ...`; returns 0 on success, 1 on a usage or run error.
function M.main(args)
  local ok, o = pcall(M.parse, args)
  if not ok then return fail(o) end
  if o.help then io.write(M.usage) return 0 end
  if not o.fn then return fail("name a function, e.g. crater race rosenbrock") end
  local crater = rawget(_G, "crater") or require "crater"
  local lab = crater.lab
  local okf, fn = pcall(lab.functions.get, o.fn, {dim = o.dim, cond = o.cond})
  if not okf then return fail((tostring(fn):gsub("^functions%.get: ", ""))) end
  local out = o.out or ("out/race-" .. fn.name:gsub("[^%w_.-]", "_"))
  local okd, dist = pcall(require("crater.lab.spread").launched)   -- under mpirun: spread the race
  if not okd then return fail(dist) end
  local okr, r = pcall(lab.race, {fn = fn, start = o.start, optimizers = o.optimizers, steps = o.steps,
    tol = o.tol, schedule = o.schedule, seed = o.seed, quiet = true})
  if not okr then return fail((tostring(r):gsub("^race: ", ""))) end
  if dist and not dist.is_main() then return 0 end   -- rank 0 prints and writes the report
  print(string.format("%s: %d steps from {%s}\n", fn.name, r.steps, table.concat(r.start, ", ")))
  print(r:table())
  local path, msg = r:report(out)
  print("\nreport: " .. path)
  if msg then print(msg) end
  if o.show then lab.show(r) end
  return 0
end

return M
