--- Muon: momentum orthogonalized by Newton-Schulz (Jordan et al. 2024, KellerJordan/Muon
-- muon.py, SingleDeviceMuon). For each matrix parameter, with b = momentum:
--   m = lerp(m, g, 1 - b);  u = lerp(g, m, b)                  (Nesterov momentum)
--   O = NS5(u): X = u / (||u||_F + 1e-7) (transposed when tall), then five times
--       A = X X^T;  X = 3.4445 X + (-4.7750 A + 2.0315 A A) X
--   p = p * (1 - lr * weight_decay) - lr * sqrt(max(1, rows / cols)) * O
-- O is close to the orthogonal factor U V^T of u: every direction of the update gets the
-- same size, so lr is in units of spectral norm per step. Use it for the hidden weight
-- matrices and train embeddings, heads, gains and biases with AdamW. Parameters must be
-- 2-D, or 4-D conv filters (viewed as out x rest). The iteration runs in the parameter's
-- own dtype (the reference casts to bfloat16 for GPU speed). Unlike the reference, p.grad
-- is left as backward made it (it lerps into p.grad) and a parameter without a gradient
-- is skipped, as torch.optim does (the reference gives it a zero gradient). A step
-- allocates the Newton-Schulz temporaries (matrix products through OpenBLAS).
-- State: `momentum_buffer`.
-- https://kellerjordan.github.io/posts/muon/
-- @tparam[opt=0.02] number lr learning rate (spectral norm per step)
-- @tparam[opt=0] number weight_decay decoupled weight decay
-- @tparam[opt=0.95] number momentum Nesterov momentum
-- @usage local opt = crater.optim.Muon({model[1].weight, model[3].weight}, {lr = 0.02})
local Optimizer = require "crater.optim.optimizer"

local Muon = Optimizer:extend("Muon", {lr = 0.02, weight_decay = 0, momentum = 0.95},
  {momentum = {"number", 0, 1, what = "momentum value"}})
Muon.state_keys = {"momentum_buffer"}
Muon.state_rules = {momentum_buffer = "param"}

local function crater() return package.loaded.crater or require "crater" end

function Muon:validate(group)
  Optimizer.validate(self, group)
  for i, p in ipairs(group.params) do
    local nd = p:dim()
    if nd ~= 2 and nd ~= 4 then
      error(string.format("Muon: params[%d] is %d-D (shape {%s}); Muon updates 2-D matrices (or 4-D "
        .. "conv filters): optimize it with AdamW", i, nd, table.concat(p:shape(), ",")), 0)
    end
  end
end

--- The quintic Newton-Schulz iteration of the reference (zeropower_via_newtonschulz5).
function Muon.newton_schulz(G, steps)
  local a, b, c = 3.4445, -4.7750, 2.0315
  local tall = G:size(1) > G:size(2)
  local X = tall and G:t() or G
  X = X / (X:norm():item() + 1e-7)
  for _ = 1, steps or 5 do
    local A = X:matmul(X:t())
    local B = A * b + (A * c):matmul(A)
    X = X * a + B:matmul(X)
  end
  return tall and X:t() or X
end

function Muon:init_state(p, state)
  if state.momentum_buffer == nil then state.momentum_buffer = crater().zeros_like(p) end
end

function Muon:update(p, g, state, group)
  local beta, m = group.momentum, state.momentum_buffer
  m:lerp_(g, 1 - beta)
  local u = g:clone():lerp_(m, beta)
  local nd = g:dim()
  if nd == 4 then u = u:reshape(u:size(1), -1) end
  local O = Muon.newton_schulz(u, 5)
  local scale = math.max(1, g:size(nd - 1) / g:size(nd)) ^ 0.5
  p:mul_(1 - group.lr * group.weight_decay)
  p:add_(O:reshape(p:shape()), -group.lr * scale)
end

return Muon
