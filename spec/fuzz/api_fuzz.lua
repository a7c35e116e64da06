--- API fuzzer (issue #17): random calls of every public function and method with
-- hostile arguments (sizes at the overflow edges, empty dims, expanded and
-- non-contiguous views, odd lists, NaN and inf).  A refused call must be a Lua error
-- that leaves every tensor it was given unchanged; anything else (a crash, a sanitizer
-- report) ends the process, and `make fuzz-api` replays the seed to name the call.
--
-- A legal call on a huge expanded view (a sum over 2^62 elements) is not wrong, only
-- endless: calls given a tensor of more than 2^24 elements run with probability
-- API_FUZZ_HUGE (default 0.1), and the fuzzer writes its counts, and the call it is
-- about to make, to the file API_FUZZ_STATUS, so that spec/fuzz/run_api_fuzz.sh can stop
-- a stalled process, name its call and go on with the next seed.
-- usage: lua5.4 spec/fuzz/api_fuzz.lua [seconds=60] [seed=1] [replay_from_call]
local crater = require "crater"
local seconds, seed = tonumber(arg[1]) or 60, math.tointeger(tonumber(arg[2])) or 1
local replay = math.tointeger(tonumber(arg[3]))     -- print every call from this one on
local huge_rate = tonumber(os.getenv("API_FUZZ_HUGE")) or 0.1
local status_path = os.getenv("API_FUZZ_STATUS")

math.randomseed(seed)
crater.manual_seed(seed)
local function pick(list) return list[math.random(#list)] end

-- What the fuzzer must not call: files, processes, terminals, the lab's long runs, and
-- the debug switches that make every later allocation fail.
local SKIP = {
  save = true, load = true, clock = true, progress = true, set_num_threads = true,
  memory = true, reset_peak_memory = true, core = true, Tensor = true, _VERSION = true,
  manual_seed = true, detect_anomaly = true, set_flush_denormal = true, numpy_like = true,
}

-- the callable surface: crater.*, tensor methods, nn.functional, autograd, nn layers,
-- optimizers and schedulers (constructors, then their methods on what they built)
local targets = {}
local function add_all(prefix, t)
  local names = {}
  for name, f in pairs(t) do
    if type(f) == "function" and not SKIP[name] and name:sub(1, 1) ~= "_" then names[#names + 1] = name end
  end
  table.sort(names)                                  -- pairs' order is not reproducible
  for _, name in ipairs(names) do targets[#targets + 1] = {prefix .. name, t[name]} end
end
add_all("crater.", crater)
add_all("Tensor:", getmetatable(crater.zeros(1)).__methods)
add_all("F.", crater.nn.functional)
add_all("autograd.", crater.autograd)
add_all("init.", crater.nn.init)
local classes = {}
local function add_classes(prefix, t)
  local names = {}
  for name, c in pairs(t) do
    if type(c) == "table" and name:match("^%u") and getmetatable(c) and getmetatable(c).__call then names[#names + 1] = name end
  end
  table.sort(names)
  for _, name in ipairs(names) do classes[#classes + 1] = {prefix .. name, t[name]} end
end
add_classes("nn.", crater.nn)
add_classes("optim.", crater.optim)
add_classes("lr_scheduler.", crater.optim.lr_scheduler)
for _, c in ipairs(classes) do targets[#targets + 1] = {c[1], c[2]} end
for _, m in ipairs({"__add", "__sub", "__mul", "__div", "__pow", "__unm", "__lt", "__le", "__index",
                    "__newindex", "__len", "__tostring"}) do
  targets[#targets + 1] = {"mt." .. m, getmetatable(crater.zeros(1))[m]}
end

-- ---- the argument pool ----
local edges = {0, 1, 2, 3, -1, -2, 2^31 - 1, 2^31, 2^31 + 1, 2^32 - 1, 2^32, 2^32 + 1, 2^62,
               math.maxinteger, math.mininteger, math.maxinteger - 1}
for i = 1, 7 do edges[#edges + 1] = math.tointeger(edges[i]) or edges[i] end
local floats = {0.5, -0.0, 1e-300, 1e308, 0 / 0, math.huge, -math.huge, 2^53 + 1.0, 2.5, -3.25}
local strings = {"float32", "float64", "int64", "sum", "mean", "none", "abc", "", "fro", "inf"}
local function bad_len(n) return setmetatable({}, {__len = function() return n end}) end

local bases = {}                                     -- small tensors the views share
local function new_base()
  local shapes = {{}, {0}, {1}, {3}, {2, 3}, {0, 3}, {3, 0}, {2, 1, 4}, {1, 1}, {4, 4}, {2, 0, 2}}
  local dt = pick({"float32", "float64", "int64"})
  local s = pick(shapes)
  local t
  if dt == "int64" then t = crater.randint(-5, 6, s) else t = crater.randn(s, {dtype = dt}) end
  if math.random() < 0.2 and dt ~= "int64" then t = t:requires_grad_() end
  return t
end
for i = 1, 12 do bases[i] = new_base() end

-- a view of a base: expanded, transposed, narrowed, or the base itself
local function view_of(b)
  local ok, v = pcall(function()
    local r = math.random(6)
    if r == 1 and b:dim() >= 1 then return b:unsqueeze(1):expand(pick({2, 3, 2^31, 2^62}), table.unpack(b:size()))
    elseif r == 2 and b:dim() >= 2 then return b:t()
    elseif r == 3 and b:dim() >= 1 and b:size(1) > 1 then return b:narrow(1, 2, b:size(1) - 1)
    elseif r == 4 then return b:detach()
    end
    return b
  end)
  return ok and v or b
end

local function small_list()
  local n = pick({0, 1, 2, 3, 4, 9})
  local l = {}
  for i = 1, n do l[i] = pick(edges) end
  if math.random() < 0.1 then l[2] = nil end
  return l
end

local function value()
  local r = math.random(100)
  if r <= 40 then return view_of(pick(bases))
  elseif r <= 60 then return pick(edges)
  elseif r <= 68 then return pick(floats)
  elseif r <= 74 then return pick(strings)
  elseif r <= 82 then return small_list()
  elseif r <= 85 then return {view_of(pick(bases)), view_of(pick(bases))}
  elseif r <= 88 then return bad_len(pick({-1, 2^40, 1.5, 2^31}))
  elseif r <= 91 then return {dim = pick(edges), keepdim = true, reduction = pick(strings), lr = pick(floats)}
  elseif r <= 94 then return pick({true, false})
  elseif r <= 96 then return function(...) return ... end
  end
  return nil
end

-- bytes of every base, to see that a refused call changed none
local function snapshot(args)
  local seen, snap = {}, {}
  for i = 1, args.n do
    local a = args[i]
    if crater.is_tensor(a) then
      for _, b in ipairs(bases) do
        if not seen[b] then seen[b] = true; snap[#snap + 1] = {b, crater.core.internal.bytes(b)} end
      end
      break
    end
  end
  return snap
end

local function describe_arg(a)
  if crater.is_tensor(a) then
    return string.format("tensor(%s %s stride %s)", a:dtype(), table.concat(a:size(), "x"), table.concat(a:stride(), ","))
  elseif type(a) == "table" then
    local ok, n = pcall(function() return #a end)
    return "table#" .. tostring(ok and n or "?")
  end
  return type(a) == "string" and string.format("%q", a) or tostring(a)
end

local PRINTS = {["crater.totable"] = true, ["Tensor:totable"] = true, ["mt.__tostring"] = true,
                ["crater.tensor"] = true, ["obj:__tostring"] = true}
local function is_huge(args)
  for i = 1, args.n do
    local a = args[i]
    if crater.is_tensor(a) and (a:numel() > 2^24 or a:numel() < 0) then return true end
  end
  return false
end

local calls, errors, changed, skipped = 0, 0, 0, 0
-- one write per call, in place, so a stalled process's status names its call
local status_file = status_path and assert(io.open(status_path, "w"))
local function report_status(doing)
  if not status_file then return end
  local s = string.format("%d %d %d %d\n%s\n", calls, errors, changed, skipped, doing or "")
  s = #s < 600 and s .. string.rep(" ", 600 - #s) or s:sub(1, 599) .. "\n"
  status_file:seek("set")
  status_file:write(s)
  status_file:flush()
end
local deadline = os.clock() + seconds
io.stdout:setvbuf("no")
local objects = {}                                   -- modules, optimizers, schedulers made on the way
local function try_call(name, f, args)
  local before = snapshot(args)
  local ok, res = pcall(f, table.unpack(args, 1, args.n))
  if not ok then
    errors = errors + 1
    for _, s in ipairs(before) do
      if crater.core.internal.bytes(s[1]) ~= s[2] then
        changed = changed + 1
        local d = {}
        for i = 1, args.n do d[i] = describe_arg(args[i]) end
        print(string.format("refused call %d changed a tensor: %s(%s): %s", calls, name, table.concat(d, ", "), tostring(res)))
        break
      end
    end
  elseif crater.is_tensor(res) and res:numel() <= 64 and math.random() < 0.05 then
    bases[math.random(#bases)] = res                -- explore from results too
  elseif type(res) == "table" and getmetatable(res) and math.random() < 0.2 then
    if #objects < 16 then objects[#objects + 1] = res else objects[math.random(16)] = res end
  end
end

local batches = 0
while os.clock() < deadline do
  batches = batches + 1
  for _ = 1, 100 do
    local target = pick(targets)
    local f, name = target[2], target[1]
    local args = {n = math.random(0, 4)}
    for i = 1, args.n do args[i] = value() end
    if #objects > 0 and math.random() < 0.1 then  -- a method of something built earlier
      local o = pick(objects)
      local methods = {}
      local mt = getmetatable(o)
      local cls = mt and (rawget(mt, "__index") or mt)
      for k, v in pairs(type(cls) == "table" and cls or {}) do
        if type(v) == "function" and type(k) == "string" and k:sub(1, 1) ~= "_" then methods[#methods + 1] = k end
      end
      table.sort(methods)
      if #methods > 0 then
        local m = pick(methods)
        name, f = "obj:" .. m, function(...) return o[m](o, ...) end
      end
    end
    -- converting a legal 2^31-element view to Lua values is slow, not wrong: skip it
    if PRINTS[name] then
      for i = 1, args.n do
        local a = args[i]
        if crater.is_tensor(a) then
          local big = a:numel() > 2^16 or a:numel() < 0
          for _, n in ipairs(a:size()) do big = big or n > 2^16 end
          if big then f = function() error("skipped") end end
        end
      end
    end
    local huge = is_huge(args)
    if huge and math.random() >= huge_rate then
      skipped = skipped + 1
    else
      calls = calls + 1
      if (replay and calls >= replay) or status_file then
        local d = {}
        for i = 1, args.n do d[i] = describe_arg(args[i]) end
        local line = string.format("call %d: %s(%s)", calls, name, table.concat(d, ", "))
        if replay and calls >= replay then print(line) end
        report_status(line)
      end
      try_call(name, f, args)
    end
  end
  if math.random() < 0.05 then bases[math.random(#bases)] = new_base() end
  if batches % 200 == 0 then collectgarbage() end
end
report_status()
print(string.format("api fuzz: seed %d, %d calls, %d refused, %d refused calls changed a tensor, 0 crashes (%d huge calls skipped)",
  seed, calls, errors, changed, skipped))
os.exit(changed == 0 and 0 or 1)
