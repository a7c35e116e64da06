local crater = require "crater"

-- A file-like sink that records what is written.
local function sink()
  local s = { text = "" }
  function s:write(...) for _, v in ipairs({ ... }) do self.text = self.text .. v end return self end
  function s:flush() end
  return s
end

describe("crater.progress", function()
  it("iterates a count and writes a final line with the total when not on a terminal", function()
    local out, seen = sink(), {}
    for i in crater.progress(5, { desc = "train", file = out }) do seen[#seen + 1] = i end
    assert.same({ 1, 2, 3, 4, 5 }, seen)
    assert.matches("train 100%% 5/5 %[", out.text)
    assert.matches("it/s", out.text)
  end)

  it("shows the postfix and iterates lists and DataLoaders", function()
    local out = sink()
    local bar = crater.progress({ "a", "b" }, { file = out })
    local got = {}
    for i, v in bar do got[i] = v; bar:set_postfix({ loss = 0.123456 }) end
    assert.same({ "a", "b" }, got)
    assert.matches("loss=0.1235", out.text)
    local n = 0
    for xb in crater.progress(crater.data.DataLoader(crater.zeros(10, 2), { batch_size = 4 }), { file = sink() }) do
      n = n + xb:size(1)
    end
    assert.equal(10, n)
  end)

  it("writes at most about one line per tenth when not on a terminal", function()
    local out = sink()
    for _ in crater.progress(1000, { file = out }) do end
    local lines = select(2, out.text:gsub("\n", ""))
    assert.is_true(lines >= 2 and lines <= 12)
  end)
end)
