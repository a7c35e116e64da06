local crater = require "crater"
local nn = crater.nn
local F = nn.functional
local H = require "spec.nn.helpers"

local fx = {}
for _, c in ipairs(dofile("spec/fixtures/nn_layers.lua")) do fx[c.name] = c end

local function param(v) return crater.tensor(v, { dtype = "float64", requires_grad = true }) end
local function gradcheck(fn, inputs) return crater.autograd.gradcheck(fn, inputs) end
local function rnd(...) return crater.randn({ ... }, { dtype = "float64", requires_grad = true }) end

-- Runs m in float64: its parameters converted, leaves again.
local function to64(m)
  crater.no_grad(function()
    for _, mod in ipairs(m:modules()) do
      for _, n in ipairs(mod._param_names) do
        if mod[n] ~= nil then
          rawset(mod, n, mod[n]:detach():to("float64"))
          mod[n].requires_grad = true
        end
      end
      for _, n in ipairs(mod._buffer_names) do
        if mod[n]:dtype() ~= "int64" then rawset(mod, n, mod[n]:to("float64")) end
      end
    end
  end)
  return m
end

describe("nn.Linear", function()
  it("computes x W^T + b (worked by hand)", function()
    local m = nn.Linear(2, 1)
    m:load_state_dict({ weight = crater.tensor({ { 2, -1 } }), bias = crater.tensor({ 0.5 }) })
    assert.same({ { 2.5 }, { 1.5 } }, m(crater.tensor({ { 1, 0 }, { 1, 1 } })):totable())
  end)

  it("starts weight and bias in U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's default)", function()
    crater.manual_seed(3)
    local m = nn.Linear(400, 300)
    local bound = 1 / math.sqrt(400)
    assert.is_true(m.weight:abs():max():item() <= bound)
    assert.is_true(m.weight:abs():max():item() > 0.95 * bound)
    -- the variance of U(-b, b) is b^2 / 3
    assert.near(bound * bound / 3, m.weight:var():item(), 0.05 * bound * bound / 3)
    assert.is_true(m.bias:abs():max():item() <= bound)
  end)

  it("names itself and both shapes on a size mismatch", function()
    assert.error_matches(function() nn.Linear(784, 10)(crater.zeros(2, 3)) end,
      "Linear: input {2,3} does not match weight {10,784}", 1, true)
  end)

  it("gradchecks in float64", function()
    local m = to64(nn.Linear(3, 2))
    assert.is_true(gradcheck(function(x, w, b) return F.linear(x, w, b) end, { rnd(4, 3), m.weight, m.bias }))
  end)
end)

describe("nn.Conv2d", function()
  for _, name in ipairs({ "conv2d", "conv2d nobias" }) do
    it("matches PyTorch: " .. name, function()
      local c = fx[name]
      local x, w = param(c.x), param(c.weight)
      local b = c.bias and param(c.bias) or nil
      local out = F.conv2d(x, w, b, { stride = c.stride, padding = c.padding })
      assert.same(c.out_shape, out:shape())
      H.close(out, c.out, 1e-10, "value")
      out:mul(H.t(c.R)):sum():backward()
      H.close(x.grad, c.gx, 1e-10, "input gradient")
      H.close(w.grad, c.gw, 1e-10, "weight gradient")
      if b then H.close(b.grad, c.gb, 1e-10, "bias gradient") end
    end)
  end

  it("keeps 28x28 with a 3x3 kernel and padding 1", function()
    local m = nn.Conv2d(1, 4, 3, { padding = 1 })
    assert.same({ 2, 4, 28, 28 }, m(crater.zeros(2, 1, 28, 28)):shape())
  end)

  it("starts with bias in U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = cin*kh*kw", function()
    crater.manual_seed(4)
    local m = nn.Conv2d(8, 64, 3)
    local bound = 1 / math.sqrt(8 * 9)
    assert.is_true(m.bias:abs():max():item() <= bound)
    assert.is_true(m.weight:abs():max():item() <= bound)
    assert.is_true(m.weight:abs():max():item() > 0.95 * bound)
  end)

  it("names itself and both shapes when channels differ", function()
    assert.error_matches(function() nn.Conv2d(3, 8, 3)(crater.zeros(1, 1, 5, 5)) end,
      "Conv2d: input {1,1,5,5} does not match weight {8,3,3,3}", 1, true)
  end)

  it("refuses a kernel larger than the input", function()
    assert.error_matches(function() nn.Conv2d(1, 1, 5)(crater.zeros(1, 1, 3, 3)) end,
      "kernel 5x5 (padding 0x0) is larger than the input {1,1,3,3}", 1, true)
  end)

  it("gradchecks in float64 (stride 2, padding 1, double backward through im2col)", function()
    local m = to64(nn.Conv2d(2, 3, 3, { stride = 2, padding = 1 }))
    assert.is_true(gradcheck(function(x, w, b) return F.conv2d(x, w, b, { stride = 2, padding = 1 }) end,
      { rnd(2, 2, 5, 4), m.weight, m.bias }))
    -- the gradient of the input gradient (create_graph) is again checked numerically
    assert.is_true(gradcheck(function(x)
      local y = F.conv2d(x, m.weight, m.bias, { stride = 2, padding = 1 })
      local g = crater.grad({ (y * y):sum() }, { x }, { create_graph = true })[1]
      return g
    end, { rnd(1, 2, 4, 4) }))
  end)
end)

