--- Adafactor: Adam's second moment in sublinear memory (Shazeer and Stern 2018), as
-- huggingface/transformers optimization.py's class Adafactor. At step t:
--   lr_t = max(eps[2], RMS(p)) (scale_parameter, else 1) *
--          (relative_step: min(1e-6 t (warmup_init) or 1e-2, 1/sqrt(t)); else lr)
--   b2t = 1 - t^decay_rate;  q = g^2 + eps[1]
--   a matrix (2 or more dims, the last two are rows x columns): the row and column means
--     of q, R = b2t R + (1 - b2t) mean_c(q), C = b2t C + (1 - b2t) mean_r(q), and
--     u = g / sqrt(R[r] / mean(R) * C[c]);  a vector: v = b2t v + (1 - b2t) q, u = g / sqrt(v)
--   u = lr_t * u / max(1, RMS(u) / clip_threshold)
--   m = beta1 m + (1 - beta1) u and u = m (when beta1 is given)
--   p = p - weight_decay * lr_t * p - u
-- A matrix keeps rows + columns numbers instead of rows x columns: the optimizer of T5.
-- lr = false (the reference's None) with relative_step; a manual lr needs relative_step =
-- false (and, for a plain schedule, scale_parameter = false). Every pass is a C kernel and
-- a step allocates nothing (the factored step's small vectors are kept per parameter).
-- State: `step`, `RMS`, `exp_avg_sq_row` and `exp_avg_sq_col` (matrices) or `exp_avg_sq`
-- (vectors), `exp_avg` (with beta1).
-- https://arxiv.org/abs/1804.04235
-- @tparam[opt=false] number lr external learning rate (false: relative step)
-- @tparam[opt={1e-30, 1e-3}] table eps added to g^2, and the floor of the parameter scale
-- @tparam[opt=1.0] number clip_threshold bound on the RMS of the update
-- @tparam[opt=-0.8] number decay_rate b2t = 1 - t^decay_rate
-- @tparam[opt=false] number beta1 first-moment decay (false: none)
-- @tparam[opt=0] number weight_decay decoupled weight decay (times lr_t)
-- @tparam[opt=true] boolean scale_parameter scale lr by the parameter's RMS
-- @tparam[opt=true] boolean relative_step the time-dependent step size
-- @tparam[opt=false] boolean warmup_init grow the relative step from 1e-6
-- @usage local opt = crater.optim.Adafactor(model:parameters())   -- T5's defaults
local Optimizer = require "crater.optim.optimizer"
local internal = require("crater.core").internal

local NUM = {"number"}
local Adafactor = Optimizer:extend("Adafactor", {lr = false, eps = {1e-30, 1e-3}, clip_threshold = 1.0,
  decay_rate = -0.8, beta1 = false, weight_decay = 0, scale_parameter = true, relative_step = true,
  warmup_init = false},
  {lr = {"number", 0, false_ok = true, what = "learning rate"}, eps = {"list", NUM, NUM},
   clip_threshold = {"number", 0, open = "lo"}, beta1 = {"number", 0, 1, open = "hi", false_ok = true},
   decay_rate = NUM})
Adafactor.state_rules = {step = "count", RMS = "number", exp_avg = "param", exp_avg_sq = "param",
  exp_avg_sq_row = "float_tensor", exp_avg_sq_col = "float_tensor"}
Adafactor.state_keys = {"step", "RMS"}

local crater = require "crater"

function Adafactor:validate(group)
  Optimizer.validate(self, group)
  if group.lr and group.relative_step then
    error("Adafactor: cannot combine a manual lr with relative_step = true (set relative_step = false)", 0)
  end
  if group.warmup_init and not group.relative_step then
    error("Adafactor: warmup_init = true requires relative_step = true", 0)
  end
  if not group.lr and not group.relative_step then
    error("Adafactor: relative_step = false needs an lr", 0)
  end
end

-- B matrices of R x C for a parameter of 2 or more dims
local function split(p)
  local nd = p:dim()
  local R, C = p:size(nd - 1), p:size(nd)
  return p:numel() // math.max(R * C, 1), R, C
end

function Adafactor:init_state(p, state, group)
  local C = crater
  if state.step == nil then
    state.step, state.RMS = 0, 0
    if p:dim() >= 2 then
      local shape = p:shape()
      local row = {table.unpack(shape, 1, #shape - 1)}
      local col = {table.unpack(shape, 1, #shape - 2)}
      col[#col + 1] = shape[#shape]
      state.exp_avg_sq_row = C.zeros(row, {dtype = p:dtype()})
      state.exp_avg_sq_col = C.zeros(col, {dtype = p:dtype()})
    else
      state.exp_avg_sq = C.zeros_like(p)
    end
  end
  if group.beta1 and state.exp_avg == nil then state.exp_avg = C.zeros_like(p) end
  -- before any update of the step: an allocation that fails here changes nothing
  if p:dim() >= 2 then self:_work(p, state.exp_avg_sq_row, state.exp_avg_sq_col) end
end

-- The factored step's scratch vectors (row and column means, the factors), made once per
-- parameter and kept outside its state: a step allocates nothing.
function Adafactor:_work(p, row, col)
  local work = self._scratch
  if work == nil then work = setmetatable({}, {__mode = "k"}); self._scratch = work end
  local w = work[p]
  if w == nil or w.rf:numel() ~= row:numel() or w.rf:dtype() ~= row:dtype() then
    local C = crater
    local B, R, Cs = split(p)
    -- the kernels' table besides the group and the state: these vectors, the B x R x C view,
    -- and the step's numbers (update writes them)
    w = {rowmean = C.empty_like(row), colmean = C.empty_like(col), rf = C.empty_like(row), cf = C.empty_like(col),
      B = B, R = R, C = Cs}
    work[p] = w
  end
  return w
end

-- a vector parameter's table for the kernel (its numbers only), refilled at every step
local vector_scalars = {}

function Adafactor:update(p, g, state, group)
  local t = state.step + 1
  state.step = t
  local n = p:numel()
  local rms = math.sqrt(internal.sum_squares(p)) / n ^ 0.5
  state.RMS = rms
  local step_size = group.lr or 0
  if group.relative_step then
    step_size = math.min(group.warmup_init and 1e-6 * t or 1e-2, 1.0 / math.sqrt(t))
  end
  local lr = (group.scale_parameter and math.max(group.eps[2], rms) or 1.0) * step_size
  local b2t = 1.0 - t ^ group.decay_rate
  local w = p:dim() >= 2 and self:_work(p, state.exp_avg_sq_row, state.exp_avg_sq_col) or vector_scalars
  w.eps1, w.beta2t, w.momentum = group.eps[1], b2t, group.beta1 and true or false
  -- the first pass sums u^2 and writes nothing (with den 1, lr 1); the second steps
  w.write, w.den, w.lr, w.beta1, w.wd_lr = false, 1, 1, 0, 0
  if p:dim() >= 2 then
    internal.adafactor_means(self, p, g, state, group, w)
    internal.adafactor_factors(self, p, g, state, group, w)
    local ss = internal.adafactor_factored(self, p, g, state, group, w)
    w.write, w.den = true, math.max(math.sqrt(ss) / n ^ 0.5 / group.clip_threshold, 1.0)
    w.lr, w.beta1, w.wd_lr = lr, group.beta1 or 0, group.weight_decay * lr
    internal.adafactor_factored(self, p, g, state, group, w)
  else
    local ss = internal.adafactor_vector(self, p, g, state, group, w)
    w.write, w.den = true, math.max(math.sqrt(ss) / n ^ 0.5 / group.clip_threshold, 1.0)
    w.lr, w.beta1, w.wd_lr = lr, group.beta1 or 0, group.weight_decay * lr
    internal.adafactor_vector(self, p, g, state, group, w)
  end
end
Optimizer.kernel_update(Adafactor.update)

return Adafactor
