--- CMA-ES, Torch7 optim's `cmaes.lua` (a port of Hansen's barecmaes2): lambda candidates
-- x_k = m + sigma B D z_k (z_k standard normal, C = B D^2 B' the covariance) per
-- generation; the mu best recombine into the new mean with log weights; the evolution
-- paths p_s, p_c adapt sigma (cumulative step-size control) and C (rank-one plus rank-mu
-- updates); B, D are refreshed by an eigendecomposition (crater.eigh) every
-- lambda / (c1 + cmu) / N / 10 evaluations.  No gradients: the closure returns f at the
-- parameters (a NaN counts as the worst value).  `step(closure)` runs one generation and
-- leaves the parameters at the best point found so far; it returns that best f.
-- `run(closure)` runs generations until a stopping rule of optim.cmaes fires (evals >=
-- maxEval, f <= ftarget, condition of C > 1e14, tolfun 1e-12, tolx 1e-11) and returns the
-- best point (a flat vector), the history (f at the start, the best f per generation,
-- then the best f), the evaluations, and the stopping reasons.  Random draws come from
-- crater's generator (crater.manual_seed).  Option names and defaults are Torch7's:
-- sigma has none and is required.
-- https://github.com/torch/optim/blob/master/cmaes.lua
-- @tparam number sigma initial step size (standard deviation in each coordinate)
-- @tparam[opt=1e3*N^2] number maxEval evaluations for run
-- @tparam[opt=nil] number ftarget stop run when f <= ftarget
-- @tparam[opt=4+floor(3 ln N)] integer popsize lambda, the candidates per generation
-- @tparam[opt=1] integer min_iterations generations run makes at least
-- @usage local opt = crater.optim.CMAES({x}, {sigma = 0.5, maxEval = 5000})
-- local best, fhist = opt:run(function() return rosenbrock(x) end)
local Optimizer = require "crater.optim.optimizer"
local flat = require "crater.optim.flat"

local CMAES = Optimizer:extend("CMAES", {sigma = Optimizer.required, maxEval = false, ftarget = false,
  popsize = false, min_iterations = 1},
  {sigma = {"number", 0, open = "lo"}, maxEval = {"number", 1, false_ok = true},
   ftarget = {"number", false_ok = true}, popsize = {"integer", 2, false_ok = true},
   min_iterations = {"integer", 0}})
CMAES.state_keys = {"counteval", "generation", "best_f"}
CMAES.state_rules = {counteval = "count", generation = "count", best_f = "number"}

function CMAES:init()
  flat.check(self)
end

function CMAES:add_param_group()
  error("CMAES: doesn't support per-parameter options (parameter groups)", 2)
end

local crater = require "crater"

-- The strategy's constants and matrices, made at the first step (optim.cmaes's preamble).
local function setup(grp, params, closure)
  local C = crater
  local xmean = flat.get(params)
  local N, dtype = xmean:numel(), xmean:dtype()
  local lambda = grp.popsize or 4 + math.floor(3 * math.log(N))
  local mu = lambda / 2   -- as cmaes.lua: a fractional mu for odd lambda enters the weights
  local nmu = math.floor(mu - 1) + 1   -- torch.range(0, mu - 1) has this many entries
  local w, sum = {}, 0
  for i = 0, nmu - 1 do w[i + 1] = math.log(mu + 0.5) - math.log(i + 1); sum = sum + w[i + 1] end
  local sq = 0
  for i = 1, nmu do w[i] = w[i] / sum; sq = sq + w[i] * w[i] end
  local mueff = 1 / sq
  local s = {
    xmean = xmean, N = N, lambda = lambda, nmu = nmu, mueff = mueff, sigma = grp.sigma,
    weights = C.tensor(w, {dtype = dtype}),
    cc = (4 + mueff / N) / (N + 4 + 2 * mueff / N),
    cs = (mueff + 2) / (N + mueff + 5),
    c1 = 2 / ((N + 1.3) ^ 2 + mueff),
    pc = C.zeros(N, {dtype = dtype}), ps = C.zeros(N, {dtype = dtype}),
    B = C.eye(N, {dtype = dtype}), D = C.ones(N, {dtype = dtype}), C = C.eye(N, {dtype = dtype}),
    invsqrtC = C.eye(N, {dtype = dtype}), eigeneval = 0, counteval = 0, generation = 0,
  }
  s.cmu = math.min(1 - s.c1, 2 * (mueff - 2 + 1 / mueff) / ((N + 2) ^ 2 + mueff))
  s.damps = 2 * mueff / lambda + 0.3 + s.cs
  s.f0 = flat.value_at(params, xmean, closure)
  s.best_f, s.best_x = s.f0, xmean:clone()
  return s
end

