-- Lets `luarocks make` build and install crater where LuaRocks is present (Debian
-- packages it); everything it needs comes from Debian packages, nothing is downloaded.
rockspec_format = "3.0"
package = "crater"
version = "0.1.0-1"
source = { url = "git+file://." }
description = {
  summary = "An optimization lab for Lua: tensors, autograd, PyTorch-exact optimizers and schedulers",
  license = "MIT",
}
dependencies = { "lua >= 5.4, < 5.5" }
build = {
  type = "make",
  build_variables = { OPT = "-O3 -march=native" },
  install_variables = { PREFIX = "$(PREFIX)", LUADIR = "$(LUADIR)", LIBDIR = "$(LIBDIR)" },
}
