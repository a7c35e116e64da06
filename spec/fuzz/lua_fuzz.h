/* What the fuzz targets that drive crater's Lua code share: a long-lived Lua state with
 * crater.core preloaded and lua/crater on the path (run from the repository root), and
 * the leak check after each input.  Header-only: each target is one translation unit. */
#ifndef CT_LUA_FUZZ_H
#define CT_LUA_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "../../src/core/tensor.h"

int luaopen_crater_core(lua_State *L);

/* A new state in which chunk has run; the function it returns is the global "fuzz_input".
 * Aborts, naming target, when the chunk fails. */
static lua_State *lua_fuzz_open(const char *target, const char *chunk) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_crater_core);
  lua_setfield(L, -2, "crater.core");
  lua_pop(L, 1);
  if (luaL_dostring(L, "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path") != LUA_OK ||
      luaL_dostring(L, chunk) != LUA_OK) {
    fprintf(stderr, "%s: %s (run from the repository root)\n", target, lua_tostring(L, -1));
    abort();
  }
  lua_setglobal(L, "fuzz_input");
  return L;
}

/* Calls fuzz_input with the nargs values on top of the stack (a result or an error: both
 * fine), collects twice, and aborts when accounted C memory is not back to before. */
static void lua_fuzz_call(lua_State *L, const char *target, int nargs, int64_t before) {
  lua_getglobal(L, "fuzz_input");
  lua_insert(L, -nargs - 1);
  lua_pcall(L, nargs, 1, 0);
  lua_pop(L, 1);
  lua_gc(L, LUA_GCCOLLECT, 0);
  lua_gc(L, LUA_GCCOLLECT, 0);
  if (ct_memory().bytes != before) {
    fprintf(stderr, "%s: %lld bytes leaked\n", target, (long long)(ct_memory().bytes - before));
    abort();
  }
}

#endif
