--- The course (`make tutorial`): runs every examples/tutorial/NN_*.lua in order and writes
-- one page, out/tutorial/index.html, with each section's text, pictures and script.
-- A script returns {title=, text={paragraphs}, figures={svg figures}, facts={...}}; the
-- facts are the numbers its lesson rests on, which spec/tutorial_spec.lua checks.
-- Usage: crater examples/tutorial/build.lua [output folder]
local crater = rawget(_G, "crater") or require "crater"
local html = require "crater.lab.html"

local here = (arg and arg[0] or "examples/tutorial/build.lua"):match("^(.*)/[^/]*$") or "."
local out = (arg and arg[1]) or "out/tutorial"

local scripts = {}
local p = io.popen("ls '" .. here .. "'")
for name in p:lines() do
  if name:match("^%d%d_.*%.lua$") then scripts[#scripts + 1] = name end
end
p:close()
table.sort(scripts)

local toc, body = {}, {}
local t0 = crater.clock()
for i, name in ipairs(scripts) do
  local path = here .. "/" .. name
  local f = assert(io.open(path))
  local source = f:read("a")
  f:close()
  local s = dofile(path)
  local id = "s" .. i
  toc[#toc + 1] = string.format('<li><a href="#%s">%s</a></li>', id, html.escape(s.title))
  body[#body + 1] = string.format('<h2 id="%s">%d. %s</h2>', id, i, html.escape(s.title))
  for _, t in ipairs(s.text or {}) do body[#body + 1] = "<p>" .. html.escape(t) .. "</p>" end
  for _, fig in ipairs(s.figures or {}) do body[#body + 1] = fig end
  body[#body + 1] = string.format("<details><summary><code>%s</code></summary><pre><code>%s</code></pre></details>",
    html.escape(path), html.escape(source))
  print(string.format("  %-34s %.1f s", name, crater.clock() - t0))
end

os.execute("mkdir -p '" .. out:gsub("'", "'\\''") .. "'")
local page = table.concat({"<h1>Optimization, run: a course in crater</h1>",
  "<p>Each section is a short Lua script in <code>examples/tutorial/</code> and the picture it draws. Run one with "
  .. "<code>build/crater examples/tutorial/NN_name.lua</code>, change it, and rebuild this page with "
  .. "<code>make tutorial</code>. Untick a curve's name in a legend to hide it.</p>",
  "<ol>" .. table.concat(toc) .. "</ol>", table.concat(body, "\n")}, "\n")
html.write(out .. "/index.html", html.document("crater: the course", page))
print("tutorial: " .. out .. "/index.html")
