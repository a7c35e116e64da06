-- The lab's command line as a user runs it: `crater race ...`, `crater sweep ...` and
-- `crater lrfind ...` (spec/distributed/world_spec.lua runs sweep under mpirun)
-- through the built executable (the Makefile builds it before the specs).
local EXE = (os.getenv("CRATER_BUILD") or "build") .. "/crater"

local function run(args)
  local p = io.popen(EXE .. " " .. args .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  return d
end

describe("crater race", function()
  it("prints its usage with --help", function()
    local out, code = run("race --help")
    assert.equal(0, code)
    assert.truthy(out:find("usage: crater race <function> [options]", 1, true))
    assert.truthy(out:find("--opt LIST", 1, true))
  end)

  it("races two optimizers and writes report.md with both and the settings", function()
    local dir = tmpdir()
    local out, code = run("race booth --opt sgd,adam:lr=0.1 --steps 30 --seed 3 --out " .. dir)
    assert.equal(0, code, out)
    local f = assert(io.open(dir .. "/report.md"))
    local report = f:read("a")
    f:close()
    assert.truthy(report:find("| sgd ", 1, true), report)
    assert.truthy(report:find("| adam ", 1, true), report)
    assert.truthy(report:find("lr = 0.1", 1, true) or report:find("lr=0.1", 1, true), report)
    assert.truthy(report:find("seed", 1, true))
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("names the known functions for an unknown one", function()
    local out, code = run("race nosuch")
    assert.not_equal(0, code)
    assert.truthy(out:find("unknown function 'nosuch' (known: rosenbrock, beale,", 1, true), out)
  end)

  it("names the known optimizers for an unknown one", function()
    local out, code = run("race rosenbrock --opt sgd,nosuch --steps 5 --out " .. tmpdir())
    assert.not_equal(0, code)
    assert.truthy(out:find("unknown optimizer 'nosuch' (known: sgd, momentum, nag,", 1, true), out)
  end)
end)

describe("crater lrfind", function()
  it("prints its usage with --help", function()
    local out, code = run("lrfind --help")
    assert.equal(0, code)
    assert.truthy(out:find("lrfind", 1, true))
  end)

  it("refuses a script that does not exist", function()
    local out, code = run("lrfind /nonexistent/script.lua")
    assert.not_equal(0, code)
    assert.truthy(out:find("/nonexistent/script.lua", 1, true), out)
  end)
end)

describe("crater sweep", function()
  it("prints its usage with --help", function()
    local out, code = run("sweep --help")
    assert.equal(0, code)
    assert.truthy(out:find("usage: crater sweep <function> --grid KEY=V1,V2,... [--grid ...] [options]", 1, true))
  end)

  it("sweeps a 2x2 grid over 2 seeds and writes report.md", function()
    local dir = os.tmpname()
    os.remove(dir)
    local out, code = run("sweep booth --opt momentum --grid lr=0.001,0.01 --grid momentum=0.5,0.9 " ..
      "--seeds 0,1 --steps 40 --out " .. dir)
    assert.equal(0, code, out)
    assert.truthy(out:find("booth: 4 setting(s) x 2 seed(s), final_loss", 1, true), out)
    for _, label in ipairs({"lr=0.001 momentum=0.5", "lr=0.001 momentum=0.9", "lr=0.01 momentum=0.5",
                            "lr=0.01 momentum=0.9"}) do
      assert.truthy(out:find("| " .. label .. " |", 1, true), label .. "\n" .. out)
    end
    local f = assert(io.open(dir .. "/report.md"))
    local report = f:read("a")
    f:close()
    assert.truthy(report:find("Sweep of momentum", 1, true), report)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("takes random draws", function()
    local out, code = run("sweep booth --random lr=log:1e-4:1e-1 --n 3 --steps 10 --out /tmp/crater-sweep-spec")
    os.execute("rm -rf /tmp/crater-sweep-spec")
    assert.equal(0, code, out)
    assert.truthy(out:find("booth: 3 setting(s) x 1 seed(s)", 1, true), out)
  end)

  it("refuses bad options with a usage hint", function()
    local out, code = run("sweep booth --grid lr")
    assert.equal(1, code)
    assert.truthy(out:find("crater sweep: --grid takes KEY=VALUES, got 'lr'", 1, true), out)
    out, code = run("sweep booth")
    assert.equal(1, code)
    assert.truthy(out:find("give --grid KEY=V1,V2,... or --random", 1, true), out)
    out = run("sweep booth --grid lr=1 --random lr=log:1:2")
    assert.truthy(out:find("give --grid or --random, not both", 1, true), out)
  end)
end)
