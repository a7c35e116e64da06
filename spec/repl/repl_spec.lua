-- The REPL through its line-evaluation function (no terminal needed), its
-- completion, help and pretty printer, and the built `crater` executable.
local repl = require "crater.repl"
local pretty = require "crater.pretty"
local help = require "crater.help"

-- A fresh state whose chunks run in their own globals (falling back to _G).
local function new_state (opts)
  opts = opts or {}
  opts.env = opts.env or setmetatable({}, { __index = _G })
  return repl.new(opts)
end

local function eval (state, line)
  return repl.eval_line(state, line)
end

-- the executable under test: build/crater, or build-asan/crater under `make asan`
local EXE = (os.getenv("CRATER_BUILD") or "build") .. "/crater"

local function tmpdir ()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

describe("repl.eval_line", function ()
  it("prints the value of an expression (tried as `return <line>` first)", function ()
    local s = new_state()
    assert.same({ "2", "ok" }, { eval(s, "1 + 1") })
    assert.same({ '"hi"', "ok" }, { eval(s, "'hi'") })
    assert.same({ '1\t"a"\tnil', "ok" }, { eval(s, "1, 'a', nil") })
  end)

  it("prints nothing for a statement and keeps its globals", function ()
    local s = new_state()
    assert.same({ "", "ok" }, { eval(s, "a = 20") })
    assert.same({ "22", "ok" }, { eval(s, "a + 2") })
    assert.equal(20, s.env.a)
  end)

  it("mutes the value when the line ends in ';'", function ()
    local s = new_state()
    assert.same({ "", "ok" }, { eval(s, "1 + 1;") })
    assert.same({ "", "ok" }, { eval(s, "b = 3;") })
    assert.equal(3, s.env.b)
  end)

  it("asks for more lines when the chunk ends early, as lua.c does", function ()
    local s = new_state()
    assert.same({ "", "incomplete" }, { eval(s, "function sq(x)") })
    assert.same({ "", "incomplete" }, { eval(s, "function sq(x)\nreturn x * x") })
    assert.same({ "", "ok" }, { eval(s, "function sq(x)\nreturn x * x\nend") })
    assert.same({ "49", "ok" }, { eval(s, "sq(7)") })
  end)

  it("reports a syntax error that is not at the end of input", function ()
    local out, status = eval(new_state(), "x = = 1")
    assert.equal("error", status)
    assert.matches("^stdin:1: unexpected symbol near '='", out)
  end)

  it("puts the message first and trims the traceback to the user's frames", function ()
    local out, status = eval(new_state(), "local function inner() error('deep') end\ninner()")
    assert.equal("error", status)
    assert.equal("stdin:1: deep", out:match("^[^\n]*"))
    assert.matches("stack traceback:\n\tstdin:1: in local 'inner'\n\tstdin:2: in main chunk$", out)
    assert.is_nil(out:find("repl.lua", 1, true))
    assert.is_nil(out:find("xpcall", 1, true))
  end)

  it("shows no traceback when the error is raised by the line itself", function ()
    assert.same({ "stdin:1: boom", "error" }, { eval(new_state(), "error('boom')") })
  end)

  it("names the type of a non-string error object", function ()
    assert.same({ "(error object is a table value)", "error" }, { eval(new_state(), "error({})") })
  end)

  it("survives an error raised inside __gc", function ()
    local s = new_state()
    -- Lua turns an error in __gc into a warning; the chunk itself succeeds
    local out, status = eval(s, "do setmetatable({}, {__gc = function () error('in gc') end}) end; collectgarbage()")
    assert.same({ "", "ok" }, { out, status })
    assert.same({ "2", "ok" }, { eval(s, "1 + 1") })
  end)

  it(":time prints the wall time and the Lua heap change after each command", function ()
    local t = 0
    local s = new_state({ clock = function () t = t + 0.125; return t end })
    assert.same({ "timing on", "ok" }, { eval(s, ":time") })
    local out = eval(s, "6 * 7")
    assert.matches("^42\n%[0%.125000 s, Lua heap [+-]%d+%.%d KB%]$", out)
    assert.same({ "timing off", "ok" }, { eval(s, ":time") })
    assert.same({ "42", "ok" }, { eval(s, "6 * 7") })
  end)

  it("crater.timing(true) turns timing on when the REPL is interactive", function ()
    local env = setmetatable({ crater = {} }, { __index = _G })
    local s = repl.new({ env = env, interactive = true, clock = function () return 0 end })
    eval(s, "crater.timing(true)")
    assert.matches("^1\n%[0%.000000 s", (eval(s, "1")))
    eval(s, "crater.timing(false)")
    assert.equal("1", (eval(s, "1")))
  end)

  it("runs `$ cmd` in the shell and prints its output", function ()
    assert.same({ "hi", "ok" }, { eval(new_state(), "$ echo hi") })
  end)

  it("prints the status of a failing shell command", function ()
    assert.same({ "oops\n[exit status 3]", "error" }, { eval(new_state(), "$ echo oops; exit 3") })
    assert.same({ "[exit status 1]", "error" }, { eval(new_state(), "$ false") })
  end)

  it(":save writes the session's successful lines to a script", function ()
    local s = new_state()
    eval(s, "a = 1")
    eval(s, "error('not saved')")
    eval(s, "for i = 1, 2 do\na = a + i\nend")
    eval(s, "a")
    local path = os.tmpname()
    assert.same({ "saved 3 lines to " .. path, "ok" }, { eval(s, ":save " .. path) })
    local f = assert(io.open(path))
    local text = f:read("a")
    f:close()
    os.remove(path)
    assert.equal("a = 1\nfor i = 1, 2 do\na = a + i\nend\na\n", text)
  end)

  it(":load runs a script and keeps its globals", function ()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("loaded_value = 6 * 7\nlocal hidden = 1\n")
    f:close()
    local s = new_state()
    assert.same({ "loaded " .. path, "ok" }, { eval(s, ":load " .. path) })
    os.remove(path)
    assert.same({ "42", "ok" }, { eval(s, "loaded_value") })
    assert.equal("nil", (eval(s, "hidden")))
  end)

  it(":load of a missing file is an error that names it", function ()
    local out, status = eval(new_state(), ":load /nonexistent/x.lua")
    assert.equal("error", status)
    assert.matches("/nonexistent/x.lua", out, 1, true)
  end)

  it("lists its commands and refuses unknown ones", function ()
    assert.matches(":save file", (eval(new_state(), ":help")), 1, true)
    assert.same({ "unknown command :frob (try :help)", "error" }, { eval(new_state(), ":frob") })
    assert.same({ "", "exit" }, { eval(new_state(), ":quit") })
  end)
end)

