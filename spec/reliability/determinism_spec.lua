-- Determinism: the same seed gives a bitwise-identical loss curve and final weights, run
-- after run, with one thread and with two (OpenBLAS and crater's own loops).
local crater = require "crater"
local memcheck = require "spec.helpers.memcheck"

local nn = crater.nn

-- trains a small MLP for 'steps' steps and returns its losses (Lua numbers, compared with
-- ==) and its final weights as raw bytes
local function train(seed, threads, steps)
  crater.set_num_threads(threads)
  crater.manual_seed(seed)
  local net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 10))
  local opt = crater.optim.Adam(net:parameters(), {lr = 1e-3, weight_decay = 1e-4})
  local x, y = crater.randn(512, 64), crater.randint(1, 11, {512})
  local lossf = nn.CrossEntropyLoss()
  local losses = {}
  for s = 1, steps do
    local i = (s - 1) % 4 * 128 + 1
    local xb, yb = x:narrow(1, i, 128), y:narrow(1, i, 128)
    opt:zero_grad()
    local loss = lossf(net(xb), yb)
    loss:backward()
    opt:step()
    losses[s] = loss:item()
  end
  local bytes = {}
  for k, v in pairs(net:state_dict()) do bytes[k] = crater.core.internal.bytes(v) end
  return losses, bytes
end

describe("determinism", function()
  memcheck.hooks(before_each, after_each)
  local saved = crater.get_num_threads()
  teardown(function() crater.set_num_threads(saved) end)

  for _, threads in ipairs({1, 2}) do
    it("repeats a training run bit for bit with " .. threads .. " thread(s)", function()
      local l1, w1 = train(7, threads, 30)
      local l2, w2 = train(7, threads, 30)
      assert.equal(30, #l1)
      for s = 1, 30 do assert.equal(l1[s], l2[s], "loss at step " .. s) end
      for k, b in pairs(w1) do assert.is_true(b == w2[k], "weights " .. k .. " differ") end
      assert.is_true(l1[30] < l1[1], "the run did not train")
    end)
  end

  it("gives another curve for another seed (the check above is not vacuous)", function()
    local a = train(7, 1, 3)
    local b = train(8, 1, 3)
    assert.are_not.equal(a[1], b[1])
  end)
end)
