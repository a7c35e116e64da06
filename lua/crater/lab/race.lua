--- crater.lab.race: optimizers side by side on a test function, from the same start.
-- Every contestant gets its own copy of the start point (float64), runs `steps` steps
-- (each: zero_grad, loss = f(x), backward, step, then the schedule's step), and has every
-- iterate and loss recorded. A contestant whose loss or iterate becomes NaN or infinite is
-- marked diverged and stops, and so is one whose loss grows past 1e12 times the
-- starting loss (a blow-up that would end in Inf); the race goes on. A contestant that raises is marked with
-- its error; the race goes on.
local check_list = require "crater.list"
local contestants = require "crater.lab.contestants"
local schedules = require "crater.lab.schedule"
local functions = require "crater.lab.functions"

local M = {}

local crater = require "crater"

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

local function all_finite(t)
  for _, v in ipairs(t) do if not finite(v) then return false end end
  return true
end

local function distance(x, minima)
  local best
  for _, m in ipairs(minima) do
    local s = 0
    for i = 1, #x do s = s + (x[i] - m[i]) ^ 2 end
    s = math.sqrt(s)
    if best == nil or s < best then best = s end
  end
  return best
end

local Results = {}
Results.__index = Results
M.Results = Results

local function check_options(o)
  if type(o) ~= "table" then error("race: expects a table of options, got " .. type(o), 3) end
  local known = {fn = 1, start = 1, optimizers = 1, steps = 1, tol = 1, schedule = 1, seed = 1,
                 out = 1, dim = 1, quiet = 1, distributed = 1}
  for k in pairs(o) do
    if not known[k] then error("race: unknown option '" .. tostring(k) .. "'", 3) end
  end
  local steps = o.steps or 500
  if math.type(steps) ~= "integer" or steps < 1 then
    error("race: steps must be a positive integer, got " .. tostring(steps), 3)
  end
  if o.tol ~= nil and (type(o.tol) ~= "number" or o.tol < 0) then
    error("race: tol must be a non-negative number, got " .. tostring(o.tol), 3)
  end
  if o.seed ~= nil and math.type(o.seed) ~= "integer" then
    error("race: seed must be an integer, got " .. tostring(o.seed), 3)
  end
  return steps
end

-- Runs one contestant; returns its record.
local function run_one(c, fn, start, steps, tol, sched, seed)
  sched = c.schedule or sched
  local C = crater
  local rec = {label = c.label, class_name = c.class.__name, preset = c.preset, iterates = {}, losses = {}, lrs = {},
               diverged = false}
  C.manual_seed(seed)
  local x = C.tensor(start, {dtype = "float64", requires_grad = true})
  local opt = contestants.build(c, {x}, "race")   -- bad options are the caller's error
  rec.settings = c.settings
  local t0 = C.clock()
  local ok, err = pcall(function()
    rec.schedule = sched and sched.label
    local s = sched and sched.make(opt, steps)
    local limit      -- "blew up": the loss grew past 1e12 times its start
    local function closure()
      opt:zero_grad()
      local loss = fn.f(x)
      loss:backward()
      return loss
    end
    for k = 1, steps do
      local xk = x:detach():totable()
      rec.iterates[k] = xk
      rec.lrs[k] = opt.param_groups[1].lr
      local loss = opt:step(closure)
      local l = type(loss) == "number" and loss or loss:item()
      rec.losses[k] = l
      limit = limit or 1e12 * math.max(1, math.abs(l))
      if not (finite(l) and all_finite(xk)) or l > limit then
        rec.diverged, rec.diverged_at = true, k - 1
        return
      end
      if s then s:step() end
    end
    local xn = x:detach():totable()
    rec.iterates[steps + 1] = xn
    rec.losses[steps + 1] = C.no_grad(function() return fn.f(x):item() end)
    if not (finite(rec.losses[steps + 1]) and all_finite(xn)) or rec.losses[steps + 1] > limit then
      rec.diverged, rec.diverged_at = true, steps
    end
  end)
  rec.time = C.clock() - t0
  if not ok then rec.error = tostring(err) end
  local n = #rec.losses
  rec.final_loss = rec.losses[n]
  rec.final = rec.iterates[#rec.iterates]
  if rec.final and not rec.diverged then rec.distance = distance(rec.final, fn.minima) end
  if fn.fmin and tol then
    for k, l in ipairs(rec.losses) do
      if l - fn.fmin <= tol then rec.steps_to_tol = k - 1 break end
    end
  end
  rec.best_loss = nil
  for _, l in ipairs(rec.losses) do
    if finite(l) and (rec.best_loss == nil or l < rec.best_loss) then rec.best_loss = l end
  end
  return rec
end

--- Races optimizers on a test function from the same start and returns the results.
-- @tparam string|table fn a name from crater.lab.functions.names() or a function table
--   `{f=, start=, minima=?, fmin=?, window=?}`
-- @tparam[opt=fn.start] table start the starting point (a list of numbers)
-- @tparam table optimizers the contestants: names ("sgd", "momentum", "nag", "adam", ...),
--   `{"adam", lr = 0.01, label = "adam-0.01"}`, optimizer classes made with
--   `crater.optim.Optimizer:extend` (`{Lion, lr = 3e-4}`) or instances (used as templates);
--   a string "sgd,adam" or "all" also works
-- @tparam[opt=500] integer steps optimizer steps per contestant
-- @tparam[opt=1e-4] number tol the race records the first step at which loss - fmin <= tol
-- @tparam[opt=nil] string|table|function schedule an lr schedule (see crater.lab.schedule):
--   "cosine", "step", "exponential", "warmup_cosine", "onecycle", {"StepLR", step_size = ...}
--   or function(opt, total_steps)
-- @tparam[opt=0] integer seed crater.manual_seed before each contestant
-- @tparam[opt=nil] integer dim dimension for n-D functions given by name
-- @tparam[opt=nil] string out a folder: write report.md and the pictures there
-- @tparam[opt=false] boolean quiet do not print where the report went
-- @tparam[opt=true] boolean distributed under mpirun, spread the contestants over the
--   ranks (a dynamic work queue; every rank gets every result, rank 0 writes the report);
--   false runs them all on every rank
-- @return a Results table: `results.contestants[i]` has label, settings, iterates,
--   losses, lrs, final_loss, best_loss, distance, steps_to_tol, diverged, diverged_at,
--   error, time (seconds), rank (the rank that ran it); methods `:table()`, `:report(dir)`, `:plot(dir)`
-- @usage local r = crater.lab.race{fn = "rosenbrock", optimizers = {"sgd", "momentum", {"adam", lr = 0.05}}}
-- print(r:table())
function M.race(o)
  local steps = check_options(o)
  local fn
  if type(o.fn) == "table" then fn = functions.check(o.fn)
  else
    local ok, f = pcall(functions.get, o.fn or "?", {dim = o.dim})
    if not ok then error("race: " .. tostring(f):gsub("^.-functions%.get: ", ""), 2) end
    fn = f
  end
  local start = o.start or fn.start
  if type(start) ~= "table" or check_list(start, "race", "start") ~= fn.dim then
    error(string.format("race: start must be a list of %d numbers", fn.dim), 2)
  end
  for i, v in ipairs(start) do
    if type(v) ~= "number" then error(string.format("race: start[%d] is a %s, not a number", i, type(v)), 2) end
  end
  local ok, list = pcall(contestants.resolve_all, o.optimizers, fn, "race")
  if not ok then error(list, 2) end
  local ok2, sched = pcall(schedules.resolve, o.schedule, "race")
  if not ok2 then error(sched, 2) end
  local tol, seed = o.tol or 1e-4, o.seed or 0
  local r = setmetatable({kind = "race", fn = fn, start = start, steps = steps, tol = tol, seed = seed,
    schedule = sched and sched.label, contestants = {}, version = crater._VERSION,
    date = os.date("!%Y-%m-%d %H:%M:%S UTC")}, Results)
  -- under mpirun the contestants are spread over the ranks (crater.lab.spread)
  local okc, recs, ranks = pcall(require("crater.lab.spread").map, #list,
    function(i) return run_one(list[i], fn, start, steps, tol, sched, seed) end, o)
  if not okc then error(recs, 2) end
  for i, rec in ipairs(recs) do
    -- this rank's own copy when it built the contestant (it may hold functions)
    rec.settings, rec.rank = list[i].settings or rec.settings, ranks[i]
    r.contestants[i] = rec
  end
  return require("crater.lab.report").when_asked(r, o)
end

local function fmt(v, spec)
  if v == nil then return "-" end
  if type(v) == "number" and v ~= v then return "nan" end
  return string.format(spec or "%.4g", v)
end

--- The results as a Markdown table, one row per contestant (best final loss first).
function Results:table()
  local rows = {"| optimizer | final loss | best loss | distance to min | steps to tol | diverged | time (ms) |",
                "|---|---:|---:|---:|---:|---|---:|"}
  local order = {}
  for i, c in ipairs(self.contestants) do order[i] = c end
  local function key(c)
    if c.diverged or c.error or c.final_loss == nil or c.final_loss ~= c.final_loss then return math.huge end
    return c.final_loss
  end
  table.sort(order, function(a, b) return key(a) < key(b) end)
  for _, c in ipairs(order) do
    local div = c.error and ("error: " .. c.error:gsub("|", "/"))
      or (c.diverged and ("yes, at step " .. c.diverged_at) or "no")
    rows[#rows + 1] = string.format("| %s | %s | %s | %s | %s | %s | %.1f |", c.label,
      fmt(c.final_loss, "%.6g"), fmt(c.best_loss, "%.6g"), fmt(c.distance, "%.4g"),
      c.steps_to_tol and tostring(c.steps_to_tol) or (self.fn.fmin and "never" or "-"), div, c.time * 1000)
  end
  return table.concat(rows, "\n")
end

--- Draws the race's pictures into dir (trajectories.png/svg, loss.png/svg, and lr.png/svg
-- when a schedule ran); returns the list of files, or nil and a message without gnuplot.
function Results:plot(dir)
  return require("crater.lab.plot").race(self, dir)
end

--- Writes report.md and the pictures into dir; returns the report's path and, when the
-- pictures could not be drawn, a message saying why.
function Results:report(dir)
  return require("crater.lab.report").race(self, dir)
end

Results.__tostring = Results.table

return M
