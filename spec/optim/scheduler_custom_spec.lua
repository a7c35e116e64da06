-- Custom schedules (LambdaLR with a Lua function, LRScheduler subclasses), trace(), and
-- the custom-schedule example.
local L = require "crater.optim.lr_scheduler"

local function opt1(lr)
  return {param_groups = {{lr = lr or 1, momentum = 0.9}}, defaults = {lr = lr or 1, momentum = 0.9}}
end

describe("custom schedules", function()
  it("LambdaLR takes the function directly, or in an options table", function()
    local a = L.trace(function(o) return L.LambdaLR(o, function(e) return 1 / (e + 1) end) end, 4)
    local b = L.trace(function(o) return L.LambdaLR(o, {lr_lambda = function(e) return 1 / (e + 1) end}) end, 4)
    assert.same({0.1, 0.1 * (1 / 2), 0.1 * (1 / 3), 0.1 * (1 / 4)}, a)
    assert.same(a, b)
  end)

  it("a subclass overriding get_lr() steps, resumes and names itself", function()
    local Halve = L.LRScheduler:extend("Halve")
    function Halve:get_lr()
      local out = {}
      for i, base in ipairs(self.base_lrs) do out[i] = base * 0.5 ^ self.last_epoch end
      return out
    end
    local opt = opt1(8)
    local s = Halve(opt)
    assert.same({8}, s:get_last_lr())
    s:step(); s:step()
    assert.same({2}, s:get_last_lr())
    assert.are.equal(2, opt.param_groups[1].lr)
    assert.are.equal(8, opt.param_groups[1].initial_lr)
    local sd = s:state_dict()
    assert.are.equal("Halve", sd._class)
    assert.are.equal(2, sd.last_epoch)
    local opt2 = opt1(8)
    local s2 = Halve(opt2)
    s2:load_state_dict(sd)
    s2:step()
    assert.are.equal(1, opt2.param_groups[1].lr)
    assert.matches("^Halve%(last_epoch=3, lr={1}%)$", tostring(s2))
    assert.is_true(L._LRScheduler == L.LRScheduler)
  end)

  it("extend() with defaults gives checked options stored on the scheduler", function()
    local Warm = L.LRScheduler:extend("Warm", {warmup = 4, floor = 0.0})
    function Warm:get_lr()
      local f = math.max(self.floor, math.min(1, (self.last_epoch + 1) / self.warmup))
      return {self.base_lrs[1] * f}
    end
    assert.same({0.25, 0.5, 0.75, 1, 1}, L.trace(function(o) return Warm(o) end, 5, {lr = 1}))
    assert.same({0.5, 1, 1}, L.trace(function(o) return Warm(o, {warmup = 2}) end, 3, {lr = 1}))
    assert.error_matches(function() Warm(opt1(), {warmpu = 2}) end, 'Warm: unknown option "warmpu"', 1, true)
    assert.error_matches(function() Warm(opt1(), {warmup = "2"}) end, 'Warm: warmup must be a number, got "2"', 1, true)
    -- a subclass of a subclass inherits the defaults and adds its own
    local Warm2 = Warm:extend("Warm2", {floor = 0.6})
    assert.same({0.6, 0.6, 0.75, 1}, L.trace(function(o) return Warm2(o) end, 4, {lr = 1}))
  end)

  it("a subclass that forgets get_lr(), or returns the wrong list, gets a clear error", function()
    local Bad = L.LRScheduler:extend("Bad")
    assert.error_matches(function() Bad(opt1()) end,
      "Bad: get_lr() is not implemented; a subclass of LRScheduler must override it", 1, true)
    local Short = L.LRScheduler:extend("Short")
    function Short.get_lr() return {} end
    local opt = {param_groups = {{lr = 1}, {lr = 2}}}
    assert.error_matches(function() Short(opt) end,
      "Short: get_lr() must return a list of 2 learning rates, got 0 values", 1, true)
    assert.same({{lr = 1}, {lr = 2}}, opt.param_groups)
  end)

  it("a subclass's closed form serves step(epoch)", function()
    local Lin = L.LRScheduler:extend("Lin")
    function Lin:get_lr() return {self.optimizer.param_groups[1].lr - 0.1} end
    function Lin:_get_closed_form_lr() return {self.base_lrs[1] - 0.1 * self.last_epoch} end
    local opt = opt1(1)
    local s = Lin(opt)
    s:step(5)
    assert.are.equal(1 - 0.1 * 5, opt.param_groups[1].lr)
  end)
end)

