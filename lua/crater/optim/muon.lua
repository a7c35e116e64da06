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
-- is skipped, as torch.optim does (the reference gives it a zero gradient). The step is
-- one C kernel (src/optim/muon.c): the products go through OpenBLAS into four
-- workspaces made at the first step, so later steps allocate nothing.
-- State: `momentum_buffer`.
-- https://kellerjordan.github.io/posts/muon/
-- @tparam[opt=0.02] number lr learning rate (spectral norm per step)
-- @tparam[opt=0] number weight_decay decoupled weight decay
-- @tparam[opt=0.95] number momentum Nesterov momentum
-- @usage local opt = crater.optim.Muon({model[1].weight, model[3].weight}, {lr = 0.02})
local Optimizer = require "crater.optim.optimizer"
local internal = require("crater.core").internal

local Muon = Optimizer:extend("Muon", {lr = 0.02, weight_decay = 0, momentum = 0.95},
  {momentum = {"number", 0, 1, what = "momentum value"}})
Muon.state_keys = {"momentum_buffer"}
Muon.state_rules = {momentum_buffer = "param"}

local crater = require "crater"

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
  if state.momentum_buffer == nil then state.momentum_buffer = crater.zeros_like(p) end
end

-- The Newton-Schulz workspaces of each parameter: X and Y (its size), A and B (k x k for
-- k the smaller side). Not state: nothing to save, and rebuilt after load_state_dict.
local function workspaces(self, p, rows)
  local ws = self._ns_workspaces
  if ws == nil then ws = setmetatable({}, {__mode = "k"}); self._ns_workspaces = ws end
  local w = ws[p]
  if w == nil then
    local c, n = crater, p:numel()
    local k = math.min(rows, n // rows)
    local opts = {dtype = p:dtype()}
    local nd = p:dim()
    -- what muon_step reads besides the group and the state: the workspaces, the matrix
    -- view's rows, the update's scale and the Newton-Schulz steps, fixed per parameter
    w = {x = c.empty({n}, opts), y = c.empty({n}, opts), A = c.empty({k * k}, opts), B = c.empty({k * k}, opts),
      rows = rows, scale = math.max(1, p:size(nd - 1) / p:size(nd)) ^ 0.5, steps = 5}
    ws[p] = w
  end
  return w
end

function Muon:update(p, g, state, group)
  internal.muon_step(self, p, g, state, group, workspaces(self, p, p:size(1)))
end
Optimizer.kernel_update(Muon.update)

return Muon
