-- Gradient clipping: SGD with too large an lr on Rosenbrock's steep walls, with and
-- without crater.nn.utils.clip_grad_norm_ (which rescales the gradient to norm <= 1).
local crater = rawget(_G, "crater") or require "crater"
local lab, html = crater.lab, require "crater.lab.html"

local fn = lab.functions.get("rosenbrock")
local function run(max_norm)
  local x = crater.tensor(fn.start, {dtype = "float64", requires_grad = true})
  local opt = crater.optim.SGD({x}, {lr = 4e-3, momentum = 0.9})
  local steps, losses, norms = {}, {}, {}
  for i = 1, 150 do
    opt:zero_grad()
    local loss = fn.f(x)
    loss:backward()
    norms[i] = max_norm and crater.nn.utils.clip_grad_norm_({x}, max_norm) or x.grad:norm():item()
    steps[i], losses[i] = i - 1, loss:item()
    if losses[i] ~= losses[i] or losses[i] > 1e30 then break end
    opt:step()
  end
  return {label = max_norm and ("clipped to norm " .. max_norm) or "not clipped", x = steps, y = losses}, norms,
    x:detach():totable()
end
local plain, plain_norms = run(nil)
local clipped, clipped_norms, final = run(1.0)
local function norm_series(s, norms) return {label = s.label, x = s.x, y = norms} end
return {
  title = "Gradient clipping",
  text = {"SGD with momentum at lr 4e-3 from (-1.5, 2): the first gradients of Rosenbrock's walls have norm ~1000, "
    .. "so the unclipped run is thrown out of the valley and blows up within a few steps. Clipping the gradient's "
    .. "norm to 1 keeps its direction and bounds the step, and the same lr then follows the valley down."},
  figures = {html.lines({plain, clipped}, {title = "loss per step", xlabel = "step", ylabel = "f(x)", logy = true}),
    html.lines({norm_series(plain, plain_norms), norm_series(clipped, clipped_norms)},
      {title = "gradient norm before clipping", xlabel = "step", ylabel = "||g||", logy = true})},
  facts = {plain = plain.y, clipped = clipped.y, clipped_norms = clipped_norms, final = final},
}
