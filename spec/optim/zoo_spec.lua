-- The optimizer zoo beyond the reference parity of zoo_b_spec: resume from a state_dict,
-- float32, thread counts, and refusals that change nothing.
local crater = require "crater"

local function problem(dtype, seed)
  crater.manual_seed(seed or 3)
  local W = crater.randn(6, 4, {dtype = dtype})
  local X, Y = crater.randn(10, 6, {dtype = dtype}), crater.randn(10, 4, {dtype = dtype})
  W.requires_grad = true
  return W, function() return ((X:matmul(W) - Y) ^ 2):mean() end
end

-- SophiaG refreshes its Hessian estimate at every step; schedule-free trains at y
local function run(opt, W, f, steps)
  for _ = 1, steps do
    opt:zero_grad()
    f():backward()
    if opt.update_hessian then opt:update_hessian() end
    opt:step()
  end
  return W:clone():detach()
end

-- options that make each one move on the problem (LARS's default lr is 0)
local OPTS = {Prodigy = {}, Muon = {}, Lion = {lr = 0.01}, LAMB = {lr = 0.01, weight_decay = 0.01},
  LARS = {lr = 5, weight_decay = 0.01}, AdaBelief = {lr = 0.01, amsgrad = true},
  Adan = {lr = 0.01, weight_decay = 0.02, max_grad_norm = 1}, Adafactor = {beta1 = 0.9, weight_decay = 0.01},
  SophiaG = {lr = 0.01}, AdamWScheduleFree = {lr = 0.01, warmup_steps = 2}, SGDScheduleFree = {lr = 0.05}}
for _, name in ipairs({"Prodigy", "Muon", "Lion", "LAMB", "LARS", "AdaBelief", "Adan", "Adafactor", "SophiaG",
                       "AdamWScheduleFree", "SGDScheduleFree"}) do
  describe(name, function()
    local base = crater.optim[name]
    local cls = function(ps)
      local opt = base(ps, OPTS[name])
      if opt.train then opt:train() end
      return opt
    end

    it("resumes from a state_dict exactly where it stopped", function()
      local W, f = problem("float64")
      local opt = cls({W})
      local straight = run(opt, W, f, 12)
      assert.is_true((straight - problem("float64")):abs():max():item() > 1e-3)   -- it moved
      local W2, f2 = problem("float64")
      local first = cls({W2})
      run(first, W2, f2, 5)
      local saved = first:state_dict()
      local second = cls({W2})
      second:load_state_dict(saved)
      local resumed = run(second, W2, f2, 7)
      assert.are.equal(0, (resumed - straight):abs():max():item())
    end)

    it("gives the same steps on 1 and 2 threads and runs in float32", function()
      local W, f = problem("float64")
      local before = crater.get_num_threads()
      crater.set_num_threads(1)
      local one = run(cls({W}), W, f, 6)
      crater.set_num_threads(2)
      local W2, f2 = problem("float64")
      local two = run(cls({W2}), W2, f2, 6)
      crater.set_num_threads(before)
      assert.are.equal(0, (one - two):abs():max():item())
      local W32, f32 = problem("float32")
      local single = run(cls({W32}), W32, f32, 6)
      assert.is_true((single:to("float64") - one):abs():max():item() < 1e-4)
    end)
  end)
end

describe("Prodigy", function()
  it("learns d from d0 upward and lowers the loss", function()
    local W, f = problem("float64")
    local opt = crater.optim.Prodigy({W})
    local l0 = f():item()
    run(opt, W, f, 40)
    local g = opt.param_groups[1]
    assert.is_true(g.d > 1e-6 and g.d_max >= g.d and g.k == 40)
    assert.is_true(f():item() < l0)
  end)

  it("refuses groups with different nonzero lr before changing anything", function()
    local W, f = problem("float64")
    local b = crater.zeros(4, {dtype = "float64", requires_grad = true})
    local opt = crater.optim.Prodigy({{params = {W}}, {params = {b}, lr = 0.5}})
    local loss = ((f() + b:sum()) ^ 2)
    loss:backward()
    local before = W:clone()
    assert.has_error(function() opt:step() end,
      "Prodigy: step: param group 2 has lr 0.5 but another has 1.0; groups must share lr or set it to 0")
    assert.are.equal(0, (W - before):abs():max():item())
    assert.is_nil(next(opt.state))
  end)

  it("refuses bad options naming them", function()
    local W = problem("float64")
    assert.has_error(function() crater.optim.Prodigy({W}, {d0 = 0}) end,
      "Prodigy: d0 must be a number > 0, got 0 (invalid d0 value)")
    assert.has_error(function() crater.optim.Prodigy({W}, {slice_p = 0}) end,
      "Prodigy: slice_p must be a positive integer, got 0")
    assert.has_error(function() crater.optim.Prodigy({W}, {beta3 = 1}) end,
      "Prodigy: beta3 must be in [0, 1), got 1 (invalid beta3 value)")
    assert.has_error(function() crater.optim.Prodigy({W}, {growth_rate = 0 / 0}) end)
    assert.has_error(function() crater.optim.Prodigy({W}, {fsdp = true}) end)
  end)

  it("keeps a 0-d p0 for an all-zero start, as the reference", function()
    local z = crater.zeros(3, 2, {dtype = "float64", requires_grad = true})
    local opt = crater.optim.Prodigy({z})
    ;(z:sum() * 2):backward()
    opt:step()
    assert.are.equal(0, opt.state[z].p0:dim())
    local s = opt:state_dict()
    local again = crater.optim.Prodigy({z})
    again:load_state_dict(s)   -- the 0-d p0 is a valid state
    s.state[1].s = crater.zeros(5, {dtype = "float64"})
    assert.has_error(function() again:load_state_dict(s) end)
  end)
end)

describe("Muon", function()
  it("refuses a 1-D parameter at construction, naming it", function()
    local W = problem("float64")
    local b = crater.zeros(4, {requires_grad = true})
    assert.has_error(function() crater.optim.Muon({W, b}) end,
      "Muon: params[2] is 1-D (shape {4}); Muon updates 2-D matrices (or 4-D conv filters): optimize it with AdamW")
  end)

  it("orthogonalizes: the Newton-Schulz output has singular values near 1", function()
    crater.manual_seed(5)
    local G = crater.randn(8, 5, {dtype = "float64"})
    local O = crater.optim.Muon.newton_schulz(G, 5)
    local ev = crater.eigh(O:t():matmul(O))   -- squares of O's singular values
    for _, e in ipairs(ev:totable()) do
      assert.is_true(e > 0.3 ^ 2 and e < 1.3 ^ 2, tostring(e))   -- the quintic's band, about (0.7, 1.2)
    end
  end)

  it("steps a 4-D filter as its out x rest matrix, scaled by its last two sizes", function()
    crater.manual_seed(6)
    local W = crater.randn({3, 2, 4, 2}, {dtype = "float64", requires_grad = true})
    local m = crater.zeros({3, 2, 4, 2}, {dtype = "float64"})
    local opt = crater.optim.Muon({W}, {lr = 0.1, momentum = 0.9, weight_decay = 0.05})
    for _ = 1, 3 do
      local g = crater.randn({3, 2, 4, 2}, {dtype = "float64"})
      -- the reference's update, from tensor ops: Nesterov momentum, NS5 on 3 x 16, sqrt(4/2)
      m = m * 0.9 + g * 0.1
      local u = (g * 0.1 + m * 0.9):reshape(3, 16)
      local expected = W:detach() * (1 - 0.1 * 0.05) - crater.optim.Muon.newton_schulz(u, 5):reshape(3, 2, 4, 2) * (0.1 * 2 ^ 0.5)
      W.grad = g
      opt:step()
      assert.is_true((W:detach() - expected):abs():max():item() < 1e-12)
    end
  end)

  it("refuses a momentum outside [0, 1]", function()
    local W = problem("float64")
    assert.has_error(function() crater.optim.Muon({W}, {momentum = 1.5}) end,
      "Muon: momentum must be in [0, 1], got 1.5 (invalid momentum value)")
  end)
end)

describe("a step after the first", function()
  -- the state and workspaces exist after the first step; from then on nothing is allocated
  local CASES = {SGD = {lr = 0.1, momentum = 0.9, nesterov = true}, Adam = {amsgrad = true}, AdamW = {},
    Adagrad = {}, RMSprop = {momentum = 0.5, centered = true}, Adadelta = {}, Adamax = {}, NAdam = {},
    RAdam = {}, ASGD = {}, Rprop = {}, Lion = {}, LAMB = {}, LARS = {lr = 1}, AdaBelief = {}, Adan = {},
    Adafactor = {beta1 = 0.9}, Prodigy = {}, SophiaG = {}, AdamWScheduleFree = {}, SGDScheduleFree = {},
    Muon = {}}
  for _, name in ipairs({"SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "Adamax", "NAdam", "RAdam",
                         "ASGD", "Rprop", "Lion", "LAMB", "LARS", "AdaBelief", "Adan", "Adafactor", "Prodigy",
                         "SophiaG", "AdamWScheduleFree", "SGDScheduleFree", "Muon"}) do
    it(name .. " allocates nothing (a tall and a wide matrix, float32 and float64)", function()
      for _, dtype in ipairs({"float32", "float64"}) do
        local ps = {crater.randn({9, 4}, {dtype = dtype, requires_grad = true}),
                    crater.randn({3, 7}, {dtype = dtype, requires_grad = true})}
        for _, p in ipairs(ps) do p.grad = crater.randn(p:shape(), {dtype = dtype}) end
        local opt = crater.optim[name](ps, CASES[name])
        if opt.train then opt:train() end
        opt:step()
        if opt.update_hessian then opt:update_hessian() end
        opt:step()
        local before = crater.memory().allocated_bytes
        opt:step()
        assert.are.equal(0, crater.memory().allocated_bytes - before)
      end
    end)
  end

  local function steps_without_allocating(step)
    step(); step()
    local before = crater.memory().allocated_bytes
    step()
    assert.are.equal(0, crater.memory().allocated_bytes - before)
  end
  it("Adan with max_grad_norm allocates nothing", function()
    local W = crater.randn({5, 3}, {requires_grad = true})
    W.grad = crater.randn(5, 3)
    local opt = crater.optim.Adan({W}, {max_grad_norm = 0.5})
    steps_without_allocating(function() opt:step() end)
  end)
  it("MuonWithAuxAdam allocates nothing in either kind of group", function()
    local W, b = crater.randn({5, 3}, {requires_grad = true}), crater.randn({3}, {requires_grad = true})
    W.grad, b.grad = crater.randn(5, 3), crater.randn(3)
    local opt = crater.optim.MuonWithAuxAdam({{params = {W}, use_muon = true}, {params = {b}, use_muon = false}})
    steps_without_allocating(function() opt:step() end)
  end)
  it("SAM allocates nothing beyond its closure, plain and adaptive", function()
    for _, adaptive in ipairs({false, true}) do
      local W = crater.randn({5, 3}, {requires_grad = true})
      local g = crater.randn(5, 3)
      local in_closure = 0      -- the closure's new gradient, as backward makes one
      local function closure()
        local before = crater.memory().allocated_bytes
        W.grad = g * 0.5
        in_closure = in_closure + crater.memory().allocated_bytes - before
      end
      local opt = crater.optim.SAM({W}, crater.optim.SGD, {lr = 0.1, momentum = 0.9, adaptive = adaptive})
      local function step()
        W.grad = g:clone()
        opt:step(closure)
      end
      step(); step()
      W.grad = g:clone()
      in_closure = 0
      local before = crater.memory().allocated_bytes
      opt:step(closure)
      assert.is_true(in_closure > g:numel() * 4)   -- the closure ran and made its gradient
      assert.are.equal(0, crater.memory().allocated_bytes - before - in_closure)
    end
  end)
end)

describe("the zoo's option checks", function()
  local W = problem("float64")
  local cases = {
    {"Lion", {betas = {0.9, 0.99, 0.5}}, "Lion: betas must be a list of 2 numbers, got {0.9, 0.99, 0.5}"},
    {"Lion", {lr = -1}, "Lion: lr must be a number >= 0, got -1 (invalid learning rate)"},
    {"LAMB", {eps = 0 / 0}, "LAMB: eps must be a number >= 0, got nan (invalid epsilon value)"},
    {"LAMB", {adam = "yes"}, "LAMB: adam must be a boolean, got \"yes\""},
    {"LARS", {momentum = -0.5}, "LARS: momentum must be a number >= 0, got -0.5 (invalid momentum value)"},
    {"AdaBelief", {betas = {1, 0.9}}, "AdaBelief: betas[1] must be in [0, 1), got 1 (invalid beta parameter)"},
    {"Adan", {betas = {0.9, 0.9}}, "Adan: betas must be a list of 3 numbers, got {0.9, 0.9}"},
    {"Adan", {max_grad_norm = -1}, "Adan: max_grad_norm must be a number >= 0, got -1 (invalid max grad norm)"},
    {"Adafactor", {lr = 0.01}, "Adafactor: cannot combine a manual lr with relative_step = true (set relative_step = false)"},
    {"Adafactor", {warmup_init = true, relative_step = false, lr = 0.1}, "Adafactor: warmup_init = true requires relative_step = true"},
    {"Adafactor", {eps = {1e-30}}, "Adafactor: eps must be a list of 2 numbers, got {1e-30}"},
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " refuses " .. c[3]:match(": (%S+)"), function()
      local ok, err = pcall(crater.optim[c[1]], {W}, c[2])
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find(c[3], 1, true), tostring(err))
    end)
  end
end)

