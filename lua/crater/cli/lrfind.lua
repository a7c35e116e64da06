--- `crater lrfind script.lua`: the LR range test on the model a script describes.
-- The convention: the script, run with the global `CRATER_LAB` set to a table, either
-- returns a table or fills CRATER_LAB with
--   model_factory = function() return model end   (required)
--   data = {x = x, y = y, batch_size = 128}         (required; or a DataLoader)
--   loss = criterion                                (default nn.CrossEntropyLoss())
--   optimizer = "sgd" | {"adam", betas = {...}}     (default "sgd")
-- and returns before training when CRATER_LAB is set, e.g.
--   if CRATER_LAB then CRATER_LAB.model_factory = make_model; CRATER_LAB.data = {x = x, y = y}; return CRATER_LAB end
local M = {}

M.usage = [[
usage: crater lrfind <script.lua> [options] [-- script arguments]

The LR range test (Smith 2015): trains a fresh model from the script for up to
--iters batches while the lr grows exponentially from --start to --end, smooths
the loss, and suggests the lr where it falls fastest. Writes report.md and
lr_find.png/svg into the output folder.

  --opt NAME          optimizer (default sgd; e.g. adam, momentum, adam:betas=0.9/0.99)
  --start LR          first lr (default 1e-7)
  --end LR            last lr (default 10)
  --iters N           batches (default 100)
  --seed N            seed (default 0)
  --out DIR           output folder (default out/lrfind-<script name>)
  --show              also draw the curve in the terminal
  -h, --help          this text

The script is run with the global CRATER_LAB set to a table. It describes its
model by returning (or filling in) that table and stops before training:

  if CRATER_LAB then
    CRATER_LAB.model_factory = function() return make_model() end  -- required
    CRATER_LAB.data = {x = x_train, y = y_train, batch_size = 128} -- required
    CRATER_LAB.loss = nn.CrossEntropyLoss()                        -- optional
    return CRATER_LAB
  end

example:
  crater lrfind examples/fashion_mnist_mlp.lua --opt adam --out out/lrfind
]]

local function fail(msg)
  io.stderr:write("crater lrfind: ", msg, "\n(see crater lrfind --help)\n")
  return 1
end

--- Runs `crater lrfind ...`; returns 0 on success, 1 on a usage or run error.
function M.main(args)
  local o, script, rest, i = {}, nil, {}, 1
  local needs = {["--opt"] = 1, ["--start"] = 1, ["--end"] = 1, ["--iters"] = 1, ["--seed"] = 1, ["--out"] = 1}
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then io.write(M.usage) return 0
    elseif a == "--" then for j = i + 1, #args do rest[#rest + 1] = args[j] end break
    elseif a == "--show" then o.show = true
    elseif needs[a] then
      if args[i + 1] == nil then return fail(a .. " needs a value") end
      o[a:sub(3)] = args[i + 1]
      i = i + 1
    elseif a:sub(1, 1) == "-" then return fail("unknown option " .. a)
    elseif script == nil then script = a
    else rest[#rest + 1] = a end
    i = i + 1
  end
  if not script then return fail("name a script, e.g. crater lrfind examples/fashion_mnist_mlp.lua") end
  local nums = {}
  for _, k in ipairs({"start", "end", "iters", "seed"}) do
    if o[k] then
      nums[k] = tonumber(o[k])
      if not nums[k] then return fail("--" .. k .. " must be a number, got '" .. o[k] .. "'") end
    end
  end
  local chunk, err = loadfile(script)
  if not chunk then return fail(err) end
  local crater = rawget(_G, "crater") or require "crater"
  local lab_table = {}
  rawset(_G, "CRATER_LAB", lab_table)
  local saved_arg = rawget(_G, "arg")
  local script_arg = {[0] = script}
  for j, v in ipairs(rest) do script_arg[j] = v end
  rawset(_G, "arg", script_arg)
  local ok, ret = pcall(chunk, table.unpack(rest))
  rawset(_G, "arg", saved_arg)
  rawset(_G, "CRATER_LAB", nil)
  if not ok then return fail("running " .. script .. ": " .. tostring(ret)) end
  local spec = type(ret) == "table" and ret.model_factory and ret or lab_table
  if type(spec.model_factory) ~= "function" or spec.data == nil then
    return fail(script .. " does not describe a model: with the global CRATER_LAB set, it must return "
      .. "(or fill in) a table with model_factory and data; see crater lrfind --help")
  end
  local optimizer = spec.optimizer
  if o.opt then
    local parts = {}
    for p in o.opt:gmatch("[^:]+") do parts[#parts + 1] = p end
    optimizer = {parts[1]}
    for j = 2, #parts do
      local k, v = parts[j]:match("^([%w_]+)=(.+)$")
      if not k then return fail("bad setting '" .. parts[j] .. "' in --opt (expected key=value)") end
      if v:find("/", 1, true) then
        local t = {}
        for w in v:gmatch("[^/]+") do t[#t + 1] = tonumber(w) end
        optimizer[k] = t
      else
        optimizer[k] = tonumber(v) or (v == "true") or (v ~= "false" and v)
      end
    end
  end
  local name = script:match("([^/]+)%.lua$") or "script"
  local out = o.out or ("out/lrfind-" .. name)
  local okr, r = pcall(crater.lab.lr_find, {model_factory = spec.model_factory, data = spec.data, loss = spec.loss,
    optimizer = optimizer, start_lr = nums.start, end_lr = nums["end"], num_iter = nums.iters and math.tointeger(nums.iters),
    seed = nums.seed and math.tointeger(nums.seed), quiet = true})
  if not okr then return fail((tostring(r):gsub("^lr_find: ", ""))) end
  local path, msg = r:report(out)
  print(string.format("%s: %d batches, lr %.3g to %.3g%s", name, #r.lrs, r.lrs[1], r.lrs[#r.lrs],
    r.stopped_early and " (stopped: the loss blew up)" or ""))
  print(string.format("suggested lr: %s (steepest descent of the smoothed loss)",
    r.suggestion and string.format("%.3g", r.suggestion) or "none"))
  print("report: " .. path)
  if msg then print(msg) end
  if o.show then crater.lab.show(r) end
  return 0
end

return M
