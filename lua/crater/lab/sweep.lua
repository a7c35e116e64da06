--- crater.lab.sweep: hyper-parameters over a grid or random draws, with repeated seeds.
-- Each setting becomes a contestant of one race (on a test function) or train race (on a
-- model) per seed; the sweep reports the mean and standard deviation over seeds of a
-- metric, and a heat map when the grid has two hyper-parameters.
local check_list = require "crater.list"
local M = {}

local crater = require "crater"

local function show(v)
  if type(v) == "table" then
    local s = {}
    for i, x in ipairs(v) do s[i] = show(x) end
    return "{" .. table.concat(s, ",") .. "}"
  elseif type(v) == "number" then return string.format("%g", v) end
  return tostring(v)
end

-- The grid's settings in a stable order: keys sorted, the last key varying fastest.
local function grid_settings(grid)
  local keys = {}
  for k, vals in pairs(grid) do
    if type(vals) ~= "table" or #vals == 0 then error("sweep: grid." .. k .. " must be a non-empty list", 0) end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local out = {{}}
  for _, k in ipairs(keys) do
    local nxt = {}
    for _, s in ipairs(out) do
      for _, v in ipairs(grid[k]) do
        local t = {}
        for kk, vv in pairs(s) do t[kk] = vv end
        t[k] = v
        nxt[#nxt + 1] = t
      end
    end
    out = nxt
  end
  return out, keys
end

-- n random settings: each key is {"log", lo, hi}, {"uniform", lo, hi} or a list to pick from.
local function random_settings(space, n, seed)
  local keys = {}
  for k in pairs(space) do keys[#keys + 1] = k end
  table.sort(keys)
  local C = crater
  C.manual_seed(seed)
  local u = C.rand(n * #keys, {dtype = "float64"}):totable()
  local out, j = {}, 0
  for i = 1, n do
    local s = {}
    for _, k in ipairs(keys) do
      j = j + 1
      local d = space[k]
      if d[1] == "log" then s[k] = math.exp(math.log(d[2]) + u[j] * (math.log(d[3]) - math.log(d[2])))
      elseif d[1] == "uniform" then s[k] = d[2] + u[j] * (d[3] - d[2])
      elseif #d > 0 then s[k] = d[math.min(#d, 1 + math.floor(u[j] * #d))]
      else error("sweep: random." .. k .. " must be {\"log\", lo, hi}, {\"uniform\", lo, hi} or a list", 0) end
    end
    out[i] = s
  end
  return out, keys
end

local Result = {}
Result.__index = Result

--- Sweeps hyper-parameters of one optimizer and returns the results.
-- @tparam[opt="sgd"] string|table optimizer the optimizer (a contestant spec)
-- @tparam table grid `{lr = {1e-3, 1e-2}, momentum = {0.8, 0.9}, schedule = {"none", "cosine"}}`
--   (every combination), or
-- @tparam table random `{lr = {"log", 1e-4, 1}, momentum = {"uniform", 0.8, 0.99}}` with `n` draws
-- @tparam[opt=10] integer n random draws
-- @tparam[opt={0}] table seeds the seeds, one run per seed
-- @tparam string|table fn a test function (then steps, start, jitter), or
-- @tparam function model_factory with data, epochs, loss (a model sweep)
-- @tparam[opt=0] number jitter on a test function, the start moves by jitter * randn per seed
-- @tparam[opt="final_loss"] string metric "final_loss", "best_loss", "distance" or "test_accuracy"
-- @tparam[opt=nil] string out write report.md and heatmap.png/svg there
-- @tparam[opt=true] boolean distributed under mpirun, spread each seed's settings over the
--   ranks (every rank gets every result; rank 0 writes the report)
-- @usage crater.lab.sweep{fn = "rosenbrock", optimizer = "momentum", steps = 200,
--   grid = {lr = {1e-4, 3e-4, 1e-3}, momentum = {0.5, 0.9, 0.99}}, out = "out/sweep"}
function M.sweep(o)
  if type(o) ~= "table" then error("sweep: expects a table of options, got " .. type(o), 2) end
  local ok, settings, keys
  if o.grid then ok, settings, keys = pcall(grid_settings, o.grid)
  elseif o.random then ok, settings, keys = pcall(random_settings, o.random, o.n or 10, (o.seeds or {0})[1])
  else error("sweep: give grid = {...} or random = {...}", 2) end
  if not ok then error(settings, 2) end
  local seeds = o.seeds or {0}
  if check_list(seeds, "sweep", "seeds") == 0 then error("sweep: seeds must be a non-empty list", 2) end
  local base = o.optimizer or "sgd"
  local name = type(base) == "table" and base[1] or base
  local specs = {}
  for i, s in ipairs(settings) do
    local spec = {name, label = ""}
    if type(base) == "table" then for k, v in pairs(base) do if type(k) == "string" then spec[k] = v end end end
    local parts = {}
    for _, k in ipairs(keys) do spec[k] = s[k]; parts[#parts + 1] = k .. "=" .. show(s[k]) end
    if spec.schedule == "none" then spec.schedule = nil end
    spec.label = table.concat(parts, " ")
    specs[i] = spec
  end
  local metric = o.metric or (o.fn and "final_loss" or (o.data and o.data.test and "test_accuracy" or "final_loss"))
  local lab = require "crater.lab"
  local values = {}
  for i = 1, #specs do values[i] = {} end
  local C = crater
  for si, seed in ipairs(seeds) do
    local r
    if o.fn then
      local fn = lab.functions.get(o.fn, {dim = o.dim})
      local start = o.start or fn.start
      if o.jitter and o.jitter > 0 then
        C.manual_seed(seed)
        local d = C.randn(#start, {dtype = "float64"}):totable()
        local s2 = {}
        for j, v in ipairs(start) do s2[j] = v + o.jitter * d[j] end
        start = s2
      end
      local okr, rr = pcall(lab.race, {fn = fn, start = start, optimizers = specs, steps = o.steps, seed = seed, tol = o.tol,
        distributed = o.distributed})
      if not okr then error(tostring(rr):gsub("^race:", "sweep:"), 2) end
      r = rr
    else
      local okr, rr = pcall(lab.train_race, {model_factory = o.model_factory, data = o.data, optimizers = specs,
        epochs = o.epochs, seed = seed, loss = o.loss, quiet = true, distributed = o.distributed})
      if not okr then error(tostring(rr):gsub("^train_race:", "sweep:"), 2) end
      r = rr
    end
    for i, c in ipairs(r.contestants) do
      local v = c[metric]
      if c.diverged or c.error then v = 0 / 0 end
      values[i][si] = v
    end
  end
  local res = setmetatable({kind = "sweep", settings = settings, keys = keys, specs = specs, seeds = seeds,
    metric = metric, values = values, mean = {}, std = {}, optimizer = name, grid = o.grid, random = o.random,
    fn = o.fn, version = C._VERSION}, Result)
  for i, vs in ipairs(values) do
    local s, n = 0, 0
    for _, v in ipairs(vs) do if v == v then s, n = s + v, n + 1 end end
    local mean = n > 0 and s / n or 0 / 0
    local ss = 0
    for _, v in ipairs(vs) do if v == v then ss = ss + (v - mean) ^ 2 end end
    res.mean[i], res.std[i] = mean, n > 1 and math.sqrt(ss / (n - 1)) or 0
    res.diverged = res.diverged or n < #vs
  end
  return require("crater.lab.report").when_asked(res, o)
end

--- The results as a Markdown table (best mean first; NaN = diverged in some seed).
function Result:table()
  local rows = {string.format("| setting | mean %s | std | per seed |", self.metric), "|---|---:|---:|---|"}
  local order = {}
  for i = 1, #self.specs do order[i] = i end
  local sign = self.metric == "test_accuracy" and -1 or 1
  local function key(i) local m = self.mean[i] return m == m and sign * m or math.huge end
  table.sort(order, function(a, b) return key(a) < key(b) end)
  for _, i in ipairs(order) do
    local per = {}
    for j, v in ipairs(self.values[i]) do per[j] = v == v and string.format("%.4g", v) or "diverged" end
    local m = self.mean[i]
    rows[#rows + 1] = string.format("| %s | %s | %.3g | %s |", self.specs[i].label,
      m == m and string.format("%.6g", m) or "diverged", self.std[i],
      table.concat(per, ", "))
  end
  return table.concat(rows, "\n")
end
Result.__tostring = Result.table

--- Draws heatmap.png/svg (two grid hyper-parameters) or sweep.png/svg (one) into dir.
function Result:plot(dir)
  local plot = require "crater.lab.plot"
  local keys = self.keys
  if self.grid and #keys == 2 then
    local xs, ys = self.grid[keys[2]], self.grid[keys[1]]   -- the last key varies fastest
    local z = {}
    for j = 1, #ys do
      z[j] = {}
      for i = 1, #xs do
        local m = self.mean[(j - 1) * #xs + i]
        z[j][i] = (m == m) and m or nil
      end
    end
    local lx, ly = {}, {}
    for i, v in ipairs(xs) do lx[i] = show(v) end
    for i, v in ipairs(ys) do ly[i] = show(v) end
    return plot.heatmap(lx, ly, z, dir, "heatmap", {title = string.format("%s: mean %s over %d seed(s)",
      self.optimizer, self.metric, #self.seeds), xlabel = keys[2], ylabel = keys[1], zlabel = self.metric})
  elseif #keys == 1 and type(self.settings[1][keys[1]]) == "number" then
    local xs, ys = {}, {}
    for i, s in ipairs(self.settings) do xs[i], ys[i] = s[keys[1]], self.mean[i] end
    return plot.lines({{label = "mean " .. self.metric, x = xs, y = ys, style = "linespoints"}}, dir, "sweep",
      {title = self.optimizer .. ": " .. self.metric, xlabel = keys[1], ylabel = self.metric,
       logx = keys[1] == "lr"})
  end
  return {}
end

--- Writes report.md and the picture into dir; returns the path (and a message without gnuplot).
function Result:report(dir)
  local report = require "crater.lab.report"
  report.mkdir(dir)
  local files, msg = self:plot(dir)
  local seeds = {}
  for i, s in ipairs(self.seeds) do seeds[i] = tostring(s) end
  local space = {}
  for _, k in ipairs(self.keys) do space[#space + 1] = k .. " = " .. show((self.grid or self.random)[k]) end
  local path = report.generic(dir, {title = "Sweep of " .. self.optimizer,
    intro = {string.format("%s. %d settings x %d seed(s); mean and sample standard deviation of %s over seeds.",
      self.version, #self.specs, #self.seeds, self.metric)},
    table = self:table(),
    settings = {{"optimizer", self.optimizer}, {self.grid and "grid" or "random", table.concat(space, "; ")},
      {"problem", type(self.fn) == "table" and (self.fn.name or "custom") or (self.fn or "model")},
      {"seeds", table.concat(seeds, ", ")}, {"crater", self.version}},
    files = files, msg = msg})
  return path, msg
end

return M
