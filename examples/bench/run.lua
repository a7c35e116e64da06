--- `make bench`: crater against PyTorch 1.13 on the same workloads, one table.
--
-- Convention: every bench script prints its results as lines
--
--     BENCH <name> <median> <min> <max> <unit>
--
-- name is a dotted row key without spaces (`op.add2`, `matmul.1024.t2`, `train.mlp.t1`; `.tN` is
-- the thread count), the three figures are the median, minimum and maximum over several timed
-- repetitions after a warm-up, and unit is one of us/op, ms, GB/s, GFLOP/s, samples/s, MiB. Lines
-- starting with `#` are notes; everything else is echoed. examples/bench/common.lua prints such
-- lines from Lua, torch_bench.py from Python, blas_ref.c (the machine's reference: memcpy and a
-- direct OpenBLAS sgemm, compiled here with cc) from C. A row whose crater and PyTorch
-- scripts print the same name lands on one line of the table.
--
-- Each crater script runs in its own process through this file (`--child`), which adds
-- `rss.<section>`, that process's peak resident set (VmHWM). PyTorch runs as
--   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 /usr/bin/python3 torch_bench.py <section>
-- with torch.set_num_threads(N) per row: its best configuration on 2 cores (the OpenMP and
-- OpenBLAS pools compete otherwise); the matmul rows run OpenBLAS on N threads instead.
--
-- With --base EXE (`make bench BASE=<commit>` builds that commit's tree in build-base/), every
-- crater script also runs on that build, right after this one's, and the table gains its
-- column and the ratio: old build against new in one run.
--
-- Usage: crater examples/bench/run.lua [--only ops,matmul,...] [--no-torch] [--python /usr/bin/python3]
--        [--base build-base/tree/build/crater]
-- Sections: startup ops rosenbrock optim zoo fuse matmul mlp cnn.
local crater = rawget(_G, "crater") or require "crater"

local DIR = arg[0]:match("^(.-)[^/]*$")
local EXE = arg[-1] or "build/crater"
local PYTHON = "/usr/bin/python3"
local TORCH_ENV = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1"

local function clock() return crater.clock() end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

local function q(s) return string.format("%q", s) end

----------------------------------------------------------------------------------------------
-- child mode: run one bench script in this process, then report its peak RSS
----------------------------------------------------------------------------------------------
if arg[1] == "--child" then
  local section, script = arg[2], arg[3]
  local args = { [0] = script, [-1] = EXE }
  for i = 4, #arg do args[#args + 1] = arg[i] end
  _G.arg = args
  dofile(script)
  local f = io.open("/proc/self/status")
  local kb = f and f:read("a"):match("VmHWM:%s*(%d+)")
  if f then f:close() end
  if kb and section ~= "startup" then
    local mib = tonumber(kb) / 1024
    print(string.format("BENCH rss.%s %.6g %.6g %.6g MiB", section, mib, mib, mib))
  end
  return
end

----------------------------------------------------------------------------------------------
-- options
----------------------------------------------------------------------------------------------
local opt = { only = nil, torch = true, base = nil }
do
  local i = 1
  while i <= #arg do
    if arg[i] == "--only" and arg[i + 1] then
      opt.only = {}
      for s in arg[i + 1]:gmatch("[^,]+") do opt.only[s] = true end
      i = i + 1
    elseif arg[i] == "--no-torch" then opt.torch = false
    elseif arg[i] == "--python" and arg[i + 1] then PYTHON = arg[i + 1]; i = i + 1
    elseif arg[i] == "--base" and arg[i + 1] then opt.base = arg[i + 1]; i = i + 1
    else error("run.lua: unknown argument " .. arg[i]) end
    i = i + 1
  end
end

----------------------------------------------------------------------------------------------
-- running commands and collecting BENCH lines
----------------------------------------------------------------------------------------------
-- results[side][name] = { med, lo, hi, unit, median_only = bool }; side is crater, base (the
-- --base build), torch or ref
local results = { crater = {}, base = {}, torch = {}, ref = {} }
local order = {}            -- row names in the order first seen
local seen = {}
local missing = { crater = {}, base = {}, torch = {} }   -- section -> reason

local function add(side, name, med, lo, hi, unit, median_only)
  results[side][name] = { med = med, lo = lo, hi = hi, unit = unit, median_only = median_only }
  if side ~= "ref" and not seen[name] then seen[name] = true; order[#order + 1] = name end
end

--- Runs cmd, echoing its output indented, and returns its output lines and whether it succeeded.
local function run(cmd)
  io.write("  $ ", cmd, "\n")
  io.stdout:flush()
  local p = assert(io.popen(cmd .. " 2>&1"))
  local lines = {}
  for line in p:lines() do
    lines[#lines + 1] = line
    io.write("    ", line, "\n")
    io.stdout:flush()
  end
  local ok = p:close()
  return lines, ok
end

--- Collects the BENCH lines of lines into side; returns how many there were.
local function collect(side, lines)
  local n = 0
  for _, line in ipairs(lines) do
    local name, med, lo, hi, unit = line:match("^BENCH%s+(%S+)%s+(%S+)%s+(%S+)%s+(%S+)%s+(%S+)")
    if name and tonumber(med) then
      name = name:gsub("^train%.(%w+)%.peak_rss$", "rss.%1")   -- train.lua's own VmHWM line
      local own_ref = name:match("^ref%.(.+)$")                 -- a script's own reference figure
      if not (own_ref and side == "base") then   -- the references are this build's run's
        add(own_ref and "ref" or side, own_ref or name, tonumber(med), tonumber(lo), tonumber(hi), unit)
        n = n + 1
      end
    end
  end
  return n
end

--- The optimizer engineer's optim_step.lua prints a table (`name threads ms GB/s copyGB/s`)
-- rather than BENCH lines; this reads it, keeping the median (its only figure).
local OPTIM_NAMES = {
  ["sgd momentum (fused)"] = "optim.sgd_momentum", ["adam (fused)"] = "optim.adam",
  ["adamw (fused)"] = "optim.adamw", ["adam (lua, in-place)"] = "optim.adam_lua",
  ["copy_ (x -> y)"] = "optim.copy_",
}
local function collect_optim_table(lines, side)
  local n = 0
  for _, line in ipairs(lines) do
    local label, nt, ms = line:match("^(%a.-)%s+(%d+)%s+([%d%.]+)%s+[%d%.]+%s+[%d%.]+%s*$")
    if label then
      local key = OPTIM_NAMES[label:lower()] or ("optim." .. label:lower():gsub("%W+", "_"))
      add(side or "crater", key .. ".t" .. nt, tonumber(ms), nil, nil, "ms", true)
      n = n + 1
    end
  end
  return n
end

--- Runs a bench script under this build (side crater) and then, with --base, under the base
-- build (this tree's script: the same workload on both); returns this build's output.
local function crater_child(section, script, args)
  local function child(exe, side)
    local lines, ok = run(string.format("%s %s --child %s %s %s", q(exe), q(DIR .. "run.lua"), section,
      q(script), args or ""))
    local n = collect(side, lines)
    if side == "base" and section == "optim" then n = n + collect_optim_table(lines, "base") end
    if not ok and n == 0 then missing[side][section] = "the script failed (output above)" end
    return lines, n
  end
  local lines, n = child(EXE, "crater")
  if opt.base then child(opt.base, "base") end
  return lines, n
end

local torch_reason, torch_short    -- why the PyTorch column is empty: in full, and for the cells
local function torch_section(section, env, args)
  if torch_reason then missing.torch[section] = torch_reason; return end
  local lines, ok = run(string.format("%s %s %s %s %s", env or TORCH_ENV, PYTHON,
    q(DIR .. "torch_bench.py"), section, args or ""))
  if collect("torch", lines) == 0 or not ok then
    missing.torch[section] = "torch_bench.py " .. section .. " failed (output above)"
  end
end

----------------------------------------------------------------------------------------------
-- the sections
----------------------------------------------------------------------------------------------
local t_start = clock()
local fuse_notes = {}   -- fuse_step.lua's same-run ratios, repeated under the table
local function wanted(s) return opt.only == nil or opt.only[s] end
local function banner(s)
  io.write(string.format("\n== %s  (at %.0f s)\n", s, clock() - t_start))
  io.stdout:flush()
end

-- load average before we start: other work on the machine skews every figure
local loadavg = ((io.open("/proc/loadavg") or io.stdin):read("l") or "?"):match("^%S+ %S+ %S+") or "?"

if not opt.torch then
  torch_reason, torch_short = "skipped (--no-torch)", "skipped"
elseif not exists(PYTHON) then
  torch_reason, torch_short = PYTHON .. " not found", "no python"
else
  local p = io.popen(PYTHON .. " -c 'import torch; print(torch.__version__)' 2>&1")
  local out = p:read("a")
  if p:close() then
    io.write("PyTorch ", out:match("[^\n]*"), " at ", PYTHON, "\n")
  else
    torch_reason = "no torch: " .. (out:match("([^\n]+)\n?$") or "import failed")
    torch_short = "no torch"
  end
end

-- the machine's references (memcpy bandwidth, direct OpenBLAS sgemm) from blas_ref.c
local ref_exe
do
  banner("reference (blas_ref.c, compiled with cc)")
  local tmp = os.tmpname()
  local _, ok = run(string.format("cc -O2 -march=native -o %s %s $(pkg-config --cflags openblas 2>/dev/null) "
    .. "$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lpthread", q(tmp), q(DIR .. "blas_ref.c")))
  if ok then ref_exe = tmp else os.remove(tmp) end
end
local function ref(args)
  if ref_exe then collect("ref", (run(q(ref_exe) .. " " .. args))) end
end

if wanted("startup") then
  banner("startup")
  crater_child("startup", DIR .. "startup.lua", "--exe " .. q(EXE))
  torch_section("startup")
end

if wanted("ops") then
  banner("ops: per-op overhead and bandwidth")
  ref("copy 10000000 1 15")
  ref("copy 10000000 2 15")
  crater_child("ops", DIR .. "ops.lua")
  torch_section("ops")
end

if wanted("rosenbrock") then
  banner("rosenbrock")
  crater_child("rosenbrock", DIR .. "rosenbrock.lua")
  torch_section("rosenbrock")
end

if wanted("optim") then
  banner("optim: one step on 10M float32 parameters")
  if not results.ref["bw.memcpy.t1"] then ref("copy 10000000 1 15"); ref("copy 10000000 2 15") end
  local script = DIR .. "optim_step.lua"
  if exists(script) then
    local lines, n = crater_child("optim", script)
    if n <= 1 and collect_optim_table(lines) > 0 then missing.crater.optim = nil end
  else
    missing.crater.optim = "examples/bench/optim_step.lua is not there yet"
  end
  torch_section("optim")
end

if wanted("zoo") then
  banner("zoo: one step of the newer optimizers on 10M float32 parameters, and their references")
  if not results.ref["bw.memcpy.t1"] then ref("copy 10000000 1 15"); ref("copy 10000000 2 15") end
  crater_child("zoo", DIR .. "zoo_step.lua")
  if torch_reason then
    missing.torch.zoo = torch_reason
  else
    local lines, ok = run(string.format("%s %s %s --bench", TORCH_ENV, PYTHON, q(DIR .. "zoo_ref_bench.py")))
    if collect("torch", lines) == 0 or not ok then
      missing.torch.zoo = "zoo_ref_bench.py failed or found no reference mirrors (output above)"
    end
  end
end

if wanted("fuse") then
  banner("fuse: optimizers written in Lua with crater.fuse against the built-in kernels")
  local lines = crater_child("fuse", DIR .. "fuse_step.lua")
  for _, l in ipairs(lines) do
    if l:match("^# fuse:") then fuse_notes[#fuse_notes + 1] = l end
  end
  missing.torch.fuse = "crater only (same-run ratios in the # fuse lines above)"
end

if wanted("matmul") then
  banner("matmul")
  for _, nt in ipairs({ 1, 2 }) do
    for _, n in ipairs({ 256, 1024, 2048 }) do ref(string.format("sgemm %d %d %d", n, nt, n > 256 and 5 or 15)) end
  end
  crater_child("matmul", DIR .. "matmul.lua")
  for _, nt in ipairs({ 1, 2 }) do
    torch_section("matmul", string.format("OMP_NUM_THREADS=%d OPENBLAS_NUM_THREADS=%d MKL_NUM_THREADS=%d", nt, nt, nt),
      "--threads " .. nt)
  end
end

-- training: the nn engineer's train.lua, one process per model so each peak RSS is its own
for _, model in ipairs({ "mlp", "cnn" }) do
  if wanted(model) then
    banner("train " .. model .. ": Fashion-MNIST, batch 128, Adam")
    for _, nt in ipairs({ 1, 2 }) do   -- the sgemm rates that training FLOP/s are set beside
      for _, n in ipairs({ 1024, 2048 }) do
        if not results.ref[string.format("matmul.%d.t%d", n, nt)] then ref(string.format("sgemm %d %d 5", n, nt)) end
      end
    end
    if exists(DIR .. "train.lua") then
      crater_child(model, DIR .. "train.lua", model)
    else
      missing.crater[model] = "examples/bench/train.lua is not there yet"
    end
    torch_section(model)
  end
end

if ref_exe then os.remove(ref_exe) end

----------------------------------------------------------------------------------------------
-- the table
----------------------------------------------------------------------------------------------
local LOWER_IS_BETTER = { ["us/op"] = true, ms = true, MiB = true, s = true }
local N_OPTIM = 10000000
local OPTIM_BYTES = { sgd_momentum = 20, adam = 28, adamw = 28, adam_lua = 28, copy_ = 8,
  -- the zoo (zoo_step.lua's header says which arrays each pass moves)
  lion = 20, lamb = 40, adabelief = 28, adan = 44, adamwschedulefree = 28, prodigy = 44, adafactor = 28 }
local ZOO_LABEL = { lion = "Lion", lamb = "LAMB", adabelief = "AdaBelief", adan = "Adan",
  adamwschedulefree = "AdamWScheduleFree", prodigy = "Prodigy", adafactor = "Adafactor (3162x3162)" }

-- label, target (as text), and how to compute the reference column for known rows
local ROWS = {
  ["startup"] = { "start-up (`-e ''` / `import torch`)", "<20 ms" },
  ["rss.idle"] = { "peak RSS, idle interpreter" },
  ["op.add2"] = { "2-element add", "≥3x, ≤0.25 us" },
  ["op.add2_grad"] = { "2-element add, recording grad", "≤0.4 us" },
  ["rosenbrock.adam_10k"] = { "Rosenbrock, 10k Adam steps", "≥20x, ≤45 ms" },
  ["optim.adam.t2"] = { "", "≥6x, ≥80% copy" },
  ["optim.sgd_momentum.t2"] = { "", "≥1.7x, ≥80% copy" },
  ["train.mlp.t2"] = { "", "≥1x" },
  ["train.mlp.gflops.t2"] = { "", "≥65% sgemm" },
  ["train.cnn.t2"] = { "", "≥1.3x" },
  ["train.cnn.gflops.t1"] = { "", "≥55% sgemm" },
  ["train.cnn.gflops.t2"] = { "", "≥45% sgemm" },
  ["rss.mlp"] = { "peak RSS, MLP training process", "≥1.67x (≤0.6 of torch), ≤280 MiB" },
  ["muon.ns.t2"] = { "Muon step 1024x1024, its 15 products, 2 thr", "≥90% sgemm" },
  ["fuse.call2"] = { "2-element fused Adam update (crater.fuse)", "≤1 us" },
  ["fuse.rosenbrock_10k"] = { "Rosenbrock, 10k steps, Adam in Lua (fuse)", "≤1.2x built-in" },
  ["fuse.rosenbrock_ref_10k"] = { "Rosenbrock, 10k steps, built-in Adam (fuse script)" },
  ["rss.fuse"] = { "peak RSS, fuse process" },
}
for _, nt in ipairs({ 1, 2 }) do
  ROWS["fuse.adam.t" .. nt] = { "10M Adam in Lua (fuse), " .. nt .. " thr", "≤1.3x built-in" }
  ROWS["fuse.adam_ref.t" .. nt] = { "10M Adam built-in (fuse script), " .. nt .. " thr" }
  ROWS["fuse.adabelief.t" .. nt] = { "10M AdaBelief in Lua (fuse), " .. nt .. " thr", "≤1.3x built-in" }
  ROWS["fuse.adabelief_ref.t" .. nt] = { "10M AdaBelief built-in (fuse script), " .. nt .. " thr" }
end
for kind in pairs(ZOO_LABEL) do
  for _, nt in ipairs({ 1, 2 }) do ROWS["optim." .. kind .. ".t" .. nt] = { "", "≥3x, ≥70% copy" } end
end
for _, nt in ipairs({ 1, 2 }) do
  for _, k in ipairs({ "add_", "add" }) do ROWS["bw." .. k .. ".t" .. nt] = { "", "≥80% copy" } end
  for _, n in ipairs({ 256, 1024, 2048 }) do ROWS[string.format("matmul.%d.t%d", n, nt)] = { "", "≥0.95x" } end
end

local function label(name)
  local r = ROWS[name]
  if r and r[1] ~= "" then return r[1] end
  local nt = name:match("%.t(%d)$") or name:match("%.t(%d)%.")
  local base = name:gsub("%.t%d", "")
  local pretty = {
    ["bw.copy_"] = "10M copy_ (8 B/elt)", ["bw.add_"] = "10M add_ in place (12 B/elt)",
    ["bw.add"] = "10M add, new tensor (12 B/elt)",
    ["optim.sgd_momentum"] = "10M SGD momentum step", ["optim.adam"] = "10M Adam step",
    ["optim.adamw"] = "10M AdamW step", ["optim.adam_lua"] = "10M Adam in Lua (in place)",
    ["optim.copy_"] = "10M copy_ (optim script)",
    ["optim.sgd_momentum.foreach"] = "10M SGD momentum, torch foreach",
    ["optim.adam.foreach"] = "10M Adam step, torch foreach",
    ["optim.adamw.foreach"] = "10M AdamW step, torch foreach",
    ["train.mlp"] = "MLP 784-512-256-10 training", ["train.cnn"] = "CNN training",
    ["train.mlp.gflops"] = "MLP training, as FLOP/s", ["train.cnn.gflops"] = "CNN training, as FLOP/s",
    ["rss.cnn"] = "peak RSS, CNN training process", ["rss.optim"] = "peak RSS, 10M optim process",
    ["rss.ops"] = "peak RSS, ops process", ["rss.rosenbrock"] = "peak RSS, Rosenbrock process",
    ["rss.matmul"] = "peak RSS, matmul process",
  }
  local zoo = ZOO_LABEL[base:match("^optim%.([%w_]+)$") or ""]
  local text = pretty[base] or (zoo and ("10M " .. zoo .. " step")) or base
  local m = base:match("^matmul%.(%d+)$")
  if m then text = string.format("matmul %sx%s float32", m, m) end
  return nt and (text .. ", " .. nt .. " thr") or text
end

local function num(v)
  if v == nil then return "?" end
  local a = math.abs(v)
  if a >= 100 then return string.format("%.0f", v)
  elseif a >= 10 then return string.format("%.1f", v)
  else return string.format("%.3g", v) end
end

local function cell(r)
  if r == nil then return nil end
  if r.median_only or r.lo == nil or r.lo == r.hi then return num(r.med) end
  return string.format("%s (%s–%s)", num(r.med), num(r.lo), num(r.hi))
end

-- which section a row belongs to, to name the reason a column is missing
local function section_of(name)
  local p = name:match("^(%w+)")
  if p == "op" or p == "bw" then return "ops" end
  if p == "train" then return name:match("^train%.(%w+)") end
  if p == "muon" then return "zoo" end
  if p == "optim" and ZOO_LABEL[name:match("^optim%.([%w_]+)%.t") or ""] then return "zoo" end
  if p == "rss" then return name:match("^rss%.(%w+)") == "idle" and "startup" or name:match("^rss%.(%w+)") end
  return p
end

local function reference(name, r)
  if not r then return nil end
  local nt = name:match("%.t(%d)")
  if name:match("^matmul") then
    local ref_r = results.ref[name]
    if ref_r then return ref_r.med, r.med / ref_r.med, "OpenBLAS" end
  elseif name:match("^train%.%w+%.gflops") then
    -- training FLOP/s against the faster of a 1024 and a 2048 sgemm: one slow reference
    -- (another process on a core) must not flatter the fraction
    local a, b = results.ref["matmul.1024.t" .. nt], results.ref["matmul.2048.t" .. nt]
    local ref_r = a and b and (a.med >= b.med and a or b) or a or b
    if ref_r then return ref_r.med, r.med / ref_r.med, "GFLOP/s sgemm" end
  elseif name == "muon.ns.t2" then
    local ref_r = results.ref["muon.matmul.t2"]
    if ref_r then return ref_r.med, r.med / ref_r.med, "GFLOP/s matmul" end
  elseif name:match("^bw%.") or name:match("^optim%.") then
    local copy = results.ref["bw.memcpy.t" .. (nt or "1")]
    if not copy then return nil end
    local gbs = r.med
    local kind = name:match("^optim%.([%w_]+)%.t")
    if kind then
      local bytes = OPTIM_BYTES[kind]
      if not bytes then return nil end
      gbs = bytes * N_OPTIM / (r.med * 1e-3) / 1e9
    end
    return copy.med, gbs / copy.med, "memcpy"
  end
end

local header = { "workload", "unit", "crater median (min–max)", "PyTorch median (min–max)",
                 "crater advantage", "target", "reference", "crater / reference" }
if opt.base then   -- the base build's column and this build's speed-up over it, after crater's
  table.insert(header, 4, "base median (min–max)")
  table.insert(header, 5, "speed-up over base")
end
-- torch's foreach rows go right after the row of the same step
local ordered = {}
for _, name in ipairs(order) do
  if not name:match("%.foreach$") then
    ordered[#ordered + 1] = name
    if seen[name .. ".foreach"] then ordered[#ordered + 1] = name .. ".foreach" end
  end
end
for _, name in ipairs(order) do
  if name:match("%.foreach$") and not seen[name:match("^(.-)%.foreach$")] then ordered[#ordered + 1] = name end
end

local rows = {}
for _, name in ipairs(ordered) do
  local c = results.crater[name]
  local t = results.torch[name]
  local alias = name:match("^(.-)%.foreach$")      -- torch-only foreach rows compare with crater's fused step
  if alias and not c then c = results.crater[alias] end
  local unit = (c or t or results.base[name]).unit
  local adv = ""
  if c and t and c.med > 0 and t.med > 0 then
    adv = string.format("%.2fx", LOWER_IS_BETTER[unit] and t.med / c.med or c.med / t.med)
  end
  local sec = section_of(name)
  local ccell = cell(c) or ("— " .. (missing.crater[sec] or "not measured"))
  local tcell = cell(t) or ("— " .. (torch_short or missing.torch[sec] or "not measured"))
  local refv, frac, refname
  if not alias then refv, frac, refname = reference(name, c) end
  local target = ROWS[name] and ROWS[name][2] or ""
  if alias and c then target = "" end
  rows[#rows + 1] = { label(name), unit, ccell, tcell, adv, target,
    refv and string.format("%s %s", num(refv), refname) or "",
    frac and string.format("%.0f%%", 100 * frac) or "" }
  if opt.base then
    local b = results.base[name]
    local up = ""
    if c and b and c.med > 0 and b.med > 0 then
      up = string.format("%.2fx", LOWER_IS_BETTER[unit] and b.med / c.med or c.med / b.med)
    end
    table.insert(rows[#rows], 4, cell(b) or ("— " .. (missing.base[sec] or "not measured")))
    table.insert(rows[#rows], 5, up)
  end
end

local width = {}
for i, h in ipairs(header) do width[i] = utf8.len(h) end
for _, r in ipairs(rows) do
  for i, v in ipairs(r) do width[i] = math.max(width[i], utf8.len(v) or #v) end
end
local function line(r)
  local parts = {}
  for i, v in ipairs(r) do parts[i] = v .. string.rep(" ", width[i] - (utf8.len(v) or #v)) end
  return "| " .. table.concat(parts, " | ") .. " |"
end

local function sh1(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local s = p and p:read("l") or ""
  if p then p:close() end
  return s or ""
end
local cpu = sh1("grep -m1 'model name' /proc/cpuinfo"):gsub("^.-:%s*", "")
io.write("\n== results\n\n")
local mem_kb = tonumber(sh1("grep -m1 MemTotal /proc/meminfo"):match("%d+")) or 0
io.write(string.format("Machine: %s, %s cores, %.0f GiB RAM, %s; load average at start: %s\n", cpu,
  sh1("nproc"), mem_kb / 2^20, sh1(". /etc/os-release && echo $PRETTY_NAME"), loadavg))
local load1, ncpu = tonumber(loadavg:match("^%S+")), tonumber(sh1("nproc"))
if load1 and ncpu and load1 > 0.5 * ncpu then
  io.write(string.format("WARNING: load average %.1f on %d cores before the run: other processes share the"
    .. " cores, so every figure is slowed and noisy (2-thread rows most); re-run on an idle machine.\n", load1, ncpu))
end
io.write("crater: ", crater._VERSION or "?", ", ", EXE, " (OpenBLAS and crater's loops on the row's thread count).\n")
if opt.base then
  io.write("base: ", opt.base, ", each script run right after crater's; speed-up over base: base time /"
    .. " crater time, or crater rate / base rate.\n")
end
io.write("PyTorch: ", torch_reason and ("missing, " .. torch_reason) or (TORCH_ENV .. ", torch.set_num_threads(N) per row; matmul rows with"
  .. " OpenBLAS on N threads"), ".\n")
io.write("crater advantage: how many times better crater is (PyTorch time / crater time, or crater rate /"
  .. " PyTorch rate); reference: the machine's memcpy (same array size and threads) or a direct OpenBLAS"
  .. " sgemm; optimizer rows count 20 (SGD) or 28 (Adam) bytes per element.\n\n")
io.write(line(header), "\n")
local sep = {}
for i = 1, #header do sep[i] = string.rep("-", width[i]) end
io.write(line(sep), "\n")
for _, r in ipairs(rows) do io.write(line(r), "\n") end
if #fuse_notes > 0 then io.write("\n", table.concat(fuse_notes, "\n"), "\n") end
io.write(string.format("\nmake bench took %.0f s\n", clock() - t_start))
