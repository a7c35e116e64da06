--- crater.lab.plot: pictures with gnuplot, driven through a pipe.
-- Every picture is written as PNG (pngcairo when gnuplot has it, else png) and SVG; data
-- goes to gnuplot inline as datablocks, so nothing but the pictures lands on disk.
-- `crater.lab.show` draws the same pictures in the terminal with gnuplot's dumb terminal.
-- Without gnuplot the functions return nil and a message naming the Debian package
-- (gnuplot-nox); the numbers and reports do not depend on it.
-- The gnuplot program is `M.gnuplot`, by default $CRATER_GNUPLOT or "gnuplot".
local M = {}

local crater = require "crater"

M.gnuplot = os.getenv("CRATER_GNUPLOT") or "gnuplot"
M.width, M.height = 1000, 720

M.MISSING = "the pictures were not drawn: gnuplot was not found (install the Debian package "
  .. "gnuplot-nox: sudo apt-get install gnuplot-nox); the numbers and report.md are written"

-- A palette for up to 16 contestants (Tableau 10 and six more, all dark enough on white).
local colors = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
  "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#00a087", "#637939", "#f0027f", "#6a3d9a", "#000000"}
M.colors = colors

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local probed = {}
--- Whether gnuplot runs, and which PNG terminal it has ("pngcairo" or "png"); nil if none.
function M.available()
  local prog = M.gnuplot
  if probed[prog] == nil then
    local p = io.popen(shell_quote(prog) .. " -e 'set terminal' 2>&1 </dev/null")
    local out = p and p:read("a") or ""
    if p then p:close() end
    if out:find("pngcairo", 1, true) then probed[prog] = "pngcairo"
    elseif out:find("%f[%w]png%f[%W]") then probed[prog] = "png"
    else probed[prog] = false end
  end
  return probed[prog] or nil
end

--- Runs a gnuplot script through a pipe; returns true, or nil and gnuplot's complaint.
function M.run(script)
  if not M.available() then return nil, M.MISSING end
  local errfile = os.tmpname()
  local p = io.popen(shell_quote(M.gnuplot) .. " 2>" .. shell_quote(errfile), "w")
  if not p then os.remove(errfile) return nil, "plot: cannot start " .. M.gnuplot end
  p:write(script, "\n")
  local ok = p:close()
  local f = io.open(errfile)
  local err = f and f:read("a") or ""
  if f then f:close() end
  os.remove(errfile)
  -- Warnings (e.g. "all points y value undefined" on an empty log plot) are not failures.
  if not ok or err:find("error", 1, true) or err:find("line %d+:") and not err:find("warning") then
    return nil, "plot: gnuplot failed: " .. err
  end
  return true
end

local function num(v)
  if v ~= v or v == math.huge or v == -math.huge then return "NaN" end
  return string.format("%.10g", v)
end

