-- report.html without a browser: written next to report.md by every lab run, with the
-- results rows, inline SVG drawn from the recorded figures (with or without gnuplot), and
-- no reference to anything outside the page. The browser spec checks how it behaves.
local crater = require "crater"
local lab = crater.lab
local html = require "crater.lab.html"
local plot = require "crater.lab.plot"

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  return d
end

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

local function count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do n = n + 1 end
  return n
end

local function self_contained(page)
  assert.falsy(page:find("src=", 1, true))
  assert.falsy(page:find("<link", 1, true))
  assert.falsy(page:find("href=\"http", 1, true))
  assert.falsy(page:find("url%(['\"]?http"))
  assert.falsy(page:find("@import", 1, true))
end

local function data()
  crater.manual_seed(0)
  local x = crater.randn(96, 4)
  return {x = x, y = x:select(2, 1):gt(0):to("int64") + 1, batch_size = 32}
end
local function model() return crater.nn.Linear(4, 2) end

describe("lab report.html", function()
  it("a race writes it with one results row per contestant and its pictures as SVG", function()
    local dir = tmpdir()
    local r = lab.race{fn = "beale", optimizers = {"sgd", "momentum", {"adam", lr = 0.05}}, steps = 15,
                       schedule = "cosine", out = dir, quiet = true}
    local page = read(dir .. "/report.html")
    self_contained(page)
    assert.truthy(page:find("<title>Optimizer race on beale</title>", 1, true))
    local results = page:match('<table class="sortable" id="results">(.-)</table>')
    assert.equal(3, count(results, "<tr data%-label="))
    assert.truthy(results:find(string.format('data-v="%.17g"', tonumber(string.format("%.6g",
      r.contestants[1].final_loss))), 1, true))
    assert.equal(3, count(page, "<svg "))     -- trajectories, loss, lr
    assert.equal(3 * 3, count(page, '<g data%-label="'))
    assert.truthy(page:find('<g data-label="adam">', 1, true))
    assert.truthy(page:find("crater.lab.race{fn = &quot;beale&quot;", 1, true))
    os.execute("rm -r '" .. dir .. "'")
  end)

  it("train_race, sweep and lr_find write it too", function()
    local dir = tmpdir()
    lab.train_race{model_factory = model, data = data(), optimizers = {"sgd", "adam"}, out = dir .. "/t", quiet = true}
    lab.sweep{fn = "booth", optimizer = "sgd", steps = 5, grid = {lr = {1e-3, 1e-2}, momentum = {0, 0.9}},
      out = dir .. "/s", quiet = true}
    lab.lr_find{model_factory = model, data = data(), num_iter = 12, out = dir .. "/l", quiet = true}
    local t, s, l = read(dir .. "/t/report.html"), read(dir .. "/s/report.html"), read(dir .. "/l/report.html")
    for _, page in ipairs({t, s, l}) do self_contained(page) end
    assert.equal(2, count(t:match('id="results">(.-)</table>'), "<tr "))
    assert.equal(2, count(t, "<svg "))       -- loss and lr per batch
    assert.equal(4, count(s:match('id="results">(.-)</table>'), "<tr "))
    assert.truthy(s:find('<svg class="chart heatmap"', 1, true))
    assert.equal(1, count(l:match('id="results">(.-)</table>'), "<tr "))
    assert.truthy(l:find("<h2>Steps</h2>", 1, true))
    assert.truthy(read(dir .. "/l/report.md"):find("## Steps", 1, true))
    os.execute("rm -r '" .. dir .. "'")
  end)

  it("draws the SVG without gnuplot, from the recorded figures", function()
    local saved = plot.gnuplot
    plot.gnuplot = "/nonexistent/gnuplot"
    local dir = tmpdir()
    local ok, err = pcall(lab.race, {fn = "rosenbrock", optimizers = {"sgd", "adam"}, steps = 5, out = dir, quiet = true})
    plot.gnuplot = saved
    assert(ok, err)
    local page = read(dir .. "/report.html")
    assert.equal(2, count(page, "<svg "))
    assert.is_nil(io.open(dir .. "/loss.svg"))
    assert.same({}, plot.figures(dir))     -- taken by the report
    os.execute("rm -r '" .. dir .. "'")
  end)

  it("sorts by the number in a cell and leaves text cells without one", function()
    local t = html.table("| optimizer | acc | steps |\n|---|---:|---:|\n| a | 84.80% | never |\n| b | 1e-3 | 7 |", "x")
    assert.truthy(t:find('<td class="num" data-v="84.799999999999997">84.80%</td>', 1, true))
    assert.truthy(t:find('<td class="num">never</td>', 1, true))
    assert.truthy(t:find('<td class="num" data-v="0.001">1e-3</td>', 1, true))
    assert.truthy(t:find('<tr data-label="b">', 1, true))
    assert.truthy(html.table("| x |\n|---|\n| <b>&'\" |"):find("&lt;b&gt;&amp;&#39;&quot;", 1, true))
  end)

  it("skips points a log axis cannot show and clamps ones far outside the picture", function()
    local svg = html.lines({{label = "s", x = {1, 2, 3, 4}, y = {1, 0, -1, 1e300}}}, {logy = true})
    local d = svg:match('<path class="series" d="([^"]*)"')
    assert.equal(2, count(d, "[ML]"))        -- 1 and 1e300; 0 and -1 break the line
    assert.equal(2, count(d, "M"))
    for v in d:gmatch("[%d.e+-]+") do assert.truthy(math.abs(tonumber(v)) <= 1e5, v) end
  end)

  it("an index links report pages relative to its folder, titled by their <title>", function()
    local dir = tmpdir()
    lab.race{fn = "booth", optimizers = {"sgd"}, steps = 3, out = dir .. "/a", quiet = true}
    local path = lab.index(dir .. "/index.html", {dir .. "/a/report.html", {href = "x.html", title = "X & Y"}})
    local page = read(path)
    self_contained(page)
    assert.truthy(page:find('<a href="a/report.html">Optimizer race on booth</a>', 1, true))
    assert.truthy(page:find('<a href="x.html">X &amp; Y</a>', 1, true))
    os.execute("rm -r '" .. dir .. "'")
  end)
end)