describe("Adafactor", function()
  it("keeps a matrix's second moment as rows + columns, batched over leading dims", function()
    crater.manual_seed(4)
    local W = crater.randn(2, 3, 5, {dtype = "float64", requires_grad = true})
    local b = crater.randn(5, {dtype = "float64", requires_grad = true})
    local opt = crater.optim.Adafactor({W, b})
    local g = W:detach() * 2   -- the gradient below
    ;((W * W):sum() + (b * b):sum()):backward()
    opt:step()
    local s = opt.state[W]
    assert.are.same({2, 3}, s.exp_avg_sq_row:shape())
    assert.are.same({2, 5}, s.exp_avg_sq_col:shape())
    assert.are.same({5}, opt.state[b].exp_avg_sq:shape())
    -- hand check of the first row factor: g = 2W, b2t = 1 - 1^-0.8 = 0, so R is mean_c(g^2 + 1e-30)
    assert.is_true(math.abs(s.exp_avg_sq_row:get(1, 1) - (g[1][1] ^ 2):mean():item()) < 1e-12)
  end)
end)

describe("MuonWithAuxAdam", function()
  local function params()
    crater.manual_seed(1)
    local W = crater.randn(4, 3, {dtype = "float64", requires_grad = true})
    local b = crater.randn(3, {dtype = "float64", requires_grad = true})
    return W, b
  end

  it("fills each group's own defaults and refuses the other kind's options", function()
    local W, b = params()
    local opt = crater.optim.MuonWithAuxAdam({{params = {W}, use_muon = true}, {params = {b}, use_muon = false}},
      {betas = {0.8, 0.9}})
    local g1, g2 = opt.param_groups[1], opt.param_groups[2]
    assert.are.same({0.02, 0.95, false}, {g1.lr, g1.momentum, g1.betas})
    assert.are.same({3e-4, 1e-10, false}, {g2.lr, g2.eps, g2.momentum})
    assert.are.same({0.8, 0.9}, g2.betas)   -- the constructor's, for the Adam group only
    assert.has_error(function()
      crater.optim.MuonWithAuxAdam({{params = {W}, use_muon = true, eps = 1e-8}})
    end, "MuonWithAuxAdam: a group with use_muon = true takes no 'eps'")
    assert.has_error(function() crater.optim.MuonWithAuxAdam({{params = {W}}}) end,
      "MuonWithAuxAdam: use_muon is required")
    assert.has_error(function() crater.optim.MuonWithAuxAdam({{params = {b}, use_muon = true}}) end)
  end)

  it("trains a two-layer model with Muon on the matrices and Adam on the biases", function()
    crater.manual_seed(2)
    local model = crater.nn.Sequential(crater.nn.Linear(4, 8), crater.nn.Tanh(), crater.nn.Linear(8, 1))
    local x = crater.randn(32, 4)
    local y = x:sum(2, true):sin()
    local mats, rest = {}, {}
    for _, p in ipairs(model:parameters()) do table.insert(p:dim() >= 2 and mats or rest, p) end
    local opt = crater.optim.MuonWithAuxAdam({{params = mats, use_muon = true}, {params = rest, use_muon = false, lr = 1e-2}})
    local function loss() return ((model(x) - y) ^ 2):mean() end
    local l0 = loss():item()
    for _ = 1, 60 do opt:zero_grad(); loss():backward(); opt:step() end
    assert.is_true(loss():item() < 0.5 * l0)
  end)
end)

