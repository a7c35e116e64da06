--- crater.fuse: an elementwise function written in Lua, run in one pass over memory.
-- `crater.fuse(fn, {writes = {...}})` traces fn once per signature (the dtype, and which
-- arguments are numbers) with symbolic tensors and scalars, records the elementwise ops
-- it makes (`+ - * / ^`, unary minus, the elementwise methods and crater.X functions),
-- compiles them to a register program (the runs of ops that match a superinstruction of
-- fuse.h become one loop, and an output's last op writes straight into its argument), and
-- returns a function that runs the program over its tensor arguments block by block
-- (src/fuse/fuse.c), the blocks split across crater's threads.  Each op is evaluated in the order, dtype and formula of crater's own
-- kernel, without FMA, so the results are bitwise those of calling fn on real tensors.
-- Scalars (the numeric arguments and what fn computes from them) are computed in double
-- at every call, as Lua computes them: changing lr never retraces.
--
-- fn returns tensors, and `crater.fuse.sum(expr)` whole-tensor sums: the first returned
-- tensors are written in place into the arguments that `writes` names, in order; further
-- tensors are new; sums come back as numbers; everything in the order fn returns it.
-- @usage local adam = crater.fuse(function(p, g, m, v, lr, b1, b2, eps, bc1, bc2)
--   m = b1 * m + (1 - b1) * g
--   v = b2 * v + (1 - b2) * g * g
--   p = p - (lr / bc1) * m / ((v / bc2):sqrt() + eps)
--   return p, m, v
-- end, {writes = {"p", "m", "v"}})
-- crater.no_grad(adam, p, p.grad, m, v, 1e-3, 0.9, 0.999, 1e-8, bc1, bc2)

local core = require "crater.core"
local internal = core.internal   -- the VM's entry points, the tensor metatable

local OPS = internal.fuse_ops            -- the VM's op list: name -> {code, tensor operands, scalar operands}
local SUPER = internal.fuse_super        -- its superinstructions: the same, and the pattern
local MAXREG = internal.fuse_maxreg
local fuse = {}

-- ---------------------------------------------------------------- symbols

-- A symbol is a node of the traced DAG.  kind: "t" a tensor of the program's dtype, "m"
-- a comparison's 0/1 (int64 op by op), "s" a scalar (a double), "sum" a sum output.
-- Tensor nodes: op (a name in OPS) with operands a, b, c (tensor nodes) and s0, s1
-- (scalar nodes), or arg (a parameter index).  Scalar nodes: sop with a, b, or arg, or value.
local Sym = {}
local tracing   -- the trace in progress: {fn =, name =, params =, consts =}

local function is_sym(x) return getmetatable(x) == Sym end

local function where_in_fn()
  if not tracing then return "" end
  for level = 2, 200 do
    local info = debug.getinfo(level, "fSl")
    if info == nil then break end
    if info.func == tracing.fn then
      return string.format(" (line %d of the traced function, %s)", info.currentline, info.short_src)
    end
  end
  if tracing.line then   -- the traced function's frame is gone (a tail call): its last line
    return string.format(" (line %d of the traced function, %s)", tracing.line, tracing.src)
  end
  return ""
end

local function refuse(fmt, ...)
  local name = tracing and tracing.name or "fuse"
  error(name .. ": " .. string.format(fmt, ...) .. where_in_fn(), 0)
end

local function node(t) return setmetatable(t, Sym) end

local function describe(x)
  if is_sym(x) then
    if x.kind == "s" then return "a number" end
    if x.kind == "sum" then return "a fuse.sum" end
    return x.kind == "m" and "a comparison's result" or "a tensor"
  end
  if internal.Tensor_mt and getmetatable(x) == internal.Tensor_mt then return "a crater.Tensor" end
  return math.type(x) and "a number" or type(x)
end

-- A number becomes a constant scalar (one per value, -0.0 and NaN kept apart).
local function const(v)
  local key = string.pack("n", v)
  local c = tracing.consts[key]
  if not c then
    c = node {kind = "s", value = v + 0.0}
    tracing.consts[key] = c
  end
  return c
end

local function lift(x, what)
  if is_sym(x) then
    if x.kind == "sum" then refuse("a fuse.sum can only be returned, not used in %s", what) end
    return x
  end
  if math.type(x) then return const(x) end
  if getmetatable(x) == internal.Tensor_mt then
    refuse("%s: a tensor that is not an argument of the traced function (pass it as an argument)", what)
  end
  refuse("%s: expected a tensor or a number, got %s", what, describe(x))
end

local function tnode(op, a, b, c, s0, s1, kind)
  return node {kind = kind or "t", op = op, a = a, b = b, c = c, s0 = s0, s1 = s1}
end

local function snode(sop, a, b) return node {kind = "s", sop = sop, a = a, b = b} end

-- A number where a tensor operand is needed (minimum(x, 0), where(c, x, 0), x:gt(0)):
-- op by op it is a 0-d tensor of the dtype; here a FULL register.
local function full(s)
  local f = rawget(s, "full")
  if f == nil then
    f = tnode("full", nil, nil, nil, s)
    rawset(s, "full", f)
  end
  return f
end

local function float_operand(x, what)
  if x.kind == "m" then
    refuse("%s: a comparison's result (int64 0/1 op by op) can only be used with a float tensor or in where()", what)
  end
  return x
end

-- a op b, as crater's binding computes it: numbers on either side take the scalar
-- kernels (t - s is t + (-s), s - t is rsub), two tensors the binary kernel.
local SCALAR_RIGHT = {add = "add_scalar", mul = "mul_scalar", div = "div_scalar", pow = "pow_scalar"}
local SCALAR_LEFT = {add = "add_scalar", sub = "rsub_scalar", mul = "mul_scalar", div = "rdiv_scalar",
  pow = "rpow_scalar"}
local function arith(op, x, y)
  x, y = lift(x, op), lift(y, op)
  if x.kind == "s" and y.kind == "s" then return snode(op, x, y) end
  if y.kind == "s" then
    float_operand(x, op)
    if op == "sub" then return tnode("add_scalar", x, nil, nil, snode("neg", y)) end
    return tnode(SCALAR_RIGHT[op], x, nil, nil, y)
  end
  if x.kind == "s" then
    float_operand(y, op)
    return tnode(SCALAR_LEFT[op], y, nil, nil, x)
  end
  if x.kind == "m" and y.kind == "m" then float_operand(x, op) end
  return tnode(op, x, y)
end

-- the other binary ops (minimum, logaddexp, the comparisons): a number becomes a tensor operand
local function binary(op, x, y)
  x, y = lift(x, op), lift(y, op)
  if x.kind == "s" and y.kind == "s" then refuse("%s: give at least one tensor", op) end
  if x.kind == "s" then x = full(x) end
  if y.kind == "s" then y = full(y) end
  if x.kind == "m" and y.kind == "m" then float_operand(x, op) end
  local cmp = op == "eq" or op == "ne" or op == "lt" or op == "le" or op == "gt" or op == "ge"
  return tnode(op, x, y, nil, nil, nil, cmp and "m" or "t")
end

local function self_tensor(x, op)
  if not is_sym(x) or x.kind == "s" then
    refuse("%s: expected a tensor, got %s", op, describe(x))
  end
  if x.kind == "sum" then lift(x, op) end
  return float_operand(x, op)
end

local function scalar_arg(v, op, what, default)
  if v == nil then
    if default == nil then refuse("%s: %s is required", op, what) end
    return const(default)
  end
  if is_sym(v) and v.kind ~= "s" then refuse("%s: %s must be a number, got %s", op, what, describe(v)) end
  return lift(v, op)
end

-- The methods of a symbolic tensor, the same names as crater.Tensor's.
local methods = {}
for name, info in pairs(OPS) do
  if info[2] == 1 and info[3] == 0 and name ~= "copy" then
    methods[name] = function(x) return tnode(name, self_tensor(x, name)) end
  end
end
function methods.leaky_relu(x, a)
  return tnode("leaky_relu", self_tensor(x, "leaky_relu"), nil, nil, scalar_arg(a, "leaky_relu", "negative_slope", 0.01))
end
function methods.softplus(x, beta, threshold)
  return tnode("softplus", self_tensor(x, "softplus"), nil, nil, scalar_arg(beta, "softplus", "beta", 1),
    scalar_arg(threshold, "softplus", "threshold", 20))
end
function methods.clamp(x, lo, hi)
  if lo == nil and hi == nil then refuse("clamp: at least one of min and max must be given") end
  return tnode("clamp", self_tensor(x, "clamp"), nil, nil, scalar_arg(lo, "clamp", "min", -math.huge),
    scalar_arg(hi, "clamp", "max", math.huge))
end
for _, op in ipairs {"add", "sub"} do
  methods[op] = function(x, y, alpha)
    if alpha ~= nil then   -- x + alpha * y: the binding scales y first, as a tensor
      local yy = lift(y, op)
      if yy.kind == "s" then yy = full(yy) end
      y = tnode("mul_scalar", float_operand(yy, op), nil, nil, scalar_arg(alpha, op, "alpha"))
    end
    return arith(op, x, y)
  end
end
for _, op in ipairs {"mul", "div", "pow"} do methods[op] = function(x, y) return arith(op, x, y) end end
for name, info in pairs(OPS) do   -- minimum, maximum, logaddexp, the comparisons
  if info[2] == 2 and info[3] == 0 and not methods[name] then
    methods[name] = function(x, y) return binary(name, x, y) end
  end
end
function methods.lerp(x, e, w)   -- x:lerp(e, w) is x + (e - x) * w, three ops
  self_tensor(x, "lerp")
  return arith("add", x, arith("mul", arith("sub", e, x), scalar_arg(w, "lerp", "weight")))
end

local function where(c, x, y)
  c = lift(c, "where")
  if c.kind == "s" then refuse("where: the condition must be a tensor, got a number") end
  x, y = lift(x, "where"), lift(y, "where")
  if x.kind == "s" and y.kind == "s" then refuse("where: give at least one tensor value") end
  if x.kind == "s" then x = full(x) end
  if y.kind == "s" then y = full(y) end
  if x.kind == "m" and y.kind == "m" then float_operand(x, "where") end
  return tnode("where", c, x, y)
end
methods.where = function(x, c, y) return where(c, x, y) end   -- x:where(cond, y), PyTorch's method

local tensor_methods = core.Tensor or {}

local function unsupported(k)
  if type(k) ~= "string" then refuse("indexing (x[%s]) is not an elementwise op", tostring(k)) end
  if k:sub(-1) == "_" and k ~= "_" then
    refuse("%s: in-place methods cannot be traced; write x = x:%s(...) and list x in writes", k, k:sub(1, -2))
  end
  if k == "sum" then refuse("sum is a reduction: use crater.fuse.sum(x) for a whole-tensor sum") end
  if tensor_methods[k] ~= nil then refuse("%s is not an elementwise op", k) end
  refuse("'%s' is not an elementwise tensor method", k)
end

-- the fields of a node, which read as nil when absent
local FIELDS = {kind = true, op = true, a = true, b = true, c = true, s0 = true, s1 = true, s2 = true,
  s3 = true, arg = true, sop = true, value = true, full = true}

Sym.__index = function(x, k)
  if FIELDS[k] then return nil end
  local m = methods[k]
  if m then
    if x.kind == "s" then
      local label = x.arg and ("'" .. tracing.params[x.arg] .. "'") or "this value"
      return function() refuse("%s: %s is a number here, and %s works on tensors", k, label, k) end
    end
    return m
  end
  unsupported(k)
end
Sym.__newindex = function() refuse("indexed assignment is not an elementwise op") end
Sym.__add = function(x, y) return arith("add", x, y) end
Sym.__sub = function(x, y) return arith("sub", x, y) end
Sym.__mul = function(x, y) return arith("mul", x, y) end
Sym.__div = function(x, y) return arith("div", x, y) end
Sym.__pow = function(x, y) return arith("pow", x, y) end
Sym.__unm = function(x)
  x = lift(x, "neg")
  if x.kind == "s" then return snode("neg", x) end
  return tnode("neg", float_operand(x, "neg"))
end
for _, mm in ipairs {"__idiv", "__mod", "__band", "__bor", "__bxor", "__shl", "__shr", "__bnot", "__concat",
    "__len", "__call"} do
  Sym[mm] = function() refuse("'%s' is not an elementwise op", mm:sub(3)) end
end
Sym.__lt = function() refuse("'<' gives a Lua boolean, which a fused program cannot branch on; use x:lt(y)") end
Sym.__le = function() refuse("'<=' gives a Lua boolean, which a fused program cannot branch on; use x:le(y)") end
Sym.__eq = function() refuse("'==' gives a Lua boolean, which a fused program cannot branch on; use x:eq(y)") end
Sym.__tostring = function(x)
  if x.arg then return string.format("<fuse %s '%s'>", x.kind == "s" and "number" or "tensor", tracing and
    tracing.params[x.arg] or x.arg) end
  return "<fuse " .. describe(x) .. ">"
end
Sym.__name = "crater.fuse symbol"

--- The whole-tensor sum of an elementwise expression, as an extra output of a fused
-- function (returned as a number), for norms and trust ratios.  On a real tensor it is
-- the same sum (double lanes over fixed chunks, whatever the thread count), so a traced
-- function run op by op gives the same bits; it may differ from x:sum() in the last bits.
-- @param x a tensor (while tracing, a tensor expression)
function fuse.sum(x)
  if is_sym(x) then return node {kind = "sum", a = self_tensor(x, "fuse.sum")} end
  if getmetatable(x) ~= internal.Tensor_mt then error("fuse.sum: expected a tensor, got " .. describe(x), 2) end
  return internal.fuse_sum(x:is_contiguous() and x or x:contiguous())
end

-- crater.X functions while tracing: the elementwise ones record, the others refuse; on
-- real tensors they run as always.
local FUNCTION_NAMES = {}
for name in pairs(methods) do FUNCTION_NAMES[#FUNCTION_NAMES + 1] = name end
local REFUSED_FUNCTIONS = {"matmul", "mm", "bmm", "sum", "mean", "prod", "max", "min", "var", "std", "norm",
  "argmax", "argmin", "softmax", "log_softmax", "logsumexp", "cat", "stack", "gather", "index_select",
  "masked_fill", "allclose", "reshape", "view", "transpose", "narrow", "select", "squeeze", "unsqueeze",
  "expand", "flatten", "t", "permute", "clone", "contiguous", "detach"}

local function any_sym(...)
  for i = 1, select("#", ...) do
    if is_sym((select(i, ...))) then return true end
  end
  return false
end

local function patch_functions(crater)
  local saved = {}
  local function patch(name, fn)
    saved[name] = rawget(crater, name)
    local orig = saved[name]
    rawset(crater, name, function(...)
      if any_sym(...) then return fn(...) end
      return orig(...)
    end)
  end
  for _, name in ipairs(FUNCTION_NAMES) do
    if rawget(crater, name) ~= nil then patch(name, methods[name]) end
  end
  patch("where", where)
  for _, name in ipairs(REFUSED_FUNCTIONS) do
    if rawget(crater, name) ~= nil then
      patch(name, function() refuse(name == "sum" and "sum is a reduction: use crater.fuse.sum(x)"
        or "%s is not an elementwise op", name) end)
    end
  end
  return function()
    for name, v in pairs(saved) do rawset(crater, name, v) end
  end
end

-- ---------------------------------------------------------------- compiling

local SOPS = {add = 0, sub = 1, mul = 2, div = 3, pow = 4, neg = 5}
local OUT_WRITE, OUT_NEW, OUT_SUM = 0, 1, 2

-- A superinstruction's pattern, "add(x,mul_scalar(y,a))", as a tree: {op =, [1] =, ...}
-- with the letters as leaves (x y z tensors, a b c d scalars).
local function parse_pattern(s)
  local pos = 1
  local function expr()
    local name = s:match("^[%a_]+", pos)
    pos = pos + #name
    if s:sub(pos, pos) ~= "(" then return name end
    local t = {op = name}
    repeat
      pos = pos + 1
      t[#t + 1] = expr()
    until s:sub(pos, pos) ~= ","
    pos = pos + 1   -- ")"
    return t
  end
  return expr()
end

local TLEAF, SLEAF = {x = 1, y = 2, z = 3}, {a = 1, b = 2, c = 3, d = 4}
local function size(tree)
  if type(tree) == "string" then return 0 end
  local n = 1
  for _, sub in ipairs(tree) do n = n + size(sub) end
  return n
end
local PATTERNS = {}   -- the larger first (a pattern's leaf may be what a larger one absorbs)
for name, info in pairs(SUPER) do
  local tree = parse_pattern(info[4])
  PATTERNS[#PATTERNS + 1] = {name = name, code = info[1], tree = tree, size = size(tree)}
end
table.sort(PATTERNS, function(p, q) return p.size > q.size or p.size == q.size and p.code < q.code end)

-- Binds the pattern's leaves to t's operands; an inner node is absorbed only when the
-- pattern's root is its one user and it is not an output.
local function match(pat, t, bind, uses, root)
  if type(pat) == "string" then
    local key = TLEAF[pat] and "t" .. TLEAF[pat] or "s" .. SLEAF[pat]
    if (SLEAF[pat] ~= nil) ~= (t.kind == "s") then return false end
    if bind[key] == nil then bind[key] = t end
    return bind[key] == t
  end
  if t.kind == "s" or t.arg or t.op ~= pat.op or (not root and uses[t] ~= 1) then return false end
  local nt = OPS[t.op][2]
  local opnds = {t.a, t.b, t.c, t.s0, t.s1}
  for i, sub in ipairs(pat) do
    local x = opnds[i <= nt and i or i - nt + 3]
    if x == nil or not match(sub, x, bind, uses, false) then return false end
  end
  if not root then bind[#bind + 1] = t end
  return true
end

-- Rewrites the instructions in order (post-order) into superinstructions where a pattern
-- matches, the users before their operands, so that the largest patterns win.
local function fuse_super(order, outs)
  local uses = {}
  local function use(x) if x then uses[x] = (uses[x] or 0) + 1 end end
  for _, t in ipairs(order) do use(t.a); use(t.b); use(t.c) end
  for _, o in ipairs(outs) do uses[o.node] = math.huge end
  local absorbed = {}
  for i = #order, 1, -1 do
    local t = order[i]
    if not absorbed[t] then
      for _, p in ipairs(PATTERNS) do
        local bind = {}
        if match(p.tree, t, bind, uses, true) then
          for _, x in ipairs(bind) do absorbed[x] = true end
          for _, k in ipairs {"b", "c", "s1", "s2", "s3"} do rawset(t, k, nil) end
          for k, v in pairs {op = p.name, a = bind.t1, b = bind.t2, c = bind.t3, s0 = bind.s1, s1 = bind.s2,
              s2 = bind.s3, s3 = bind.s4} do
            rawset(t, k, v)
          end
          break
        end
      end
    end
  end
  local kept = {}
  for _, t in ipairs(order) do
    if not absorbed[t] then kept[#kept + 1] = t end
  end
  return kept
end

-- The outputs written straight into their argument's memory by the instruction that
-- computes them: when nothing after that instruction reads the argument's old elements.
local function direct_writes(order, outs)
  local pos, last_read = {}, {}
  for i, t in ipairs(order) do
    pos[t] = i
    for _, k in ipairs {"a", "b", "c"} do
      if t[k] and t[k].arg then last_read[t[k].arg] = i end
    end
  end
  for _, o in ipairs(outs) do
    if o.kind ~= OUT_WRITE and o.node.arg then last_read[o.node.arg] = math.huge end
  end
  local direct = {}   -- node -> the argument (1-based) it is written into
  for _, o in ipairs(outs) do
    local t, arg = o.node, o.target + 1
    if o.kind == OUT_WRITE and not direct[t] and (last_read[arg] or 0) <= pos[t] then direct[t] = arg end
  end
  return direct
end

-- The DAG reachable from the outputs, as a register program for crater.internal.fuse_compile.
local function compile(nargs, outs)
  -- scalars: arguments first, then constants, then computed ones in dependency order
  local sidx, consts, sins, scomp = {}, {}, {}, {}
  local function visit_s(s)
    if sidx[s] or s.arg then return end
    if s.value ~= nil then
      if not sidx[s] then consts[#consts + 1] = s; sidx[s] = true end
      return
    end
    visit_s(s.a)
    if s.b then visit_s(s.b) end
    scomp[#scomp + 1] = s
    sidx[s] = true
  end
  -- tensors: post-order over the DAG
  local order, seen = {}, {}
  local function visit_t(t)
    if seen[t] or t.arg then return end
    seen[t] = true
    for _, k in ipairs {"a", "b", "c"} do
      if t[k] then visit_t(t[k]) end
    end
    for _, k in ipairs {"s0", "s1"} do
      if t[k] then visit_s(t[k]) end
    end
    order[#order + 1] = t
  end
  -- an argument written from another argument (return g for p) goes through a register
  for i, o in ipairs(outs) do
    if o.kind == OUT_WRITE and o.node.arg then o.node = tnode("copy", o.node); outs[i] = o end
  end
  for _, o in ipairs(outs) do visit_t(o.node) end
  order = fuse_super(order, outs)
  local direct = direct_writes(order, outs)
  local sreg = {}
  for i, s in ipairs(consts) do sreg[s] = nargs + i - 1 end
  for i, s in ipairs(scomp) do
    sreg[s] = nargs + #consts + i - 1
    sins[#sins + 1] = {SOPS[s.sop], sreg[s]}
  end
  local function sr(s)
    if s == nil then return 0 end
    if s.arg then return s.arg - 1 end
    return sreg[s]
  end
  local sflat = {}
  for i, s in ipairs(scomp) do
    local t = sins[i]
    sflat[#sflat + 1], sflat[#sflat + 2], sflat[#sflat + 3], sflat[#sflat + 4] = t[1], t[2], sr(s.a), sr(s.b)
  end
  -- last use of each tensor node (outputs live to the end)
  local last = {}
  for i, t in ipairs(order) do
    for _, k in ipairs {"a", "b", "c"} do
      if t[k] and not t[k].arg then last[t[k]] = i end
    end
  end
  for _, o in ipairs(outs) do
    if not o.node.arg then last[o.node] = math.huge end
  end
  local reg, free, nregs = {}, {}, 0
  local function opnd(x)
    if x == nil then return 0 end
    if x.arg then return -x.arg end
    if direct[x] then return -direct[x] end
    return reg[x]
  end
  local ins = {}
  for i, t in ipairs(order) do
    if not direct[t] then
      local r = table.remove(free)
      if r == nil then r = nregs; nregs = nregs + 1 end
      reg[t] = r
    end
    local n = #ins
    ins[n + 1], ins[n + 2], ins[n + 3], ins[n + 4], ins[n + 5] = (OPS[t.op] or SUPER[t.op])[1], opnd(t),
      opnd(t.a), opnd(t.b), opnd(t.c)
    ins[n + 6], ins[n + 7], ins[n + 8], ins[n + 9] = sr(t.s0), sr(t.s1), sr(t.s2), sr(t.s3)
    local dead = {}
    for _, k in ipairs {"a", "b", "c"} do
      local x = t[k]
      if x and reg[x] and last[x] == i and not dead[x] then dead[x] = true; free[#free + 1] = reg[x] end
    end
    if last[t] == nil and reg[t] then free[#free + 1] = reg[t] end   -- computed but never used
  end
  local ndirect = 0
  for _ in pairs(direct) do ndirect = ndirect + 1 end
  if nregs + ndirect > MAXREG then
    refuse("the program needs %d live tensor values at once, more than %d", nregs + ndirect, MAXREG)
  end
  local oflat = {}
  for _, o in ipairs(outs) do
    oflat[#oflat + 1], oflat[#oflat + 2], oflat[#oflat + 3] = o.kind, opnd(o.node), o.target
  end
  local cvals = {}
  for i, s in ipairs(consts) do cvals[i] = s.value end
  return internal.fuse_compile {nargs = nargs, nregs = math.max(nregs, 1), consts = cvals, sins = sflat,
    ins = ins, outs = oflat}
end

-- ---------------------------------------------------------------- tracing

local function trace(fn, sig, params, writes, name)
  local n = #sig
  local args = {}
  for i = 1, n do
    args[i] = node {kind = sig:sub(i, i) == "s" and "s" or "t", arg = i}
  end
  for k, w in ipairs(writes) do
    if sig:sub(w, w) == "s" then
      error(string.format("%s: writes entry %d '%s' is a number in this call, not a tensor", name, k, params[w]), 0)
    end
  end
  local crater = package.loaded.crater or require "crater"
  local outer = tracing
  tracing = {fn = fn, name = name, params = params, consts = {}}
  local restore = patch_functions(crater)
  -- a line hook remembers where the traced function is, for refusals raised after a tail
  -- call left its frame (return crater.matmul(x, y)); not when another hook is set
  local hooked = debug.gethook() == nil
  if hooked then
    tracing.src = debug.getinfo(fn, "S").short_src
    debug.sethook(function(_, line)
      if debug.getinfo(2, "f").func == fn then tracing.line = line end
    end, "l")
  end
  local ok, res = pcall(function() return table.pack(fn(table.unpack(args, 1, n))) end)
  if hooked then debug.sethook() end
  local ok2, prog
  if ok then
    ok2, prog = pcall(function()
      local outs, ntensor = {}, 0
      for i = 1, res.n do
        local r = res[i]
        if not is_sym(r) or r.kind == "s" then
          refuse("the traced function returns %s as result #%d; it must return tensors (and fuse.sum values)",
            describe(r), i)
        end
        if r.kind == "m" then
          refuse("result #%d is a comparison's 0/1 (int64 op by op); return where(c, 1, 0) or c * x instead", i)
        end
        if r.kind == "sum" then
          outs[#outs + 1] = {kind = OUT_SUM, node = r.a}
        else
          ntensor = ntensor + 1
          if ntensor <= #writes then
            outs[#outs + 1] = {kind = OUT_WRITE, node = r, target = writes[ntensor] - 1}
          else
            outs[#outs + 1] = {kind = OUT_NEW, node = r}
          end
        end
      end
      if ntensor < #writes then
        refuse("the traced function returns %d tensor%s for %d writes entries", ntensor,
          ntensor == 1 and "" or "s", #writes)
      end
      if #outs == 0 then refuse("the traced function returns nothing") end
      local nnew, nsum = 0, 0
      for _, o in ipairs(outs) do
        if o.kind == OUT_NEW then o.target = nnew; nnew = nnew + 1 end
        if o.kind == OUT_SUM then o.target = nsum; nsum = nsum + 1 end
      end
      return compile(n, outs)
    end)
  end
  restore()
  tracing = outer
  if not ok then error(res, 0) end
  if not ok2 then error(prog, 0) end
  return prog
end

--- Fuses fn: see the module's description.
-- @param fn a Lua function of tensors and numbers (fixed parameters, no varargs)
-- @param[opt] opts `{writes = {names or indices of parameters}, name = "adam"}`: the
-- first returned tensors are written into these arguments, in place; `name` prefixes errors
-- @return the fused function, called with fn's arguments
function fuse.new(fn, opts)
  if type(fn) ~= "function" then error("fuse: expected a function, got " .. type(fn), 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("fuse: options must be a table, got " .. type(opts), 2) end
  for k in pairs(opts) do
    if k ~= "writes" and k ~= "name" then error("fuse: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local info = debug.getinfo(fn, "u")
  if info.isvararg then error("fuse: the traced function must have fixed parameters, not '...'", 2) end
  if info.nparams == 0 then error("fuse: the traced function has no parameters", 2) end
  local params, index = {}, {}
  for i = 1, info.nparams do
    params[i] = debug.getlocal(fn, i) or ("#" .. i)
    index[params[i]] = i
  end
  local name = opts.name or "fused"
  if type(name) ~= "string" then error("fuse: name must be a string", 2) end
  local writes, seen = {}, {}
  if opts.writes ~= nil and type(opts.writes) ~= "table" then error("fuse: writes must be a list", 2) end
  for k, w in ipairs(opts.writes or {}) do
    local i = math.type(w) == "integer" and w or index[w]
    if i == nil or i < 1 or i > info.nparams then
      error(string.format("fuse: writes entry %d (%s) is not a parameter of the function (%s)", k, tostring(w),
        table.concat(params, ", ")), 2)
    end
    if seen[i] then error(string.format("fuse: writes entry '%s' appears twice", params[i]), 2) end
    seen[i] = true
    writes[k] = i
  end
  return internal.fuse_new(function(sig) return trace(fn, sig, params, writes, name) end, params, name)
end

return setmetatable(fuse, {__call = function(_, fn, opts) return fuse.new(fn, opts) end})
