-- Learning-rate schedules: step, exponential, cosine, warm-up, 1cycle and plateau, each
-- driving SGD on the same noisy least-squares problem for 100 steps.
local crater = rawget(_G, "crater") or require "crater"
local S, html = crater.optim.lr_scheduler, require "crater.lab.html"

local steps = 100
local schedules = {
  {"step (30, x0.1)", function(o) return S.StepLR(o, {step_size = 30, gamma = 0.1}) end},
  {"exponential (0.97)", function(o) return S.ExponentialLR(o, {gamma = 0.97}) end},
  {"cosine", function(o) return S.CosineAnnealingLR(o, {T_max = steps}) end},
  {"warm-up 10 + cosine", function(o)
    return S.SequentialLR(o, {milestones = {10}, schedulers = {S.LinearLR(o, {start_factor = 0.1, total_iters = 10}),
      S.CosineAnnealingLR(o, {T_max = steps - 10})}}) end},
  {"1cycle", function(o) return S.OneCycleLR(o, {max_lr = 0.1, total_steps = steps}) end},
  {"plateau (x0.5)", function(o) return S.ReduceLROnPlateau(o, {factor = 0.5, patience = 5}) end},
}
local lrs, losses, facts = {}, {}, {}
for k, s in ipairs(schedules) do
  crater.manual_seed(0)
  local w = crater.zeros(4, {requires_grad = true})
  local opt = crater.optim.SGD({w}, {lr = 0.1})
  local sched = s[2](opt)
  local xs, lr, ls = {}, {}, {}
  for i = 1, steps do
    local xb = crater.randn(16, 4)
    local yb = xb:matmul(crater.tensor({1, -2, 3, 0.5})) + 0.5 * crater.randn(16)
    opt:zero_grad()
    local loss = ((xb:matmul(w) - yb) ^ 2):mean()
    loss:backward()
    xs[i], lr[i], ls[i] = i - 1, opt.param_groups[1].lr, loss:item()
    opt:step()
    if s[1]:find("plateau") then sched:step(ls[i]) else sched:step() end
  end
  lrs[k] = {label = s[1], x = xs, y = lr}
  losses[k] = {label = s[1], x = xs, y = require("crater.lab.train_race").smooth(ls, 0.9)}
  facts[s[1]] = lr
end
return {
  title = "Learning-rate schedules",
  text = {"Step decay divides the lr at milestones; exponential decay multiplies it every step; cosine annealing "
    .. "follows half a cosine to zero; warm-up starts small so the first, largest gradients do not throw the "
    .. "weights far; 1cycle climbs to max_lr and anneals far below the start; ReduceLROnPlateau halves the lr "
    .. "whenever the loss it is given has not improved for 5 steps. The loss here is noisy, so a smaller lr late "
    .. "averages the noise away."},
  figures = {html.lines(lrs, {title = "learning rate per step", xlabel = "step", ylabel = "lr", logy = true}),
    html.lines(losses, {title = "training loss (smoothed)", xlabel = "step", ylabel = "loss", logy = true})},
  facts = facts,
}
