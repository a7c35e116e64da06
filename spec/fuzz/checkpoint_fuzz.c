/* libFuzzer target for the checkpoint reader (lua/crater/checkpoint.lua, on top of
 * crater.core): each input goes to checkpoint.loads in one long-lived Lua state.  A Lua
 * error is the expected answer to a bad file; a crash, a sanitizer report or accounted
 * C memory still live after a full collection is a bug.  Run from the repository root
 * (it loads the files under lua/crater).  Byte 1 of an input picks the mode: even, the rest is a
 * whole file; odd, the rest is a body wrapped in a valid header. */
#include "lua_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL)
    L = lua_fuzz_open("checkpoint_fuzz",
                      "local loads = require('crater.checkpoint').loads\n"
                      "local crc32 = require('crater.core').crc32\n"
                      /* byte 1 odd: the rest is a body, given a valid header and checksum
                       * so that mutations get past the CRC to the decoder */
                      "return function(s)\n"
                      "  local body = s:sub(2)\n"
                      "  if (s:byte(1) or 0) % 2 == 0 then return loads(body) end\n"
                      "  return loads(string.pack('<c8I4I8I4', 'CRATER\\0\\1', 1, #body, crc32(body)) .. body)\n"
                      "end");
  int64_t before = ct_memory().bytes;
  lua_pushlstring(L, (const char *)data, size);
  lua_fuzz_call(L, "checkpoint_fuzz", 1, before);
  return 0;
}
