--- A headless Chromium driven over the DevTools protocol, for the specs of the HTML pages.
-- Chromium runs with --remote-debugging-pipe: it reads commands on fd 3 and writes
-- replies and events on fd 4, each a JSON text ended by a NUL byte. The two fds are named
-- pipes here, so plain Lua io drives it; `timeout` ends a browser that hangs.
-- @usage local b = chromium.launch(dir); local page = b:open("file:///.../report.html")
-- page:eval("document.title"); page:screenshot(path); b:close()
local json = require "crater.json"

local M = {}

local CANDIDATES = {"chromium-headless-shell", "chromium"}

--- The browser's program, or nil and why not.
function M.find()
  for _, name in ipairs(CANDIDATES) do
    local p = io.popen("command -v " .. name .. " 2>/dev/null")
    local path = p:read("l")
    p:close()
    if path and path ~= "" then return path end
  end
  return nil, "no headless Chromium: apt-get install chromium-headless-shell (make test-deps does)"
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local Browser, Page = {}, {}
Browser.__index, Page.__index = Browser, Page

--- Starts the browser with its profile and pipes in dir; returns the browser.
function M.launch(dir, o)
  o = o or {}
  local prog = assert(M.find())
  os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir) .. " && mkfifo " .. q(dir .. "/in") .. " "
    .. q(dir .. "/out"))
  -- The shell opens fd 3 (in) before fd 4 (out); we open them in the same order.
  -- The browser must not inherit `make asan`'s preloaded sanitizer runtime: it crashes under it.
  os.execute(string.format("env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS timeout %d %s --headless --no-sandbox --disable-gpu --hide-scrollbars "
    .. "--no-first-run --user-data-dir=%s --remote-debugging-pipe 3<%s 4>%s 2>%s &", o.timeout or 120, q(prog),
    q(dir .. "/profile"), q(dir .. "/in"), q(dir .. "/out"), q(dir .. "/stderr.log")))
  local b = setmetatable({id = 0, queue = {}}, Browser)
  b.w = assert(io.open(dir .. "/in", "w"))
  b.w:setvbuf("no")
  b.r = assert(io.open(dir .. "/out", "r"))
  return b
end

