local crater = require "crater"

local function write(s)
  local p = os.tmpname()
  local f = io.open(p, "wb"); f:write(s); f:close()
  return p
end

describe("crater.data.csv", function()
  it("reads numbers with a header, CRLF lines and a blank line", function()
    local p = write("x, y ,\"z\"\r\n1,2.5,-3\r\n\r\n4e2, 5 ,6\r\n")
    local t, names = crater.data.csv(p, { header = true, dtype = "float64" })
    assert.same({ "x", "y", "z" }, names)
    assert.same({ { 1, 2.5, -3 }, { 400, 5, 6 } }, t:totable())
    os.remove(p)
  end)

  it("defaults to float32 without a header", function()
    local p = write("1,2\n3,4\n")
    local t, names = crater.data.csv(p)
    assert.equal("float32", t:dtype())
    assert.is_nil(names)
    assert.same({ 2, 2 }, t:shape())
    os.remove(p)
  end)

  it("names the line and column of a bad field, and ragged rows", function()
    local p = write("1,2\n3,abc\n")
    assert.error_matches(function() crater.data.csv(p) end, "line 2, column 2: 'abc' is not a number", 1, true)
    local q = write("1,2\n3\n")
    assert.error_matches(function() crater.data.csv(q) end, "line 2 has 1 fields, expected 2", 1, true)
    os.remove(p); os.remove(q)
  end)

  it("reports a missing file", function()
    assert.error_matches(function() crater.data.csv("/nonexistent/x.csv") end, "cannot open /nonexistent/x.csv", 1, true)
  end)
end)
