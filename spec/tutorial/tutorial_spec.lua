-- The course (examples/tutorial/, `make tutorial`): every script runs, returns its section
-- with at least one picture, and the numbers its text rests on hold. Then build.lua puts
-- them all on one page.

local EXE = (os.getenv("CRATER_BUILD") or "build") .. "/crater"
local DIR = "examples/tutorial"

local function scripts()
  local list = {}
  local p = io.popen("ls " .. DIR)
  for name in p:lines() do if name:match("^%d%d_.*%.lua$") then list[#list + 1] = name end end
  p:close()
  table.sort(list)
  return list
end

local function increasing(t) for i = 2, #t do if t[i] < t[i - 1] then return false end end return true end

-- What each section claims, checked on the numbers it returns.
local lessons = {
  ["01_gradient_descent.lua"] = function(f)
    assert.truthy(f.mini < f.batch / 10, "mini-batch GD beats batch GD per pass")
    assert.truthy(f.sgd < f.batch / 10)
    assert.truthy(f.mini < f.sgd, "single-example noise sets a higher floor")
    assert.truthy(f.batch < f.start)
  end,
  ["02_momentum.lua"] = function(f)
    assert.truthy(f["momentum 0.9"] < f["gradient descent"])
    assert.truthy(f["Nesterov 0.9"] < f["momentum 0.9"] / 100)
  end,
  ["03_adaptive.lua"] = function(f)
    local names = {"adagrad", "rmsprop", "adadelta", "adam", "adamax", "nadam", "adamw"}
    for _, n in ipairs(names) do
      assert.truthy(f[n], n)
      assert.truthy(f[n].final < 0.8 * f[n].first, n .. " learns")
    end
    assert.truthy(f.adam.final < f.adadelta.final)
  end,
  ["04_schedules.lua"] = function(f)
    local near = function(a, b) return math.abs(a - b) <= 1e-6 * math.max(1, math.abs(b)) end
    local step, exp, cos = f["step (30, x0.1)"], f["exponential (0.97)"], f["cosine"]
    assert.truthy(near(step[30], 0.1) and near(step[31], 0.01) and near(step[61], 0.001))
    assert.truthy(near(exp[11], 0.1 * 0.97 ^ 10))
    assert.truthy(near(cos[51], 0.05))
    local warm = f["warm-up 10 + cosine"]
    assert.truthy(near(warm[1], 0.01) and increasing({table.unpack(warm, 1, 11)}) and near(warm[11], 0.1))
    local one, peak, at = f["1cycle"], 0, 0
    for i, v in ipairs(one) do if v > peak then peak, at = v, i end end
    assert.truthy(math.abs(peak - 0.1) < 1e-3 and at > 20 and at < 40, "1cycle peaks at max_lr near 30%")
    assert.truthy(one[#one] < one[1] / 100)
    local plateau = f["plateau (x0.5)"]
    local cuts = 0
    for i = 2, #plateau do
      assert.truthy(plateau[i] <= plateau[i - 1])
      if plateau[i] < plateau[i - 1] then
        cuts = cuts + 1
        assert.truthy(near(plateau[i], plateau[i - 1] * 0.5))
      end
    end
    assert.truthy(cuts >= 1)
  end,
  ["05_paths.lua"] = function(f)
    local s, b = f.saddle, f.beale
    assert.truthy(math.abs(s.sgd.final[2]) < 0.05, "gradient descent is still at the saddle")
    for _, n in ipairs({"momentum", "rmsprop", "adam"}) do assert.truthy(math.abs(s[n].final[2]) > 1, n) end
    assert.truthy(b.momentum.loss < b.sgd.loss and b.nag.loss < b.sgd.loss)
    assert.truthy(b.adagrad.loss > b.sgd.loss and b.adadelta.loss > b.sgd.loss)
  end,
  ["06_clipping.lua"] = function(f)
    local last = f.plain[#f.plain]
    assert.truthy(last ~= last or last > 1e30, "unclipped SGD blows up")
    assert.equal(150, #f.clipped)
    assert.truthy(f.clipped[#f.clipped] < f.clipped[1] / 10)
    assert.truthy(math.max(table.unpack(f.clipped_norms)) > 100, "clipping was active")
  end,
  ["07_weight_decay.lua"] = function(f)
    local a0, a, s0, s = f["AdamW, no decay"], f["AdamW, decay 3"], f["SGD, no decay"], f["SGD, L2 0.3"]
    assert.truthy(a.norm < 0.8 * a0.norm and s.norm < 0.95 * s0.norm)
    assert.truthy(a.train > a0.train and s.train > s0.train)
    assert.truthy(a0.train < 1e-6)
    assert.truthy(a.test < a0.test)
  end,
  ["08_xavier.lua"] = function(f)
    local big, small, xavier = f["normal, std 1"], f["normal, std 0.01"], f["xavier_uniform_ (tanh gain)"]
    assert.equal(12, #xavier)
    for _, v in ipairs(xavier) do assert.truthy(v > 0.4 and v < 0.9) end
    assert.truthy(small[12] < 1e-8)
    for _, v in ipairs(big) do assert.truthy(v > 0.9) end   -- saturated at +-1
  end,
  ["09_batchnorm.lua"] = function(f)
    assert.truthy(f.mean < 1e-5)
    for _, v in ipairs(f.var) do assert.truthy(math.abs(v - 1) < 1e-3) end
    assert.truthy(f.bn < f.plain - 0.1)
    assert.truthy(f.plain > 0.65, "the plain network is still near chance")
  end,
  ["10_dropout.lua"] = function(f)
    assert.truthy(math.abs(f.zeros - 0.5) < 0.02)
    assert.equal(2, f.kept)
    assert.is_true(f.eval_same)
    assert.truthy(f.dropped < f.plain)
  end,
}

describe("the course in examples/tutorial", function()
  local list = scripts()

  it("covers the issue's list, one script per section", function()
    assert.truthy(#list >= 10)
    for name in pairs(lessons) do
      local found = false
      for _, n in ipairs(list) do found = found or n == name end
      assert.truthy(found, name)
    end
  end)

  for _, name in ipairs(list) do
    it(name .. " runs and its lesson holds", function()
      local s = dofile(DIR .. "/" .. name)
      assert.is_string(s.title)
      assert.truthy(#s.text >= 1)
      assert.truthy(#s.figures >= 1)
      for _, fig in ipairs(s.figures) do assert.truthy(fig:find("^<figure><svg ")) end
      local check = lessons[name]
      assert.truthy(check, name .. " has no lesson checked in this spec")
      check(s.facts)
    end)
  end

  it("build.lua writes one page with every section, its script and its pictures", function()
    local dir = os.tmpname()
    os.remove(dir)
    local p = io.popen(string.format("%s %s/build.lua %s 2>&1", EXE, DIR, dir))
    local out = p:read("a")
    assert(p:close(), out)
    assert.truthy(out:find("tutorial: " .. dir .. "/index.html", 1, true), out)
    local f = assert(io.open(dir .. "/index.html"))
    local page = f:read("a")
    f:close()
    local h2, svgs = 0, 0
    for _ in page:gmatch('<h2 id="s%d+">') do h2 = h2 + 1 end
    for _ in page:gmatch("<svg ") do svgs = svgs + 1 end
    assert.equal(#list, h2)
    assert.truthy(svgs >= #list)
    for _, name in ipairs(list) do assert.truthy(page:find(DIR .. "/" .. name, 1, true), name) end
    assert.truthy(page:find("xavier_uniform_(w, nn.init.calculate_gain(&quot;tanh&quot;))", 1, true))
    assert.falsy(page:find("src=", 1, true))
    os.execute("rm -r '" .. dir .. "'")
  end)
end)
