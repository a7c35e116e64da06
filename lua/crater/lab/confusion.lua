--- crater.lab.ConfusionMatrix: counts of (target, prediction) pairs, after Torch7
-- optim.ConfusionMatrix, printed as Torch7 prints it.
-- `ConfusionMatrix(classes)` takes a list of class names (or a number of classes);
-- `cm:add(prediction, target)` counts one pair: prediction a class index or a 1-D tensor of
-- scores (its argmax), target an index or a one-hot 1-D tensor; a target <= 0 is missing
-- and ignored. `cm:batch_add(predictions, targets)` does a batch: predictions (N) indices
-- or (N, C) scores, targets (N) indices or (N, C) one-hot rows. `cm:update()` computes
-- `valids[c]` (the share of class c's targets predicted c), `unionvalids[c]` (its
-- intersection over union), `total_valid` (overall accuracy), `average_valid` and
-- `average_union_valid` (their means over classes that occur); tostring(cm) calls it.
-- `cm.mat[t][p]` holds the counts (target rows, prediction columns); `cm:zero()` resets.
-- @usage local cm = crater.lab.ConfusionMatrix({"cat", "dog"})
-- cm:batch_add(model(x), y); print(cm)
local CM = {__name = "ConfusionMatrix"}
CM.__index = CM

local crater = require "crater"

local function new(_, classes)
  local n, names
  if type(classes) == "number" then n, names = classes, {}
  elseif type(classes) == "table" then n, names = #classes, {table.unpack(classes)}
  else error("ConfusionMatrix: classes must be a list of names or a number of classes, got " .. type(classes), 2) end
  if math.type(n) ~= "integer" or n < 1 then
    error("ConfusionMatrix: the number of classes must be a positive integer, got " .. tostring(n), 2)
  end
  local self = setmetatable({nclasses = n, classes = names, mat = {}, valids = {}, unionvalids = {}}, CM)
  self:zero()
  return self
end
setmetatable(CM, {__call = new})

function CM:zero()
  for t = 1, self.nclasses do
    self.mat[t] = {}
    for p = 1, self.nclasses do self.mat[t][p] = 0 end
    self.valids[t], self.unionvalids[t] = 0, 0
  end
  self.total_valid, self.average_valid, self.average_union_valid = 0, 0, 0
end

-- a class index from a number or the argmax of a 1-D tensor
local function index_of(self, v, what)
  if crater.is_tensor(v) then
    if v:dim() ~= 1 or v:numel() ~= self.nclasses then
      error(string.format("ConfusionMatrix: add: %s must be a 1-D tensor of %d scores", what, self.nclasses), 3)
    end
    return v:argmax():item()   -- 1-based
  end
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
    error(string.format("ConfusionMatrix: add: %s must be a class index or a tensor, got %s", what, tostring(v)), 3)
  end
  return math.tointeger(v)
end

local function count(self, p, t)
  if t <= 0 then return end   -- missing target, as Torch7
  if t > self.nclasses or p < 1 or p > self.nclasses then
    error(string.format("ConfusionMatrix: class index out of range 1..%d (target %d, prediction %d)",
      self.nclasses, t, p), 3)
  end
  self.mat[t][p] = self.mat[t][p] + 1
end

function CM:add(prediction, target)
  local p, t = index_of(self, prediction, "prediction"), index_of(self, target, "target")
  count(self, p, t)
end

-- a batch as a list of class indices: (N) indices or (N, C) scores / one-hot rows
local function indices(self, x, what)
  if not crater.is_tensor(x) then error("ConfusionMatrix: batch_add: " .. what .. " must be a tensor", 3) end
  if x:dim() == 2 and x:size(2) ~= 1 then
    if x:size(2) ~= self.nclasses then
      error(string.format("ConfusionMatrix: batch_add: %s has %d columns for %d classes", what, x:size(2), self.nclasses), 3)
    end
    return x:argmax(2):reshape(-1):totable()
  end
  if x:dim() == 2 or x:dim() == 1 then return x:reshape(-1):totable() end
  error("ConfusionMatrix: batch_add: " .. what .. " must be 1-D or 2-D", 3)
end

function CM:batch_add(predictions, targets)
  local ps, ts = indices(self, predictions, "predictions"), indices(self, targets, "targets")
  if #ps ~= #ts then
    error(string.format("ConfusionMatrix: batch_add: %d predictions for %d targets", #ps, #ts), 2)
  end
  for i = 1, #ps do   -- checked whole first: a refused batch counts nothing
    local p, t = math.tointeger(ps[i]), math.tointeger(ts[i])
    if p == nil or t == nil or (t > 0 and (t > self.nclasses or p < 1 or p > self.nclasses)) then
      error(string.format("ConfusionMatrix: batch_add: row %d: class index out of range 1..%d", i, self.nclasses), 2)
    end
  end
  for i = 1, #ps do count(self, math.tointeger(ps[i]), math.tointeger(ts[i])) end
end

function CM:update()
  local n, total, all = self.nclasses, 0, 0
  for t = 1, n do
    local row, col = 0, 0
    for p = 1, n do row = row + self.mat[t][p]; col = col + self.mat[p][t] end
    local d = self.mat[t][t]
    self.valids[t] = d / row                       -- NaN for a class that never occurs
    self.unionvalids[t] = d / (row + col - d)
    total, all = total + d, all + row
  end
  self.total_valid = total / all
  local sv, nv, su, nu = 0, 0, 0, 0
  for t = 1, n do
    local v, u = self.valids[t], self.unionvalids[t]
    if v == v then sv, nv = sv + v, nv + 1 end
    if v == v and u == u then su, nu = su + u, nu + 1 end
  end
  self.average_valid, self.average_union_valid = sv / nv, su / nu
  return self
end

function CM:__tostring()
  self:update()
  local n, max = self.nclasses, 0
  for t = 1, n do for p = 1, n do max = math.max(max, self.mat[t][p]) end end
  local digits = math.max(8, 1 + math.ceil(math.log(math.max(max, 1), 10)))
  local out = {"ConfusionMatrix:\n["}
  for t = 1, n do
    out[#out + 1] = t == 1 and "[" or " ["
    for p = 1, n do out[#out + 1] = string.format("%" .. digits .. "d", self.mat[t][p]) end
    local pct = string.format("%2.3f", self.valids[t] * 100)
    local close = t == n and "]]  " or "]   "
    out[#out + 1] = close .. pct .. "% " .. (self.classes[1] and ("\t[class: " .. (self.classes[t] or "") .. "]") or "") .. "\n"
  end
  out[#out + 1] = " + average row correct: " .. (self.average_valid * 100) .. "% \n"
  out[#out + 1] = " + average rowUcol correct (VOC measure): " .. (self.average_union_valid * 100) .. "% \n"
  out[#out + 1] = " + global correct: " .. (self.total_valid * 100) .. "%"
  return table.concat(out)
end

return CM