describe("pretty printing", function ()
  it("prints short tables on one line, array part first, keys sorted", function ()
    assert.equal('{1, 2, {a = "b"}, [10] = true, ["two words"] = 0, x = 1.5}',
      pretty.format({ 1, 2, { a = "b" }, x = 1.5, [10] = true, ["two words"] = 0 }))
  end)

  it("indents tables that do not fit on a line", function ()
    local t = { alpha = string.rep("a", 30), beta = string.rep("b", 30), gamma = { 1, 2 } }
    assert.equal('{\n  alpha = "' .. string.rep("a", 30) .. '",\n  beta = "' .. string.rep("b", 30)
      .. '",\n  gamma = {1, 2}\n}', pretty.format(t))
  end)

  it("stops at the depth limit", function ()
    assert.equal("{{{{...}}}}", pretty.format({ { { { { 1 } } } } }))
    assert.equal("{{...}}", pretty.format({ { { 1 } } }, { depth = 1 }))
  end)

  it("marks cycles", function ()
    local t = { name = "t" }
    t.self = t
    assert.equal('{name = "t", self = <cycle>}', pretty.format(t))
  end)

  it("prints a table seen twice (not a cycle) twice", function ()
    local shared = { 1 }
    assert.equal("{{1}, {1}}", pretty.format({ shared, shared }))
  end)

  it("elides long tables", function ()
    local t = {}
    for i = 1, 100 do t[i] = i end
    local out = pretty.format(t)
    local shown = {}
    for i = 1, 60 do shown[i] = i end
    assert.equal("{ " .. table.concat(shown, ", ") .. ", ... (40 more) }", (out:gsub("\n%s*", " ")))
    for line in out:gmatch("[^\n]+") do assert.is_true(#line <= 88) end
  end)

  it("prints modules (tables with __tostring) as their string", function ()
    local m = setmetatable({}, { __tostring = function () return "Sequential(\n  (1): Linear(2 -> 3)\n)" end })
    assert.equal("Sequential(\n  (1): Linear(2 -> 3)\n)", pretty.format(m))
    assert.equal("{\n  m = Sequential(\n    (1): Linear(2 -> 3)\n  )\n}", pretty.format({ m = m }))
  end)

  it("prints <tostring failed: msg> when __tostring raises", function ()
    local bad = setmetatable({}, { __tostring = function () error("no way", 0) end })
    assert.equal("<tostring failed: no way>", pretty.format(bad))
    assert.same({ "{<tostring failed: no way>}", "ok" },
      { repl.eval_line(new_state({ env = setmetatable({ bad = bad }, { __index = _G }) }), "{bad}") })
  end)

  it("escapes control characters in strings", function ()
    assert.equal('"a\\nb\\0"', pretty.format("a\nb\0"))
  end)

  it("uses ANSI colour only when asked", function ()
    assert.equal("\27[36m42\27[0m", pretty.format(42, { color = true }))
    assert.equal('\27[32m"s"\27[0m', pretty.format("s", { color = true }))
    assert.equal("42", pretty.format(42))
    local out = repl.eval_line(new_state({ color = true }), "error('red', 0)")
    assert.equal("\27[31mred\27[0m", out)
  end)
end)

describe("pretty printing of tensors", function ()
  local crater = require "crater"

  it("summarises a tensor inside a table as [dtype sizes]", function ()
    assert.equal("{w = [float32 2x3]}", pretty.format({ w = crater.zeros(2, 3) }))
    assert.equal("{[float64 3], [int64 scalar]}",
      pretty.format({ crater.zeros(3, { dtype = "float64" }), crater.tensor(5, { dtype = "int64" }) }))
  end)

  it("prints a top-level tensor with tostring", function ()
    local x = crater.ones(2, 2)
    assert.equal(tostring(x), pretty.format(x))
    assert.equal("\27[35m" .. tostring(x) .. "\27[0m", pretty.format(x, { color = true }))
  end)
end)

describe("completion", function ()
  local env = setmetatable({
    crater = { optim = { lr_scheduler = {}, lr_finder = 1, SGD = {} } },
    obj = setmetatable({}, { __index = { step = function () end, zero_grad = function () end, lr = 1 } }),
    repl = repl,
  }, { __index = _G })
  local s = repl.new({ env = env })

  it("completes globals and keywords", function ()
    assert.same({ "repeat", "repl" }, repl.complete(s, "rep", "rep"))
  end)

  it("completes nested fields", function ()
    assert.same({ "crater.optim.lr_finder", "crater.optim.lr_scheduler" },
      repl.complete(s, "crater.optim.lr_", "crater.optim.lr_"))
  end)

  it("completes methods after ':' from the metatable's __index table", function ()
    assert.same({ "obj:step" }, repl.complete(s, "obj:st", "obj:st"))
    assert.same({ "obj:step", "obj:zero_grad" }, repl.complete(s, "obj:", "obj:"))
    -- an expression that is not a chain of names is never evaluated
    assert.same({}, repl.complete(s, "('x'):up", "('x'):up"))
  end)

  it("completes string methods after ':'", function ()
    env.str = "abc"
    assert.same({ "str:upper" }, repl.complete(s, "str:upp", "str:upp"))
  end)

  it("completes file names inside a string", function ()
    local d = tmpdir()
    for _, name in ipairs({ "checkpoint.bin", "chart.png", "other.txt" }) do
      assert(io.open(d .. "/" .. name, "w")):close()
    end
    assert(os.execute("mkdir '" .. d .. "/charts'"))
    -- readline hands over the word after the last break character ('/' and '"' are breaks)
    assert.same({ "chart.png", "charts/", "checkpoint.bin" },
      repl.complete(s, 'crater.load("' .. d .. "/ch", "ch"))
    assert.same({ "chart.png", "charts/" }, repl.complete(s, 'x = io.open("' .. d .. "/char", "char"))
    os.execute("rm -r '" .. d .. "'")
  end)

  it("completes the documented option keys of an options table", function ()
    assert.same({ "color" }, repl.complete(s, "repl.new({col", "col"))
    assert.same({ "clock", "color" }, repl.complete(s, "repl.new({env = _G, c", "c"))
    assert.same({ "clock", "color" }, repl.complete(s, "repl.new(({}), {env = f(1, {2}), c", "c"))
  end)

  it("offers nothing for an unknown base", function ()
    assert.same({}, repl.complete(s, "nosuch.fi", "nosuch.fi"))
  end)
end)

describe("help", function ()
  local s = repl.new({ env = setmetatable({ repl = repl }, { __index = _G }) })

  it("prints a Lua function's signature, description, options and example from its LDoc", function ()
    local out = repl.eval_line(s, "?repl.new")
    assert.equal("repl.new(opts)", out:match("^[^\n]*"))
    assert.matches("\n  Creates a REPL state.\n", out, 1, true)
    assert.matches("Options:\n  color = false  ANSI colours in the output\n", out, 1, true)
    assert.matches("Returns: the state passed to eval_line and complete", out, 1, true)
  end)

  it("prints the example lines of @usage", function ()
    assert.matches('Example:\n  local out, status = repl.eval_line(state, "1 + 1")',
      (repl.eval_line(s, "?repl.eval_line")), 1, true)
  end)

  it("documents C functions from crater.doc_core", function ()
    local out = help.text("crater.zeros", { crater = {} })
    assert.equal("crater.zeros(size..., {dtype=, requires_grad=})", out:match("^[^\n]*"))
    assert.matches('Options:\n  dtype = "float32"', out, 1, true)
    assert.matches("Example:\n  x = crater.zeros(2, 3)", out, 1, true)
  end)

  it("documents tensor methods looked up as x:name", function ()
    local crater = require "crater"
    local out = help.text("x:narrow", { x = crater.zeros(4) })
    assert.equal("x:narrow(dim, start, length)", out:match("^[^\n]*"))
  end)

  it("help(value) prints the text, naming the value by where it was loaded", function ()
    local printed
    local env = setmetatable({ print = function (t) printed = t end, repl = repl }, { __index = _G })
    local st = repl.new({ env = env, interactive = true })
    repl.eval_line(st, "help(repl.eval_line)")
    assert.equal(help.text("repl.eval_line", env):gsub("^repl", "crater.repl"), printed)
  end)

  it("documents a class by its file's header and its constructor's options", function ()
    local env = { Widget = dofile("spec/repl/fixtures/widget.lua") }
    assert.equal(table.concat({
      "Widget(target, opts)",
      "  Widget: a class documented the way crater's optimizers and schedulers are.",
      "  Its header describes it; the constructor's comment lists the options.",
      "  Builds a widget.",
      "Parameters:",
      "  target  what the widget acts on",
      "  size (number)  a positive integer, passed inside opts",
      "Options:",
      "  ratio = 0.5  how much to keep",
      "  verbose = false  print each change" }, "\n"), help.text("Widget", env))
    local st = repl.new({ env = env })
    assert.same({ "ratio", "size", "verbose" }, repl.complete(st, "w = Widget(t, {", ""))
  end)

  it("says so when something is undocumented or nil", function ()
    assert.equal("no documentation for 'string.format' (a function)", (repl.eval_line(s, "?string.format")))
    assert.equal("no help for 'math.nope': it is nil here", (repl.eval_line(s, "?math.nope")))
  end)

  it("parses @tparam[opt=...] options with their defaults", function ()
    local doc = help.parse({ "Makes a thing.", "@param params list of tensors",
      "@tparam[opt=0.9] number opts.momentum the momentum", "   continued here", "@usage f(p)", "g(p)" })
    assert.same({ "Makes a thing." }, doc.desc)
    assert.equal("params", doc.params[1].name)
    assert.same({ name = "momentum", type = "number", default = "0.9", text = "the momentum continued here",
                  optional = true }, doc.options[1])
    assert.same({ "f(p)", "g(p)" }, doc.usage)
  end)
end)

-- Every tensor name in API.md's Tensors and Autograd sections has an entry in doc_core.
local API_NAMES = [[
tensor zeros ones full empty eye arange linspace rand randn randint zeros_like ones_like randn_like manual_seed
shape size dim numel dtype item totable is_contiguous get
view reshape t transpose permute narrow select squeeze unsqueeze expand flatten contiguous clone detach to
add sub mul div pow neg abs sign exp log log1p sqrt rsqrt sin cos tanh sigmoid relu leaky_relu gelu softplus clamp
minimum maximum where matmul mm bmm sum mean var std prod max min argmax argmin norm softmax log_softmax logsumexp
cat stack gather index_select masked_fill eq ne lt le gt ge allclose
zero_ fill_ copy_ add_ sub_ mul_ div_ addcmul_ addcdiv_ lerp_ sqrt_ clamp_ maximum_ sign_ neg_ exp_
requires_grad grad is_leaf grad_fn backward no_grad enable_grad gradcheck]]

describe("help coverage", function ()
  local doc_core = require "crater.doc_core"

  it("doc_core documents every tensor and autograd name of API.md", function ()
    local missing = {}
    for name in API_NAMES:gmatch("%S+") do
      local e = doc_core[name]
      if not (e and e.sig and e.desc and e.example) then missing[#missing + 1] = name end
    end
    assert.same({}, missing)
  end)

  it("every public function of crater and every tensor method has help", function ()
    local crater = require "crater"
    local missing = {}
    for k, v in pairs(crater) do
      if type(v) == "function" and not k:match("^_") and not help.find(v, "crater." .. k, k) then
        missing[#missing + 1] = "crater." .. k
      end
    end
    local mt = debug.getregistry()["crater.Tensor"]
    assert.is_table(mt and mt.__methods, "the tensor metatable names its method table")
    for k, v in pairs(mt.__methods) do
      if type(v) == "function" and not k:match("^_") and not help.find(v, "x:" .. k, k, true) then
        missing[#missing + 1] = "x:" .. k
      end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)

  it("no help entry of the C functions names something that does not exist", function ()
    local crater = require "crater"
    local methods = debug.getregistry()["crater.Tensor"].__methods
    local y = crater.ones(1, { requires_grad = true }) * 2   -- has every property (grad_fn, is_leaf, ...)
    local stale = {}
    for name in pairs(require "crater.doc_core") do
      if crater[name] == nil and methods[name] == nil and y[name] == nil and crater.autograd[name] == nil
         and name ~= "Tensor" then
        stale[#stale + 1] = name
      end
    end
    table.sort(stale)
    assert.same({}, stale)
  end)
end)

describe("the crater executable", function ()
  local exe = EXE

  local function run (args)
    local p = io.popen(exe .. " " .. args .. " 2>&1")
    local out = p:read("a")
    local ok, _, code = p:close()
    return out, ok and 0 or code
  end

  it("exists (the Makefile builds it before the specs)", function ()
    assert.is_truthy(io.open(exe), exe .. " is missing: run make")
  end)

  it("completes the submodules that load on first use, and their fields", function ()
    -- a fresh process: in this one the specs have loaded every submodule already
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local repl = require "crater.repl"
      local s = repl.new({ env = setmetatable({ crater = crater }, { __index = _G }) })
      print(rawget(crater, "optim") == nil and rawget(crater.nn, "utils") == nil)
      for _, w in ipairs({ "crater.opti", "crater.optim.lr_", "crater.nn.functional.cr", "crater.nn.ut" }) do
        print(table.concat(repl.complete(s, w, w), " "))
      end
    ]])
    f:close()
    local out, code = run(script)
    os.remove(script)
    assert.are.equal(0, code, out)
    assert.are.equal("true\ncrater.optim\ncrater.optim.lr_scheduler\ncrater.nn.functional.cross_entropy\n"
      .. "crater.nn.utils\n", out)
  end)

  it("runs -e code with crater preloaded as a global", function ()
    assert.same({ "2\n", 0 }, { run("-e 'print(1+1)'") })
    assert.same({ "table\n", 0 }, { run("-e 'print(type(crater))'") })
  end)

  it("runs a script with its arguments in arg and ...", function ()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("print(arg[0] == ..., arg[1], arg[2], select('#', ...), arg[-1])\n")
    f:close()
    local out, code = run(path .. " a b")
    os.remove(path)
    assert.equal(0, code)
    assert.equal("false\ta\tb\t2\t" .. exe .. "\n", out)
  end)

  it("reads a script from stdin with -", function ()
    local p = io.popen("echo 'print(3 + 4)' | " .. exe .. " -")
    assert.equal("7\n", p:read("a"))
    assert.is_true(p:close())
  end)

  it("reports a runtime error with a traceback and exits with failure", function ()
    local out, code = run("-e 'error(\"bad thing\")'")
    assert.equal(1, code)
    assert.matches("^crater: %(command line%):1: bad thing\nstack traceback:", out)
  end)

  it("prints the version", function ()
    assert.matches("^crater %d+%.%d+%.%d+  %(Lua 5%.4", (run("-v")))
  end)

  it("names the available commands when a command is unknown", function ()
    local out, code = run("nosuchcommand")
    assert.equal(1, code)
    assert.matches("^crater: unknown command 'nosuchcommand' %(commands: ", out)
  end)

  it("rejects an unknown option with the usage", function ()
    local out, code = run("-Z")
    assert.equal(1, code)
    assert.matches("unrecognized option or missing code: '-Z'\nusage: crater", out, 1, true)
  end)
end)

describe("the REPL in a pseudo-terminal", function ()
  it("completes, prints, stops a loop on Ctrl-C, clears the line and keeps history", function ()
    local home = tmpdir()
    -- script(1) gives crater a terminal; the keys are paced so each reaches its own prompt
    local keys = "sleep 0.5; printf 'while true do end\\r'; sleep 0.7; printf '\\003'; sleep 0.5; "
      .. "printf 'string.fo\\t(\"%%d\", 7)\\r'; sleep 0.5; printf 'abc'; sleep 0.3; printf '\\003'; sleep 0.3; "
      .. "printf '6*7\\r'; sleep 0.5; printf '\\004'"
    local p = io.popen("(" .. keys .. ") | HOME='" .. home .. "' NO_COLOR=1 timeout 20 "
      .. "script -qfec " .. EXE .. " /dev/null")
    local screen = p:read("a"):gsub("\27%[[%d;?]*%a", ""):gsub("\r", "")
    p:close()
    assert.matches("> while true do end\n^C\ninterrupted!\n", screen, 1, true)
    assert.matches('> string.format("%d", 7)\n"7"\n', screen, 1, true)
    assert.matches("> 6*7\n42\n", screen, 1, true)
    local f = assert(io.open(home .. "/.crater_history"))
    local hist = f:read("a")
    f:close()
    os.execute("rm -r '" .. home .. "'")
    assert.matches("6*7", hist, 1, true)
    assert.is_nil(hist:find("abc", 1, true))
  end)
end)
