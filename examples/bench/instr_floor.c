/* For `make bench-instr` only: what a 2-element add costs Lua before crater does anything.
 * A userdata whose __add does nothing (returns its first operand: the metamethod call
 * alone), and one whose __add makes a new userdata shaped like crater's tensor box (32
 * bytes, one user value, a metatable): the call, the object and its collection.  instr.lua
 * runs both as `a + b` loops beside crater's add. */
#include <lauxlib.h>
#include <lua.h>

static int returns_first(lua_State *L) {
  lua_settop(L, 1);
  return 1;
}

static int new_box(lua_State *L) {
  lua_newuserdatauv(L, 32, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, -2);
  return 1;
}

/* instr_floor.call(), instr_floor.box(): an operand of each kind */
int luaopen_instr_floor(lua_State *L) {
  lua_newtable(L);
  lua_newtable(L); /* the call's metatable */
  lua_pushcfunction(L, returns_first);
  lua_setfield(L, -2, "__add");
  lua_pushcclosure(L, new_box, 1);
  lua_setfield(L, -2, "call");
  lua_newtable(L); /* the box's metatable: __add and the maker share it */
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, new_box, 1);
  lua_setfield(L, -2, "__add");
  lua_pushcclosure(L, new_box, 1);
  lua_setfield(L, -2, "box");
  return 1;
}
