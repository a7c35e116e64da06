--- The REPL's line evaluation, completion and commands.
-- src/main.c reads lines with readline and hands each chunk to
-- `repl.eval_line(state, chunk)`, which returns the text to print and a status;
-- specs drive the same function without a terminal.
--
-- At the prompt: an expression prints its value (a trailing `;` mutes it),
-- `?name` prints help, `$ cmd` runs a shell command, and `:time`, `:save file`,
-- `:load file`, `:help`, `:quit` are commands.
local pretty = require "crater.pretty"
local help = require "crater.help"

local repl = {}

local COMMANDS = [[
?name          help on a function, class or method (?crater.optim.Adam, ?x:narrow)
help(value)    the same for a value
expr;          a trailing ';' mutes the printed value
$ cmd          run a shell command and print its output
:time          print the wall time and Lua memory of each command (toggle)
:save file     write this session's lines to a script
:load file     run a script here, keeping its globals
:help          this list
:quit          leave (or Ctrl-D)]]

--- Creates a REPL state.
-- @tparam[opt] table opts
-- @tparam[opt=false] boolean opts.color ANSI colours in the output
-- @tparam[opt=_G] table opts.env the globals that chunks run in
-- @tparam[opt=crater.clock] function opts.clock a wall clock in seconds
-- @tparam[opt=false] boolean opts.interactive install `help` and `crater.timing` as globals
-- @return the state passed to eval_line and complete
function repl.new (opts)
  opts = opts or {}
  local state = { color = opts.color or false, env = opts.env or _G, clock = opts.clock or require("crater").clock,
                  timing = false, lines = {} }
  if opts.interactive then
    state.env.help = function (v) (state.env.print or print)(help.text(v, state.env)) end
    local crater = rawget(state.env, "crater")
    if type(crater) == "table" then
      crater.timing = function (on) state.timing = on ~= false end
    end
  end
  return state
end

