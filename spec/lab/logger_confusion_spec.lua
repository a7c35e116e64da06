-- crater.lab.Logger and crater.lab.ConfusionMatrix (issue #16, part C), after Torch7's
-- optim.Logger and optim.ConfusionMatrix; expected values by hand.
local crater = require "crater"
local lab = crater.lab

local function read(p) local f = assert(io.open(p)); local s = f:read("a"); f:close(); return s end

describe("lab.Logger", function()
  local dir
  setup(function() dir = io.popen("mktemp -d"):read("l") end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("writes a header and one CSV row per add, keyed or in order", function()
    local log = lab.Logger(dir .. "/train.csv", {"loss", "note, quoted"})
    log:add{loss = 0.5}
    log:add{0.25, 'say "hi"'}
    log:close()
    assert.are.equal('loss,"note, quoted"\n0.5,\n0.25,"say ""hi"""\n', read(dir .. "/train.csv"))
    assert.are.equal(2, #log.rows)
  end)

  it("refuses unknown columns and bad values before writing", function()
    local log = lab.Logger(dir .. "/b.csv", {"a"})
    assert.has_error(function() log:add{b = 1} end, "Logger: add: unknown column 'b'")
    assert.has_error(function() log:add{1, 2} end, "Logger: add: 2 values for 1 columns")
    assert.has_error(function() log:add{a = {}} end, "Logger: add: column 'a' must be a number or a string, got table")
    assert.has_error(function() lab.Logger(dir .. "/c.csv", {"a", "a"}) end, "Logger: column 'a' is named twice")
    log:close()
    assert.are.equal("a\n", read(dir .. "/b.csv"))
  end)

  it("plots its columns with gnuplot", function()
    local log = lab.Logger(dir .. "/p.csv", {"x", "y"})
    for i = 1, 5 do log:add{i, i * i} end
    local png, why = log:plot()
    if lab.plot.available() then
      assert.are.equal(dir .. "/p.png", png)
      assert.is_truthy(io.open(png))
    else
      assert.is_nil(png); assert.is_string(why)
    end
  end)
end)

describe("lab.ConfusionMatrix", function()
  it("counts pairs, computes Torch7's valids and prints as Torch7", function()
    local cm = lab.ConfusionMatrix({"cat", "dog"})
    cm:add(1, 1); cm:add(1, 1); cm:add(2, 1); cm:add(2, 2)
    cm:add(crater.tensor({0.1, 0.9}), 2)   -- scores: argmax 2
    cm:add(1, 0)                            -- a missing target: ignored
    assert.are.same({{2, 1}, {0, 2}}, cm.mat)
    cm:update()
    assert.near(2 / 3, cm.valids[1], 1e-15)
    assert.are.equal(1, cm.valids[2])
    assert.near(2 / 3, cm.unionvalids[1], 1e-15)           -- 2 / (3 + 2 - 2)
    assert.near(2 / 3, cm.unionvalids[2], 1e-15)           -- 2 / (2 + 3 - 2)
    assert.near(4 / 5, cm.total_valid, 1e-15)
    assert.near((2 / 3 + 1) / 2, cm.average_valid, 1e-15)
    local want = "ConfusionMatrix:\n[[       2       1]   66.667% \t[class: cat]\n"
      .. " [       0       2]]  100.000% \t[class: dog]\n"
      .. " + average row correct: " .. ((2 / 3 + 1) / 2 * 100) .. "% \n"
      .. " + average rowUcol correct (VOC measure): " .. ((2 / 3 + 2 / 3) / 2 * 100) .. "% \n"
      .. " + global correct: " .. (4 / 5 * 100) .. "%"
    assert.are.equal(want, tostring(cm))
  end)

  it("takes a batch of scores and targets, and refuses a bad batch whole", function()
    local cm = lab.ConfusionMatrix(3)
    cm:batch_add(crater.tensor({{0.9, 0.1, 0}, {0, 0.2, 0.8}, {0.3, 0.6, 0.1}}), crater.tensor({1, 3, 1}, {dtype = "int64"}))
    assert.are.same({{1, 1, 0}, {0, 0, 0}, {0, 0, 1}}, cm.mat)
    assert.has_error(function() cm:batch_add(crater.tensor({1, 2}), crater.tensor({1, 4})) end,
      "ConfusionMatrix: batch_add: row 2: class index out of range 1..3")
    assert.are.same({{1, 1, 0}, {0, 0, 0}, {0, 0, 1}}, cm.mat)   -- nothing counted
    cm:update()
    assert.is_true(cm.valids[2] ~= cm.valids[2])   -- class 2 never occurs: NaN, left out of the mean
    assert.near((0.5 + 1) / 2, cm.average_valid, 1e-15)
    cm:zero()
    assert.are.same({0, 0, 0}, cm.mat[1])
  end)
end)
