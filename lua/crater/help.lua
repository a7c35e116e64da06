--- Help at the prompt: `?crater.optim.Adam`, `?x:narrow`, `help(obj)`.
-- Lua functions are documented by the LDoc `---` comment above their
-- definition, read from the source file when help is asked for, so the help
-- and the source never disagree. C functions are documented in
-- crater.doc_core, keyed by their Lua name.
local help = {}

local doc_core = require "crater.doc_core"
local pretty = require "crater.pretty"

--- Looks up a dotted or `:` name ("crater.optim.Adam", "x:narrow") in `env`.
-- @return the value (or nil), the last key, and whether it was a method (`:`)
function help.resolve (name, env)
  env = env or _G
  local base, sep, key = name:match("^(.-)([%.:])([%a_][%w_]*)$")
  if not base then
    if not name:match("^[%a_][%w_]*$") then return nil, name, false end
    return env[name], name, false
  end
  local ok, v = pcall(function ()
    local obj = env
    for part in base:gmatch("[^%.]+") do obj = obj[part] end
    if sep == ":" then
      local mt = debug.getmetatable(obj)
      local index = mt and mt.__index
      if type(index) == "table" then return index[key] end
      return obj[key]
    end
    return obj[key]
  end)
  return ok and v or nil, key, sep == ":"
end

