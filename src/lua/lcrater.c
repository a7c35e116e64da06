/* crater binding: luaopen_crater_core, the C half of `require "crater"`.  Each area
 * adds its functions to one table; lua/crater/init.lua builds the public module on it. */
#include "lbind.h"

int luaopen_crater_core(lua_State *L);

int luaopen_crater_core(lua_State *L) {
  lua_newtable(L);
  ct_lua_open_tensor(L);
  ct_lua_open_autograd(L);
  ct_lua_open_optim(L);
  ct_lua_open_data(L);
  ct_lua_open_nn(L);
  return 1;
}
