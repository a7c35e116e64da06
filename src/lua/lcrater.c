/* crater binding: luaopen_crater_core, the C half of `require "crater"`.  Each area
 * adds its functions to one table; lua/crater/init.lua builds the public module on it. */
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

int luaopen_crater_core(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, t_clock);
  lua_setfield(L, -2, "clock");
  ct_lua_open_tensor(L);
  ct_lua_open_autograd(L);
  ct_lua_open_optim(L);
  ct_lua_open_data(L);
  ct_lua_open_nn(L);
  return 1;
}
