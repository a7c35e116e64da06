--- crater.lab.Logger: a CSV log of named columns, after Torch7 optim.Logger.
-- `Logger(path, names)` creates (or truncates) the CSV file and writes its header row;
-- `log:add{...}` appends one row, given as a list in the names' order or as a table keyed
-- by name (a missing entry is written empty); `log:plot([path])` draws every column
-- against its row number with gnuplot into <path without .csv>.png and .svg (nil, message
-- when gnuplot is missing). Rows are flushed as they are added, so the file can be read
-- while training runs. `log.rows` keeps them.
-- @usage local log = crater.lab.Logger("out/train.csv", {"loss", "accuracy"})
-- log:add{loss = 0.7, accuracy = 0.61}; log:add{0.5, 0.72}; log:plot()
local Logger = {__name = "Logger"}
Logger.__index = Logger

local function csv_field(v)
  local s = tostring(v)
  if s:find('[,"\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

local function new(_, path, names)
  if type(path) ~= "string" or path == "" or path:find("\0", 1, true) then
    error("Logger: path must be a non-empty string without NUL, got " .. type(path), 2)
  end
  if type(names) ~= "table" or #names == 0 then
    error("Logger: names must be a non-empty list of column names", 2)
  end
  local seen = {}
  for i, n in ipairs(names) do
    if type(n) ~= "string" or n == "" then error(string.format("Logger: names[%d] must be a non-empty string", i), 2) end
    if seen[n] then error(string.format("Logger: column '%s' is named twice", n), 2) end
    seen[n] = true
  end
  local f, err = io.open(path, "w")
  if not f then error("Logger: cannot write " .. path .. ": " .. tostring(err), 2) end
  local cols = {}
  for i, n in ipairs(names) do cols[i] = csv_field(n) end
  f:write(table.concat(cols, ","), "\n")
  f:flush()
  return setmetatable({path = path, names = {table.unpack(names)}, index = seen, file = f, rows = {}}, Logger)
end
setmetatable(Logger, {__call = new})

--- Appends one row: a list in column order or a table keyed by column name.
function Logger:add(row)
  if type(row) ~= "table" then error("Logger: add: row must be a table, got " .. type(row), 2) end
  local values, keyed = {}, #row == 0
  if keyed then
    for k in pairs(row) do
      if not self.index[k] then error(string.format("Logger: add: unknown column '%s'", tostring(k)), 2) end
    end
    for i, n in ipairs(self.names) do values[i] = row[n] end
  else
    if #row > #self.names then
      error(string.format("Logger: add: %d values for %d columns", #row, #self.names), 2)
    end
    for i = 1, #self.names do values[i] = row[i] end
  end
  local cols = {}
  for i = 1, #self.names do
    local v = values[i]
    if v ~= nil and type(v) ~= "number" and type(v) ~= "string" and type(v) ~= "boolean" then
      error(string.format("Logger: add: column '%s' must be a number or a string, got %s", self.names[i], type(v)), 2)
    end
    cols[i] = v == nil and "" or csv_field(type(v) == "number" and string.format("%.17g", v) or v)
  end
  self.file:write(table.concat(cols, ","), "\n")
  self.file:flush()
  self.rows[#self.rows + 1] = values
end

--- Draws every numeric column against the row number; returns the .png path (or nil and
-- why when gnuplot is missing).
function Logger:plot(path)
  local plot = require "crater.lab.plot"
  if not plot.available() then return nil, plot.MISSING end
  local base = (path or self.path):gsub("%.csv$", "")
  local dir, name = base:match("^(.*)/([^/]*)$")
  if not dir then dir, name = ".", base end
  local series = {}
  for i, n in ipairs(self.names) do
    local s = {label = n, x = {}, y = {}}
    for r, row in ipairs(self.rows) do
      if type(row[i]) == "number" then s.x[#s.x + 1], s.y[#s.y + 1] = r, row[i] end
    end
    if #s.y > 0 then series[#series + 1] = s end
  end
  plot.lines(series, dir, name, {title = self.path, xlabel = "row"})
  return dir .. "/" .. name .. ".png"
end

function Logger:close() if self.file then self.file:close(); self.file = nil end end

return Logger
