--- kill -9 during crater.save: a child process saves two checkpoints in turn (old, new,
-- old, ...) as fast as it can; the parent kills it with SIGKILL at a random moment, then
-- loads the file, which must hold one of the two values whole.  Repeats N times (default
-- 200) and prints how many loads were old, new or broken, and how many temporary files
-- the killed writers left behind (a SIGKILL cannot be cleaned up after; the next save
-- does not need them).
-- @usage build/crater examples/bench/kill9_save.lua [N] [max_delay_ms]
local crater = rawget(_G, "crater") or require "crater"

local N = tonumber(arg and arg[1]) or 200
local MAX_DELAY = tonumber(arg and arg[2]) or 400
local exe = arg[-1] or "build/crater"
local dir = io.popen("mktemp -d"):read("l")
local path = dir .. "/ckpt.ct"

-- the two values: about 4 MB each, so a save takes a few milliseconds
local function value(tag)
  return {tag = tag, w = crater.full({1000000}, tag == "old" and 1 or 2), n = tag == "old" and 1 or 2}
end

local child = string.format([[
local crater = rawget(_G, "crater") or require "crater"
local path = %q
local function value(tag)
  return {tag = tag, w = crater.full({1000000}, tag == "old" and 1 or 2), n = tag == "old" and 1 or 2}
end
local old, new = value("old"), value("new")
while true do
  crater.save(path, new)
  crater.save(path, old)
end
]], path)
local script = dir .. "/child.lua"
local f = assert(io.open(script, "w"))
f:write(child)
f:close()

crater.save(path, value("old"))
math.randomseed(os.time())
local counts = {old = 0, new = 0, broken = 0}
local leftovers = 0
local t0 = os.time()
for i = 1, N do
  -- startup of the child takes ~20-50 ms; kill somewhere between then and MAX_DELAY ms
  local delay = (30 + math.random() * (MAX_DELAY - 30)) / 1000
  local cmd = string.format("timeout -s KILL %.3f %s %s >/dev/null 2>&1", delay, exe, script)
  os.execute(cmd)
  local ok, v = pcall(crater.load, path)
  if ok and (v.tag == "old" or v.tag == "new") and v.w:size(1) == 1000000
     and v.w:min():item() == v.n and v.w:max():item() == v.n then
    counts[v.tag] = counts[v.tag] + 1
  else
    counts.broken = counts.broken + 1
    io.stderr:write(string.format("run %d: %s\n", i, ok and "wrong value" or tostring(v)))
  end
  -- a writer killed mid-save leaves its temporary file (ckpt.ct.tmp.<random suffix> from
  -- mkstemp) behind: each run counts them, then removes them
  local p = io.popen("ls -A '" .. dir .. "' | grep -c '^ckpt.ct.tmp.' ; rm -f '" .. dir .. "'/ckpt.ct.tmp.*")
  leftovers = leftovers + (tonumber(p:read("l")) or 0)
  p:close()
end
print(string.format("kill9_save: %d kills in %d s: %d loaded old, %d loaded new, %d broken; "
  .. "%d temporary files left by killed writers", N, os.time() - t0, counts.old, counts.new, counts.broken,
  leftovers))
os.execute("rm -rf '" .. dir .. "'")
os.exit(counts.broken == 0 and 0 or 1)