-- The error handler: message first, then the traceback trimmed to the user's
-- own frames (nothing from this file, the handler or the C entry points).
local function traceback (msg)
  if type(msg) ~= "string" then
    local mt = debug.getmetatable(msg)
    msg = mt and mt.__tostring and pretty.safe_tostring(msg)
      or "(error object is a " .. type(msg) .. " value)"
  end
  local tb = debug.traceback("", 2)
  local frames = {}
  for line in tb:gmatch("[^\n]+") do
    if line:match("crater/repl%.lua") or line:match("in function 'xpcall'") then
      break                                  -- the REPL's own frames start here
    end
    if line:match("^%s") and not line:match("%[C%]: in function 'error'")
       and not line:match("%[C%]: in %?") then
      frames[#frames + 1] = line
    end
  end
  if #frames <= 1 and (frames[1] or " in main chunk"):match(" in main chunk$") then return msg end
  return msg .. "\nstack traceback:\n" .. table.concat(frames, "\n")
end
repl.traceback = traceback

-- Compiles a chunk as lua.c does: first as `return <chunk>`, then as a
-- statement. Returns the function, or nil and the message and whether the
-- chunk is just incomplete (the parser stopped at <eof>).
local function compile (chunk, env)
  local fn = load("return " .. chunk, "=stdin", "t", env)
  if fn then return fn end
  local err
  fn, err = load(chunk, "=stdin", "t", env)
  if fn then return fn end
  return nil, err, err:sub(-5) == "<eof>"
end

local function kb (n) return string.format("%.1f KB", n) end

-- Runs `fn` and formats what it returned.
local function run (state, fn, mute)
  local memory = rawget(_G, "crater") and crater.memory   -- C bytes: Lua's count cannot see them
  local t0, m0, c0 = state.clock(), collectgarbage("count"), memory and memory().bytes
  local res = table.pack(xpcall(fn, traceback))
  local dt, dm = state.clock() - t0, collectgarbage("count") - m0
  local dc = memory and (memory().bytes - c0) / 1024
  local out, status = {}, "ok"
  if not res[1] then
    out[1] = pretty.paint(res[2], "error", state.color)
    status = "error"
  elseif not mute then
    for i = 2, res.n do out[#out + 1] = pretty.format(res[i], { color = state.color }) end
  end
  local text = table.concat(out, "\t")
  if state.timing then
    local t = pretty.paint(string.format("[%.6f s, Lua heap %s%s%s]", dt, dm >= 0 and "+" or "", kb(dm),
                                         dc and string.format(", tensors %s%s", dc >= 0 and "+" or "", kb(dc)) or ""),
                           "dim", state.color)
    text = text == "" and t or text .. "\n" .. t
  end
  return text, status
end

-- `$ cmd`: the command's output (stdout and stderr), then its status if it failed.
local function shell (cmd)
  local p = io.popen(cmd .. " 2>&1", "r")
  if not p then return "cannot run: " .. cmd, "error" end
  local out = p:read("a")
  local ok, how, code = p:close()
  out = out:gsub("\n$", "")
  if ok then return out, "ok" end
  local why = how == "exit" and "exit status " .. code or "killed by signal " .. tostring(code)
  return (out == "" and "" or out .. "\n") .. "[" .. why .. "]", "error"
end

-- `:load file`: runs a script with the session's globals.
local function load_file (state, path)
  if not path or path == "" then return "usage: :load file.lua", "error" end
  local fn, err = loadfile(path, "t", state.env)
  if not fn then return pretty.paint(err, "error", state.color), "error" end
  local text, status = run(state, fn, true)
  if status == "ok" then
    state.lines[#state.lines + 1] = "dofile(" .. string.format("%q", path) .. ")"
    if text == "" then text = "loaded " .. path end
  end
  return text, status
end

local function save_file (state, path)
  if not path or path == "" then return "usage: :save file.lua", "error" end
  local f, err = io.open(path, "w")
  if not f then return err, "error" end
  f:write(table.concat(state.lines, "\n"), #state.lines > 0 and "\n" or "")
  f:close()
  return "saved " .. #state.lines .. " lines to " .. path, "ok"
end

--- Evaluates one complete or partial chunk typed at the prompt.
-- @param state from repl.new
-- @param line the chunk (lines joined by "\n")
-- @return the text to print (possibly ""), and a status: "ok", "error",
-- "incomplete" (read another line and call again with both) or "exit"
-- @usage local out, status = repl.eval_line(state, "1 + 1")   --> "2", "ok"
function repl.eval_line (state, line)
  local trimmed = line:match("^%s*(.-)%s*$")
  if trimmed == "" then return "", "ok" end
  local cmd, rest = trimmed:match("^:(%a+)%s*(.-)$")
  if cmd == "time" then
    state.timing = not state.timing
    return "timing " .. (state.timing and "on" or "off"), "ok"
  elseif cmd == "save" then return save_file(state, rest)
  elseif cmd == "load" then return load_file(state, rest)
  elseif cmd == "help" then return COMMANDS, "ok"
  elseif cmd == "quit" or cmd == "q" then return "", "exit"
  elseif cmd then return "unknown command :" .. cmd .. " (try :help)", "error"
  end
  if trimmed:sub(1, 1) == "?" then return help.text(trimmed:sub(2), state.env), "ok" end
  if trimmed:sub(1, 1) == "$" then return shell(trimmed:sub(2)) end
  local fn, err, incomplete = compile(line, state.env)
  if not fn then
    if incomplete then return "", "incomplete" end
    return pretty.paint(err, "error", state.color), "error"
  end
  local text, status = run(state, fn, trimmed:sub(-1) == ";")
  if status == "ok" then state.lines[#state.lines + 1] = line end
  return text, status
end


-- Completion ---------------------------------------------------------------

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function",
  "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

-- Keys of `t` (a table) and of the tables its __index chain leads to.
local function keys_of (t, methods_only, out, seen)
  out, seen = out or {}, seen or {}
  if type(t) ~= "table" or seen[t] then return out end
  seen[t] = true
  for k, v in pairs(t) do
    if type(k) == "string" and k:match("^[%a_][%w_]*$") and (not methods_only or type(v) == "function"
       or (type(v) == "table" and (getmetatable(v) or {}).__call)) then
      out[k] = true
    end
  end
  local mt = debug.getmetatable(t)
  if mt and type(mt.__lazy) == "table" then   -- submodules loaded on first use (crater.optim)
    for k in pairs(mt.__lazy) do
      if type(k) == "string" and rawget(t, k) == nil then out[k] = true end
    end
  end
  if mt and type(mt.__index) == "table" then keys_of(mt.__index, methods_only, out, seen) end
  return out
end

-- The names offered after `obj.` or `obj:`.
local function members (obj, sep)
  local mt = debug.getmetatable(obj)
  local index = mt and mt.__index
  if type(obj) == "table" then
    return keys_of(obj, sep == ":")
  end
  -- a userdata whose __index is a function may name its method table in __methods
  if type(index) ~= "table" and mt and type(mt.__methods) == "table" then index = mt.__methods end
  return keys_of(type(index) == "table" and index or nil, sep == ":")
end

-- Evaluates a chain of names "a.b.c" without calling anything but __index.
local function walk (env, chain)
  local ok, v = pcall(function ()
    local obj = env
    for part in chain:gmatch("[^%.]+") do obj = obj[part] end
    return obj
  end)
  return ok and v or nil
end

-- Is the end of `prefix` inside a string literal? Returns its contents so far.
local function open_string (prefix)
  local i, quote, start = 1, nil, nil
  while i <= #prefix do
    local c = prefix:sub(i, i)
    if quote then
      if c == "\\" then i = i + 1
      elseif c == quote then quote = nil end
    elseif c == '"' or c == "'" then quote, start = c, i + 1
    elseif prefix:sub(i, i + 1) == "--" then return nil
    end
    i = i + 1
  end
  return quote and prefix:sub(start) or nil
end

local function sh_quote (s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- File names that complete `path`; directories end in "/".
local function files (path)
  local dir, base = path:match("^(.*/)([^/]*)$")
  if not dir then dir, base = "", path end
  local p = io.popen("ls -1Ap " .. sh_quote(dir == "" and "." or dir) .. " 2>/dev/null")
  local out = {}
  if not p then return out end
  for name in p:lines() do
    if name:sub(1, #base) == base then out[#out + 1] = dir .. name end
  end
  p:close()
  return out
end

--- Completion candidates for the word before the cursor.
-- @param state from repl.new
-- @param line the line up to the cursor
-- @param text the word readline completes (the end of `line`)
-- @return a sorted list of replacements for `text`
-- @usage repl.complete(state, "crater.optim.lr_sch", "crater.optim.lr_sch")
function repl.complete (state, line, text)
  text = text or line:match("[%w_%.:]*$")
  local prefix = line:sub(1, #line - #text)
  local word, cands = text, {}
  local str = open_string(line)
  if str then                                   -- a file name inside a string
    word = str
    cands = files(str)
  else
    local flat = prefix:gsub("%b()", ""):gsub("%b{}", "{}")   -- drop closed calls and tables
    local fname = flat:match("([%a_][%w_%.:]*)%s*%([^()]*{[^{}]*$")
    if fname and prefix:match("[{,]%s*$") then   -- a key of an options table
      local fn = walk(state.env, (fname:gsub(":", ".")))
      for _, k in ipairs(help.options(fn)) do
        if k:sub(1, #text) == text then cands[#cands + 1] = k end
      end
    else
      local base, sep, part = text:match("^(.-)([%.:])([%w_]*)$")
      if base and base:match("^[%a_][%w_%.]*$") then
        local obj = walk(state.env, base)
        if obj ~= nil then
          for k in pairs(members(obj, sep)) do
            if k:sub(1, #part) == part then cands[#cands + 1] = base .. sep .. k end
          end
        end
      elseif text:match("^[%a_]?[%w_]*$") then
        for k in pairs(keys_of(state.env)) do
          if k:sub(1, #text) == text then cands[#cands + 1] = k end
        end
        for _, k in ipairs(KEYWORDS) do
          if k:sub(1, #text) == text then cands[#cands + 1] = k end
        end
      end
    end
  end
  -- the candidates complete `word`, which ends with `text`: keep their tail
  local cut = #word - #text
  local out, seen = {}, {}
  for _, c in ipairs(cands) do
    c = c:sub(cut + 1)
    if not seen[c] then seen[c] = true; out[#out + 1] = c end
  end
  table.sort(out)
  return out
end

return repl
