--- signSGD and Signum (Bernstein et al. 2018, "signSGD: Compressed Optimisation for
-- Non-Convex Problems") written in Lua with crater.fuse: each coordinate moves by lr in the
-- direction of the sign of its gradient (momentum = 0) or of a running mean of it (Signum):
--   m = momentum * m + (1 - momentum) * g;  p = p * (1 - lr * weight_decay) - lr * sign(m)
-- One traced program, one pass over p, g and m per step (Optimizer:fused_update). Options:
-- lr = 1e-2, momentum = 0 (in [0, 1)), weight_decay = 0 (decoupled), maximize = false.
-- State: `momentum_buffer`. spec/fuse/examples_spec.lua checks steps worked by hand.
-- Run: build/crater examples/fuse_signsgd.lua  (minimises a quadratic, prints the path);
-- loadfile(path)("--define-only") returns the class.
local crater = rawget(_G, "crater") or require "crater"
local Optimizer = crater.optim.Optimizer

local SignSGD = Optimizer:extend("SignSGD", {lr = 1e-2, momentum = 0, weight_decay = 0, maximize = false},
  {momentum = {"number", 0, 1, open = "hi", what = "momentum value"}})

SignSGD:fused_update(function(p, g, m, lr, beta, decay)
  m = beta * m + (1 - beta) * g
  p = p * decay - lr * m:sign()
  return p, m
end, {state = {"momentum_buffer"}, step = false, scalars = function(group)
  return group.lr, group.momentum, 1 - group.lr * group.weight_decay
end})

if ... == "--define-only" then return SignSGD end

-- f(x) = (x1 - 1)^2 + 10 (x2 + 2)^2 from (3, 3): signSGD reaches the minimum's box of side lr.
for _, momentum in ipairs({0, 0.9}) do
  local x = crater.tensor({3, 3}, {requires_grad = true})
  local opt = SignSGD({x}, {lr = 0.05, momentum = momentum})
  for step = 1, 200 do
    opt:zero_grad()
    local f = (x[1] - 1) ^ 2 + 10 * (x[2] + 2) ^ 2
    f:backward()
    opt:step()
    if step % 50 == 0 then
      print(string.format("momentum %.1f  step %3d  x = (%.4f, %.4f)  f = %.6f", momentum, step, x:get(1),
        x:get(2), f:item()))
    end
  end
end
