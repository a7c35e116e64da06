-- Optimizer updates written for crater.fuse, shared by the fuse specs: each returns its
-- new parameter and state, and runs as well op by op on real tensors.
local M = {}

function M.adam(p, g, m, v, lr, b1, b2, eps, bc1, bc2)
  m = b1 * m + (1 - b1) * g
  v = b2 * v + (1 - b2) * g * g
  p = p - (lr / bc1) * m / ((v / bc2):sqrt() + eps)
  return p, m, v
end

function M.adabelief(p, g, m, s, lr, b1, b2, eps, bc1, bc2)
  m = m:lerp(g, 1 - b1)
  local d = g - m
  s = b2 * s + (1 - b2) * d * d + eps
  p = p - (lr / bc1) * m / ((s / bc2):sqrt() + eps)
  return p, m, s
end

function M.lion(p, g, m, lr, wd, b1, b2)
  local c = m:lerp(g, 1 - b1)
  p = p * (1 - lr * wd) - lr * c:sign()
  m = m:lerp(g, 1 - b2)
  return p, m
end

return M
