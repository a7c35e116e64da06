/* crater binding: luaopen_crater_core, the C half of `require "crater"`.  Each area adds its
 * public functions to one table, crater.core, and its internals (optimizer kernels, file
 * readers, autograd and test hooks) to crater.core.internal; lua/crater/init.lua builds the
 * public module on crater.core. */
#include <time.h>

#include "lbind.h"

int luaopen_crater_core(lua_State *L);

/* crater.clock(): monotonic seconds, for benchmarks and the lab's wall times */
static int t_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
  return 1;
}

const ct_lua_capi ct_lua_capi_table = {
    CT_LUA_CAPI_VERSION, ct_lua_test,   ct_lua_newbox, ct_tensor_new,
    ct_shape_str,        ct_dtype_name, ct_inplace_ok,
};

int luaopen_crater_core(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, t_clock);
  lua_setfield(L, -2, "clock");
  lua_pushlightuserdata(L, (void *)&ct_lua_capi_table);
  lua_setfield(L, -2, "capi");
  lua_newtable(L); /* crater.core.internal: what the Lua modules use and scripts should not */
  lua_setfield(L, -2, "internal");
  ct_lua_open_tensor(L);
  ct_lua_open_autograd(L);
  ct_lua_open_optim(L);
  ct_lua_open_data(L);
  ct_lua_open_nn(L);
  ct_lua_open_fuse(L);
  return 1;
}
