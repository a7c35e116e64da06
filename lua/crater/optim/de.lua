--- Differential evolution, Torch7 optim's `de.lua`: a population of popsize points drawn
-- uniformly in [minRegion, maxRegion]^D; each generation, child i takes, coordinate by
-- coordinate with probability crossoverRate (and always at one random coordinate),
-- best + scaleFactor * (x_r1 - x_r2) (r1, r2 distinct random members other than i), and
-- elsewhere its parent's value; a child at least as good as its parent replaces it.
-- No gradients: the closure returns f at the parameters (a NaN counts as the worst value).
-- `step(closure)` runs one generation (the first one also draws and evaluates the
-- population), then leaves the parameters at the best point found; it returns the best
-- f.  `run(closure)` runs generations while fewer than maxFEs evaluations are made, as
-- one call of optim.de does, and returns the best point (a flat vector) and the list of
-- every f evaluated.  Random draws come from crater's generator (crater.manual_seed).
-- Differences from optim.de: the first best point is the population's minimum (de.lua
-- takes its maximum, a slip that the first improving child repairs), and scaleFactor,
-- crossoverRate and maxFEs have defaults (F = 0.8 and CR = 0.9, from Storn and Price's advice;
-- with this best/1 scheme F = 0.5 stalls on 10-D Rosenbrock).
-- https://github.com/torch/optim/blob/master/de.lua
-- @tparam[opt=10*D] integer popsize population size
-- @tparam[opt=0.8] number scaleFactor the differential weight F
-- @tparam[opt=0.9] number crossoverRate the crossover probability CR
-- @tparam[opt=10000] integer maxFEs evaluations for run
-- @tparam[opt=30] number maxRegion upper bound of the initial population
-- @tparam[opt=-30] number minRegion lower bound of the initial population
-- @usage local opt = crater.optim.DE({x}, {maxFEs = 4000, minRegion = -2, maxRegion = 2})
-- local best = opt:run(function() return rosenbrock(x) end)
local Optimizer = require "crater.optim.optimizer"
local flat = require "crater.optim.flat"

local DE = Optimizer:extend("DE", {popsize = false, scaleFactor = 0.8, crossoverRate = 0.9, maxFEs = 10000,
  maxRegion = 30, minRegion = -30},
  {popsize = {"integer", 4, false_ok = true}, scaleFactor = {"number", 0, 2}, crossoverRate = {"number", 0, 1},
   maxFEs = {"integer", 1}, maxRegion = {"number"}, minRegion = {"number"}})
DE.state_keys = {"fes", "generation", "best_f"}
DE.state_rules = {fes = "count", generation = "count", best_f = "number"}

function DE:validate(group)
  Optimizer.validate(self, group)
  if group.minRegion >= group.maxRegion then
    error(string.format("DE: minRegion (%g) must be below maxRegion (%g)", group.minRegion, group.maxRegion), 0)
  end
end

function DE:init()
  flat.check(self)
end

function DE:add_param_group()
  error("DE: doesn't support per-parameter options (parameter groups)", 2)
end

local crater = require "crater"

local function evaluate(self, v, closure, fx)
  local f = flat.value_at(self.param_groups[1].params, v, closure)
  fx[#fx + 1] = f
  return f
end

local function generation(self, closure, fx)
  local C, grp = crater, self.param_groups[1]
  local params = grp.params
  local state = self.state[params[1]]
  local D = flat.numel(params)
  local P = grp.popsize or 10 * D
  local dtype = params[1]:dtype()
  state.fes, state.generation = state.fes or 0, state.generation or 0
  if state.pop == nil then
    state.pop = C.empty(P, D, {dtype = dtype}):uniform_(grp.minRegion, grp.maxRegion)
    state.fitness = {}
    for i = 1, P do state.fitness[i] = evaluate(self, state.pop[i], closure, fx) end
    state.fes = state.fes + P
    local best = 1
    for i = 2, P do if state.fitness[i] < state.fitness[best] then best = i end end
    state.best_x, state.best_f = state.pop[best]:clone(), state.fitness[best]
    return
  end
  local pop, fitness = state.pop, state.fitness
  -- r1 != i, and r2 != i, r1: uniform draws over the others, as de.lua's rejection loops
  local i = C.arange(1, P + 1, {dtype = "int64"})
  local r1 = i + C.randint(1, P, {P})
  r1 = r1 - P * r1:gt(P)   -- i + 1 .. i + P - 1, wrapped into 1 .. P
  local lo, hi = C.minimum(i, r1), C.maximum(i, r1)
  local r2 = C.randint(1, P - 1, {P})
  r2 = r2 + r2:ge(lo)
  r2 = r2 + r2:ge(hi)
  local mutant = state.best_x + grp.scaleFactor * (pop:index_select(1, r1) - pop:index_select(1, r2))
  local jrand = C.randint(1, D + 1, {P, 1})
  local cross = C.rand(P, D, {dtype = dtype}):lt(grp.crossoverRate) + C.arange(1, D + 1, {dtype = "int64"}):eq(jrand)
  local children = C.where(cross, mutant, pop)
  local better = {}
  for k = 1, P do
    local f = evaluate(self, children[k], closure, fx)
    better[k] = f <= fitness[k] and 1 or 0
    if f <= fitness[k] then
      fitness[k] = f
      if f < state.best_f then state.best_f, state.best_x = f, children[k]:clone() end
    end
  end
  pop:copy_(C.where(C.tensor(better, {dtype = "int64"}):view(P, 1), children, pop))
  state.fes = state.fes + P
  state.generation = state.generation + 1
end

--- Runs one generation; leaves the parameters at the best point; returns the best f.
-- @param closure function returning f at the parameters (a number or a 0-d tensor)
function DE:step(closure)
  if type(closure) ~= "function" then error("DE: step needs a closure that returns f at the parameters (got "
    .. type(closure) .. ")", 2) end
  local params = self.param_groups[1].params
  self.state[params[1]] = self.state[params[1]] or {}
  flat.guarded(self, generation, self, closure, {})
  local state = self.state[params[1]]
  flat.no_grad(flat.set, params, state.best_x)
  return state.best_f
end

--- Runs generations while fewer than maxFEs evaluations are made (optim.de); returns the
-- best point (a flat vector), the list of the f values evaluated, and the best f.
function DE:run(closure)
  if type(closure) ~= "function" then error("DE: run needs a closure that returns f at the parameters (got "
    .. type(closure) .. ")", 2) end
  local params = self.param_groups[1].params
  local fx = {}
  self.state[params[1]] = self.state[params[1]] or {}
  flat.guarded(self, function()
    repeat generation(self, closure, fx) until self.state[params[1]].fes >= self.param_groups[1].maxFEs
  end)
  local state = self.state[params[1]]
  flat.no_grad(flat.set, params, state.best_x)
  return state.best_x:clone(), fx, state.best_f
end

return DE
