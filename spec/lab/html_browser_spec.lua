-- The lab's HTML reports in a real browser: the demo's pages (`crater examples/demo.lua
-- DIR --quick`: every contestant of `make demo`, fewer steps and images) and the course's
-- page (examples/tutorial/build.lua) opened in headless Chromium over the DevTools protocol. Skipped, saying why, only when no
-- Chromium is installed (make test's test-deps installs chromium-headless-shell).
local chromium = require "spec.helpers.chromium"

local EXE = (os.getenv("CRATER_BUILD") or "build") .. "/crater"
local OUT = "build/spec-html"
local PAGES = {"rosenbrock", "beale", "saddle", "fashion_mnist", "sweep", "lr_find"}

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The rows of the Markdown table under the heading `## title` of report.md: first cells.
local function md_rows(md, title)
  local section = md:match("\n## " .. title .. "\n(.-)\n## ") or md:match("\n## " .. title .. "\n(.*)$")
  local rows = {}
  for line in section:gmatch("[^\n]+") do
    if line:find("^|") then rows[#rows + 1] = line:match("^|%s*(.-)%s*|") end
  end
  table.remove(rows, 1)   -- the header
  table.remove(rows, 1)   -- |---|
  return rows
end

local browser_path, why = chromium.find()
local browser, pages, demo_out = nil, {}, nil

-- Clicks the element that the JavaScript expression `el` finds, at its centre, with the mouse.
local function click(page, el)
  local at = page:eval("(function () { var e = " .. el .. "; e.scrollIntoView({block: 'center'});"
    .. " var r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
  page:click(at[1], at[2])
end

describe("the lab's HTML reports in headless Chromium", function()
  if not browser_path then
    print("html_browser_spec skipped: " .. why)
    pending(why)
    return
  end

  setup(function()
    local p = io.popen(string.format("%s examples/demo.lua %s/demo --quick 2>&1", EXE, OUT))
    demo_out = p:read("a")
    assert(p:close(), demo_out)
    local index = demo_out:match("index of the HTML reports: (%S+)")
    assert(index, demo_out)
    browser = chromium.launch(OUT .. "/browser")
    local cwd = io.popen("pwd"):read("l")
    pages.index = browser:open("file://" .. cwd .. "/" .. index)
    for _, name in ipairs(PAGES) do
      pages[name] = browser:open(string.format("file://%s/%s/demo/%s/report.html", cwd, OUT, name))
    end
    local t = io.popen(string.format("%s examples/tutorial/build.lua %s/tutorial 2>&1", EXE, OUT))
    local tout = t:read("a")
    assert(t:close(), tout)
    pages.tutorial = browser:open(string.format("file://%s/%s/tutorial/index.html", cwd, OUT))
    os.execute("mkdir -p " .. OUT .. "/screenshots")
  end)

  teardown(function()
    if browser then browser:close() end
  end)

  it("makes one index page linking every report of the demo", function()
    local links = pages.index:eval("Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href'))")
    assert.same({"rosenbrock/report.html", "beale/report.html", "saddle/report.html",
      "fashion_mnist/report.html", "sweep/report.html", "lr_find/report.html"}, links)
    for _, href in ipairs(links) do assert.truthy(read(OUT .. "/demo/" .. href), href) end
    local names = pages.index:eval("Array.from(document.querySelectorAll('a')).map(a => a.textContent)")
    assert.equal("Optimizer race on rosenbrock", names[1])
    assert.equal("Training race", names[4])
  end)

  it("has the results table with one row per contestant", function()
    for _, name in ipairs(PAGES) do
      local md = read(OUT .. "/demo/" .. name .. "/report.md")
      local want = md_rows(md, "Results")
      local got = pages[name]:eval("Array.from(document.querySelectorAll('#results tbody tr'))"
        .. ".map(r => r.cells[0].textContent)")
      assert.same(want, got, name)
      if md:find("## Settings of each contestant", 1, true) then
        assert.equal(#md_rows(md, "Settings of each contestant"), #got, name)
      end
    end
    -- independent counts: the demo races 20 optimizers, trains 12, sweeps 3 x 3 settings
    assert.equal(20, pages.beale:eval("document.querySelectorAll('#results tbody tr').length"))
    assert.equal(12, pages.fashion_mnist:eval("document.querySelectorAll('#results tbody tr').length"))
    assert.equal(9, pages.sweep:eval("document.querySelectorAll('#results tbody tr').length"))
    assert.equal(1, pages.lr_find:eval("document.querySelectorAll('#results tbody tr').length"))
  end)

  it("renders every SVG at a non-zero size, one per picture gnuplot drew", function()
    for _, name in ipairs(PAGES) do
      local page = pages[name]
      local sizes = page:eval("Array.from(document.querySelectorAll('svg')).map(s => {"
        .. " var r = s.getBoundingClientRect(); return [r.width, r.height]; })")
      assert.truthy(#sizes >= 1, name)
      for i, s in ipairs(sizes) do
        assert.truthy(s[1] > 100 and s[2] > 50, string.format("%s: svg %d is %gx%g", name, i, s[1], s[2]))
      end
      -- every drawn curve, cell or trajectory has a non-empty box
      local empty = page:eval("Array.from(document.querySelectorAll('svg')).filter(s => {"
        .. " var drawn = Array.from(s.querySelectorAll('path.series, rect')).filter(e => {"
        .. " var b = e.getBBox(); return b.width > 0 || b.height > 0; }); return drawn.length === 0; }).length")
      assert.equal(0, empty, name)
      local p = io.popen("ls " .. OUT .. "/demo/" .. name .. "/*.svg 2>/dev/null | wc -l")
      local gnuplot_svgs = tonumber(p:read("a"))
      p:close()
      if gnuplot_svgs > 0 then assert.equal(gnuplot_svgs, #sizes, name) end
    end
    assert.equal(2, #pages.rosenbrock:eval("Array.from(document.querySelectorAll('svg')).map(s => 1)"))
  end)

  it("sorts the rows when a column's header is clicked, and reverses on a second click", function()
    for _, name in ipairs(PAGES) do
      local page = pages[name]
      -- the results table, or (lr_find: one row) the first table with more rows
      local tsel = page:eval("document.querySelectorAll('#results tbody tr').length > 1 ? '#results' :"
        .. " '#' + (Array.from(document.querySelectorAll('table')).find(t => t.tBodies[0].rows.length > 2).id ="
        .. " 'sortme')")
      local col = page:eval("Array.from(document.querySelectorAll('" .. tsel .. " th')).findIndex(h =>"
        .. " h.classList.contains('num'))")
      assert.truthy(col >= 0, name)
      local function order()
        return page:eval("Array.from(document.querySelectorAll('" .. tsel .. " tbody tr')).map(r =>"
          .. " r.cells[0].textContent + '|' + (r.cells[" .. col .. "].dataset.v || ''))")
      end
      local function values(o)
        local v = {}
        for _, s in ipairs(o) do local x = tonumber(s:match("|(.*)$")) if x then v[#v + 1] = x end end
        return v
      end
      local before = order()
      click(page, "document.querySelectorAll('" .. tsel .. " th')[" .. col .. "]")
      local up = order()
      local vu = values(up)
      assert.truthy(#vu >= 2, name)
      for i = 2, #vu do assert.truthy(vu[i - 1] <= vu[i], name .. ": not ascending") end
      click(page, "document.querySelectorAll('" .. tsel .. " th')[" .. col .. "]")
      local down = order()
      local vd = values(down)
      for i = 2, #vd do assert.truthy(vd[i - 1] >= vd[i], name .. ": not descending") end
      assert.are_not.same(up, down, name)
      assert.truthy(not (table.concat(before) == table.concat(up) and table.concat(before) == table.concat(down)),
        name .. ": the rows never moved")
      assert.equal("descending", page:eval("document.querySelectorAll('" .. tsel .. " th')[" .. col
        .. "].getAttribute('aria-sort')"))
    end
  end)

  it("hides and shows a contestant's curve in every picture from a legend", function()
    for _, name in ipairs({"rosenbrock", "saddle", "fashion_mnist", "lr_find"}) do
      local page = pages[name]
      local label = page:eval("document.querySelector('.legend input').dataset.toggle")
      local shown = "Array.from(document.querySelectorAll('svg g[data-label]')).filter(g =>"
        .. " g.dataset.label === " .. string.format("%q", label) .. " && g.getBoundingClientRect().width > 0).length"
      local n = page:eval(shown)
      assert.truthy(n >= 1, name)
      click(page, "document.querySelector('.legend input')")
      assert.equal(0, page:eval(shown), name)
      if name ~= "lr_find" then
        assert.truthy(page:eval("document.querySelector('#results tr[data-label=\"' + "
          .. string.format("%q", label) .. " + '\"]').classList.contains('off')"), name)
      end
      click(page, "document.querySelector('.legend input')")
      assert.equal(n, page:eval(shown), name)
    end
  end)

  it("renders the course's pictures, and its legends hide and show curves", function()
    local page = pages.tutorial
    local sizes = page:eval("Array.from(document.querySelectorAll('svg')).map(s => {"
      .. " var r = s.getBoundingClientRect(); return r.width > 100 && r.height > 50; })")
    assert.truthy(#sizes >= 10)
    for i, ok in ipairs(sizes) do assert.is_true(ok, "svg " .. i) end
    -- the square contour maps keep x1 and x2 at the same scale
    local ratio = page:eval("(function () { var r = document.querySelector('svg.contour rect.plotarea')"
      .. ".getBoundingClientRect(); return r.width / r.height; })()")
    assert.truthy(math.abs(ratio - 1) < 0.02, ratio)
    local label = page:eval("document.querySelectorAll('.legend input')[3].dataset.toggle")
    local shown = "Array.from(document.querySelectorAll('svg g[data-label]')).filter(g =>"
      .. " g.dataset.label === " .. string.format("%q", label) .. " && g.getBoundingClientRect().width > 0).length"
    local n = page:eval(shown)
    assert.truthy(n >= 1)
    click(page, "document.querySelectorAll('.legend input')[3]")
    assert.equal(0, page:eval(shown))
    click(page, "document.querySelectorAll('.legend input')[3]")
    assert.equal(n, page:eval(shown))
  end)

  it("logs no console errors and fetches nothing but the page itself", function()
    for name, page in pairs(pages) do
      page:eval("1")   -- hands the page the events queued while other pages ran
      assert.same({}, page.errors, name)
      for _, url in ipairs(page.requests) do
        assert.truthy(url:find("^file://.*%.html$"), name .. " fetched " .. url)
      end
    end
  end)

  it("saves a screenshot of each page", function()
    for name, page in pairs(pages) do
      local path = OUT .. "/screenshots/" .. name .. ".png"
      local size = page:screenshot(path)
      local png = read(path)
      assert.equal("\137PNG\r\n\26\n", png:sub(1, 8), name)
      assert.truthy(size > 10000, name)
    end
  end)
end)
