--- crater.lab.report: report.md and report.html for races, train races, sweeps and lr_find.
-- A report holds the results table, the exact settings of every contestant, the seed, the
-- crater version and the pictures, so that the run can be repeated.
local M = {}

local internal = require("crater.core").internal
local plot = require "crater.lab.plot"
local html = require "crater.lab.html"
local describe = require("crater.lab.contestants").describe

--- Creates a folder and its parents (mkdir -p); raises if that fails.
function M.mkdir(dir)
  if type(dir) ~= "string" or dir == "" then error("report: the output folder must be a path, got " .. tostring(dir), 3) end
  local ok_path, msg = pcall(internal.check_path, dir, "report")
  if not ok_path then error(msg, 3) end
  local ok = os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  if not ok then error("report: cannot create the folder " .. dir, 3) end
end

local write = html.write

local function list(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = string.format("%.10g", v) end
  return "{" .. table.concat(s, ", ") .. "}"
end

-- The settings table ({name, value} pairs) and the contestants' settings, as Markdown.
local function settings_table(settings)
  local out = {"| setting | value |", "|---|---|"}
  for _, kv in ipairs(settings or {}) do out[#out + 1] = string.format("| %s | %s |", kv[1], tostring(kv[2])) end
  return table.concat(out, "\n")
end

local function contestants_table(contestants)
  local out = {"| optimizer | class | options | schedule |", "|---|---|---|---|"}
  for _, c in ipairs(contestants) do
    out[#out + 1] = string.format("| %s | %s | %s | %s |", c.label, c.class_name or "?",
      describe(c.settings or {}), c.schedule or "none")
  end
  return table.concat(out, "\n")
end

-- The shared tail: contestants' settings, pictures, how to repeat.
local function settings_section(out, contestants)
  out[#out + 1] = "\n## Settings of each contestant\n"
  out[#out + 1] = contestants_table(contestants)
end

local function pictures_section(out, files, msg)
  out[#out + 1] = "\n## Pictures\n"
  if not files then
    out[#out + 1] = msg
    return
  end
  for _, f in ipairs(files) do
    if f:match("%.png$") then
      local name = f:match("([^/]+)%.png$")
      out[#out + 1] = string.format("![%s](%s.png) ([svg](%s.svg))\n", name, name, name)
    end
  end
end

--- Writes dir/report.md, dir/report.html and the pictures for a race; returns the
-- report's path and, when the pictures could not be drawn, the message why.
function M.race(r, dir)
  M.mkdir(dir)
  local files, msg = plot.race(r, dir)
  local fn = r.fn
  local intro = string.format("%s, %s. Every contestant starts at %s and takes %d steps in float64.",
    r.version, r.date, list(r.start), r.steps)
  local notes = {
    "- *final loss*: f at the last iterate; *best loss*: the lowest f seen;",
    "- *distance to min*: from the last iterate to the nearest known minimum"
      .. (#fn.minima == 0 and " (this function has none)" or "") .. ";",
    string.format("- *steps to tol*: the first step with f - f* <= %g%s;", r.tol,
      fn.fmin and string.format(" (f* = %.10g)", fn.fmin) or " (no f*: not measured)"),
    "- *diverged*: the loss or the iterate became NaN or infinite, or the loss grew past 1e12 times its start.",
  }
  local settings = {{"function", fn.name}, {"start", list(r.start)}, {"steps", r.steps},
    {"tol", string.format("%g", r.tol)}, {"schedule", r.schedule or "none"}, {"seed", r.seed},
    {"crater", r.version}}
  local code = {string.format("crater.lab.race{fn = %q, start = %s, steps = %d, tol = %.17g, seed = %d,",
    fn.name, list(r.start), r.steps, r.tol, r.seed), "  optimizers = {"}
  for _, c in ipairs(r.contestants) do
    local spec = require("crater.lab.contestants").spec_string(c)
    if c.schedule then spec = spec:gsub("}$", string.format(", schedule = %q}", c.schedule)) end
    code[#code + 1] = "    " .. spec .. ","
  end
  code[#code + 1] = "  }}"
  local out = {"# Optimizer race on " .. fn.name, "", intro, "", "## Results\n", r:table(), ""}
  for _, l in ipairs(notes) do out[#out + 1] = l end
  out[#out + 1] = "\n## Exact settings\n"
  out[#out + 1] = settings_table(settings)
  settings_section(out, r.contestants)
  pictures_section(out, files, msg)
  out[#out + 1] = "\n## Repeat\n"
  out[#out + 1] = "```lua"
  for _, l in ipairs(code) do out[#out + 1] = l end
  out[#out + 1] = "```"
  local path = dir .. "/report.md"
  write(path, table.concat(out, "\n") .. "\n")
  html.report(dir, {title = "Optimizer race on " .. fn.name, intro = {intro}, table = r:table(), notes = notes,
    settings = settings_table(settings), contestants = contestants_table(r.contestants),
    figures = plot.figures(dir), code = table.concat(code, "\n")})
  return path, msg
end

--- Writes the report of a race, train race, sweep or lr_find result when the options ask
-- for one (`out = dir`), and says where unless `quiet`; returns the result.
function M.when_asked(result, o)
  local d = package.loaded["crater.distributed"]   -- under mpirun, rank 0 writes the one report
  if o.out and not (d and d.is_initialized() and d.rank() ~= 0) then
    local path, msg = result:report(o.out)
    if not o.quiet then
      print("report: " .. path)
      print("report: " .. path:gsub("%.md$", ".html"))
      if msg then print(msg) end
    end
  end
  return result
end

--- Writes a generic report.md and report.html: title, intro lines, the results table,
-- more tables ({title, markdown} pairs), settings rows ({name, value} pairs),
-- contestants, and pictures; returns the path of report.md.
function M.generic(dir, o)
  M.mkdir(dir)
  local out = {"# " .. o.title, ""}
  for _, l in ipairs(o.intro or {}) do out[#out + 1] = l end
  out[#out + 1] = "\n## Results\n"
  out[#out + 1] = o.table
  for _, t in ipairs(o.tables or {}) do
    out[#out + 1] = "\n## " .. t[1] .. "\n"
    out[#out + 1] = t[2]
  end
  out[#out + 1] = "\n## Exact settings\n"
  out[#out + 1] = settings_table(o.settings)
  if o.contestants then settings_section(out, o.contestants) end
  pictures_section(out, o.files, o.msg)
  local path = dir .. "/report.md"
  write(path, table.concat(out, "\n") .. "\n")
  html.report(dir, {title = o.title, intro = o.intro, table = o.table, tables = o.tables,
    settings = settings_table(o.settings), contestants = o.contestants and contestants_table(o.contestants),
    figures = plot.figures(dir)})
  return path
end

return M