describe("nn pooling", function()
  for _, c in ipairs(dofile("spec/fixtures/nn_layers.lua")) do
    if c.fn then
      it("matches PyTorch: " .. c.name, function()
        local x = param(c.x)
        local out = F[c.fn](x, c.k, { stride = c.stride, padding = c.padding })
        assert.same(c.out_shape, out:shape())
        H.close(out, c.out, 1e-12, "value")
        out:mul(H.t(c.R)):sum():backward()
        H.close(x.grad, c.gx, 1e-12, "gradient")
      end)
    end
  end

  it("MaxPool2d picks the window maxima (worked by hand)", function()
    local x = crater.tensor({ { { { 1, 2, 5, 0 }, { 3, 4, 1, 1 }, { 0, 0, 9, 8 }, { 7, 0, 8, 9 } } } })
    assert.same({ { { { 4, 5 }, { 7, 9 } } } }, nn.MaxPool2d(2)(x):totable())
    assert.same({ { { { 2.5, 1.75 }, { 1.75, 8.5 } } } }, nn.AvgPool2d(2)(x):totable())
  end)

  it("MaxPool2d(2): ties go to the first element, NaN wins wherever it sits (by hand)", function()
    local nan = 0 / 0
    for _, dt in ipairs({ "float32", "float64" }) do
      -- windows: a tie of 3s, a NaN last, a NaN first before a larger value, two NaNs
      local x = crater.tensor({ { { { 3, 1, 1, 0 }, { 3, 3, 2, nan } },
                                  { { nan, 9, nan, 1 }, { 8, 7, nan, 5 } } } }, { dtype = dt, requires_grad = true })
      local y = nn.MaxPool2d(2)(x)
      local v = y:totable()[1]
      assert.same({ 3 }, { v[1][1][1] })
      assert.is_true(v[1][1][2] ~= v[1][1][2] and v[2][1][1] ~= v[2][1][1] and v[2][1][2] ~= v[2][1][2])
      y:sum():backward()   -- the gradient lands on each window's winner, the first of its kind
      assert.same({ { { { 1, 0, 0, 0 }, { 0, 0, 0, 1 } }, { { 1, 0, 1, 0 }, { 0, 0, 0, 0 } } } }, x.grad:totable())
    end
  end)

  -- 2x2 windows at stride 2 have kernels of their own (16 windows at a time under a mask on
  -- AVX-512, 8 on AVX2, and a backward that writes gx once): against a scan of each window in
  -- Lua, on few distinct values (ties everywhere) and NaNs, odd and even sizes, rows of 1 to 18
  -- windows (7 and 14 as in the Fashion-MNIST CNN), and rows of 1 or 2 windows, whose
  -- vectors spill over several rows after them.
  it("MaxPool2d(2) against a scan in Lua: values, winners, second derivative, ties and NaN", function()
    local nan = 0 / 0
    local seed = 12345
    local function rand(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n end
    for _, dt in ipairs({ "float32", "float64" }) do
      for _, sz in ipairs({ { 2, 3, 6, 8 }, { 1, 2, 7, 9 }, { 2, 1, 5, 37 }, { 1, 1, 2, 2 }, { 3, 2, 4, 33 }, { 1, 2, 4, 28 }, { 2, 1, 5, 15 },
        { 4, 3, 6, 2 }, { 3, 2, 7, 3 }, { 2, 2, 9, 5 } }) do
        local b, c, h, w = sz[1], sz[2], sz[3], sz[4]
        local xv, rv = {}, {}   -- x: values 0..2 and NaN; r: the upstream gradient
        for i = 1, b do
          xv[i] = {}
          for j = 1, c do
            xv[i][j] = {}
            for p = 1, h do
              xv[i][j][p] = {}
              for q = 1, w do
                local v = rand(13)
                xv[i][j][p][q] = v == 0 and nan or v % 3
              end
            end
          end
        end
        local ho, wo = h // 2, w // 2
        for i = 1, b * c * ho * wo do rv[i] = rand(1000) / 100 - 5 end
        local x = crater.tensor(xv, { dtype = dt, requires_grad = true })
        local r = crater.tensor(rv, { dtype = dt, requires_grad = true }):view(b, c, ho, wo)
        local y = F.max_pool2d(x, 2)
        local gx = crater.grad((y * r):sum(), { x }, { create_graph = true })[1]
        local s = crater.randn({ b, c, h, w }, { dtype = dt })
        local gr = crater.grad((gx * s):sum(), { r })[1]   -- d/dr: s at each window's winner
        local yt, gxt, grt, st = y:totable(), gx:totable(), gr:totable(), s:totable()
        local hit = {}   -- inputs that won a window
        for i = 1, b do
          for j = 1, c do
            for p = 1, ho do
              for q = 1, wo do
                local bv, bp, bq = nil, nil, nil
                for dp = 0, 1 do
                  for dq = 0, 1 do
                    local v = xv[i][j][2 * p - 1 + dp][2 * q - 1 + dq]
                    if bv == nil or v > bv or (v ~= v and bv == bv) then bv, bp, bq = v, 2 * p - 1 + dp, 2 * q - 1 + dq end
                  end
                end
                local got = yt[i][j][p][q]
                assert(got == bv or (got ~= got and bv ~= bv), string.format("%s %s: y[%d][%d][%d][%d]", dt,
                  table.concat(sz, "x"), i, j, p, q))
                local ri = ((((i - 1) * c + j - 1) * ho + p - 1) * wo + q)
                hit[i .. "," .. j .. "," .. bp .. "," .. bq] = rv[ri]
                assert.are.equal(st[i][j][bp][bq], grt[i][j][p][q])
              end
            end
            for p = 1, h do
              for q = 1, w do
                local want = hit[i .. "," .. j .. "," .. p .. "," .. q] or 0
                local tol = dt == "float32" and 1e-6 * (1 + math.abs(want)) or 0
                assert(math.abs(gxt[i][j][p][q] - want) <= tol, string.format("%s %s: gx[%d][%d][%d][%d] = %g, expected %g",
                  dt, table.concat(sz, "x"), i, j, p, q, gxt[i][j][p][q], want))
              end
            end
          end
        end
      end
    end
  end)

  -- A tensor past the size split over threads, odd in height and width (rows of 28 windows:
  -- three vectors and a tail), against maxima over a view of its windows and the gradient
  -- that picks each window's winner (randn: no ties), on 1 and 2 threads.
  it("MaxPool2d(2) split over threads: against the windows' maxima and winners", function()
    local B, C, Hs, W = 4, 40, 63, 57
    local ho, wo = Hs // 2, W // 2
    crater.manual_seed(11)
    local x0, g = crater.randn(B, C, Hs, W), crater.randn(B, C, ho, wo)
    local crop = x0:narrow(3, 1, 2 * ho):narrow(4, 1, 2 * wo)
    local want = crop:reshape(B, C, ho, 2, wo, 2):max(6):max(4)
    local up = { B, C, ho, 2, wo, 2 }
    local win = crop:eq(want:view(B, C, ho, 1, wo, 1):expand(table.unpack(up)):reshape(B, C, 2 * ho, 2 * wo))
    local want_gx = win:float() * g:view(B, C, ho, 1, wo, 1):expand(table.unpack(up)):reshape(B, C, 2 * ho, 2 * wo)
    for _, nt in ipairs({ 1, 2 }) do
      crater.set_num_threads(nt)
      local x = x0:clone():requires_grad_()
      local y = F.max_pool2d(x, 2)
      y:backward(g)
      assert.equal(0, (y - want):abs():max():item())
      assert.equal(0, (x.grad:narrow(3, 1, 2 * ho):narrow(4, 1, 2 * wo) - want_gx):abs():max():item())
      assert.equal(0, x.grad:narrow(3, Hs, 1):abs():max():item())   -- the odd row and column: no window
      assert.equal(0, x.grad:narrow(4, W, 1):abs():max():item())
    end
    crater.set_num_threads(2)
  end)

  it("gradcheck in float64", function()
    local x = rnd(2, 2, 5, 5)
    assert.is_true(gradcheck(function(t) return F.max_pool2d(t, 3, { stride = 2, padding = 1 }) end, { x }))
    assert.is_true(gradcheck(function(t) return F.avg_pool2d(t, 2, { stride = 1 }) end, { x }))
  end)

  it("refuses a non-4-D input, naming the layer", function()
    assert.error_matches(function() nn.MaxPool2d(2)(crater.zeros(4, 4)) end,
      "MaxPool2d: expected a 4-D input (B,C,H,W), got {4,4}", 1, true)
  end)
end)

describe("nn activations, Flatten, Dropout", function()
  it("compute their formulas (worked by hand)", function()
    local x = crater.tensor({ -2, 0, 3 })
    assert.same({ 0, 0, 3 }, nn.ReLU()(x):totable())
    H.close(nn.LeakyReLU(0.1)(x), { -0.2, 0, 3 }, 1e-7)
    H.close(nn.Sigmoid()(crater.tensor({ 0 })), { 0.5 }, 1e-7)
    H.close(nn.Tanh()(crater.tensor({ 0 })), { 0 }, 1e-7)
    H.close(nn.Softmax(1)(crater.tensor({ 0, math.log(3) })), { 0.25, 0.75 }, 1e-6)
  end)

  it("GELU matches PyTorch (exact erf form)", function()
    local c = fx.gelu
    local x = param(c.x)
    local out = nn.GELU()(x)
    H.close(out, c.out, 1e-12)
    out:mul(H.t(c.R)):sum():backward()
    H.close(x.grad, c.gx, 1e-10)
  end)

  it("gradcheck in float64", function()
    local x = rnd(3, 4)
    for _, m in ipairs({ nn.ReLU(), nn.LeakyReLU(0.2), nn.Sigmoid(), nn.Tanh(), nn.GELU(), nn.Softmax(2),
                         nn.LogSoftmax(1), nn.Flatten(), nn.Identity() }) do
      assert.is_true(gradcheck(function(t) return m(t) end, { x }), m.__name)
    end
  end)

  it("Flatten keeps the batch dim by default", function()
    assert.same({ 2, 60 }, nn.Flatten()(crater.zeros(2, 3, 4, 5)):shape())
    assert.same({ 2, 3, 20 }, nn.Flatten({ start_dim = 3 })(crater.zeros(2, 3, 4, 5)):shape())
  end)

  it("Dropout zeroes about p of the elements, scales the rest by 1/(1-p), and is the identity in eval", function()
    crater.manual_seed(5)
    local d = nn.Dropout(0.25)
    local y = d(crater.ones(100, 100))
    local zeros = y:eq(0):sum():item()
    assert.is_true(zeros > 2200 and zeros < 2800)
    assert.near(4 / 3, y:max():item(), 1e-6)
    d:eval()
    assert.equal(10000, d(crater.ones(100, 100)):sum():item())
  end)

  it("Dropout gradchecks in float64 (the same mask on every evaluation)", function()
    local d = nn.Dropout(0.3)
    assert.is_true(gradcheck(function(t) crater.manual_seed(3); return d(t) end, { rnd(4, 5) }))
  end)

  it("Dropout refuses p outside [0, 1]", function()
    assert.error_matches(function() nn.Dropout(1.5) end, "Dropout: probability must be between 0 and 1, got 1.5", 1, true)
  end)
end)

describe("nn normalisation", function()
  for _, name in ipairs({ "BatchNorm1d", "BatchNorm2d" }) do
    it(name .. " matches PyTorch in training (output, gradients, running stats) and in eval", function()
      local c = fx[name]
      local m = to64(nn[name](3, { momentum = c.momentum }))
      crater.no_grad(function() m.weight:copy_(H.t(c.weight)); m.bias:copy_(H.t(c.bias)) end)
      local x = param(c.x)
      local out = m(x)
      H.close(out, c.out, 1e-10, "output")
      out:mul(H.t(c.R)):sum():backward()
      H.close(x.grad, c.gx, 1e-9, "input gradient")
      H.close(m.weight.grad, c.gw, 1e-9, "weight gradient")
      H.close(m.bias.grad, c.gb, 1e-9, "bias gradient")
      H.close(m.running_mean, c.running_mean, 1e-10, "running_mean")
      H.close(m.running_var, c.running_var, 1e-10, "running_var")
      assert.equal(1, m.num_batches_tracked:item())
      m:eval()
      H.close(m(H.t(c.x_eval)), c.out_eval, 1e-10, "eval output")
    end)
  end

  it("BatchNorm gradchecks in float64 (training mode)", function()
    local m1 = to64(nn.BatchNorm1d(3))
    assert.is_true(gradcheck(function(x, w, b) m1.weight, m1.bias = w, b; return m1(x) end,
      { rnd(5, 3), m1.weight, m1.bias }))
    local m2 = to64(nn.BatchNorm2d(2))
    assert.is_true(gradcheck(function(x) return m2(x) end, { rnd(3, 2, 2, 2) }))
  end)

  it("BatchNorm names the layer and the shapes on a channel mismatch", function()
    assert.error_matches(function() nn.BatchNorm2d(3)(crater.zeros(2, 4, 5, 5)) end,
      "BatchNorm2d: input {2,4,5,5} does not match num_features 3", 1, true)
  end)

  it("LayerNorm matches PyTorch", function()
    local c = fx.LayerNorm
    local m = to64(nn.LayerNorm({ 2, 3 }))
    crater.no_grad(function() m.weight:copy_(H.t(c.weight)); m.bias:copy_(H.t(c.bias)) end)
    local x = param(c.x)
    local out = m(x)
    H.close(out, c.out, 1e-10, "output")
    out:mul(H.t(c.R)):sum():backward()
    H.close(x.grad, c.gx, 1e-9, "input gradient")
    H.close(m.weight.grad, c.gw, 1e-9, "weight gradient")
    H.close(m.bias.grad, c.gb, 1e-9, "bias gradient")
  end)

  it("LayerNorm gradchecks in float64 and names a shape mismatch", function()
    local m = to64(nn.LayerNorm(4))
    assert.is_true(gradcheck(function(x, w, b) m.weight, m.bias = w, b; return m(x) end,
      { rnd(3, 4), m.weight, m.bias }))
    assert.error_matches(function() nn.LayerNorm(4)(crater.zeros(2, 5)) end,
      "LayerNorm: input {2,5} does not end in normalized_shape {4}", 1, true)
  end)
end)

describe("nn.Embedding", function()
  it("looks up 1-based rows and keeps the index shape", function()
    local e = nn.Embedding(4, 2)
    crater.no_grad(function() e.weight:copy_(crater.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 }, { 7, 8 } })) end)
    local y = e(crater.tensor({ { 4, 1 }, { 2, 2 } }, { dtype = "int64" }))
    assert.same({ { { 7, 8 }, { 1, 2 } }, { { 3, 4 }, { 3, 4 } } }, y:totable())
  end)

  it("accumulates gradients into the rows used (gradcheck in float64)", function()
    local w = rnd(5, 3)
    local idx = crater.tensor({ 2, 5, 2 }, { dtype = "int64" })
    local e = nn.Embedding(5, 3)
    assert.is_true(gradcheck(function(t) rawset(e, "weight", t); return e(idx) end, { w }))
  end)

  it("refuses an index out of range", function()
    assert.error_matches(function() nn.Embedding(3, 2)(crater.tensor({ 4 }, { dtype = "int64" })) end,
      "Embedding: index 4 out of range for 3 embeddings", 1, true)
  end)
end)

describe("nn.Sequential", function()
  it("gradchecks a small network end to end in float64", function()
    local net = to64(nn.Sequential(nn.Conv2d(1, 2, 3, { padding = 1 }), nn.Tanh(), nn.MaxPool2d(2),
      nn.Flatten(), nn.Linear(8, 3)))
    local ps = net:parameters()
    assert.is_true(gradcheck(function(x, ...)
      local args = { ... }
      for i, mod in ipairs({ net[1], net[5] }) do mod.weight, mod.bias = args[2 * i - 1], args[2 * i] end
      return net(x)
    end, { rnd(2, 1, 4, 4), ps[1], ps[2], ps[3], ps[4] }))
  end)

  it("refuses an argument that is not a module", function()
    assert.error_matches(function() nn.Sequential(nn.ReLU(), 42) end, "Sequential: argument #2 is not a module", 1, true)
  end)
end)
