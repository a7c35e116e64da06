-- Shared by the core, ops and autograd specs: float64 tensors and closeness checks
-- against nested tables worked out by hand.
local crater = require "crater"

local H = {}

--- A float64 tensor (requires_grad when rg is true).
function H.d(v, rg) return crater.tensor(v, { dtype = "float64", requires_grad = rg or nil }) end

--- An int64 tensor (indices, labels).
function H.i(v) return crater.tensor(v, { dtype = "int64" }) end

--- Asserts that tensor (or number) a is elementwise within tol of the nested table b.
function H.close(a, b, tol)
  tol = tol or 1e-6
  local got = type(a) == "userdata" and a:totable() or a
  local function walk(x, y, path)
    if type(y) == "table" then
      assert(type(x) == "table", "expected a table at " .. path .. ", got " .. tostring(x))
      assert(#x == #y, "length " .. #x .. " ~= " .. #y .. " at " .. path)
      for k = 1, #y do walk(x[k], y[k], path .. "[" .. k .. "]") end
    elseif y ~= y then
      assert(x ~= x, string.format("%s: got %.17g, expected nan", path, x))
    elseif y == math.huge or y == -math.huge then
      assert(x == y, string.format("%s: got %.17g, expected %s", path, x, y))
    else
      assert(type(x) == "number", "expected a number at " .. path .. ", got " .. type(x))
      assert(math.abs(x - y) <= tol * (1 + math.abs(y)),
        string.format("%s: got %.17g, expected %.17g", path, x, y))
    end
  end
  walk(got, b, "")
end

--- Asserts that fn raises an error whose message contains msg (plain text).
function H.err(fn, msg)
  local ok, e = pcall(fn)
  assert(not ok, "expected an error containing '" .. msg .. "', got success")
  e = tostring(e)
  assert(e:find(msg, 1, true), "expected an error containing '" .. msg .. "', got: " .. e)
end

return H
