--- crater.progress: a progress bar for loops.
-- On a terminal (stderr) it redraws one line at most ten times a second:
--     train  42%|########          | 197/469 [00:03<00:04, 61.2 it/s, loss=0.412]
-- Otherwise (a log file, a pipe) it writes a plain line at each 10% and at least every
-- 30 seconds, so logs stay short.  Under mpirun (crater.distributed initialized) only
-- rank 0 draws, unless {all_ranks = true}: then every rank does, its label prefixed with
-- "[rank r]".
local core = require "crater.core"
local internal = core.internal

-- This process's rank when crater.distributed is loaded and initialized, else nil.
local function mpi_rank()
  local d = package.loaded["crater.distributed"]
  if d and d.is_initialized() and d.world_size() > 1 then return d.rank() end
end

local Progress = {}
Progress.__index = Progress
Progress.__name = "Progress"

local function fmt_time(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return string.format("%02d:%02d", s // 60, s % 60)
end

--- Wraps a loop in a progress bar.  n may be a count (yields 1..n), a list (yields index,
-- value), a DataLoader (yields its batches), or an iterator function (give {total=} to get
-- a percentage).  The result is called by the generic for.
-- @tparam[opt=""] string desc a label printed before the bar
-- @tparam[opt=nil] number total the number of steps, when n does not tell
-- @tparam[opt=nil] file file where to write (default io.stderr)
-- @tparam[opt=false] boolean all_ranks under mpirun, draw on every rank (default: rank 0 only)
-- @usage local bar = crater.progress(loader, {desc = "epoch 1"})
-- for xb, yb in bar do ...; bar:set_postfix({loss = l}) end
function Progress.new(n, o)
  if o ~= nil and type(o) ~= "table" then error("progress: options must be a table, got " .. type(o), 2) end
  o = o or {}
  local self = setmetatable({ desc = o.desc or "", total = o.total, k = 0, postfix = "",
                              file = o.file or io.stderr, start = core.clock(),
                              last_draw = -1, last_line = -1, last_decile = -1 }, Progress)
  self.tty = o.file == nil and internal.isatty(2)
  local rank = mpi_rank()
  if rank and o.all_ranks then self.desc = string.format("[rank %d] %s", rank, self.desc)
  elseif rank and rank ~= 0 then self.silent = true end
  if math.type(n) == "integer" then
    self.total = self.total or n
    local i = 0
    self.next = function() i = i + 1; if i <= n then return i end end
  elseif type(n) == "function" then
    self.next = n
  elseif type(n) == "table" and type(n.iter) == "function" then
    self.total = self.total or #n
    self.next = n:iter()
  elseif type(n) == "table" then
    self.total = self.total or #n
    local i = 0
    self.next = function() i = i + 1; if n[i] ~= nil then return i, n[i] end end
  else
    error("progress: expected a count, a list, a DataLoader or an iterator function, got " .. type(n), 2)
  end
  return self
end

function Progress:__call()
  local r = table.pack(self.next())
  if r[1] == nil then
    self:close()
    return nil
  end
  if self.started then self:update(1) else self.started = true; self:draw(false) end
  return table.unpack(r, 1, r.n)
end

--- Sets the text shown after the rate: a string, or a table such as {loss = 0.41}
-- (numbers printed with 4 significant digits, keys sorted).
function Progress:set_postfix(p)
  if type(p) == "table" then
    local keys, parts = {}, {}
    for k in pairs(p) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = p[k]
      parts[#parts + 1] = k .. "=" .. (type(v) == "number" and string.format("%.4g", v) or tostring(v))
    end
    self.postfix = table.concat(parts, ", ")
  else
    self.postfix = tostring(p or "")
  end
end

--- Advances the bar by k steps (default 1) and redraws it when due.
function Progress:update(k)
  self.k = self.k + (k or 1)
  self:draw(false)
end

--- The status line without the bar: "k/n [elapsed<eta, rate it/s, postfix]".
function Progress:status()
  local now = core.clock()
  local el = now - self.start
  local rate = el > 0 and self.k / el or 0
  local count = self.total and (self.k .. "/" .. self.total) or tostring(self.k)
  local eta = (self.total and rate > 0) and (self.total - self.k) / rate or math.huge
  local r = rate >= 1 and string.format("%.1f it/s", rate)
    or (rate > 0 and string.format("%.2f s/it", 1 / rate) or "? it/s")
  local post = self.postfix ~= "" and (", " .. self.postfix) or ""
  return string.format("%s [%s<%s, %s%s]", count, fmt_time(el), self.total and fmt_time(eta) or "?", r, post)
end

function Progress:draw(final)
  if self.silent then return end
  local now = core.clock()
  local frac = self.total and self.total > 0 and math.min(self.k / self.total, 1) or nil
  local label = self.desc ~= "" and (self.desc .. " ") or ""
  if self.tty then
    if not final and now - self.last_draw < 0.1 then return end
    self.last_draw = now
    local line
    if frac then
      local width = 20
      local fill = math.floor(frac * width)
      line = string.format("%s%3d%%|%s%s| %s", label, math.floor(frac * 100), string.rep("#", fill),
        string.rep(" ", width - fill), self:status())
    else
      line = label .. self:status()
    end
    self.file:write("\r", line, "\27[K", final and "\n" or "")
    self.file:flush()
  else
    local decile = frac and math.floor(frac * 10) or -1
    if (final and self.k ~= self.last_k) or decile > self.last_decile or now - self.last_line >= 30 then
      if not final and self.k == 0 then return end
      self.last_k = self.k
      self.last_decile, self.last_line = decile, now
      self.file:write(label, frac and string.format("%3d%% ", math.floor(frac * 100)) or "", self:status(), "\n")
      self.file:flush()
    end
  end
end

--- Finishes the bar (a final redraw and a newline); called by the loop when it ends.
function Progress:close()
  if self.closed then return end
  self.closed = true
  if self.started then self.k = self.k + 1 end
  self:draw(true)
end

return setmetatable(Progress, { __call = function(_, ...) return Progress.new(...) end })
