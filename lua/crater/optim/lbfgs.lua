--- L-BFGS (PyTorch's torch.optim.LBFGS), with an optional strong Wolfe line search.
-- Works on all parameters flattened into one vector x, with flat gradient g:
--   d = -H g, H the two-loop L-BFGS inverse-Hessian estimate from the last
--   history_size pairs (s = t d, y = g_new - g_old; a pair is kept when y.s > 1e-10),
--   scaled by H_diag = y.s / y.y;  the first direction is -g
--   t = lr (the first iteration: min(1, 1/|g|_1) * lr), or the strong Wolfe step
--   x = x + t d
-- One `step(closure)` runs up to max_iter iterations and max_eval closure calls, and
-- stops early when max|g| <= tolerance_grad, when max|t d| or the change of the loss is
-- below tolerance_change. It needs a closure that clears the gradients, recomputes the
-- loss, calls backward and returns the loss; step returns the first loss it saw.
-- Written in Lua with tensor operations, as PyTorch's lbfgs.py is in Python (the cost is
-- in the closure). Only one parameter group is allowed. State (on the first parameter):
-- `func_evals`, `n_iter`, `d`, `t`, `old_dirs`, `old_stps`, `ro`, `H_diag`,
-- `prev_flat_grad`, `prev_loss`, `al`.
-- https://pytorch.org/docs/1.13/generated/torch.optim.LBFGS.html
-- @tparam[opt=1] number lr step length (the initial trial step with a line search)
-- @tparam[opt=20] number max_iter iterations per step
-- @tparam[opt=max_iter*5//4] number max_eval closure calls per step
-- @tparam[opt=1e-7] number tolerance_grad stop when max|g| is at most this
-- @tparam[opt=1e-9] number tolerance_change stop when the step or loss change is below this
-- @tparam[opt=100] number history_size number of (s, y) pairs kept
-- @tparam[opt=nil] string line_search_fn nil (fixed step) or "strong_wolfe"
-- @usage local opt = crater.optim.LBFGS({x}, {line_search_fn = "strong_wolfe"})
-- for i = 1, 10 do
--   opt:step(function() opt:zero_grad(); local l = f(x); l:backward(); return l end)
-- end
-- luacheck: ignore 581 (the "not (a <= b)" tests are there to treat NaN as PyTorch does)
local Optimizer = require "crater.optim.optimizer"
local flat = require "crater.optim.flat"

local LBFGS = Optimizer:extend("LBFGS", {lr = 1, max_iter = 20, max_eval = false,
  tolerance_grad = 1e-7, tolerance_change = 1e-9, history_size = 100, line_search_fn = false},
  {max_iter = {"integer", 1}, history_size = {"integer", 1}, max_eval = {"number", 1, false_ok = true},
   tolerance_grad = {"number", 0}, tolerance_change = {"number", 0},
   line_search_fn = {"choice", false, "strong_wolfe"}})
LBFGS.state_keys = {"func_evals", "n_iter"}
LBFGS.state_rules = {func_evals = "count", n_iter = "count", d = "flat", t = "number",
  old_dirs = "flats", old_stps = "flats", ro = "numbers", H_diag = "number", prev_flat_grad = "flat",
  prev_loss = "number", al = "numbers"}

local crater = require "crater"
local function dot(a, b) return (a * b):sum():item() end
local function absmax(a)
  if a:numel() == 0 then error("LBFGS: the parameters have no elements (max of an empty gradient; PyTorch refuses it too)", 0) end
  return a:abs():max():item()
end
local function number(loss)
  if type(loss) == "number" then return loss end
  return loss:item()
end

function LBFGS:init()
  if #self.param_groups ~= 1 then
    error("LBFGS: doesn't support per-parameter options (parameter groups): got "
      .. #self.param_groups .. " groups", 0)
  end
  local g = self.param_groups[1]
  if not g.max_eval then g.max_eval = g.max_iter * 5 // 4 end
end

function LBFGS:add_param_group()
  error("LBFGS: doesn't support per-parameter options (parameter groups)", 2)
end

local function clone_params(params)
  local x = {}
  for i, p in ipairs(params) do x[i] = p:clone() end
  return x
end

local function set_params(params, x)
  for i, p in ipairs(params) do p:copy_(x[i]) end
end

local function cubic_interpolate(x1, f1, g1, x2, f2, g2, lo, hi)
  local xmin, xmax = lo, hi
  if lo == nil then
    if x1 <= x2 then xmin, xmax = x1, x2 else xmin, xmax = x2, x1 end
  end
  local d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
  local d2_square = d1 * d1 - g1 * g2
  if d2_square >= 0 then
    local d2 = math.sqrt(d2_square)
    local min_pos
    if x1 <= x2 then
      min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else
      min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    end
    return math.min(math.max(min_pos, xmin), xmax)
  end
  return (xmin + xmax) / 2
end

-- Strong Wolfe line search along d from x (lbfgs.py's _strong_wolfe, bracketing then
-- zooming with cubic interpolation). Returns f_new, g_new, t, evaluations.
local function strong_wolfe(obj_func, x, t, d, f, g, gtd)
  local c1, c2, tolerance_change, max_ls = 1e-4, 0.9, 1e-9, 25
  local d_norm = absmax(d)
  g = g:clone()
  local f_new, g_new = obj_func(x, t, d)
  local ls_func_evals, gtd_new = 1, dot(g_new, d)
  local t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
  local done, ls_iter = false, 0
  local bracket, bracket_f, bracket_g, bracket_gtd
  while ls_iter < max_ls do
    if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev) then
      bracket, bracket_f = {t_prev, t}, {f_prev, f_new}
      bracket_g, bracket_gtd = {g_prev, g_new:clone()}, {gtd_prev, gtd_new}
      break
    end
    if math.abs(gtd_new) <= -c2 * gtd then
      bracket, bracket_f, bracket_g, done = {t}, {f_new}, {g_new}, true
      break
    end
    if gtd_new >= 0 then
      bracket, bracket_f = {t_prev, t}, {f_prev, f_new}
      bracket_g, bracket_gtd = {g_prev, g_new:clone()}, {gtd_prev, gtd_new}
      break
    end
    -- extrapolate
    local min_step, max_step, tmp = t + 0.01 * (t - t_prev), t * 10, t
    t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, min_step, max_step)
    t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new:clone(), gtd_new
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = ls_func_evals + 1
    gtd_new = dot(g_new, d)
    ls_iter = ls_iter + 1
  end
  if ls_iter == max_ls then
    bracket, bracket_f, bracket_g = {0, t}, {f, f_new}, {g, g_new}
  end
  -- zoom
  local insuf_progress = false
  local low, high = 1, 2
  if not (bracket_f[1] <= bracket_f[#bracket_f]) then low, high = 2, 1 end
  while not done and ls_iter < max_ls do
    if math.abs(bracket[2] - bracket[1]) * d_norm < tolerance_change then break end
    t = cubic_interpolate(bracket[1], bracket_f[1], bracket_gtd[1], bracket[2], bracket_f[2], bracket_gtd[2])
    local bmax, bmin = math.max(bracket[1], bracket[2]), math.min(bracket[1], bracket[2])
    local eps = 0.1 * (bmax - bmin)
    if math.min(bmax - t, t - bmin) < eps then
      if insuf_progress or t >= bmax or t <= bmin then
        if math.abs(t - bmax) < math.abs(t - bmin) then t = bmax - eps else t = bmin + eps end
        insuf_progress = false
      else
        insuf_progress = true
      end
    else
      insuf_progress = false
    end
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = ls_func_evals + 1
    gtd_new = dot(g_new, d)
    ls_iter = ls_iter + 1
    if f_new > f + c1 * t * gtd or f_new >= bracket_f[low] then
      bracket[high], bracket_f[high], bracket_g[high], bracket_gtd[high] = t, f_new, g_new:clone(), gtd_new
      if bracket_f[1] <= bracket_f[2] then low, high = 1, 2 else low, high = 2, 1 end
    else
      if math.abs(gtd_new) <= -c2 * gtd then
        done = true
      elseif gtd_new * (bracket[high] - bracket[low]) >= 0 then
        bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
        bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
      end
      bracket[low], bracket_f[low], bracket_g[low], bracket_gtd[low] = t, f_new, g_new:clone(), gtd_new
    end
  end
  return bracket_f[low], bracket_g[low], bracket[low], ls_func_evals
end

local function run(self, closure)
  local C = crater
  local group = self.param_groups[1]
  local params = group.params
  local lr, max_iter, max_eval = group.lr, group.max_iter, group.max_eval
  local tolerance_grad, tolerance_change = group.tolerance_grad, group.tolerance_change
  local line_search_fn, history_size = group.line_search_fn, group.history_size
  local function evaluate() return C.enable_grad(closure) end

  local state = self.state[params[1]]
  if state == nil then state = {}; self.state[params[1]] = state end
  state.func_evals, state.n_iter = state.func_evals or 0, state.n_iter or 0

  local orig_loss = evaluate()
  local loss = number(orig_loss)
  local current_evals = 1
  state.func_evals = state.func_evals + 1
  local flat_grad = flat.grads(params)
  local opt_cond = absmax(flat_grad) <= tolerance_grad
  if opt_cond then return orig_loss end

  local d, t, old_dirs, old_stps, ro = state.d, state.t, state.old_dirs, state.old_stps, state.ro
  local H_diag, prev_flat_grad, prev_loss = state.H_diag, state.prev_flat_grad, state.prev_loss
  local n_iter = 0
  local total_iter = state.n_iter   -- written back with the rest of the state, at the end
  while n_iter < max_iter do
    n_iter = n_iter + 1
    total_iter = total_iter + 1
    -- direction
    if total_iter == 1 then
      d, old_dirs, old_stps, ro, H_diag = flat_grad:neg(), {}, {}, {}, 1
    else
      local y, s = flat_grad:sub(prev_flat_grad), d:mul(t)
      local ys = dot(y, s)
      if ys > 1e-10 then
        if #old_dirs == history_size then
          table.remove(old_dirs, 1); table.remove(old_stps, 1); table.remove(ro, 1)
        end
        old_dirs[#old_dirs + 1], old_stps[#old_stps + 1], ro[#ro + 1] = y, s, 1 / ys
        H_diag = ys / dot(y, y)
      end
      local num_old = #old_dirs
      state.al = state.al or {}
      local al = state.al
      local q = flat_grad:neg()
      for i = num_old, 1, -1 do
        al[i] = dot(old_stps[i], q) * ro[i]
        q:add_(old_dirs[i], -al[i])
      end
      d = q:mul(H_diag)
      for i = 1, num_old do
        local be_i = dot(old_dirs[i], d) * ro[i]
        d:add_(old_stps[i], al[i] - be_i)
      end
    end
    if prev_flat_grad == nil then prev_flat_grad = flat_grad:clone() else prev_flat_grad:copy_(flat_grad) end
    prev_loss = loss
    -- step length
    if total_iter == 1 then
      t = math.min(1, 1 / flat_grad:abs():sum():item()) * lr
    else
      t = lr
    end
    local gtd = dot(flat_grad, d)
    if gtd > -tolerance_change then break end
    local ls_func_evals = 0
    if line_search_fn then
      local x_init = clone_params(params)
      local function obj_func(x, tt, dd)
        flat.add(params, tt, dd)
        local l = number(evaluate())
        local fg = flat.grads(params)
        set_params(params, x)
        return l, fg
      end
      loss, flat_grad, t, ls_func_evals = strong_wolfe(obj_func, x_init, t, d, loss, flat_grad, gtd)
      flat.add(params, t, d)
      opt_cond = absmax(flat_grad) <= tolerance_grad
    else
      flat.add(params, t, d)
      if n_iter ~= max_iter then
        loss = number(evaluate())
        flat_grad = flat.grads(params)
        opt_cond = absmax(flat_grad) <= tolerance_grad
        ls_func_evals = 1
      end
    end
    current_evals = current_evals + ls_func_evals
    state.func_evals = state.func_evals + ls_func_evals
    -- stopping conditions
    if n_iter == max_iter or current_evals >= max_eval or opt_cond then break end
    if absmax(d:mul(t)) <= tolerance_change then break end
    if math.abs(loss - prev_loss) < tolerance_change then break end
  end
  state.n_iter = total_iter
  state.d, state.t, state.old_dirs, state.old_stps, state.ro = d, t, old_dirs, old_stps, ro
  state.H_diag, state.prev_flat_grad, state.prev_loss = H_diag, prev_flat_grad, prev_loss
  return orig_loss
end

--- Runs up to max_iter L-BFGS iterations and returns the closure's first loss.
-- @param closure function that zeroes the gradients, computes the loss, calls backward
-- and returns the loss (required)
function LBFGS:step(closure)
  if type(closure) ~= "function" then
    error("LBFGS: step needs a closure that recomputes the loss and its gradients", 2)
  end
  self:check_step()
  return flat.guarded(self, run, self, closure)
end

return LBFGS
