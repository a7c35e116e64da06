local crater = require "crater"
local nn = crater.nn

local function same_values(a, b) return (a - b):abs():max():item() == 0 end
local X, Y

-- every path made here is removed after the specs, even those a failing save left
local made = {}
local function tmp()
  local p = os.tmpname()
  made[#made + 1] = p
  return p
end

local function read(p) local f = io.open(p, "rb"); local s = f:read("a"); f:close(); return s end
local function write(p, s) local f = io.open(p, "wb"); f:write(s); f:close() end

describe("crater.save / crater.load", function()
  teardown(function() for _, p in ipairs(made) do os.remove(p) end end)

  it("round-trips tensors of every dtype and nested tables of numbers, strings and booleans", function()
    local p = tmp()
    local value = {
      a = crater.tensor({ { 1.5, -2 }, { 3, 4 } }),
      b = crater.tensor({ 1e-300, 0.1 }, { dtype = "float64" }),
      c = crater.tensor({ -3, 2 ^ 40 }, { dtype = "int64" }),
      s = crater.tensor(7),
      e = crater.zeros(0, 3),
      nested = { list = { 1, 2.5, "three", true, false }, [7] = "seven", deep = { { {} } } },
      n = 2 ^ 53 + 1, f = 0.1, str = "bin\0ary",
    }
    crater.save(p, value)
    local v = crater.load(p)
    assert.same({ { 1.5, -2 }, { 3, 4 } }, v.a:totable())
    assert.equal("float32", v.a:dtype())
    assert.same({ 1e-300, 0.1 }, v.b:totable())
    assert.equal("int64", v.c:dtype())
    assert.same({ -3, 2 ^ 40 }, v.c:totable())
    assert.same({}, v.s:shape())
    assert.equal(7, v.s:item())
    assert.same({ 0, 3 }, v.e:shape())
    assert.same({ list = { 1, 2.5, "three", true, false }, [7] = "seven", deep = { { {} } } }, v.nested)
    assert.equal(math.type(value.n), math.type(v.n))
    assert.equal(value.n, v.n)
    assert.equal(0.1, v.f)
    assert.equal("bin\0ary", v.str)
    os.remove(p)
  end)

  it("saves a transposed view by its values and keeps requires_grad", function()
    local p = tmp()
    local w = crater.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, { requires_grad = true })
    crater.save(p, { t = w:detach():t(), w = w })
    local v = crater.load(p)
    assert.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, v.t:totable())
    assert.is_true(v.w.requires_grad)
    os.remove(p)
  end)

  it("writes the documented header: magic, version 1, body length, CRC-32", function()
    local p = tmp()
    crater.save(p, true)
    local s = read(p)
    local magic, version, len, crc = string.unpack("<c8I4I8I4", s)
    assert.equal("CRATER\0\1", magic)
    assert.equal(1, version)
    assert.equal(2, len)                      -- "b" and the byte 1
    assert.equal("b\1", s:sub(25))
    assert.equal(crater.core.internal.crc32("b\1"), crc)
    os.remove(p)
  end)

  it("refuses what it cannot store, naming the place", function()
    assert.error_matches(function() crater.save(tmp(), { a = { f = print } }) end,
      "save: cannot save a function (at value.a.f)", 1, true)
    local t = {}
    t.self = t
    assert.error_matches(function() crater.save(tmp(), t) end, "contains itself", 1, true)
  end)

  describe("bad files are clear errors", function()
    local p = tmp()
    crater.save(p, { w = crater.randn(4, 5), step = 3, name = "mlp" })
    local good = read(p)

    it("every truncation", function()
      local q = tmp()
      for n = 0, #good - 1, 7 do
        write(q, good:sub(1, n))
        assert.error_matches(function() crater.load(q) end, "load: " .. q .. ": ", 1, true)
      end
      os.remove(q)
    end)

    it("every single-byte flip", function()
      local q = tmp()
      for i = 1, #good do
        local b = good:byte(i) ~ 0x20
        write(q, good:sub(1, i - 1) .. string.char(b) .. good:sub(i + 1))
        local ok, err = pcall(crater.load, q)
        assert.is_false(ok, "byte " .. i)
        assert.matches("load: ", err)
      end
      os.remove(q)
    end)

    it("a foreign file and an unknown version", function()
      local q = tmp()
      write(q, "\137PNG\r\n\26\n and then some image data")
      assert.error_matches(function() crater.load(q) end, "not a crater checkpoint (bad magic)", 1, true)
      write(q, good:sub(1, 8) .. string.pack("<I4", 9) .. good:sub(13))
      assert.error_matches(function() crater.load(q) end, "unsupported checkpoint format version 9", 1, true)
      assert.error_matches(function() crater.load(q .. ".missing") end, "load: cannot open", 1, true)
      os.remove(q)
    end)

    it("a well-formed body that lies about a tensor's size (checksum recomputed)", function()
      -- a tensor header claiming 2^40 elements, with a valid CRC over the lie
      local body = string.pack("<c1BBBi8", "t", 0, 0, 1, 1 << 40)
      local s = string.pack("<c8I4I8I4", "CRATER\0\1", 1, #body, crater.core.internal.crc32(body)) .. body
      local q = tmp()
      write(q, s)
      assert.error_matches(function() crater.load(q) end, "corrupt checkpoint", 1, true)
      os.remove(q)
    end)
  end)

  it("leaves the previous file intact when a save fails midway", function()
    local p = tmp()
    crater.save(p, { v = 1 })
    assert.has_error(function() crater.save(p, { v = 2, bad = coroutine.create(print) }) end)
    assert.equal(1, crater.load(p).v)
    os.remove(p)
  end)

  it("resumes training bit-identically (model, Adam, StepLR, data order, dropout draws)", function()
    local function setup()
      crater.manual_seed(0)
      local net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 3))
      local opt = crater.optim.Adam(net:parameters(), { lr = 1e-2 })
      local sched = crater.optim.lr_scheduler.StepLR(opt, { step_size = 2, gamma = 0.5 })
      local loader = crater.data.DataLoader(X, Y, { batch_size = 8, shuffle = true, seed = 5 })
      return net, opt, sched, loader
    end
    crater.manual_seed(42)
    X, Y = crater.randn(40, 6), crater.randint(1, 4, { 40 })
    -- each epoch reseeds the generator (Dropout) from its number, as the examples do
    local function epoch(e, net, opt, sched, loader)
      crater.manual_seed(1000 + e)
      for xb, yb in loader:iter() do
        opt:zero_grad()
        nn.CrossEntropyLoss()(net(xb), yb):backward()
        opt:step()
      end
      sched:step()
    end
    local net, opt, sched, loader = setup()
    for e = 1, 4 do epoch(e, net, opt, sched, loader) end
    local straight = net:state_dict()

    local p = tmp()
    net, opt, sched, loader = setup()
    for e = 1, 2 do epoch(e, net, opt, sched, loader) end
    crater.save(p, { model = net:state_dict(), optim = opt:state_dict(), sched = sched:state_dict(),
                     epoch = loader.epoch })
    local ck = crater.load(p)
    net, opt, sched, loader = setup()          -- fresh objects, as a new process would have
    net:load_state_dict(ck.model)
    opt:load_state_dict(ck.optim)
    sched:load_state_dict(ck.sched)
    loader:set_epoch(ck.epoch)
    for e = ck.epoch + 1, 4 do epoch(e, net, opt, sched, loader) end
    assert.near(1e-2 * 0.25, sched:get_last_lr()[1], 1e-15)
    for name, t in pairs(straight) do
      assert.is_true(same_values(t, net:state_dict()[name]), name)
    end
    os.remove(p)
  end)
end)
