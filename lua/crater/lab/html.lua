--- crater.lab.html: report.html for every lab run, and an index page linking several.
-- A page is self-contained: the results table (sortable: click a column's header), the
-- settings, and the pictures as inline SVG drawn here from the same data that gnuplot gets
-- for the PNGs (crater.lab.plot records every figure it draws; see plot.figures). A legend
-- under each picture shows or hides a contestant's curve in every picture of the page.
-- Inline CSS and a few lines of plain JavaScript; nothing is fetched from anywhere.
local M = {}

local plot = require "crater.lab.plot"

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&#39;"}))
end
M.escape = esc

-- Inline Markdown of the reports' prose: `code`, **bold**, *emphasis*.
local function inline(s)
  return (esc(s):gsub("`([^`]+)`", "<code>%1</code>"):gsub("%*%*(.-)%*%*", "<strong>%1</strong>")
    :gsub("%*(%a[^*]-)%*", "<em>%1</em>"))
end

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

-- A pixel coordinate; far outside the picture (a point that flew off) it is clamped, as
-- SVG takes only numbers that fit a float.
local function n2(v) return string.format("%.2f", math.max(-1e5, math.min(1e5, v))) end

-- Ticks of [lo, hi] at 1, 2 or 5 times a power of ten, about `count` of them.
local function linear_ticks(lo, hi, count)
  local span = hi - lo
  if span <= 0 then return {lo} end
  local raw = span / (count or 6)
  local p = 10 ^ math.floor(math.log(raw, 10))
  local step = p
  for _, m in ipairs({1, 2, 5, 10}) do
    step = m * p
    if step >= raw then break end
  end
  local out = {}
  for k = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) do out[#out + 1] = k * step end
  return out
end

local function tick_label(v, log)
  if log then
    local e = math.floor(v + 0.5)
    if math.abs(v - e) < 1e-9 and math.abs(e) > 3 then return "1e" .. e end
    return string.format("%.3g", 10 ^ v)
  end
  if math.abs(v) < 1e-12 then return "0" end
  return string.format("%.4g", v)
end

-- The frame of a chart: a map from data to pixels, the axes, ticks and labels.
local W, H = 760, 440
local L, R, T, B = 78, 18, 34, 50

local function frame(x0, x1, y0, y1, o)
  if x1 <= x0 then x0, x1 = x0 - 0.5, x1 + 0.5 end
  if y1 <= y0 then
    local d = math.max(math.abs(y0) * 0.1, o.logy and 0.5 or 1e-12)
    y0, y1 = y0 - d, y1 + d
  end
  local width, height = o.width or W, o.height or H
  local pw, ph = width - L - R, height - T - B
  local f = {}
  function f.x(v) return L + (v - x0) / (x1 - x0) * pw end
  function f.y(v) return T + ph - (v - y0) / (y1 - y0) * ph end
  local s = {string.format('<rect class="plotarea" x="%d" y="%d" width="%d" height="%d"/>', L, T, pw, ph)}
  local function ticks(lo, hi, log)
    local t = linear_ticks(lo, hi, 6)
    if log then
      local dec = {}
      for k = math.ceil(lo), math.floor(hi), math.max(1, (math.floor(hi) - math.ceil(lo)) // 8 + 1) do dec[#dec + 1] = k end
      if #dec >= 2 then t = dec end
    end
    return t
  end
  for _, v in ipairs(ticks(x0, x1, o.logx)) do
    local px = f.x(v)
    s[#s + 1] = string.format('<line class="grid" x1="%s" y1="%d" x2="%s" y2="%d"/><text x="%s" y="%d" '
      .. 'text-anchor="middle">%s</text>', n2(px), T, n2(px), T + ph, n2(px), T + ph + 18, esc(tick_label(v, o.logx)))
  end
  for _, v in ipairs(ticks(y0, y1, o.logy)) do
    local py = f.y(v)
    s[#s + 1] = string.format('<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s"/><text x="%d" y="%s" '
      .. 'text-anchor="end" dominant-baseline="middle">%s</text>', L, n2(py), L + pw, n2(py), L - 6, n2(py),
      esc(tick_label(v, o.logy)))
  end
  s[#s + 1] = string.format('<text class="title" x="%d" y="20" text-anchor="middle">%s</text>', width // 2,
    esc(o.title or ""))
  s[#s + 1] = string.format('<text x="%d" y="%d" text-anchor="middle">%s</text>', L + pw // 2, height - 8,
    esc(o.xlabel or ""))
  s[#s + 1] = string.format('<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>',
    T + ph // 2, T + ph // 2, esc(o.ylabel or ""))
  return f, table.concat(s, "\n")
end

local svg_id = 0
local function svg_open(cls, width, height)
  svg_id = svg_id + 1
  width, height = width or W, height or H
  return string.format('<svg class="%s" viewBox="0 0 %d %d" style="max-width:%dpx" '
    .. 'xmlns="http://www.w3.org/2000/svg" role="img"><defs><clipPath id="clip%d"><rect x="%d" y="%d" '
    .. 'width="%d" height="%d"/></clipPath></defs>', cls, width, height, width, svg_id, L, T, width - L - R,
    height - T - B),
    svg_id
end

local function legend(items)
  local s = {'<div class="legend">'}
  for _, it in ipairs(items) do
    s[#s + 1] = string.format('<label><input type="checkbox" checked data-toggle="%s"><span class="swatch" '
      .. 'style="background:%s"></span>%s</label>', esc(it.label), it.color, esc(it.label))
  end
  s[#s + 1] = "</div>"
  return table.concat(s)
end

local MAX_POINTS = 1500

--- A line chart as SVG, from the arguments of crater.lab.plot.lines.
-- @param series list of `{label=, x=, y=, color=?, style=?, lw=?, dt=?}`
-- @tparam table o title, xlabel, ylabel, logx, logy, floor, yrange, xrange, marks
-- @return the `<figure>` text (the SVG and its legend)
function M.lines(series, o)
  o = o or {}
  local tx = o.logx and function(v) return v > 0 and math.log(v, 10) or nil end or function(v) return v end
  local ty = o.logy and function(v)
    if o.floor and v < o.floor then v = o.floor end
    return v > 0 and math.log(v, 10) or nil
  end or function(v) return v end
  local pts, x0, x1, y0, y1 = {}, math.huge, -math.huge, math.huge, -math.huge
  for k, s in ipairs(series) do
    local p, n = {}, math.min(#s.x, #s.y)
    local every = math.max(1, n // MAX_POINTS)
    for i = 1, n do
      if i % every == 0 or i == 1 or i == n then
        local xv, yv = s.x[i], s.y[i]
        local px, py = finite(xv) and tx(xv), finite(yv) and ty(yv)
        if px and py then
          p[#p + 1] = {px, py}
          x0, x1, y0, y1 = math.min(x0, px), math.max(x1, px), math.min(y0, py), math.max(y1, py)
        else p[#p + 1] = false end
      end
    end
    pts[k] = p
  end
  if x0 > x1 then x0, x1, y0, y1 = 0, 1, 0, 1 end
  if o.xrange then x0, x1 = tx(o.xrange[1]) or x0, tx(o.xrange[2]) or x1 end
  if o.yrange then
    y0 = o.yrange[1] and finite(o.yrange[1]) and ty(o.yrange[1]) or y0
    y1 = o.yrange[2] and finite(o.yrange[2]) and ty(o.yrange[2]) or y1
  end
  local f, axes = frame(x0, x1, y0, y1, o)
  local open, id = svg_open("chart")
  local s, items = {open, axes, string.format('<g clip-path="url(#clip%d)">', id)}, {}
  for k, ser in ipairs(series) do
    local color = ser.color or plot.colors[(k - 1) % #plot.colors + 1]
    local d, pen = {}, "M"
    for _, p in ipairs(pts[k]) do
      if p then
        d[#d + 1] = pen .. n2(f.x(p[1])) .. " " .. n2(f.y(p[2]))
        pen = "L"
      else pen = "M" end
    end
    local label = ser.label or ""
    s[#s + 1] = string.format('<g data-label="%s"><path class="series" d="%s" stroke="%s" stroke-width="%s"%s>'
      .. '<title>%s</title></path>', esc(label), table.concat(d, ""), color, ser.lw or 2,
      ser.dt and ' stroke-dasharray="6 3"' or "", esc(label))
    if ser.style == "linespoints" then
      for _, p in ipairs(pts[k]) do
        if p then s[#s + 1] = string.format('<circle cx="%s" cy="%s" r="3.5" fill="%s"/>', n2(f.x(p[1])),
          n2(f.y(p[2])), color) end
      end
    end
    s[#s + 1] = "</g>"
    items[#items + 1] = {label = label, color = color}
  end
  for _, m in ipairs(o.marks or {}) do
    local px, py = finite(m.x) and tx(m.x), finite(m.y) and ty(m.y)
    if px and py then
      s[#s + 1] = string.format('<circle class="mark" cx="%s" cy="%s" r="6"><title>%s</title></circle>'
        .. '<text x="%s" y="%s">%s</text>', n2(f.x(px)), n2(f.y(py)), esc(m.label or ""), n2(f.x(px) + 9),
        n2(f.y(py) - 9), esc(m.label or ""))
    end
  end
  s[#s + 1] = "</g></svg>"
  return "<figure>" .. table.concat(s, "\n") .. legend(items) .. "</figure>"
end

-- Segments of the level-c contour of the n x n grid z (row-major, y outer), by marching
-- squares; each segment is {x1, y1, x2, y2} in grid units (0-based).
local function march(z, n, c)
  local segs = {}
  local function at(i, j) return z[j * n + i + 1] end
  for j = 0, n - 2 do
    for i = 0, n - 2 do
      local a, b, cc, d = at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1)   -- corners, counter-clockwise
      local pts = {}
      local function edge(v1, v2, x1, y1, x2, y2)
        if (v1 < c) ~= (v2 < c) then
          local t = (c - v1) / (v2 - v1)
          pts[#pts + 1] = {x1 + t * (x2 - x1), y1 + t * (y2 - y1)}
        end
      end
      if a == a and b == b and cc == cc and d == d then
        edge(a, b, i, j, i + 1, j); edge(b, cc, i + 1, j, i + 1, j + 1)
        edge(cc, d, i + 1, j + 1, i, j + 1); edge(d, a, i, j + 1, i, j)
        if #pts >= 2 then segs[#segs + 1] = {pts[1][1], pts[1][2], pts[2][1], pts[2][2]} end
        if #pts == 4 then segs[#segs + 1] = {pts[3][1], pts[3][2], pts[4][1], pts[4][2]} end
      end
    end
  end
  return segs
end

local SHADES = {"#f7fbff", "#e8f1fa", "#deebf7", "#d2e3f3", "#c6dbef", "#b2d2e8", "#9ecae1", "#85bcdb", "#6baed6"}

--- A contour map of a test function with trajectories, as SVG, from the arguments of
-- crater.lab.plot.contour (fn, traces = {{label=, points=}}, o = {title=}).
function M.contour(fn, traces, o)
  o = o or {}
  local n = 90
  local xs, ys, zt = plot.grid(fn, n)
  local lv = plot.levels(fn, zt, 16)
  local z = zt:totable()
  local w = fn.window
  -- one unit is as long along x1 as along x2 (gnuplot's "size ratio -1"), as wide as fits
  local height = 580
  local width = math.min(W, math.max(360, L + R + math.floor((height - T - B) * (w[2] - w[1]) / (w[4] - w[3]) + 0.5)))
  local f, axes = frame(w[1], w[2], w[3], w[4], {title = o.title or fn.name, xlabel = "x1", ylabel = "x2",
    width = width, height = height})
  local open, id = svg_open("chart contour", width, height)
  local s = {open, axes, string.format('<g clip-path="url(#clip%d)">', id)}
  -- Shading: the value's band among the levels, as runs of equal cells along x.
  local dx, dy = (xs[2] - xs[1]), (ys[2] - ys[1])
  local function band(v)
    local k = 1
    for i, l in ipairs(lv) do if v >= l then k = i + 1 end end
    return math.min(#SHADES, 1 + (k - 1) * (#SHADES - 1) // #lv)
  end
  s[#s + 1] = '<g shape-rendering="crispEdges">'   -- no anti-aliased seams between the runs
  for j = 1, n do
    local run_start, run_band = 1, nil
    for i = 1, n + 1 do
      local b = i <= n and band(z[(j - 1) * n + i]) or nil
      if b ~= run_band then
        if run_band and run_band > 1 then
          local xa, xb = f.x(xs[run_start] - dx / 2), f.x(xs[i - 1] + dx / 2)
          local ya, yb = f.y(ys[j] + dy / 2), f.y(ys[j] - dy / 2)
          s[#s + 1] = string.format('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>', n2(xa), n2(ya),
            n2(xb - xa + 0.3), n2(yb - ya + 0.3), SHADES[run_band])
        end
        run_start, run_band = i, b
      end
    end
  end
  s[#s + 1] = "</g>"
  local gx = function(u) return f.x(xs[1] + u * dx) end
  local gy = function(v) return f.y(ys[1] + v * dy) end
  for _, c in ipairs(lv) do
    local d = {}
    for _, sg in ipairs(march(z, n, c)) do
      d[#d + 1] = string.format("M%s %sL%s %s", n2(gx(sg[1])), n2(gy(sg[2])), n2(gx(sg[3])), n2(gy(sg[4])))
    end
    if #d > 0 then s[#s + 1] = '<path class="level" d="' .. table.concat(d) .. '"/>' end
  end
  local items = {}
  for k, t in ipairs(traces) do
    local color = plot.colors[(k - 1) % #plot.colors + 1]
    local d, last = {}, nil
    local mx, my = (w[2] - w[1]) * 2, (w[4] - w[3]) * 2
    local every = math.max(1, #t.points // MAX_POINTS)
    for i, p in ipairs(t.points) do
      if not (finite(p[1]) and finite(p[2])) then break end
      if i % every == 0 or i == 1 or i == #t.points then
        d[#d + 1] = (#d == 0 and "M" or "L") .. n2(f.x(p[1])) .. " " .. n2(f.y(p[2]))
        last = p
      end
      -- far outside the window a point only adds a straight exit line; stop there
      if p[1] < w[1] - mx or p[1] > w[2] + mx or p[2] < w[3] - my or p[2] > w[4] + my then break end
    end
    s[#s + 1] = string.format('<g data-label="%s"><path class="series" d="%s" stroke="%s" stroke-width="2">'
      .. '<title>%s</title></path>%s</g>', esc(t.label), table.concat(d), color, esc(t.label),
      last and string.format('<circle cx="%s" cy="%s" r="4" fill="%s"/>', n2(f.x(last[1])), n2(f.y(last[2])),
        color) or "")
    items[#items + 1] = {label = t.label, color = color}
  end
  for _, m in ipairs(fn.minima) do
    s[#s + 1] = string.format('<path class="mark" d="M%s %sm-7 0h14m-7 -7v14"><title>minimum</title></path>',
      n2(f.x(m[1])), n2(f.y(m[2])))
  end
  for _, m in ipairs(fn.saddle_points or {}) do
    s[#s + 1] = string.format('<path class="mark" d="M%s %sm-7 0h14m-7 -7v14"><title>saddle point</title></path>',
      n2(f.x(m[1])), n2(f.y(m[2])))
  end
  local start = traces[1] and traces[1].points[1] or fn.start
  s[#s + 1] = string.format('<rect class="start" x="%s" y="%s" width="9" height="9"><title>start</title></rect>',
    n2(f.x(start[1]) - 4.5), n2(f.y(start[2]) - 4.5))
  s[#s + 1] = "</g></svg>"
  return "<figure>" .. table.concat(s, "\n") .. legend(items) .. "</figure>"
end

-- A colour between blue (t = 0), white (0.5) and red (1), as gnuplot's heat map has.
local function diverging(t)
  local a, b, u
  if t < 0.5 then a, b, u = {0x21, 0x66, 0xac}, {0xf7, 0xf7, 0xf7}, t * 2
  else a, b, u = {0xf7, 0xf7, 0xf7}, {0xb2, 0x18, 0x2b}, (t - 0.5) * 2 end
  local c = {}
  for i = 1, 3 do c[i] = math.floor(a[i] + (b[i] - a[i]) * u + 0.5) end
  return string.format("#%02x%02x%02x", c[1], c[2], c[3])
end

--- A heat map as SVG, from the arguments of crater.lab.plot.heatmap (xs, ys labels,
-- z[j][i] or nil, o = {title=, xlabel=, ylabel=}).
function M.heatmap(xs, ys, z, o)
  o = o or {}
  local lo, hi = math.huge, -math.huge
  for j = 1, #ys do for i = 1, #xs do
    local v = z[j] and z[j][i]
    if finite(v) then lo, hi = math.min(lo, v), math.max(hi, v) end
  end end
  local open = svg_open("chart heatmap")
  local pw, ph = W - L - R, H - T - B
  local cw, ch = pw / #xs, ph / #ys
  local s = {open, string.format('<text class="title" x="%d" y="20" text-anchor="middle">%s</text>', W // 2,
    esc(o.title or ""))}
  for j = 1, #ys do
    for i = 1, #xs do
      local v = z[j] and z[j][i]
      local x, y = L + (i - 1) * cw, T + ph - j * ch
      local t = finite(v) and (hi > lo and (v - lo) / (hi - lo) or 0.5)
      s[#s + 1] = string.format('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/><text x="%s" y="%s" '
        .. 'text-anchor="middle" dominant-baseline="middle"%s>%s</text>', n2(x), n2(y), n2(cw), n2(ch),
        t and diverging(t) or "#bbbbbb", n2(x + cw / 2), n2(y + ch / 2),
        t and (t < 0.25 or t > 0.75) and ' style="fill:#fff"' or "", t and string.format("%.3g", v) or "diverged")
    end
  end
  for i, v in ipairs(xs) do
    s[#s + 1] = string.format('<text x="%s" y="%d" text-anchor="middle">%s</text>', n2(L + (i - 0.5) * cw),
      T + ph + 18, esc(v))
  end
  for j, v in ipairs(ys) do
    s[#s + 1] = string.format('<text x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>', L - 6,
      n2(T + ph - (j - 0.5) * ch), esc(v))
  end
  s[#s + 1] = string.format('<text x="%d" y="%d" text-anchor="middle">%s</text>', L + pw // 2, H - 8,
    esc(o.xlabel or ""))
  s[#s + 1] = string.format('<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>',
    T + ph // 2, T + ph // 2, esc(o.ylabel or ""))
  s[#s + 1] = "</svg>"
  return "<figure>" .. table.concat(s, "\n") .. "</figure>"
end

--- The figure of one record of crater.lab.plot.figures, as SVG.
function M.figure(fig)
  if fig.kind == "lines" then return M.lines(fig.series, fig.o)
  elseif fig.kind == "contour" then return M.contour(fig.fn, fig.traces, fig.o)
  elseif fig.kind == "heatmap" then return M.heatmap(fig.xs, fig.ys, fig.z, fig.o) end
  error("html.figure: unknown figure kind " .. tostring(fig.kind), 2)
end

-- The cells of one Markdown table row.
local function cells(line)
  local out = {}
  for c in line:gsub("^%s*|", ""):gsub("|%s*$", ""):gmatch("[^|]*") do out[#out + 1] = c:match("^%s*(.-)%s*$") end
  return out
end

-- The number a cell sorts by ("84.80%" -> 84.8, "1.5e-3" -> 0.0015), or nil.
local function sort_value(text)
  local v = tonumber((text:gsub("%%$", "")))
  if v and v == v then return v end
  return nil
end

--- A Markdown table (as the lab's `:table()` writes it) as an HTML table whose columns
-- sort when their header is clicked; `id` names it, and every body row carries the
-- first cell as `data-label`.
function M.table(md, id)
  local lines = {}
  for l in md:gmatch("[^\n]+") do if l:find("|", 1, true) then lines[#lines + 1] = l end end
  if #lines < 2 then return "<p>" .. inline(md) .. "</p>" end
  local head, align = cells(lines[1]), cells(lines[2])
  local s = {string.format('<table class="sortable"%s><thead><tr>', id and (' id="' .. esc(id) .. '"') or "")}
  for i, h in ipairs(head) do
    local num = align[i] and align[i]:find(":$") ~= nil
    s[#s + 1] = string.format('<th%s>%s</th>', num and ' class="num"' or "", inline(h))
  end
  s[#s + 1] = "</tr></thead><tbody>"
  for r = 3, #lines do
    local row = cells(lines[r])
    s[#s + 1] = string.format('<tr data-label="%s">', esc(row[1] or ""))
    for i = 1, #head do
      local c = row[i] or ""
      local v = sort_value(c)
      local num = align[i] and align[i]:find(":$") ~= nil
      s[#s + 1] = string.format('<td%s%s>%s</td>', num and ' class="num"' or "",
        v and string.format(' data-v="%.17g"', v) or "", inline(c))
    end
    s[#s + 1] = "</tr>"
  end
  s[#s + 1] = "</tbody></table>"
  return table.concat(s, "\n")
end

M.CSS = [[
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;max-width:1100px;margin:2em auto;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{padding:.3em .7em;border-bottom:1px solid #e4e4e4;text-align:left}
th{background:#f4f6f8;cursor:pointer;user-select:none;white-space:nowrap}th.num,td.num{text-align:right}
th[aria-sort=ascending]::after{content:" \25b2"}th[aria-sort=descending]::after{content:" \25bc"}
tr.off{opacity:.35}code,pre{font-family:ui-monospace,monospace;font-size:.9em}pre{background:#f6f8fa;padding:.8em;overflow:auto}
figure{margin:1em 0}svg.chart{width:100%;max-width:760px;height:auto;display:block;background:#fff}
svg text{font:12px sans-serif;fill:#333}svg text.title{font-size:14px;font-weight:600}
.plotarea{fill:none;stroke:#999}.grid{stroke:#e6e6e6}.series{fill:none;stroke-linejoin:round}
.level{fill:none;stroke:#7f9fbf;stroke-width:.8}.mark{stroke:#000;stroke-width:2;fill:none}.start{fill:#000}
.legend{display:flex;flex-wrap:wrap;gap:.2em 1em;font-size:.88em;max-width:760px}.legend label{cursor:pointer}
.swatch{display:inline-block;width:14px;height:4px;margin:0 .35em 3px .25em;vertical-align:middle}
.hidden{display:none}ul.reports li{margin:.3em 0}
]]

-- Sorting: a header click orders the body rows by data-v (numbers first, ascending, then
-- text); a second click reverses. A legend box hides or shows every element whose
-- data-label is its contestant's, in every picture and the results table.
M.JS = [[
document.querySelectorAll("table.sortable").forEach(function (t) {
  t.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      t.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col], y = b.cells[col], vx = x.dataset.v, vy = y.dataset.v;
        if (vx !== undefined && vy !== undefined) return dir * (Number(vx) - Number(vy));
        if (vx !== undefined) return -1;
        if (vy !== undefined) return 1;
        return dir * x.textContent.localeCompare(y.textContent);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.querySelectorAll("input[data-toggle]").forEach(function (box) {
  box.addEventListener("change", function () {
    var name = box.dataset.toggle;
    document.querySelectorAll("[data-label]").forEach(function (el) {
      if (el.dataset.label !== name) return;
      if (el.tagName === "TR") el.classList.toggle("off", !box.checked);
      else el.classList.toggle("hidden", !box.checked);
    });
    document.querySelectorAll("input[data-toggle]").forEach(function (b) {
      if (b.dataset.toggle === name) b.checked = box.checked;
    });
  });
});
]]

local function document(title, body)
  return table.concat({"<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>" .. esc(title) .. "</title>", "<style>" .. M.CSS .. "</style></head><body>", body,
    "<script>" .. M.JS .. "</script>", "</body></html>"}, "\n") .. "\n"
end
M.document = document

--- Writes text to path; raises "report: cannot write ..." (at the caller's caller) if not.
local function write(path, text)
  local f, err = io.open(path, "w")
  if not f then error("report: cannot write " .. tostring(err), 3) end
  f:write(text)
  f:close()
end
M.write = write

--- Writes dir/report.html; returns its path.
-- @tparam table o title, intro (lines), table (the results, Markdown), notes (lines under
--   it), tables ({title, markdown} pairs, after the results), settings and contestants
--   (Markdown tables), figures (crater.lab.plot.figures(dir)), code (the Lua that repeats
--   the run)
function M.report(dir, o)
  local s = {"<h1>" .. esc(o.title) .. "</h1>"}
  for _, l in ipairs(o.intro or {}) do s[#s + 1] = "<p>" .. inline(l) .. "</p>" end
  s[#s + 1] = "<h2>Results</h2>"
  s[#s + 1] = M.table(o.table, "results")
  if o.notes and #o.notes > 0 then
    s[#s + 1] = "<ul>"
    for _, l in ipairs(o.notes) do s[#s + 1] = "<li>" .. inline((l:gsub("^%- ", ""))) .. "</li>" end
    s[#s + 1] = "</ul>"
  end
  for _, t in ipairs(o.tables or {}) do
    s[#s + 1] = "<h2>" .. esc(t[1]) .. "</h2>"
    s[#s + 1] = M.table(t[2])
  end
  if o.figures and #o.figures > 0 then
    s[#s + 1] = "<h2>Pictures</h2>"
    for _, fig in ipairs(o.figures) do s[#s + 1] = M.figure(fig) end
  end
  s[#s + 1] = "<h2>Exact settings</h2>"
  s[#s + 1] = M.table(o.settings or "")
  if o.contestants then
    s[#s + 1] = "<h2>Settings of each contestant</h2>"
    s[#s + 1] = M.table(o.contestants)
  end
  if o.code then
    s[#s + 1] = "<h2>Repeat</h2>"
    s[#s + 1] = "<pre><code>" .. esc(o.code) .. "</code></pre>"
  end
  local path = dir .. "/report.html"
  write(path, document(o.title, table.concat(s, "\n")))
  return path
end

--- Writes an index page linking report pages; returns its path.
-- @tparam string path the index's file (its folder must exist)
-- @tparam table reports the paths of report.html files (relative links are made to
--   those inside the index's folder), or `{href=, title=}` tables
-- @tparam[opt="crater lab reports"] string title
-- @usage crater.lab.index("out/demo/index.html", {"out/demo/beale/report.html"})
function M.index(path, reports, title)
  title = title or "crater lab reports"
  local base = path:match("^(.*)/[^/]*$") or "."
  local s = {"<h1>" .. esc(title) .. "</h1>", '<ul class="reports">'}
  for _, r in ipairs(reports) do
    local href, name = r, nil
    if type(r) == "table" then href, name = r.href, r.title end
    if name == nil then
      local f = io.open(href)
      local text = f and f:read(4096) or ""
      if f then f:close() end
      name = text:match("<title>(.-)</title>") or href
      name = name:gsub("&lt;", "<"):gsub("&gt;", ">"):gsub("&quot;", '"'):gsub("&#39;", "'"):gsub("&amp;", "&")
    end
    if href:sub(1, #base + 1) == base .. "/" then href = href:sub(#base + 2) end
    s[#s + 1] = string.format('<li><a href="%s">%s</a> <code>%s</code></li>', esc(href), esc(name), esc(href))
  end
  s[#s + 1] = "</ul>"
  write(path, document(title, table.concat(s, "\n")))
  return path
end

return M
