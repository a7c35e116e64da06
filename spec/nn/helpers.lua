-- Shared by the nn specs: tensors from fixture tables and closeness checks.
local crater = require "crater"

local H = {}

function H.t(v, dtype) return crater.tensor(v, { dtype = dtype or "float64" }) end

-- Asserts tensor a is close to the nested table (or number) b elementwise.
function H.close(a, b, tol, what)
  tol = tol or 1e-10
  local got = type(a) == "number" and a or a:totable()
  local function walk(x, y, path)
    if type(y) == "table" then
      assert(type(x) == "table", (what or "") .. ": expected a table at " .. path)
      assert(#x == #y, (what or "") .. ": length " .. #x .. " ~= " .. #y .. " at " .. path)
      for i = 1, #y do walk(x[i], y[i], path .. "[" .. i .. "]") end
    else
      local ok = math.abs(x - y) <= tol * (1 + math.abs(y))
      assert(ok, string.format("%s: %s: got %.17g, expected %.17g", what or "", path, x, y))
    end
  end
  walk(got, b, "")
end

return H
