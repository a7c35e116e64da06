/* libFuzzer target for the checkpoint reader (lua/crater/checkpoint.lua, on top of
 * crater.core): each input goes to checkpoint.loads in one long-lived Lua state.  A Lua
 * error is the expected answer to a bad file; a crash, a sanitizer report or accounted
 * C memory still live after a full collection is a bug.  Run from the repository root
 * (it loads the files under lua/crater).  Byte 1 of an input picks the mode: even, the rest is a
 * whole file; odd, the rest is a body wrapped in a valid header. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "../../src/core/tensor.h"

int luaopen_crater_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

static void setup(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_crater_core);
  lua_setfield(L, -2, "crater.core");
  lua_pop(L, 1);
  if (luaL_dostring(L, "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path\n"
                       "local loads = require('crater.checkpoint').loads\n"
                       "local crc32 = require('crater.core').crc32\n"
                       /* byte 1 odd: the rest is a body, given a valid header and checksum
                        * so that mutations get past the CRC to the decoder */
                       "return function(s)\n"
                       "  local body = s:sub(2)\n"
                       "  if (s:byte(1) or 0) % 2 == 0 then return loads(body) end\n"
                       "  return loads(string.pack('<c8I4I8I4', 'CRATER\\0\\1', 1, #body, crc32(body)) .. body)\n"
                       "end") != LUA_OK) {
    fprintf(stderr, "checkpoint_fuzz: %s (run from the repository root)\n", lua_tostring(L, -1));
    abort();
  }
  lua_setglobal(L, "loads");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL) setup();
  int64_t before = ct_memory().bytes;
  lua_getglobal(L, "loads");
  lua_pushlstring(L, (const char *)data, size);
  lua_pcall(L, 1, 1, 0);   /* a value or an error message: both fine */
  lua_pop(L, 1);
  lua_gc(L, LUA_GCCOLLECT, 0);
  lua_gc(L, LUA_GCCOLLECT, 0);
  if (ct_memory().bytes != before) {
    fprintf(stderr, "checkpoint_fuzz: %lld bytes leaked\n", (long long)(ct_memory().bytes - before));
    abort();
  }
  return 0;
}