-- Reads the `---` block ending just above line `line` of `path`: its lines
-- without the comment dashes, and the definition line itself.
local function comment_above (path, line)
  local f = io.open(path)
  if not f then return nil end
  local lines = {}
  for l in f:lines() do lines[#lines + 1] = l end
  f:close()
  local i, block = line - 1, {}
  while i >= 1 and lines[i]:match("^%s*%-%-") do
    table.insert(block, 1, lines[i])
    if lines[i]:match("^%s*%-%-%-") then break end
    i = i - 1
  end
  if #block == 0 or not block[1]:match("^%s*%-%-%-") then return nil, lines[line] end
  for k, l in ipairs(block) do block[k] = l:gsub("^%s*%-%-%-?%s?", "") end
  return block, lines[line]
end

-- The first `---` block of a file (a module or class header).
local function file_header (path)
  local f = io.open(path)
  if not f then return nil end
  local block = {}
  for l in f:lines() do
    if #block == 0 and l:match("^%s*%-%-%-") or #block > 0 and l:match("^%s*%-%-") then
      block[#block + 1] = l:gsub("^%s*%-%-%-?%s?", "")
    elseif #block > 0 or not l:match("^%s*$") and not l:match("^%s*%-%-") then
      break
    end
  end
  f:close()
  return #block > 0 and block or nil
end

--- Parses LDoc lines into {desc=, params={}, options={}, returns={}, usage=}.
-- `@tparam[opt=0.9] number momentum text` (or `opts.momentum`) is an option
-- with its default; `@param`/`@tparam` without `opt` are parameters.
function help.parse (block)
  local doc = { desc = {}, params = {}, options = {}, returns = {}, usage = {} }
  local last            -- the item that an untagged line continues
  for _, l in ipairs(block) do
    local tag, rest = l:match("^%s*@([%w_]+)(.*)$")
    if tag then
      last = nil
      local mods = rest:match("^%[(.-)%]") or ""
      rest = rest:gsub("^%[.-%]", ""):gsub("^%s+", "")
      if tag == "param" or tag == "tparam" then
        local ty, name, text
        if tag == "tparam" then ty, name, text = rest:match("^(%S+)%s+(%S+)%s*(.*)$")
        else name, text = rest:match("^(%S+)%s*(.*)$") end
        if name then
          local default = mods:match("opt=(.*)$")
          last = { name = name, type = ty, default = default, text = text,
                   optional = mods:match("^opt") ~= nil }
          local list = last.optional and doc.options or doc.params
          list[#list + 1] = last
        end
      elseif tag == "return" or tag == "treturn" then
        last = { text = rest }
        doc.returns[#doc.returns + 1] = last
      elseif tag == "usage" then
        last = doc.usage
        if rest ~= "" then doc.usage[#doc.usage + 1] = rest end
      end
    elseif last == doc.usage then
      doc.usage[#doc.usage + 1] = l
    elseif last then
      last.text = last.text .. " " .. l:gsub("^%s+", "")
    elseif l:match("%S") or #doc.desc > 0 then
      doc.desc[#doc.desc + 1] = l
    end
  end
  while #doc.desc > 0 and not doc.desc[#doc.desc]:match("%S") do doc.desc[#doc.desc] = nil end
  -- `@tparam[opt] table opts` followed by `opts.lr`...: opts is a parameter, lr an option
  local options, tables = {}, {}
  for _, o in ipairs(doc.options) do
    local t = o.name:match("^([%w_]+)%.")
    if t then tables[t] = true end
  end
  for _, o in ipairs(doc.options) do
    if tables[o.name] then
      doc.params[#doc.params + 1] = o
    else
      o.name = o.name:gsub("^[%w_]+%.", "")
      options[#options + 1] = o
    end
  end
  doc.options = options
  for i, r in ipairs(doc.returns) do doc.returns[i] = r.text end
  return doc
end

-- The file and line where a Lua function is defined, or nil for C functions.
local function where (fn)
  local info = debug.getinfo(fn, "S")
  if info.what == "C" or not info.source:match("^@") then return nil end
  return info.source:sub(2), info.linedefined
end

-- The signature shown for `name`, from the definition line `function M.f (a, b)`.
local function signature (name, defline, is_method)
  local params = defline and (defline:match("function[^(]*(%b())") or defline:match("=%s*function%s*(%b())"))
  if not params then return name end
  params = params:gsub("%s+", " "):gsub("%( ", "("):gsub(" %)", ")")
  if is_method then params = params:gsub("^%(self,? ?", "(") end
  return name .. params
end

-- A Lua function's doc, or nil.
local function lua_doc (fn)
  local path, line = where(fn)
  if not path then return nil end
  local block, defline = comment_above(path, line)
  if not block then return nil, defline end
  local doc = help.parse(block)
  doc.defline = defline
  return doc
end

-- Reverse lookup: the name of C function `fn` in crater or the tensor methods.
local function core_name (fn)
  local crater = rawget(_G, "crater") or package.loaded.crater
  if type(crater) == "table" then
    for k, v in pairs(crater) do if v == fn then return k end end
  end
  local mt = debug.getregistry()["crater.Tensor"]
  local index = mt and mt.__index
  if type(index) == "table" then
    for k, v in pairs(index) do if v == fn then return k end end
  end
end

--- Finds the documentation of a value named `name` (or nil).
-- @return a table {sig=, desc={lines}, params=, options=, returns=, usage={lines}}
function help.find (value, name, key, is_method)
  key = key or name
  if type(value) == "function" then
    local doc = lua_doc(value)
    if doc then
      doc.sig = signature(name, doc.defline, is_method)
      return doc
    end
    local core = doc_core[key] or doc_core[core_name(value) or ""]
    if not core and type(key) == "string" and key:match("^%w+_$") and doc_core[key:sub(1, -2)] then
      local base = doc_core[key:sub(1, -2)]   -- x:exp_() is x:exp() written into x
      core = { sig = "x:" .. key .. "(...)", desc = "In place: " .. base.desc ..
               " Writes the result into x and returns x.", example = base.example, options = base.options }
    end
    return core and help.from_core(core) or nil
  end
  if type(value) == "table" then
    -- a class or module table: the constructor's comment, else its file's header
    local mt = getmetatable(value)
    local ctor = rawget(value, "new") or rawget(value, "__init") or rawget(value, "init")
      or (type(mt) == "table" and rawget(mt, "__call"))
    local doc = type(ctor) == "function" and lua_doc(ctor) or nil
    -- the class's own file: the constructor's, else that of a function defined in it
    -- (metamethods such as __tostring are often copied from a base class)
    -- prefer a function the class defines itself: an inherited constructor (a class's
    -- __call from its base) would point at the base's file
    local path
    for k, v in pairs(value) do
      if path then break end
      if type(v) == "function" and not tostring(k):match("^__") then path = where(v) end
    end
    path = path or (type(ctor) == "function" and where(ctor))
    local header = path and file_header(path)
    if header then
      local hdoc = help.parse(header)
      if doc then   -- the header describes, the constructor lists the options
        for _, l in ipairs(doc.desc) do hdoc.desc[#hdoc.desc + 1] = l end
        for _, f in ipairs({ "params", "options", "returns", "usage" }) do
          if #hdoc[f] == 0 then hdoc[f] = doc[f] end
        end
      end
      hdoc.defline = doc and doc.defline
      doc = hdoc
    end
    if doc then
      doc.sig = doc.defline and signature(name, doc.defline) or name
      return doc
    end
  end
  if pretty.is_tensor(value) and doc_core.Tensor then return help.from_core(doc_core.Tensor) end
  return nil
end

--- Turns a doc_core entry {sig=, desc=, options=, example=} into a doc.
function help.from_core (e)
  local doc = { sig = e.sig, desc = { e.desc }, params = {}, options = {}, returns = {}, usage = {} }
  for _, o in ipairs(e.options or {}) do
    doc.options[#doc.options + 1] = { name = o[1], default = o[2], text = o[3] }
  end
  for l in (e.example or ""):gmatch("[^\n]+") do doc.usage[#doc.usage + 1] = l end
  return doc
end

--- Formats a doc table as the text printed at the prompt.
function help.format (doc)
  local out = { doc.sig }
  for _, l in ipairs(doc.desc) do out[#out + 1] = "  " .. l end
  if #doc.params > 0 then
    out[#out + 1] = "Parameters:"
    for _, p in ipairs(doc.params) do
      out[#out + 1] = "  " .. p.name .. (p.type and " (" .. p.type .. (p.optional and ", optional" or "")
        .. ")" or "") .. "  " .. (p.text or "")
    end
  end
  if #doc.options > 0 then
    out[#out + 1] = "Options:"
    for _, o in ipairs(doc.options) do
      out[#out + 1] = "  " .. o.name .. (o.default and " = " .. o.default or "") .. "  " .. (o.text or "")
    end
  end
  if #doc.returns > 0 then out[#out + 1] = "Returns: " .. table.concat(doc.returns, "; ") end
  if #doc.usage > 0 then
    out[#out + 1] = "Example:"
    for _, l in ipairs(doc.usage) do out[#out + 1] = "  " .. l end
  end
  return (table.concat(out, "\n"):gsub("%s+\n", "\n"))
end

--- A name for `value`: "module.key" for a field of a loaded module, else "this value".
function help.name_of (value)
  for mod, t in pairs(package.loaded) do
    if t == value then return mod end
  end
  for mod, t in pairs(package.loaded) do
    if type(t) == "table" and mod ~= "_G" then
      for k, v in pairs(t) do
        if v == value and type(k) == "string" then return mod .. "." .. k end
      end
    end
  end
  return "this value"
end

--- The help text for a name ("crater.optim.Adam", "x:narrow") or a value.
-- Says so when there is none.
-- @usage print(help.text("crater.zeros"))
function help.text (target, env)
  local value, name, key, is_method = target, help.name_of(target), nil, false
  if type(target) == "string" then
    name = target:gsub("^%s+", ""):gsub("%s+$", "")
    value, key, is_method = help.resolve(name, env)
    if value == nil then
      local core = doc_core[key]
      if core and name:match("^crater[%.:]") then return help.format(help.from_core(core)) end
      return "no help for '" .. name .. "': it is nil here"
    end
  end
  local doc = help.find(value, name, key, is_method)
  if doc then return help.format(doc) end
  if type(value) == "table" then
    local keys = {}
    for k in pairs(value) do if type(k) == "string" then keys[#keys + 1] = k end end
    table.sort(keys)
    if #keys > 0 then
      return "no documentation for '" .. name .. "'; its fields: " .. table.concat(keys, ", ")
    end
  end
  return "no documentation for '" .. name .. "' (a " .. type(value) .. ")"
end

--- The option keys that a function's documentation lists (for completion): its
-- options, and the documented parameters that are not positional in its definition
-- (`function S:init(optimizer, opts)` documents `step_size` as a key of opts).
-- @return a list of names, possibly empty
function help.options (value)
  local doc = value ~= nil and help.find(value, "") or nil
  if not doc then return {} end
  local positional = {}
  local arglist = (doc.defline or ""):match("%((.-)%)") or ""
  for p in arglist:gmatch("[%w_]+") do positional[p] = true end
  local names = {}
  for _, o in ipairs(doc.options) do names[#names + 1] = o.name end
  for _, p in ipairs(doc.params) do
    if doc.defline and not positional[p.name] and p.name:match("^[%a_][%w_]*$") then
      names[#names + 1] = p.name
    end
  end
  return names
end

return help
