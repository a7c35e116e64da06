--- The optimizer step's cache of validated options (used by Optimizer:check_step).
-- Why it exists: a step must refuse bad options (a negative lr, betas out of range)
-- before it changes anything, but most steps change no option, and running every rule
-- of `validate` at every step cost more than the fused update itself on small problems
-- (the Rosenbrock loop: two parameters, one kernel call). So each group is validated
-- once, and later steps only ask "is every option still what passed?".
-- How: `unchanged_test` compiles, from the group's validated values, a Lua function that
-- compares each option with that value (a literal where it has an exact one, else an
-- upvalue, so a replaced table differs) and each entry of a plain table (so
-- `group.betas[1] = 0.8` differs too; one level deep, as betas and etas are).
-- What it costs: one `load` of a short chunk per group whenever its options change (a
-- scheduler changing lr every step pays it every step, about as much as validating), and
-- the compiled test costs a third of a loop over the keys on a step that changes nothing.
local M = {}

--- The option names of a class (its defaults' keys), sorted: the order of the tests.
function M.keys(defaults)
  local keys = {}
  for k in pairs(defaults) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- A value as a Lua literal when it has an exact one (numbers that are finite, booleans,
-- strings), else nil: the compiled test compares with constants where it can.
local function literal(v)
  local t = type(v)
  if t == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    if v == v and v ~= math.huge and v ~= -math.huge then return string.format("%.17g", v) end
  elseif t == "boolean" or t == "nil" then
    return tostring(v)
  elseif t == "string" then
    return string.format("%q", v)
  end
end

--- Returns a function of a group that is true while every option named in `keys` (and
-- every entry of an option that is a plain table) still holds the value it has now.
-- A table option is read once, into a local, and a value without a literal is an upvalue of
-- its own: each costs the test a table read less (a third of Adam's test went to them).
function M.unchanged_test(group, keys)
  local values, names, locals, tests = {}, {}, {}, {}
  local function expect(expr, v)
    local lit = literal(v)
    if lit == nil then
      values[#values + 1] = v
      names[#names + 1] = "v" .. #values
      lit = names[#names]
    end
    tests[#tests + 1] = expr .. " == " .. lit
  end
  for _, k in ipairs(keys) do
    local v, field = group[k], string.format("g[%q]", k)
    if type(v) == "table" and getmetatable(v) == nil then
      local t = "t" .. (#locals + 1)
      locals[#locals + 1] = string.format("local %s = %s", t, field)
      expect(t, v)
      tests[#tests + 1] = string.format("#%s == %d", t, #v)
      for j = 1, #v do expect(string.format("%s[%d]", t, j), v[j]) end
    else
      expect(field, v)
    end
  end
  local test = #tests > 0 and table.concat(tests, " and ") or "true"
  local src = string.format("local %s = ... return function(g) %s return %s end",
    #names > 0 and table.concat(names, ", ") or "_", table.concat(locals, " "), test)
  return assert(load(src, "=(optimizer options)", "t"))(table.unpack(values, 1, #values))
end

return M
