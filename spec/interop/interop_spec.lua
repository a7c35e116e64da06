-- PyTorch and NumPy files in crater (issue #22): the fixtures of spec/fixtures/gen_interop.py,
-- written by PyTorch 1.13 and NumPy, must load with the values those give; crater's own
-- files must be the bytes that the generator read back with NumPy and PyTorch.
local crater = require "crater"
local memcheck = require "spec.helpers.memcheck"
local writer = require "spec.fixtures.interop_write"
local fx = require "spec.fixtures.interop"

local DIR = "spec/fixtures/interop"
local nn = crater.nn

local function flat(t)
  local out, v = {}, t:contiguous():view(-1)
  for i = 1, t:numel() do out[i] = v:get(i) end
  return out
end

local function read(p) local f = assert(io.open(p, "rb")); local s = f:read("a"); f:close(); return s end

-- |got - want| <= tol for every element (helpers.close scales tol by 1 + |want|)
local function max_abs_diff(t, expected)
  local got, worst = t:totable(), 0
  for i, row in ipairs(expected) do
    for j, v in ipairs(row) do worst = math.max(worst, math.abs(got[i][j] - v)) end
  end
  return worst
end

describe("crater.safetensors and a PyTorch-trained MLP", function()
  memcheck.hooks(before_each, after_each)

  it("gives PyTorch's outputs to 1e-6 once its state dict is loaded", function()
    local net = writer.mlp()
    net:load_state_dict(crater.safetensors.load(DIR .. "/mlp_f32.safetensors"), {torch_names = true})
    net:eval()
    local out = net(crater.tensor(fx.x))
    assert.same({5, 3}, out:shape())
    assert.is_true(max_abs_diff(out, fx.out32) < 1e-6, "max difference " .. max_abs_diff(out, fx.out32))
  end)

  it("loads every tensor of the state dict with its values, dtype and shape", function()
    local sd, meta = crater.safetensors.load(DIR .. "/mlp_f32.safetensors")
    assert.same({format = "pt"}, meta)
    local n = 0
    for name, want in pairs(fx.state) do
      n = n + 1
      local t = sd[name]
      assert.is_not_nil(t, name)
      assert.same(want.shape, t:shape(), name)
      assert.equal(name:match("num_batches") and "int64" or "float32", t:dtype(), name)
      assert.same(want.values, flat(t), name)
    end
    local m = 0
    for _ in pairs(sd) do m = m + 1 end
    assert.equal(n, m)
    assert.equal(200, sd["1.num_batches_tracked"]:item())
  end)

  it("loads F64 tensors bit for bit: the float64 MLP by hand matches PyTorch's float64 output to 1e-12", function()
    local sd, meta = crater.safetensors.load(DIR .. "/mlp_f64.safetensors")
    assert.equal("float64", meta.dtype)
    for name, t in pairs(sd) do
      assert.equal(name:match("num_batches") and "int64" or "float64", t:dtype(), name)
    end
    local x = crater.tensor(fx.x, {dtype = "float64"})
    local h = x:matmul(sd["0.weight"]:t()) + sd["0.bias"]
    h = (h - sd["1.running_mean"]) / (sd["1.running_var"] + 1e-5):sqrt() * sd["1.weight"] + sd["1.bias"]
    local out = h:relu():matmul(sd["3.weight"]:t()) + sd["3.bias"]
    assert.is_true(max_abs_diff(out, fx.out64) < 1e-12, "max difference " .. max_abs_diff(out, fx.out64))
  end)

  it("gives PyTorch's float64 outputs to 1e-12 in a float64 Sequential (m:double())", function()
    local net = writer.mlp():double()
    net:load_state_dict(crater.safetensors.load(DIR .. "/mlp_f64.safetensors"), {torch_names = true})
    net:eval()
    assert.equal("float64", net[1].weight:dtype())
    local out = net(crater.tensor(fx.x, {dtype = "float64"}))
    assert.equal("float64", out:dtype())
    assert.is_true(max_abs_diff(out, fx.out64) < 1e-12, "max difference " .. max_abs_diff(out, fx.out64))
  end)

  it("reads only the named tensors", function()
    local sd = crater.safetensors.load(DIR .. "/mlp_f32.safetensors", {"3.bias", "0.weight"})
    local keys = {}
    for k in pairs(sd) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same({"0.weight", "3.bias"}, keys)
    assert.same(fx.state["3.bias"].values, flat(sd["3.bias"]))
    assert.error_matches(function() crater.safetensors.load(DIR .. "/mlp_f32.safetensors", {"0.weight", "9.bias"}) end,
      'no tensor named "9.bias"', 1, true)
  end)

  it("converts F16 and BF16 to float32 exactly and widens the integers and BOOL to int64", function()
    local t, meta = crater.safetensors.load(DIR .. "/dtypes.safetensors")
    assert.same({made_by = "gen_interop.py"}, meta)
    local float = {f16 = true, bf16 = true, empty = true, scalar = true}
    for name, want in pairs(fx.dtypes) do
      local got = t[name]
      assert.is_not_nil(got, name)
      assert.equal(name == "f64" and "float64" or float[name] and "float32" or "int64", got:dtype(), name)
      assert.same(want, got:totable(), name)
    end
    assert.same({0, 3}, t.empty:shape())
    assert.same({}, t.scalar:shape())
    assert.equal(math.mininteger, t.i64:get(3))   -- all 64 bits, not through a double
    assert.equal((1 << 62) + 1, t.i64:get(1))
  end)

  it("info lists names, dtypes and shapes without reading tensors", function()
    local info = crater.safetensors.info(DIR .. "/dtypes.safetensors")
    assert.same({dtype = "BF16", shape = {5}}, info.bf16)
    assert.same({dtype = "U32", shape = {2}}, info.u32)
  end)
end)

describe("crater.npy and crater.npz on NumPy's files", function()
  memcheck.hooks(before_each, after_each)

  it("loads every .npy case (v1, v2, v3; little and big endian; C and Fortran order; every dtype)", function()
    local n, seen = 0, {}
    for file, want in pairs(fx.npy) do
      local t = crater.npy.load(DIR .. "/" .. file)
      assert.equal(want.dtype, t:dtype(), file)
      assert.same(want.shape, t:shape(), file)
      assert.same(want.values, flat(t), file)
      n = n + 1
      seen[file:match("_(v%d)") or ""] = true
      if want.fortran then seen.fortran = true end
      if file:match("big") then seen.big = true end
    end
    assert.is_true(n >= 25)
    assert.is_true(seen.v1 and seen.v2 and seen.v3 and seen.fortran and seen.big)
  end)

  it("reads a Fortran-order array in numpy's index order (checked by hand on i8_fortran_v2)", function()
    -- numpy: np.arange(24).reshape(2, 3, 4) - 10, stored column-major
    local t = crater.npy.load(DIR .. "/i8_fortran_v2.npy")
    assert.equal(-10, t:get(1, 1, 1))
    assert.equal(1 * 12 + 2 * 4 + 3 - 10, t:get(2, 3, 4))
    assert.equal(0 * 12 + 1 * 4 + 2 - 10, t:get(1, 2, 3))
  end)

  for _, file in ipairs({"stored.npz", "deflated.npz"}) do
    it("loads " .. file .. " (np." .. (file == "stored.npz" and "savez" or "savez_compressed") .. ")", function()
      local d = crater.npz.load(DIR .. "/" .. file)
      local n = 0
      for name, want in pairs(fx.npz) do
        n = n + 1
        assert.equal(want.dtype, d[name]:dtype(), name)
        assert.same(want.shape, d[name]:shape(), name)
        assert.same(want.values, flat(d[name]), name)
      end
      local m = 0
      for _ in pairs(d) do m = m + 1 end
      assert.equal(n, m)
      local only = crater.npz.load(DIR .. "/" .. file, {"idx"})
      assert.same(fx.npz.idx.values, flat(only.idx))
      assert.is_nil(only.w)
    end)
  end

  it("refuses object arrays (pickles) and the dtypes it cannot hold, naming the field", function()
    local cases = {
      object = "field 'descr' is \"|O\": object arrays (pickles) are refused",
      structured = "field 'descr': structured dtypes",
      complex = "field 'descr' is \"<c8\": complex dtypes are not supported",
      unicode = "field 'descr' is \"<U2\": unicode-string dtypes are not supported",
      u8 = "field 'descr': \"<u8\" is not a dtype crater reads",
    }
    for name, msg in pairs(cases) do
      local p = DIR .. "/refused_" .. name .. ".npy"
      assert.error_matches(function() crater.npy.load(p) end, "npy.load: " .. p .. ": " .. msg, 1, true)
    end
  end)
end)

describe("files crater writes", function()
  memcheck.hooks(before_each, after_each)
  local dir
  setup(function() dir = io.popen("mktemp -d"):read("l") end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("are byte for byte the crater_* files that gen_interop.py read back with NumPy and PyTorch", function()
    writer.write(dir, DIR)
    local names = {"crater_arrays.safetensors", "crater_mlp.safetensors", "crater_stored.npz", "crater_deflated.npz",
                   "crater_a32.npy", "crater_a64.npy", "crater_i64.npy", "crater_a32t.npy"}
    for _, n in ipairs(names) do
      assert.is_true(read(dir .. "/" .. n) == read(DIR .. "/" .. n), n .. " differs from the committed file")
    end
  end)

  it("round-trip through every format with dtype, shape and values (empty, 0-d, views, int64 extremes)", function()
    local ts = {
      f = crater.randn(3, 5):t(),
      d = crater.tensor({{1 / 3, -1e-310}, {1e300, 0}}, {dtype = "float64"}),
      i = crater.tensor({math.mininteger, math.maxinteger, 0}, {dtype = "int64"}),
      e = crater.zeros(0, 4),
      s = crater.tensor(2.5),
    }
    local st = dir .. "/rt.safetensors"
    crater.safetensors.save(st, ts, {note = "é \"quoted\" \n"})
    local back, meta = crater.safetensors.load(st)
    assert.same({note = "é \"quoted\" \n"}, meta)
    crater.npz.save(dir .. "/rt.npz", ts)
    crater.npz.save(dir .. "/rtc.npz", ts, {compress = true})
    local z, zc = crater.npz.load(dir .. "/rt.npz"), crater.npz.load(dir .. "/rtc.npz")
    for k, t in pairs(ts) do
      crater.npy.save(dir .. "/rt.npy", t)
      for _, got in ipairs({back[k], z[k], zc[k], crater.npy.load(dir .. "/rt.npy")}) do
        assert.equal(t:dtype(), got:dtype(), k)
        assert.same(t:shape(), got:shape(), k)
        assert.same(t:totable(), got:totable(), k)
      end
    end
  end)

  it("refuse what no format here can hold, naming the argument", function()
    assert.error_matches(function() crater.safetensors.save(dir .. "/x", {["__metadata__"] = crater.zeros(1)}) end,
      "safetensors.save: tensor name __metadata__ must be", 1, true)
    assert.error_matches(function() crater.safetensors.save(dir .. "/x", {a = 1}) end,
      'safetensors.save: value of "a" is a number, not a tensor', 1, true)
    assert.error_matches(function() crater.safetensors.save(dir .. "/x", {}, {k = 1}) end,
      "safetensors.save: metadata must map UTF-8 strings to UTF-8 strings (key k)", 1, true)
    assert.error_matches(function() crater.npy.save(dir .. "/x", {}) end, "npy.save: expected a tensor, got table", 1, true)
    assert.error_matches(function() crater.npz.save(dir .. "/x", {a = "b"}) end,
      'npz.save: value of "a" is a string, not a tensor', 1, true)
    assert.error_matches(function() crater.npy.save(dir .. "/x\0y", crater.zeros(1)) end,
      "npy.save: the path contains a NUL byte", 1, true)
    assert.is_nil(io.open(dir .. "/x"))
  end)
end)

describe("load_state_dict with torch_names", function()
  memcheck.hooks(before_each, after_each)

  local function snapshot(net)
    local out = {}
    for k, t in pairs(net:state_dict()) do out[k] = t:clone() end
    return out
  end
  local function unchanged(net, before)
    for k, t in pairs(net:state_dict()) do assert.same(before[k]:totable(), t:totable(), k .. " changed") end
  end

  it("drops the prefixes of PyTorch's wrappers (DataParallel's module., torch.compile's _orig_mod.)", function()
    local sd = crater.safetensors.load(DIR .. "/mlp_f32.safetensors")
    local wrapped = {}
    for k, t in pairs(sd) do wrapped[(k:match("^0") and "module." or "_orig_mod.") .. k] = t end
    local net = writer.mlp()
    net:load_state_dict(wrapped, {torch_names = true})
    assert.same(fx.state["3.weight"].values, flat(net[4].weight))
    assert.error_matches(function()
      net:load_state_dict({["module.0.bias"] = sd["0.bias"], ["0.bias"] = sd["0.bias"]}, {torch_names = true})
    end, "load_state_dict: keys", 1, true)
  end)

  it("names the missing and unexpected keys and changes nothing", function()
    local net = writer.mlp()
    local before = snapshot(net)
    local sd = crater.safetensors.load(DIR .. "/mlp_f32.safetensors")
    sd["4.weight"], sd["3.bias"] = sd["3.bias"], nil
    assert.error_matches(function() net:load_state_dict(sd, {torch_names = true}) end,
      "missing keys: 3.bias; unexpected keys: 4.weight", 1, true)
    unchanged(net, before)
  end)

  it("names the key and both shapes on a shape mismatch and changes nothing", function()
    local net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    local before = snapshot(net)
    assert.error_matches(function()
      net:load_state_dict(crater.safetensors.load(DIR .. "/mlp_f32.safetensors"), {torch_names = true})
    end, "load_state_dict: size mismatch for 3.weight: checkpoint {3,8}, model {2,8}; "
      .. "size mismatch for 3.bias: checkpoint {3}, model {2}", 1, true)
    unchanged(net, before)
    local ok, err = pcall(net.load_state_dict, net, crater.safetensors.load(DIR .. "/mlp_f32.safetensors", nil),
      {torch_names = true, strict = false})
    assert.is_false(ok)
    assert.matches("checkpoint {3", err, 1, true)
    unchanged(net, before)
  end)
end)
