--- crater.lab.lr_find: the learning-rate range test (Smith 2015, "Cyclical Learning Rates").
-- Trains a fresh model for up to num_iter batches while the lr grows exponentially from
-- start_lr to end_lr, records the loss, smooths it with a bias-corrected moving average,
-- stops early once the smoothed loss exceeds `diverge` times its best, and suggests the
-- lr where the smoothed loss falls fastest against log(lr).
local contestants = require "crater.lab.contestants"
local train_race = require "crater.lab.train_race"

local M = {}

local crater = require "crater"

local Result = {}
Result.__index = Result

--- Suggests the lr at the steepest descent of `losses` against log10(lrs), ignoring the
-- first `skip_start` and last `skip_end` points; returns the lr and its index (or nil).
function M.steepest(lrs, losses, skip_start, skip_end)
  local best, at
  for i = (skip_start or 0) + 2, #losses - (skip_end or 0) do
    local slope = (losses[i] - losses[i - 1]) / (math.log(lrs[i], 10) - math.log(lrs[i - 1], 10))
    if best == nil or slope < best then best, at = slope, i end
  end
  return at and lrs[at], at
end

--- Runs the LR range test and returns the result (`lrs`, `losses`, `smoothed`,
-- `suggestion`, `:plot(dir)`, `:report(dir)`; crater.lab.show draws it).
-- @tparam function model_factory returns a fresh model
-- @tparam table data `{x=, y=, batch_size=}` or a DataLoader (cycled if too short)
-- @tparam[opt=CrossEntropyLoss] function loss `loss(output, target)`
-- @tparam[opt="sgd"] string|table optimizer a contestant spec: "sgd", {"adam", betas = ...}
-- @tparam[opt=1e-7] number start_lr first lr
-- @tparam[opt=10] number end_lr last lr
-- @tparam[opt=100] integer num_iter batches
-- @tparam[opt=0.98] number beta smoothing factor of the moving average
-- @tparam[opt=4] number diverge stop once the smoothed loss exceeds diverge x its best
-- @tparam[opt=0] integer seed crater.manual_seed before the model is made
-- @tparam[opt=nil] string out write report.md and lr_find.png/svg there
-- @usage local r = crater.lab.lr_find{model_factory = make, data = {x = x, y = y}}
-- print(r.suggestion)
function M.lr_find(o)
  if type(o) ~= "table" then error("lr_find: expects a table of options, got " .. type(o), 2) end
  if type(o.model_factory) ~= "function" then error("lr_find: model_factory must be a function returning a model", 2) end
  local start_lr, end_lr = o.start_lr or 1e-7, o.end_lr or 10
  if type(start_lr) ~= "number" or type(end_lr) ~= "number" or start_lr <= 0 or end_lr <= start_lr then
    error("lr_find: need 0 < start_lr < end_lr, got " .. tostring(start_lr) .. " and " .. tostring(end_lr), 2)
  end
  local n = o.num_iter or 100
  if math.type(n) ~= "integer" or n < 2 then error("lr_find: num_iter must be an integer >= 2, got " .. tostring(n), 2) end
  local beta, diverge, seed = o.beta or 0.98, o.diverge or 4, o.seed or 0
  local okl, make_loader = pcall(train_race.loader_of, o.data, o.batch_size, "lr_find")
  if not okl then error(make_loader, 2) end
  local okc, c = pcall(contestants.resolve, o.optimizer or "sgd", nil, "lr_find")
  if not okc then error(c, 2) end
  c.opts.lr = start_lr
  local C = crater
  local loss_fn = o.loss or C.nn.CrossEntropyLoss()
  C.manual_seed(seed)
  local model = o.model_factory()
  local okb, opt = pcall(contestants.build, c, model:parameters(), "lr_find")
  if not okb then error(opt, 2) end
  local loader = make_loader(seed)
  local r = setmetatable({kind = "lr_find", lrs = {}, losses = {}, smoothed = {}, start_lr = start_lr,
    end_lr = end_lr, num_iter = n, beta = beta, seed = seed, optimizer = c.label, settings = c.settings,
    version = C._VERSION}, Result)
  local avg, best, i = 0, math.huge, 0
  local gamma = (end_lr / start_lr) ^ (1 / (n - 1))
  while i < n do
    local any = false
    for xb, yb in loader:iter() do
      any = true
      i = i + 1
      local lr = start_lr * gamma ^ (i - 1)
      for _, g in ipairs(opt.param_groups) do g.lr = lr end
      opt:zero_grad()
      local loss = loss_fn(model(xb), yb)
      loss:backward()
      opt:step()
      local l = loss:item()
      avg = beta * avg + (1 - beta) * l
      local s = avg / (1 - beta ^ i)
      r.lrs[i], r.losses[i], r.smoothed[i] = lr, l, s
      if s < best then best = s end
      if s ~= s or s > diverge * best or i >= n then
        r.stopped_early = i < n
        i = n
        break
      end
    end
    if not any then error("lr_find: the data gave no batches", 2) end
  end
  local skip_end = r.stopped_early and 5 or 1
  r.suggestion = M.steepest(r.lrs, r.smoothed, math.min(10, #r.lrs // 10), skip_end)
  return require("crater.lab.report").when_asked(r, o)
end

function Result:series()
  return {{label = "smoothed loss", x = self.lrs, y = self.smoothed},
          {label = "loss", x = self.lrs, y = self.losses, lw = 1, color = "#aaaaaa"}}
end

function Result:plot_options()
  local marks = {}
  if self.suggestion then
    for i, lr in ipairs(self.lrs) do
      if lr == self.suggestion then
        marks[1] = {x = lr, y = self.smoothed[i], label = string.format("steepest: lr = %.3g", lr)}
      end
    end
  end
  -- From just under the lowest smoothed loss to 1.5 x the first: the blow-up at the end
  -- would otherwise flatten the curve.
  local lo = math.huge
  for _, v in ipairs(self.smoothed) do if v < lo then lo = v end end
  return {title = "LR range test (" .. self.optimizer .. ")", xlabel = "learning rate", ylabel = "loss",
          logx = true, marks = marks, yrange = {0.9 * lo, 1.5 * self.smoothed[1]}}
end

--- Draws lr_find.png/svg into dir.
function Result:plot(dir)
  return require("crater.lab.plot").lines(self:series(), dir, "lr_find", self:plot_options())
end

--- Writes report.md and the picture into dir; returns the path (and a message without gnuplot).
function Result:report(dir)
  local report = require "crater.lab.report"
  report.mkdir(dir)
  local files, msg = self:plot(dir)
  local rows = {"| step | lr | loss | smoothed |", "|---:|---:|---:|---:|"}
  local every = math.max(1, #self.lrs // 20)
  for i = 1, #self.lrs, every do
    rows[#rows + 1] = string.format("| %d | %.3g | %.4f | %.4f |", i, self.lrs[i], self.losses[i], self.smoothed[i])
  end
  local lo, at = math.huge, nil
  for j, v in ipairs(self.smoothed) do if v < lo then lo, at = v, j end end
  local summary = {"| optimizer | suggested lr | lowest smoothed loss | at lr | steps run | stopped early |",
    "|---|---:|---:|---:|---:|---|", string.format("| %s | %s | %.4f | %.3g | %d | %s |", self.optimizer,
      self.suggestion and string.format("%.3g", self.suggestion) or "-", lo, self.lrs[at], #self.lrs,
      self.stopped_early and "yes" or "no")}
  local path = report.generic(dir, {title = "LR range test",
    intro = {string.format("%s. Suggested lr (steepest descent of the smoothed loss): **%s**.", self.version,
      self.suggestion and string.format("%.3g", self.suggestion) or "none")},
    table = table.concat(summary, "\n"), tables = {{"Steps", table.concat(rows, "\n")}},
    settings = {{"optimizer", self.optimizer .. " " .. contestants.describe(self.settings)},
      {"start_lr", self.start_lr}, {"end_lr", self.end_lr}, {"num_iter", self.num_iter},
      {"steps run", #self.lrs}, {"beta", self.beta}, {"seed", self.seed}, {"crater", self.version}},
    files = files, msg = msg})
  return path, msg
end

return M