-- A datablock named $name holding rows (each a list of numbers); blank-line separated
-- blocks when rows[i] is false.
local function datablock(name, rows)
  local out = {"$" .. name .. " << EOD"}
  for _, r in ipairs(rows) do
    if r == false then out[#out + 1] = ""
    else
      local s = {}
      for j, v in ipairs(r) do s[j] = num(v) end
      out[#out + 1] = table.concat(s, " ")
    end
  end
  out[#out + 1] = "EOD"
  return table.concat(out, "\n")
end
M.datablock = datablock

local function quote(s) return '"' .. tostring(s):gsub('\\', '\\\\'):gsub('"', '\\"') .. '"' end
M.quote = quote

-- Writes a figure as base.png and base.svg in dir; `data` and `body` are gnuplot text.
local function figure(dir, base, data, body)
  local term = M.available()
  if not term then return nil, M.MISSING end
  local s = {data,
    string.format("set terminal %s size %d,%d enhanced font 'Sans,11' background rgb 'white'",
      term, M.width, M.height),
    "set output " .. quote(dir .. "/" .. base .. ".png"), body, "unset output",
    string.format("set terminal svg size %d,%d enhanced font 'Sans,11' background rgb 'white'",
      M.width, M.height),
    "set output " .. quote(dir .. "/" .. base .. ".svg"), body, "unset output"}
  local ok, err = M.run(table.concat(s, "\n"))
  if not ok then return nil, err end
  return {dir .. "/" .. base .. ".png", dir .. "/" .. base .. ".svg"}
end
M.figure = figure

-- Draws in the terminal (gnuplot's dumb terminal); returns the text.
local function dumb(data, body, w, h)
  if not M.available() then return nil, M.MISSING end
  local out = os.tmpname()
  local ok, err = M.run(table.concat({data, string.format("set terminal dumb size %d,%d", w or 100, h or 32),
    "set output " .. quote(out), body, "unset output"}, "\n"))
  local f = io.open(out)
  local text = f and f:read("a") or ""
  if f then f:close() end
  os.remove(out)
  if not ok then return nil, err end
  return text
end

--- The values of fn on an n x n grid over its window, computed in one batched call.
-- Returns xs, ys (lists) and z, a tensor of size n*n (row-major: y outer, x inner).
function M.grid(fn, n)
  local C = crater
  n = n or 200
  local w = fn.window
  local xs = C.linspace(w[1], w[2], n, {dtype = "float64"})
  local ys = C.linspace(w[3], w[4], n, {dtype = "float64"})
  local X = xs:view(1, n):expand(n, n):reshape(n * n)
  local Y = ys:view(n, 1):expand(n, n):reshape(n * n)
  local z = C.no_grad(function() return fn.f(C.stack({X, Y}, 1)) end)
  return xs:totable(), ys:totable(), z
end

-- Contour levels: log-spaced in f - fmin when fn.levels == "log" and fmin is known,
-- else evenly spaced. Returns the list of levels and the shading expression.
local function levels(fn, z, count)
  local lo, hi = z:min():item(), z:max():item()
  local out = {}
  if fn.levels == "log" and fn.fmin then
    local gmax = hi - fn.fmin
    local gmin = math.max(lo - fn.fmin, gmax * 1e-7, 1e-12)
    local a, b = math.log(gmin, 10), math.log(gmax, 10)
    for i = 0, count - 1 do out[#out + 1] = fn.fmin + 10 ^ (a + (b - a) * i / (count - 1)) end
    return out, string.format("(log10($3 - (%s) + %s))", num(fn.fmin), num(gmin))
  end
  for i = 1, count do out[#out + 1] = lo + (hi - lo) * i / (count + 1) end
  return out, "($3)"
end
M.levels = levels

-- What was drawn into each folder, for crater.lab.html to draw the same data as SVG.
local drawn = {}
local function record(dir, fig)
  local list = drawn[dir] or {}
  drawn[dir] = list
  for i, f in ipairs(list) do
    if f.base == fig.base then list[i] = fig return end   -- drawn again: the newer one
  end
  list[#list + 1] = fig
end

--- The figures drawn into dir since the last call (and forgets them): a list of
-- `{kind = "lines"|"contour"|"heatmap", base=, ...}` holding the arguments of M.lines
-- (series, o), M.contour (fn, traces, o) or M.heatmap (xs, ys, z, o). They are recorded
-- whether or not gnuplot is there.
function M.figures(dir)
  local list = drawn[dir] or {}
  drawn[dir] = nil
  return list
end

-- The gnuplot text of a contour map of fn with trajectories; traces are
-- {label=, points={{x, y}, ...}}.
local function contour_text(fn, traces, o)
  o = o or {}
  local n = o.resolution or 160
  local xs, ys, z = M.grid(fn, n)
  local lv, shade = levels(fn, z, o.levels or 18)
  local zt = z:totable()
  local rows = {}
  for j = 1, n do
    for i = 1, n do rows[#rows + 1] = {xs[i], ys[j], zt[(j - 1) * n + i]} end
    rows[#rows + 1] = false
  end
  local data = {datablock("grid", rows)}
  local w = fn.window
  local function inside(p, margin)
    local mx, my = (w[2] - w[1]) * margin, (w[4] - w[3]) * margin
    return p[1] >= w[1] - mx and p[1] <= w[2] + mx and p[2] >= w[3] - my and p[2] <= w[4] + my
  end
  for k, t in ipairs(traces) do
    local pts = {}
    for _, p in ipairs(t.points) do
      if p[1] ~= p[1] or p[2] ~= p[2] then break end
      -- Far outside the window a point only adds a straight exit line; stop there.
      pts[#pts + 1] = {p[1], p[2]}
      if not inside(p, 2) then break end
    end
    data[#data + 1] = datablock("t" .. k, pts)
    data[#data + 1] = datablock("e" .. k, {pts[#pts]})
  end
  local marks = {}
  for _, m in ipairs(fn.minima) do marks[#marks + 1] = {m[1], m[2]} end
  for _, m in ipairs(fn.saddle_points or {}) do marks[#marks + 1] = {m[1], m[2]} end
  if #marks > 0 then data[#data + 1] = datablock("mins", marks) end
  local start = traces[1] and traces[1].points[1] or fn.start
  data[#data + 1] = datablock("start", {{start[1], start[2]}})
  local lvs = {}
  for i, l in ipairs(lv) do lvs[i] = num(l) end
  local body = {
    "reset",
    "set contour base", "unset surface", "set view map",
    "set cntrparam levels discrete " .. table.concat(lvs, ","),
    "set table $cont", "splot $grid using 1:2:3 with lines notitle", "unset table",
    "unset contour",
    string.format("set xrange [%s:%s]", num(w[1]), num(w[2])),
    string.format("set yrange [%s:%s]", num(w[3]), num(w[4])),
    "set size ratio -1", "set clip two",
    "set title " .. quote(o.title or fn.name) .. " noenhanced",
    "set xlabel 'x_1'", "set ylabel 'x_2'",
    "set key outside right top noenhanced spacing 1.2",
    "unset colorbox",
    "set palette defined (0 '#f7fbff', 1 '#deebf7', 2 '#c6dbef', 3 '#9ecae1', 4 '#6baed6')",
  }
  local plots = {"$grid using 1:2:" .. shade .. " with image notitle",
                 "$cont with lines lc rgb '#7f9fbf' lw 0.8 notitle"}
  for k, t in ipairs(traces) do
    local c = colors[(k - 1) % #colors + 1]
    local every = math.max(1, #t.points // 12)
    plots[#plots + 1] = string.format("$t%d with linespoints lw 2 pt %d pi %d ps 0.8 lc rgb '%s' title %s",
      k, (k - 1) % 13 + 1, every, c, quote(t.label))
    plots[#plots + 1] = string.format("$e%d with points pt 7 ps 1.1 lc rgb '%s' notitle", k, c)
  end
  if #marks > 0 then
    plots[#plots + 1] = string.format("$mins with points pt 3 ps 2.5 lw 2 lc rgb 'black' title %s",
      quote(#fn.minima > 0 and "minimum" or "saddle point"))
  end
  plots[#plots + 1] = "$start with points pt 5 ps 1.4 lc rgb 'black' title 'start'"
  body[#body + 1] = "plot " .. table.concat(plots, ", \\\n  ")
  return table.concat(data, "\n"), table.concat(body, "\n")
end

--- Draws fn's contour map (log-spaced levels for functions with a known minimum) with
-- trajectories over it, into dir/base.png and .svg.
-- @param fn a test function table
-- @param traces list of `{label=, points={{x1, x2}, ...}}`
-- @param dir output folder, @param base file name without extension
-- @tparam[opt=fn.name] string title picture title
function M.contour(fn, traces, dir, base, o)
  record(dir, {kind = "contour", base = base, fn = fn, traces = traces, o = o})
  local data, body = contour_text(fn, traces, o)
  return figure(dir, base, data, body)
end

-- The gnuplot text of a line chart; series are {label=, x={}, y={}}.
local function lines_text(series, o)
  local data, plots = {}, {}
  local body = {"reset", "set title " .. quote(o.title or "") .. " noenhanced",
    "set xlabel " .. quote(o.xlabel or "step"), "set ylabel " .. quote(o.ylabel or "") .. " noenhanced",
    "set grid lc rgb '#dddddd'", "set key outside right top noenhanced spacing 1.2"}
  if o.logx then body[#body + 1] = "set logscale x"; body[#body + 1] = "set format x '10^{%L}'" end
  if o.logy then body[#body + 1] = "set logscale y"; body[#body + 1] = "set format y '10^{%L}'" end
  if o.yrange then body[#body + 1] = string.format("set yrange [%s:%s]", o.yrange[1] and num(o.yrange[1]) or "*",
    o.yrange[2] and num(o.yrange[2]) or "*") end
  if o.xrange then body[#body + 1] = string.format("set xrange [%s:%s]", num(o.xrange[1]), num(o.xrange[2])) end
  local kept = {}
  for _, s in ipairs(series) do
    if math.min(#s.x, #s.y) > 0 then kept[#kept + 1] = s end
  end
  series = kept
  if #series == 0 then series = {{label = "no data", x = {0}, y = {o.logy and 1 or 0}}} end
  for k, s in ipairs(series) do
    local rows = {}
    for i = 1, math.min(#s.x, #s.y) do
      local y = s.y[i]
      if o.logy and o.floor and y == y and y < o.floor then y = o.floor end
      rows[#rows + 1] = {s.x[i], y}
    end
    data[k] = datablock("s" .. k, rows)
    local c = s.color or colors[(k - 1) % #colors + 1]
    plots[k] = string.format("$s%d with %s lw %s lc rgb '%s' %s title %s", k, s.style or "lines",
      s.lw or 2, c, s.dt and ("dt " .. s.dt) or "", quote(s.label or ""))
  end
  for i, m in ipairs(o.marks or {}) do
    data[#data + 1] = datablock("m" .. i, {{m.x, m.y}})
    plots[#plots + 1] = string.format("$m%d with points pt 7 ps 2 lc rgb 'black' title %s", i, quote(m.label))
  end
  body[#body + 1] = "plot " .. table.concat(plots, ", \\\n  ")
  return table.concat(data, "\n"), table.concat(body, "\n")
end

--- Draws line series into dir/base.png and .svg.
-- @param series list of `{label=, x={...}, y={...}, dt=?, color=?}`
-- @tparam table o title, xlabel, ylabel, logx, logy, floor (smallest y drawn on a log
-- axis), yrange {lo, hi} (nil for automatic), marks {{x=, y=, label=}}
function M.lines(series, dir, base, o)
  record(dir, {kind = "lines", base = base, series = series, o = o})
  local data, body = lines_text(series, o or {})
  return figure(dir, base, data, body)
end

--- Draws a heat map of z over a grid of two hyper-parameters, the values printed in cells.
-- @param xs, ys lists of the x and y values (shown as category labels)
-- @param z z[j][i] for ys[j], xs[i] (nil for a missing cell)
function M.heatmap(xs, ys, z, dir, base, o)
  o = o or {}
  record(dir, {kind = "heatmap", base = base, xs = xs, ys = ys, z = z, o = o})
  local rows, labels = {}, {}
  for j = 1, #ys do
    for i = 1, #xs do
      local v = z[j] and z[j][i]
      rows[#rows + 1] = {i, j, v == nil and 0 / 0 or v}
      labels[#labels + 1] = string.format("set label %s at %d,%d center front font ',10'",
        quote(v == nil and "diverged" or string.format("%.3g", v)), i, j)
    end
  end
  local function tics(axis, vals)
    local t = {}
    for i, v in ipairs(vals) do t[i] = string.format("%s %d", quote(tostring(v)), i) end
    return string.format("set %stics (%s)", axis, table.concat(t, ", "))
  end
  local body = {"reset", "set title " .. quote(o.title or "") .. " noenhanced",
    "set xlabel " .. quote(o.xlabel or "") .. " noenhanced", "set ylabel " .. quote(o.ylabel or "") .. " noenhanced",
    tics("x", xs), tics("y", ys), string.format("set xrange [0.5:%s]", #xs + 0.5),
    string.format("set yrange [0.5:%s]", #ys + 0.5),
    "set palette defined (0 '#2166ac', 1 '#f7f7f7', 2 '#b2182b')",
    "set cblabel " .. quote(o.zlabel or "") .. " noenhanced",
    table.concat(labels, "\n"),
    "plot $hm using 1:2:3 with image notitle"}
  return figure(dir, base, datablock("hm", rows), table.concat(body, "\n"))
end

-- The series of a race's loss curves: f - fmin on a log axis when fmin is known.
local function race_loss(r, logy)
  local series = {}
  for k, c in ipairs(r.contestants) do
    local xs, ys = {}, {}
    for i, l in ipairs(c.losses) do
      xs[i], ys[i] = i - 1, logy and (l - r.fn.fmin) or l
    end
    series[k] = {label = c.label .. (c.diverged and " (diverged)" or ""), x = xs, y = ys,
      dt = k > #colors and 2 or nil}
  end
  return series
end

local function race_loss_opts(r)
  local logy = r.fn.fmin ~= nil
  local o = {title = r.fn.name .. ": loss per step", xlabel = "step",
    ylabel = logy and "f(x) - f*" or "f(x)", logy = logy, floor = 1e-20}
  if logy then
    -- From the lowest gap reached (at least 1e-20) to 100x the starting gap, so that one
    -- blow-up does not flatten the others.
    local lo, hi = math.huge, 0
    for _, c in ipairs(r.contestants) do
      for _, l in ipairs(c.losses) do
        local g = l - r.fn.fmin
        if g == g and g > 0 and g < lo then lo = g end
      end
      if c.losses[1] then hi = math.max(hi, c.losses[1] - r.fn.fmin) end
    end
    lo = math.max(lo, 1e-20)
    if lo > hi then lo = hi / 10 end
    o.yrange = {10 ^ math.floor(math.log(lo, 10)), 100 * hi}
  else
    -- Unbounded below: show the range the function takes on its window.
    local _, _, z = M.grid(r.fn, 60)
    o.yrange = {z:min():item(), z:max():item()}
  end
  return logy, o
end

--- Draws a race's pictures into dir: trajectories (2-D functions), loss, and the lr when
-- a schedule ran. Returns the list of files, or nil and a message.
function M.race(r, dir)
  -- A failed figure does not stop the others, so that all of them are recorded.
  local files, first_err = {}, nil
  local function add(list, err)
    if not list then first_err = first_err or err return end
    for _, f in ipairs(list) do files[#files + 1] = f end
  end
  if r.fn.dim == 2 and r.fn.window then
    local traces = {}
    for k, c in ipairs(r.contestants) do traces[k] = {label = c.label, points = c.iterates} end
    add(M.contour(r.fn, traces, dir, "trajectories",
      {title = string.format("%s: %d steps from (%g, %g)", r.fn.name, r.steps, r.start[1], r.start[2])}))
  end
  local logy, o = race_loss_opts(r)
  add(M.lines(race_loss(r, logy), dir, "loss", o))
  local scheduled = r.schedule ~= nil
  for _, c in ipairs(r.contestants) do scheduled = scheduled or c.schedule ~= nil end
  if scheduled then
    local series = {}
    for k, c in ipairs(r.contestants) do
      local xs = {}
      for i = 1, #c.lrs do xs[i] = i - 1 end
      series[k] = {label = c.label, x = xs, y = c.lrs}
    end
    add(M.lines(series, dir, "lr", {title = "learning rate per step", ylabel = "lr", logy = true}))
  end
  if first_err then return nil, first_err end
  return files
end

--- Draws results, a test function or a list of numbers in the terminal; returns the text
-- (and prints it unless o.print == false).
-- @param what a race's results, a train race, an lr_find result, a sweep, a test
-- function (or its name: a contour map with the start marked), or a list of numbers
-- @tparam[opt=100] integer width columns, @tparam[opt=32] integer height rows
function M.show(what, o)
  o = o or {}
  local data, body
  if type(what) == "string" then what = require("crater.lab.functions").get(what) end
  if type(what) ~= "table" then error("show: expects results, a test function or a list of numbers, got " .. type(what), 2) end
  if what.kind == "race" then
    local logy, lo = race_loss_opts(what)
    lo.floor = 1e-20
    data, body = lines_text(race_loss(what, logy), lo)
  elseif what.kind and what.series then
    data, body = lines_text(what:series(), what:plot_options())
  elseif what.f and what.window then
    data, body = contour_text(what, {}, {resolution = 60, levels = 10})
  elseif #what > 0 then
    local xs = {}
    for i = 1, #what do xs[i] = i end
    data, body = lines_text({{label = o.label or "", x = xs, y = what}}, {logy = o.logy})
  else
    error("show: expects results, a test function or a list of numbers", 2)
  end
  body = body:gsub("set key outside", "set key inside"):gsub("set format y '10%^{%%L}'", "set format y '%%.0e'"):gsub("set format x '10%^{%%L}'", "set format x '%%.0e'")
  local text, err = dumb(data, body, o.width, o.height)
  if not text then
    if o.print ~= false then print(err) end
    return nil, err
  end
  if o.print ~= false then io.write(text) end
  return text
end

return M