-- One message from the browser (a decoded table); raises when the browser is gone.
function Browser:recv()
  local buf, r = {}, self.r
  while true do
    local c = r:read(1)
    if c == nil then error("chromium: the browser closed its pipe (crashed or timed out)", 2) end
    if c == "\0" then break end
    buf[#buf + 1] = c
  end
  return json.decode(table.concat(buf))
end

--- Sends a command and returns its result; events that arrive meanwhile are queued.
-- params is a JSON text (the specs write them inline).
function Browser:send(method, params, session)
  self.id = self.id + 1
  local id = self.id
  self.w:write(string.format('{"id":%d,"method":%s,"params":%s%s}', id, json.quote(method), params or "{}",
    session and (',"sessionId":' .. json.quote(session)) or ""), "\0")
  while true do
    local m = self:recv()
    if m.id == id then
      if m.error then error("chromium: " .. method .. ": " .. tostring(m.error.message), 2) end
      return m.result
    end
    self.queue[#self.queue + 1] = m
  end
end

-- Hands the queued events of a session to its page.
function Browser:dispatch(page)
  local keep = {}
  for _, m in ipairs(self.queue) do
    if m.sessionId == page.session then page:event(m) else keep[#keep + 1] = m end
  end
  self.queue = keep
end

--- Opens url in a new tab of the given size and waits for its load event; returns the page.
-- The page records console errors, uncaught exceptions, log errors and every request.
function Browser:open(url, width, height)
  local t = self:send("Target.createTarget", string.format('{"url":"about:blank","width":%d,"height":%d}',
    width or 1100, height or 900))
  local a = self:send("Target.attachToTarget", '{"targetId":' .. json.quote(t.targetId) .. ',"flatten":true}')
  local page = setmetatable({browser = self, session = a.sessionId, target = t.targetId, errors = {},
    requests = {}, loaded = false}, Page)
  for _, domain in ipairs({"Runtime", "Log", "Network", "Page"}) do self:send(domain .. ".enable", nil, page.session) end
  self:send("Emulation.setDeviceMetricsOverride", string.format(
    '{"width":%d,"height":%d,"deviceScaleFactor":1,"mobile":false}', width or 1100, height or 900), page.session)
  self:dispatch(page)
  self:send("Page.navigate", '{"url":' .. json.quote(url) .. '}', page.session)
  while not page.loaded do
    self:dispatch(page)
    if not page.loaded then
      local m = self:recv()
      if m.sessionId == page.session then page:event(m) else self.queue[#self.queue + 1] = m end
    end
  end
  return page
end

function Page:event(m)
  local p = m.params
  if m.method == "Page.loadEventFired" then self.loaded = true
  elseif m.method == "Runtime.exceptionThrown" then
    local d = p.exceptionDetails
    self.errors[#self.errors + 1] = "exception: " .. tostring(d.exception and d.exception.description or d.text)
  elseif m.method == "Runtime.consoleAPICalled" and (p.type == "error" or p.type == "assert") then
    local parts = {}
    for i, arg in ipairs(p.args) do parts[i] = tostring(arg.value or arg.description) end
    self.errors[#self.errors + 1] = "console." .. p.type .. ": " .. table.concat(parts, " ")
  elseif m.method == "Log.entryAdded" and p.entry.level == "error" then
    self.errors[#self.errors + 1] = "log: " .. tostring(p.entry.text) .. " " .. tostring(p.entry.url)
  elseif m.method == "Network.requestWillBeSent" then
    self.requests[#self.requests + 1] = p.request.url
  end
end

--- Evaluates a JavaScript expression in the page; returns its value (JSON-like values).
function Page:eval(expr)
  local r = self.browser:send("Runtime.evaluate", '{"expression":' .. json.quote(expr)
    .. ',"returnByValue":true,"awaitPromise":true}', self.session)
  self.browser:dispatch(self)
  if r.exceptionDetails then
    error("chromium: " .. tostring(r.exceptionDetails.exception and r.exceptionDetails.exception.description
      or r.exceptionDetails.text), 2)
  end
  return r.result.value
end

--- Clicks the mouse at (x, y) in the page's viewport: a press and a release, as a user does.
function Page:click(x, y)
  for _, kind in ipairs({"mousePressed", "mouseReleased"}) do
    self.browser:send("Input.dispatchMouseEvent", string.format(
      '{"type":"%s","x":%.1f,"y":%.1f,"button":"left","clickCount":1}', kind, x, y), self.session)
  end
  self.browser:dispatch(self)
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function unbase64(s)
  local val = {}
  for i = 1, 64 do val[B64:byte(i)] = i - 1 end
  s = s:gsub("[^%w+/]", "")
  local out = {}
  for i = 1, #s, 4 do
    local a, b, c, d = s:byte(i, i + 3)
    local n = (val[a] << 18) | (val[b] << 12) | ((c and val[c] or 0) << 6) | (d and val[d] or 0)
    local bytes = string.char((n >> 16) & 255, (n >> 8) & 255, n & 255)
    out[#out + 1] = bytes:sub(1, c and (d and 3 or 2) or 1)
  end
  return table.concat(out)
end

--- Saves a PNG of the whole page (beyond the viewport) to path; returns its size in bytes.
function Page:screenshot(path)
  local m = self.browser:send("Page.getLayoutMetrics", nil, self.session)
  local size = m.cssContentSize or m.contentSize
  local r = self.browser:send("Page.captureScreenshot", string.format('{"format":"png","captureBeyondViewport":true,'
    .. '"clip":{"x":0,"y":0,"width":%d,"height":%d,"scale":1}}', math.ceil(size.width), math.ceil(size.height)),
    self.session)
  local png = unbase64(r.data)
  local f = assert(io.open(path, "wb"))
  f:write(png)
  f:close()
  return #png
end

function Page:close()
  self.browser:send("Target.closeTarget", '{"targetId":' .. json.quote(self.target) .. '}')
end

--- Closes the browser (it exits; the pipes close).
function Browser:close()
  pcall(self.send, self, "Browser.close")
  self.w:close()
  self.r:close()
end

return M
