--- memcheck: asserts that a spec gives back every C byte and tensor it took.
-- `collectgarbage("count")` does not see memory allocated in C; `crater.memory()` does
-- (every C byte goes through one accounting allocator). A spec that ends with more live
-- bytes or tensors than it started with, after two full collections (the first runs the
-- tensors' finalizers, the second frees what they held), leaks.
-- @usage local memcheck = require "spec.helpers.memcheck"
-- describe("my op", function()
--   memcheck.hooks(before_each, after_each)     -- every `it` below is checked
--   it("...", function() ... end)
-- end)
-- it("...", memcheck.wrap(function() ... end))  -- or one test at a time
local crater = require "crater"

local M = {}

--- Collects garbage twice and returns `crater.memory()` ({bytes=, tensors=, peak_bytes=}).
function M.snapshot()
  collectgarbage("collect")
  collectgarbage("collect")
  return crater.memory()
end

--- Raises unless the live bytes and tensors, after a full collection, equal those in before.
-- @param before a table from snapshot()
-- @param what a label for the message (default "spec")
function M.check(before, what)
  local now = M.snapshot()
  if now.bytes ~= before.bytes or now.tensors ~= before.tensors then
    error(string.format("%s leaked: live C memory went from %d bytes in %d tensors to %d bytes in %d tensors"
      .. " (%+d bytes, %+d tensors)", what or "spec", before.bytes, before.tensors, now.bytes, now.tensors,
      now.bytes - before.bytes, now.tensors - before.tensors), 2)
  end
end

--- Returns fn wrapped so that it raises when it leaves more (or fewer) live C bytes or
-- tensors than it found.
-- @param fn the test body
-- @usage it("adds", memcheck.wrap(function() assert.equal(3, (crater.ones(1) * 3):item()) end))
function M.wrap(fn)
  return function(...)
    local before = M.snapshot()
    fn(...)
    M.check(before)
  end
end

--- Registers busted hooks checking every test of the enclosing describe block.
-- @param before_each busted's before_each (pass the global)
-- @param after_each busted's after_each
function M.hooks(before_each, after_each)
  local before
  before_each(function() before = M.snapshot() end)
  after_each(function() M.check(before, "this test") end)
end

--- Allocation-failure sweep: runs call with the n-th C allocation failing, for n = 0, 1,
-- 2, ... until call succeeds, in both modes (fail once, fail from then on). After each
-- failure it checks the error says "not enough memory", runs unchanged(args) (which
-- raises if an argument was half-changed), and checks that live C memory is back to
-- where it was before setup ran. Returns the number of allocations the call makes.
-- @param setup function returning a table of arguments (made with injection off)
-- @param call function(args) doing the work under injection; it returns the result
-- @param verify optional function(args, result) run once the call succeeds
-- @param unchanged optional function(args) run after every failure
function M.sweep(setup, call, verify, unchanged)
  local core = crater.core
  local count
  for _, always in ipairs({false, true}) do
    for n = 0, 100000 do
      local base = M.snapshot()
      local args = setup()
      core.internal.fail_alloc(n, always)
      local ok, res = pcall(call, args)
      core.internal.fail_alloc(nil)
      if ok then
        if verify then verify(args, res) end
        if count and count ~= n then
          error(string.format("the call succeeded after %d allocations failing once but %d failing always",
            count, n), 2)
        end
        count = n
        args, res = nil, nil   -- luacheck: ignore 311 (dropping the references)
        M.check(base, "a successful call")
        break
      end
      if type(res) ~= "string" or not res:find("not enough memory", 1, true) then
        error(string.format("allocation %d failing (%s) raised %q, not a 'not enough memory' error", n,
          always and "always" or "once", tostring(res)), 2)
      end
      if unchanged then unchanged(args) end
      args, res = nil, nil   -- luacheck: ignore 311
      M.check(base, string.format("the call with allocation %d failing (%s)", n, always and "always" or "once"))
    end
  end
  return count
end

return M
