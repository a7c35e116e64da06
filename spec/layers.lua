--- `make check-layers`: the layers of src/ that the build enforces (issue #18).
--
--   core (storage, tensors, iteration, allocator, RNG, threads)
--     <- tape (ops and autograd: backward is built from ops, so they are one layer)
--       <- optim kernels, data readers, the fused VM (src/fuse)
--         <- bindings (src/lua) and the executable (src/main.c)
--
-- A file may include headers of its own layer and of the layers below it, and only the
-- system headers its layer is allowed (Lua's in the bindings alone, BLAS in the tape and the
-- optimizer kernels, MPI in the distributed binding). Anything else is an upward or a
-- foreign dependency and fails the check, naming the file, the line and the include.
-- Usage: lua5.4 spec/layers.lua [root]   (exits 1 on a violation)
local M = {}

-- folder -> layer; a layer may include the layers listed for it
M.LAYER = { core = "core", autograd = "tape", ops = "tape", optim = "optim", data = "data", lua = "bind",
  fuse = "fuse" }
M.MAY_INCLUDE = {
  core = { core = true },
  tape = { core = true, tape = true },
  optim = { core = true, tape = true, optim = true },
  data = { core = true, data = true },
  fuse = { core = true, tape = true, fuse = true },   -- crater.fuse's VM: the ops' formulas (ops/scalar.h)
  bind = { core = true, tape = true, optim = true, data = true, fuse = true, bind = true },
}
-- system headers beyond the C library and POSIX, by the layers allowed them
M.SYSTEM = {
  ["lua.h"] = { bind = true, main = true }, ["lauxlib.h"] = { bind = true, main = true },
  ["lualib.h"] = { bind = true, main = true }, ["cblas.h"] = { tape = true, optim = true },
  ["mpi.h"] = { bind = true }, ["zlib.h"] = { data = true, bind = true },
  ["readline/readline.h"] = { main = true }, ["readline/history.h"] = { main = true },
}

local function layer_of(path)   -- "src/ops/nn.c" -> "tape"; src/main.c -> "main"
  if path:match("^src/main%.c$") then return "main" end
  local folder = path:match("^src/([^/]+)/")
  return folder and M.LAYER[folder]
end

--- The violations in one file's text: a list of "path:line: message".
function M.check_file(path, text)
  local out, own = {}, layer_of(path)
  if own == nil then return { path .. ": not in a known layer (add its folder to spec/layers.lua)" } end
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local quoted = line:match('^%s*#%s*include%s*"([^"]+)"')
    local system = line:match("^%s*#%s*include%s*<([^>]+)>")
    if quoted and M.SYSTEM[quoted] then system, quoted = quoted, nil end   -- lua.c's "lua.h" style
    if quoted then
      -- resolve against the including file's folder
      local dir = path:match("^(.*)/[^/]*$")
      local target = dir .. "/" .. quoted
      repeat local prev = target; target = target:gsub("[^/]+/%.%./", "", 1) until target == prev
      local to = layer_of(target)
      if to == nil then
        out[#out + 1] = string.format("%s:%d: includes %q, outside src's layers", path, n, quoted)
      elseif own ~= "main" and not M.MAY_INCLUDE[own][to] then
        out[#out + 1] = string.format("%s:%d: the %s layer includes %q of the %s layer above it", path, n, own,
          quoted, to)
      end
    elseif system and M.SYSTEM[system] and not M.SYSTEM[system][own] then
      out[#out + 1] = string.format("%s:%d: the %s layer includes <%s>, which only %s may", path, n, own, system,
        table.concat((function()
          local l = {}
          for k in pairs(M.SYSTEM[system]) do l[#l + 1] = k end
          table.sort(l)
          return l
        end)(), " and "))
    end
  end
  return out
end

--- Every violation under root/src.
function M.check_tree(root)
  local p = assert(io.popen("cd '" .. root .. "' && find src -name '*.c' -o -name '*.h' | sort"))
  local out = {}
  for path in p:lines() do
    local f = assert(io.open(root .. "/" .. path))
    for _, v in ipairs(M.check_file(path, f:read("a"))) do out[#out + 1] = v end
    f:close()
  end
  p:close()
  return out
end

if arg and arg[0] and arg[0]:match("layers%.lua$") then
  local bad = M.check_tree(arg[1] or ".")
  for _, v in ipairs(bad) do io.stderr:write(v, "\n") end
  if #bad > 0 then os.exit(1) end
  print("check-layers: every include stays within its layer")
end

return M
