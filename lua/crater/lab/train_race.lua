--- crater.lab.train_race: optimizers side by side on a model.
-- Each contestant gets a fresh model from `model_factory()` made right after
-- `crater.manual_seed(seed)`, so every contestant starts from the same weights and sees
-- the same batches in the same order. The schedule (global, or the contestant's own) is
-- stepped after every batch. A NaN or infinite loss marks the contestant diverged and
-- stops it; the race goes on.
local contestants = require "crater.lab.contestants"
local schedules = require "crater.lab.schedule"

local M = {}

local crater = require "crater"

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

--- The data of a lab run: `{x=, y=, batch_size=?, test={x=, y=}?}` (or `{x, y}`) or a
-- DataLoader. Returns a function(seed) making the training loader, and the test set.
function M.loader_of(data, batch_size, who)
  if type(data) ~= "table" then error(who .. ": data must be {x=, y=, test=?} or a DataLoader, got " .. type(data), 0) end
  if type(data.iter) == "function" then
    return function() if data.set_epoch then data:set_epoch(0) end return data end, nil
  end
  local x, y = data.x or data[1], data.y or data[2]
  if x == nil or y == nil then error(who .. ": data needs x and y (tensors)", 0) end
  local bs = data.batch_size or batch_size or 128
  local test = data.test
  if test then test = {x = test.x or test[1], y = test.y or test[2]} end
  return function(seed)
    return crater.data.DataLoader(x, y, {batch_size = bs, shuffle = true, seed = seed})
  end, test, bs
end

-- Test loss and accuracy (argmax over dim 2) in batches of 1000, without recording a graph.
local function evaluate(model, loss_fn, test)
  local C = crater
  if model.eval then model:eval() end
  local total, correct, n = 0, 0, test.x:size(1)
  C.no_grad(function()
    for xb, yb in C.data.DataLoader(test.x, test.y, {batch_size = 1000}):iter() do
      local out = model(xb)
      total = total + loss_fn(out, yb):item() * xb:size(1)
      if yb:dtype() == "int64" and out:dim() == 2 then
        correct = correct + out:argmax(2):view(-1):eq(yb):sum():item()
      end
    end
  end)
  if model.train then model:train() end
  return total / n, 100 * correct / n
end

local Results = {}
Results.__index = Results

--- Races optimizers on a model and returns the results.
-- @tparam function model_factory returns a fresh model (called after crater.manual_seed(seed))
-- @tparam table data `{x=, y=, batch_size=128, test={x=, y=}}` or a DataLoader
-- @tparam table optimizers contestants as in crater.lab.race (names, `{"adam", lr = 1e-3,
--   schedule = "cosine"}`, classes, instances)
-- @tparam[opt=1] integer epochs passes over the data
-- @tparam[opt=nil] string|table|function schedule the lr schedule of every contestant
--   that has none of its own, stepped once per batch (see crater.lab.schedule)
-- @tparam[opt=0] integer seed the seed of every contestant
-- @tparam[opt=CrossEntropyLoss] function loss `loss(output, target)` returning a 0-d tensor
-- @tparam[opt=nil] string out write report.md and the pictures into this folder
-- @tparam[opt=false] boolean quiet no progress lines
-- @tparam[opt=true] boolean distributed under mpirun, spread the contestants over the
--   ranks (every rank gets every result; rank 0 writes the report); false: all on every rank
-- @return results: `contestants[i]` has label, settings, losses (per batch), lrs,
--   final_loss (mean of the last 20 batches), test_loss, test_accuracy, diverged, time
-- @usage local r = crater.lab.train_race{model_factory = function() return nn.Linear(784, 10) end,
--   data = {x = x, y = y}, optimizers = {"sgd", "adam"}, epochs = 1}
function M.train_race(o)
  if type(o) ~= "table" then error("train_race: expects a table of options, got " .. type(o), 2) end
  if type(o.model_factory) ~= "function" then error("train_race: model_factory must be a function returning a model", 2) end
  local epochs = o.epochs or 1
  if math.type(epochs) ~= "integer" or epochs < 1 then error("train_race: epochs must be a positive integer, got " .. tostring(epochs), 2) end
  local seed = o.seed or 0
  if math.type(seed) ~= "integer" then error("train_race: seed must be an integer, got " .. tostring(seed), 2) end
  local ok, make_loader, test, bs = pcall(M.loader_of, o.data, o.batch_size, "train_race")
  if not ok then error(make_loader, 2) end
  local ok2, list = pcall(contestants.resolve_all, o.optimizers, nil, "train_race")
  if not ok2 then error(list, 2) end
  local ok3, sched = pcall(schedules.resolve, o.schedule, "train_race")
  if not ok3 then error(sched, 2) end
  local C = crater
  local loss_fn = o.loss or C.nn.CrossEntropyLoss()
  local r = setmetatable({kind = "train_race", epochs = epochs, seed = seed, batch_size = bs,
    schedule = sched and sched.label, contestants = {}, version = C._VERSION,
    n_train = type(o.data.iter) ~= "function" and (o.data.x or o.data[1]):size(1) or nil,
    n_test = test and test.x:size(1), date = os.date("!%Y-%m-%d %H:%M:%S UTC")}, Results)
  local function run_one(i)
    local c = list[i]
    local s = c.schedule or sched
    local rec = {label = c.label, class_name = c.class.__name, preset = c.preset, losses = {}, lrs = {}, diverged = false,
                 schedule = s and s.label}
    C.manual_seed(seed)
    local model = o.model_factory()
    local loader = make_loader(seed)
    local okb, opt = pcall(contestants.build, c, model:parameters(), "train_race")
    if not okb then error(opt, 0) end
    rec.settings = c.settings
    local t0 = C.clock()
    local okr, err = pcall(function()
      local sc = s and s.make(opt, epochs * #loader)
      for _ = 1, epochs do
        for xb, yb in loader:iter() do
          opt:zero_grad()
          local loss = loss_fn(model(xb), yb)
          loss:backward()
          rec.lrs[#rec.lrs + 1] = opt.param_groups[1].lr
          opt:step()
          local l = loss:item()
          rec.losses[#rec.losses + 1] = l
          if not finite(l) then rec.diverged, rec.diverged_at = true, #rec.losses return end
          if sc then sc:step() end
        end
      end
    end)
    rec.time = C.clock() - t0
    if not okr then rec.error = tostring(err) end
    local n, sum, k = #rec.losses, 0, 0
    for j = math.max(1, n - 19), n do sum, k = sum + rec.losses[j], k + 1 end
    rec.final_loss = k > 0 and sum / k or nil
    if test and not rec.diverged and not rec.error then
      -- schedule-free optimizers train at y and evaluate at the average x
      if type(opt.eval) == "function" then opt:eval() end
      rec.test_loss, rec.test_accuracy = evaluate(model, loss_fn, test)
    end
    if not o.quiet then
      print(string.format("  %-22s loss %-10s %s %.1f s", rec.label, rec.final_loss and string.format("%.4f", rec.final_loss) or "-",
        rec.test_accuracy and string.format("test acc %5.2f%%", rec.test_accuracy) or (rec.diverged and "diverged" or ""), rec.time))
    end
    return rec
  end
  -- under mpirun the contestants are spread over the ranks (crater.lab.spread)
  local okc, recs, ranks = pcall(require("crater.lab.spread").map, #list, run_one, o)
  if not okc then error(recs, 2) end
  for i, rec in ipairs(recs) do
    -- this rank's own copy when it built the contestant (it may hold functions)
    rec.settings, rec.rank = list[i].settings or rec.settings, ranks[i]
    r.contestants[i] = rec
  end
  return require("crater.lab.report").when_asked(r, o)
end

--- The results as a Markdown table (best test accuracy, else lowest final loss, first).
function Results:table()
  local rows = {"| optimizer | schedule | final train loss | test loss | test accuracy | diverged | time (s) |",
                "|---|---|---:|---:|---:|---|---:|"}
  local order = {table.unpack(self.contestants)}
  local function key(c)
    if c.diverged or c.error then return math.huge end
    if c.test_accuracy then return -c.test_accuracy end
    return c.final_loss or math.huge
  end
  table.sort(order, function(a, b) return key(a) < key(b) end)
  local function f(v, s) return v and string.format(s, v) or "-" end
  for _, c in ipairs(order) do
    local div = c.error and ("error: " .. c.error:gsub("|", "/")) or (c.diverged and ("yes, at batch " .. c.diverged_at) or "no")
    rows[#rows + 1] = string.format("| %s | %s | %s | %s | %s | %s | %.1f |", c.label, c.schedule or "none",
      f(c.final_loss, "%.4f"), f(c.test_loss, "%.4f"), f(c.test_accuracy, "%.2f%%"), div, c.time)
  end
  return table.concat(rows, "\n")
end
Results.__tostring = Results.table

-- Exponential moving average with bias correction (as lr_find and TensorBoard smooth).
local function smooth(xs, beta)
  local out, avg = {}, 0
  for i, v in ipairs(xs) do
    avg = beta * avg + (1 - beta) * v
    out[i] = avg / (1 - beta ^ i)
  end
  return out
end
M.smooth = smooth

--- The loss curves (smoothed training loss per batch) for plotting.
function Results:series()
  local s = {}
  for k, c in ipairs(self.contestants) do
    local xs = {}
    for i = 1, #c.losses do xs[i] = i end
    s[k] = {label = c.label, x = xs, y = smooth(c.losses, 0.9)}
  end
  return s
end

function Results:plot_options()
  return {title = "training loss (smoothed, beta 0.9)", xlabel = "batch", ylabel = "loss", logy = true}
end

--- Draws loss.png/svg and lr.png/svg into dir; returns the files, or nil and a message.
function Results:plot(dir)
  local plot = require "crater.lab.plot"
  local files = {}
  local list, err = plot.lines(self:series(), dir, "loss", self:plot_options())
  if not list then return nil, err end
  for _, f in ipairs(list) do files[#files + 1] = f end
  local lrs = {}
  for k, c in ipairs(self.contestants) do
    local xs = {}
    for i = 1, #c.lrs do xs[i] = i end
    lrs[k] = {label = c.label, x = xs, y = c.lrs}
  end
  list, err = plot.lines(lrs, dir, "lr", {title = "learning rate per batch", xlabel = "batch", ylabel = "lr", logy = true})
  if not list then return nil, err end
  for _, f in ipairs(list) do files[#files + 1] = f end
  return files
end

--- Writes report.md and the pictures into dir; returns the path and, without gnuplot, a message.
function Results:report(dir)
  local report = require "crater.lab.report"
  report.mkdir(dir)
  local files, msg = self:plot(dir)
  local path = report.generic(dir, {
    title = "Training race",
    intro = {string.format("%s, %s. Every contestant trains a fresh model made after crater.manual_seed(%d), on the same batches.",
      self.version, self.date, self.seed)},
    table = self:table(),
    settings = {{"epochs", self.epochs}, {"batch size", self.batch_size or "-"}, {"training examples", self.n_train or "-"},
      {"test examples", self.n_test or "-"}, {"schedule (default)", self.schedule or "none"}, {"seed", self.seed},
      {"crater", self.version}},
    contestants = self.contestants, files = files, msg = msg})
  return path, msg
end

return M