-- One generation: ask, evaluate, tell (optim.cmaes's loop body).
local function generation(self, closure)
  local C, grp = crater, self.param_groups[1]
  local params = grp.params
  local state = self.state[params[1]]
  local s = state.es or setup(grp, params, closure)
  state.es = s
  local N, lambda = s.N, s.lambda
  -- ask: refresh B and D when C has moved enough
  if s.counteval - s.eigeneval > lambda / (s.c1 + s.cmu) / N / 10 then
    s.eigeneval = s.counteval
    local d, b = C.eigh(s.C)
    s.D, s.B = d:clamp(0):sqrt(), b
    s.invsqrtC = (s.B * (1 / s.D)):matmul(s.B:t())   -- B diag(1/D) B'
  end
  local z = C.randn(lambda, N, {dtype = s.xmean:dtype()}) * s.D
  local arx = s.xmean + s.sigma * z:matmul(s.B:t())   -- row k: m + sigma B (D .* z_k)
  local fit, order = {}, {}
  for k = 1, lambda do fit[k], order[k] = flat.value_at(params, arx[k], closure), k end
  -- tell
  s.counteval = s.counteval + lambda
  table.sort(order, function(a, b) return fit[a] < fit[b] end)
  local top = {}
  for k = 1, s.nmu do top[k] = order[k] end
  local sel = arx:index_select(1, C.tensor(top, {dtype = "int64"}))
  if fit[order[1]] < s.best_f then s.best_f, s.best_x = fit[order[1]], arx[order[1]]:clone() end
  s.fbest_gen, s.fworst_gen = fit[order[1]], fit[order[lambda]]
  local xold = s.xmean
  s.xmean = s.weights:matmul(sel)
  local y = s.xmean - xold
  local zz = s.invsqrtC:matmul(y)
  local cs, cc, mueff = s.cs, s.cc, s.mueff
  s.ps = s.ps * (1 - cs) + zz * ((cs * (2 - cs) * mueff) ^ 0.5 / s.sigma)
  local ps2 = (s.ps * s.ps):sum():item()
  local hsig = ps2 / (1 - (1 - cs) ^ (2 * s.counteval / lambda)) / N < 2 + 4 / (N + 1) and 1 or 0
  s.pc = s.pc * (1 - cc) + y * ((cc * (2 - cc) * mueff) ^ 0.5 / s.sigma * hsig)
  local c1a = s.c1 - (1 - hsig * hsig) * s.c1 * cc * (2 - cc)
  local Y = (sel - xold) / s.sigma   -- rank-mu: sum_k w_k y_k y_k' / sigma^2
  local Cmu = (Y * s.weights:view(s.nmu, 1)):t():matmul(Y)
  s.C = s.C * (1 - c1a - s.cmu) + s.pc:view(N, 1):matmul(s.pc:view(1, N)) * s.c1 + Cmu * s.cmu
  s.sigma = s.sigma * math.exp(math.min(0.6, (cs / s.damps) * (ps2 / N - 1) / 2))
  s.generation = s.generation + 1
  state.counteval, state.generation, state.best_f = s.counteval, s.generation, s.best_f
end

--- The reasons optim.cmaes would stop now: a table such as {tolfun = 1e-12}, empty to go on.
function CMAES:stop()
  local grp = self.param_groups[1]
  local state = self.state[grp.params[1]]
  local s, res = state and state.es, {}
  if s == nil or s.counteval == 0 then return res end
  local maxEval = grp.maxEval or 1e3 * s.N ^ 2
  if s.counteval >= maxEval then res.evals = maxEval end
  if grp.ftarget and s.fbest_gen <= grp.ftarget then res.ftarget = grp.ftarget end
  local dmax, dmin = s.D:max():item(), s.D:min():item()
  if dmax > 1e7 * dmin then res.condition = 1e7 end
  if s.lambda > 1 and s.fworst_gen - s.fbest_gen < 1e-12 then res.tolfun = 1e-12 end
  if s.sigma * dmax < 1e-11 then res.tolx = 1e-11 end
  return res
end

--- Runs one generation; leaves the parameters at the best point so far; returns its f.
-- @param closure function returning f at the parameters (a number or a 0-d tensor)
function CMAES:step(closure)
  if type(closure) ~= "function" then error("CMAES: step needs a closure that returns f at the parameters (got "
    .. type(closure) .. ")", 2) end
  local params = self.param_groups[1].params
  self.state[params[1]] = self.state[params[1]] or {}
  flat.guarded(self, generation, self, closure)
  local s = self.state[params[1]].es
  flat.no_grad(flat.set, params, s.best_x)
  return s.best_f
end

--- Runs generations until a stopping rule fires (optim.cmaes); returns the best point (a
-- flat vector), the history of f, the evaluations made and the stopping reasons.
function CMAES:run(closure)
  local params = self.param_groups[1].params
  local hist, iteration = {}, 0
  repeat
    self:step(closure)
    local s = self.state[params[1]].es
    if iteration == 0 then hist[1] = s.f0 end
    hist[#hist + 1] = s.fbest_gen
    iteration = iteration + 1
  until next(self:stop()) ~= nil and iteration >= self.param_groups[1].min_iterations
  local s = self.state[params[1]].es
  hist[#hist + 1] = s.best_f
  return s.best_x:clone(), hist, s.counteval, self:stop()
end

return CMAES
