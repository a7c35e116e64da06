/* libFuzzer target for the foreign-file readers (crater.safetensors, crater.npy and
 * crater.npz, lua/crater/ on top of crater.core): byte 1 of an input picks the reader
 * (its value mod 3: safetensors, .npy, .npz), the rest is written to a file that reader
 * loads, in one long-lived Lua state.  A Lua error is the expected answer to a bad file;
 * a crash, a sanitizer report or accounted C memory still live after a full collection
 * is a bug.  Run from the repository root (it loads the files under lua/crater). */
#include <unistd.h>

#include "lua_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL) {
    snprintf(path, sizeof path, "/tmp/crater-interop-fuzz.%d", (int)getpid());
    L = lua_fuzz_open("interop_fuzz",
                      "local readers = {require('crater.safetensors').load, require('crater.npy').load,\n"
                      "                 require('crater.npz').load}\n"
                      "return function(path, s)\n"
                      "  local f = assert(io.open(path, 'wb'))\n"
                      "  f:write(s:sub(2))\n"
                      "  f:close()\n"
                      "  return readers[(s:byte(1) or 0) % 3 + 1](path)\n"
                      "end");
  }
  int64_t before = ct_memory().bytes;
  lua_pushstring(L, path);
  lua_pushlstring(L, (const char *)data, size);
  lua_fuzz_call(L, "interop_fuzz", 2, before);
  return 0;
}