describe("trace", function()
  it("returns the lr in effect at each of the steps, a flat list for one group", function()
    local lrs = L.trace(function(o) return L.StepLR(o, {step_size = 2, gamma = 0.5}) end, 6, {lr = 1})
    assert.same({1, 1, 0.5, 0.5, 0.25, 0.25}, lrs)
  end)

  it("returns a list per group, and momentum as a second result", function()
    local lrs, moms = L.trace(function(o)
      return L.CyclicLR(o, {base_lr = 0.1, max_lr = 0.5, step_size_up = 2})
    end, 5, {groups = 2})
    assert.are.equal(2, #lrs)
    -- triangular, up in 2 steps and down in 2 (by hand): 0.1, 0.3, 0.5, 0.3, 0.1
    for g = 1, 2 do
      assert.are.equal(5, #lrs[g])
      for t, want in ipairs {0.1, 0.3, 0.5, 0.3, 0.1} do assert.near(want, lrs[g][t], 1e-15) end
      for t, want in ipairs {0.9, 0.85, 0.8, 0.85, 0.9} do assert.near(want, moms[g][t], 1e-15) end
    end
  end)

  it("uses betas[1] as the momentum of an Adam-like stand-in", function()
    local _, moms = L.trace(function(o) return L.OneCycleLR(o, {max_lr = 1, total_steps = 4}) end, 4,
                            {betas = {0.9, 0.99}})
    assert.are.equal(0.95, moms[1])
  end)

  it("runs OneCycleLR over exactly total_steps steps", function()
    local lrs = L.trace(function(o) return L.OneCycleLR(o, {max_lr = 1, total_steps = 100}) end, 100)
    assert.are.equal(100, #lrs)
    assert.near(1 / 25, lrs[1], 1e-15)
    assert.near(1 / 25 / 1e4, lrs[100], 1e-15)
  end)

  it("feeds ReduceLROnPlateau the metric function's values", function()
    local lrs = L.trace(function(o) return L.ReduceLROnPlateau(o, {patience = 1, factor = 0.5}) end, 6,
                        {lr = 1, metric = function() return 3 end})
    -- best is set at step 1; bad steps 2 and 3 exceed patience 1 at step 3: lr halves after it
    assert.same({1, 1, 1, 0.5, 0.5, 0.25}, lrs)
  end)

  it("refuses a factory that does not return a scheduler", function()
    assert.error_matches(function() L.trace(function() return 1 end, 3) end,
      "trace: s_factory returned 1, not a scheduler", 1, true)
    assert.error_matches(function() L.trace(nil, 3) end,
      "trace: s_factory must be a function(opt) returning a scheduler, got nil", 1, true)
  end)
end)

describe("examples/custom_schedule.lua", function()
  it("runs and prints the same Transformer schedule both ways", function()
    local lines = {}
    local real_print = print
    _G.print = function(...) lines[#lines + 1] = table.concat({...}, "\t") end
    local ok, err = pcall(dofile, "examples/custom_schedule.lua")
    _G.print = real_print
    assert.is_true(ok, err)
    local out = "\n" .. table.concat(lines, "\n")
    local rows = 0
    for step, a, b in out:gmatch("\n%s*(%d+)%s+(%S+)%s+(%S+)") do
      rows = rows + 1
      local s = tonumber(step)
      local want = 512 ^ -0.5 * math.min(s ^ -0.5, s * 4000 ^ -1.5)
      assert.are.equal(a, b)
      assert.near(want, tonumber(a), want * 1e-6)
    end
    assert.is_true(rows >= 5)
  end)
end)