describe("blocked statistics passes", function()
  it("Prodigy's sliced sums over many blocks match a direct computation, on 1 and 2 threads", function()
    local n = 700001   -- past the threads' grain, several blocks, a ragged last slice
    local function one_step(threads)
      crater.manual_seed(9)
      local p = crater.randn(n, {dtype = "float64", requires_grad = true})
      local opt = crater.optim.Prodigy({p}, {slice_p = 3})
      p.grad = crater.randn(n, {dtype = "float64"})
      local before = crater.get_num_threads()
      crater.set_num_threads(threads)
      opt:step()
      crater.set_num_threads(before)
      return opt.param_groups[1], p
    end
    local g1, p1 = one_step(1)
    local g2, p2 = one_step(2)
    assert.are.equal(g1.d_denom, g2.d_denom)
    assert.are.equal(0, (p1 - p2):abs():max():item())
    -- first step: s = (d/d0) * d0 * lr * g' on every third element, so sum|s| = 1e-6 * sum|g[::3]|
    crater.manual_seed(9)
    crater.randn(n, {dtype = "float64"})
    local g = crater.randn(n, {dtype = "float64"})
    local idx = crater.arange(1, n + 1, 3, {dtype = "int64"})
    local want = 1e-6 * g:index_select(1, idx):abs():sum():item()
    assert.is_true(math.abs(g1.d_denom - want) <= 1e-12 * want)
  end)

  it("Adafactor's factored passes on a large matrix match its formula, on 1 and 2 threads", function()
    local R, C = 700, 1001    -- past the threads' grain: rows, columns and squares split
    local function one_step(threads)
      crater.manual_seed(10)
      local p = crater.randn({R, C}, {dtype = "float64", requires_grad = true})
      p.grad = crater.randn({R, C}, {dtype = "float64"})
      local opt = crater.optim.Adafactor({p}, {})
      local before = crater.get_num_threads()
      crater.set_num_threads(threads)
      opt:step()
      crater.set_num_threads(before)
      return p
    end
    local p1, p2 = one_step(1), one_step(2)
    assert.are.equal(0, (p1 - p2):abs():max():item())
    -- the first step from the formula (transformers' Adafactor): beta2t = 0, so the factors are
    -- the means themselves; u = g / sqrt(r_hat c), clipped to RMS 1, times max(1e-3, RMS(p)) * 1e-2
    crater.manual_seed(10)
    local p = crater.randn({R, C}, {dtype = "float64"})
    local g = crater.randn({R, C}, {dtype = "float64"})
    local sq = g * g + 1e-30
    local row, col = sq:mean(2), sq:mean(1)
    local u = (row / row:mean()):rsqrt():view(R, 1) * col:rsqrt():view(1, C) * g
    local rms = function(t) return math.sqrt((t * t):mean():item()) end
    u = u / math.max(rms(u), 1) * (math.max(1e-3, rms(p)) * 1e-2)
    local want = p - u
    assert.is_true((p1:detach() - want):abs():max():item() <= 1e-12 * want:abs():max():item())
  end)
end)
