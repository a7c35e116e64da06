local crater = require "crater"

describe("crater.autograd.queue_callback", function()
  it("runs queued callbacks in order once every gradient is accumulated", function()
    local a = crater.tensor({1, 2}, {requires_grad = true})
    local b = crater.tensor({3}, {requires_grad = true})
    local log = {}
    a:register_hook(function()
      log[#log + 1] = "hook"
      crater.autograd.queue_callback(function() log[#log + 1] = "first " .. a.grad:sum():item() end)
      crater.autograd.queue_callback(function() log[#log + 1] = "second " .. b.grad:item() end)
    end)
    ;((a * 5):sum() + b * 7):sum():backward()
    -- a.grad = {5, 5} (sum 10) and b.grad = 7 are both in place when the callbacks run
    assert.same({"hook", "first 10.0", "second 7.0"}, log)
  end)

  it("runs a callback once: the next backward starts with an empty queue", function()
    local a = crater.tensor({1}, {requires_grad = true})
    local calls, queued = 0, false
    a:register_hook(function()
      if not queued then queued = true; crater.autograd.queue_callback(function() calls = calls + 1 end) end
    end)
    ;(a * 2):sum():backward()
    ;(a * 2):sum():backward()
    assert.equal(1, calls)
  end)

  it("backward_running is true in a hook of backward, false in one of crater.grad", function()
    local a = crater.tensor({1, 2}, {requires_grad = true})
    local seen = {}
    a:register_hook(function() seen[#seen + 1] = crater.autograd.backward_running() end)
    ;(a * 3):sum():backward()
    crater.grad((a * 3):sum(), {a})
    assert.same({true, false}, seen)
    assert.is_false(crater.autograd.backward_running())
  end)

  it("is an error outside a backward", function()
    assert.error_matches(function() crater.autograd.queue_callback(function() end) end,
      "queue_callback: no backward is running (call it from a hook)", 1, true)
  end)

  it("drops the queue of a backward that failed", function()
    local a = crater.tensor({1}, {requires_grad = true})
    local ran = false
    a:register_hook(function()
      crater.autograd.queue_callback(function() ran = true end)
      error("hook fails")
    end)
    assert.has_error(function() (a * 2):sum():backward() end)
    assert.is_false(ran)
  end)

  it("raises from backward what a callback raised", function()
    local a = crater.tensor({1}, {requires_grad = true})
    a:register_hook(function() crater.autograd.queue_callback(function() error("callback says no") end) end)
    assert.error_matches(function() (a * 2):sum():backward() end, "callback says no")
  end)
end)
