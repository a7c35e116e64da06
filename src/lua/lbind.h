/* crater binding internals shared by the src/lua files files: boxes holding tensors,
 * and the open functions that add each area's C functions to crater.core. */
#ifndef CT_LBIND_H
#define CT_LBIND_H

#include <lauxlib.h>
#include <lua.h>

#include "../ops/ops.h"

#define CT_TENSOR_MT "crater.Tensor"

/* The tensor at idx (borrowed); raises "bad argument #idx ... (crater.Tensor expected)". */
ct_tensor *ct_lua_check(lua_State *L, int idx);
/* The tensor at idx, or NULL when idx is not a tensor. */
ct_tensor *ct_lua_test(lua_State *L, int idx);
/* Pushes an empty box (its metatable set) and returns its slot: fill it with a new
 * reference right after; the box owns it from then on (created first so a raise
 * between allocation and push cannot leak). */
ct_tensor **ct_lua_newbox(lua_State *L);
/* Before the box at idx lets its tensor go (finalizer, to-be-closed): the Lua values kept
 * for its tensor or nodes (hooks, Functions' backwards) move where the C side can still
 * find them while a graph holds those (src/lua/lautograd.c). */
void ct_lua_hand_over(lua_State *L, int idx);
/* The box at idx, whose user value table is at uv, now keeps Lua values: it must hand them
 * over when it goes (a box has no finaliser of its own: src/lua/ltensor.c). */
void ct_lua_box_keeps_values(lua_State *L, int idx, int uv);
/* Releases the tensors of the boxes freed since the last call (boxes are freed without a
 * finaliser; their tensors wait for the next box or this). */
void ct_lua_release_dead(void);
/* L is closing: the autograd binding stops calling into it. */
void ct_lua_autograd_close(lua_State *L);
/* Pushes t, taking over the caller's reference; raises "fn: msg" when t is NULL. */
int ct_lua_push(lua_State *L, ct_tensor *t, const char *fn, ct_err *err);
/* Raises "fn: err->msg". */
int ct_lua_error(lua_State *L, const char *fn, ct_err *err);
/* The length of the list at idx, argument 'what' of fn: a table whose length (its __len
 * too) is an integer from 0 to max and, for a plain table, with no hole (elements 1..n
 * all set, none beyond).  Raises "fn: what ..." otherwise.  Elements are the caller's to
 * check: a __len table may still answer nil. */
lua_Integer ct_lua_list(lua_State *L, int idx, lua_Integer max, const char *fn, const char *what);
/* Parses a dtype name at idx ("float32", "float64", "int64"), or dflt when nil. */
ct_dtype ct_lua_dtype(lua_State *L, int idx, ct_dtype dflt);

/* One Lua function of the binding (the op table's rows, ops.def, and the rest): its name,
 * C function, the integer its closure holds as upvalue 1 (-1: none; upvalue 2 is then the
 * name), where it goes (kind: CT_METHOD x:<name>(), CT_FUNCTION crater.core.<name>, both,
 * CT_INTERNAL crater.core.internal.<name> only; 0: nowhere) and, for an in-place method without a flag, the most arguments
 * it takes after x (more are refused before it runs; -1: no check). */
enum { CT_METHOD = 1, CT_FUNCTION = 2, CT_BOTH = 3, CT_INTERNAL = 4 };
typedef struct ct_lua_reg {
  const char *name;
  lua_CFunction f;
  int flag, kind, nargs;
} ct_lua_reg;
/* Registers n of them into the method table at methods, the table at core (crater.core) and,
 * for CT_INTERNAL, core.internal only. */
void ct_lua_register(lua_State *L, int methods, int core, const ct_lua_reg *r, size_t n);
/* Sets pub (may be NULL) into the crater.core table at the top of the stack and internal
 * into its core.internal: the binding files' plain luaL_Reg lists. */
void ct_lua_setfuncs(lua_State *L, const luaL_Reg *pub, const luaL_Reg *internal);

/* What a separately built module (crater.distributed, which links MPI) needs of the core,
 * as a table of functions: crater.core.capi is a light userdata pointing at it.  Such a
 * module does not link libcrater.a (that would be a second core, with its own allocator
 * and autograd mode); it reaches this core's functions through here. */
#define CT_LUA_CAPI_VERSION 1
typedef struct ct_lua_capi {
  int version; /* CT_LUA_CAPI_VERSION */
  ct_tensor *(*test)(lua_State *L, int idx); /* ct_lua_test */
  ct_tensor **(*newbox)(lua_State *L); /* ct_lua_newbox */
  ct_tensor *(*tensor_new)(ct_dtype dt, int ndim, const int64_t *shape, ct_err *err);
  char *(*shape_str)(char *buf, int ndim, const int64_t *shape);
  const char *(*dtype_name)(ct_dtype dt);
  int (*inplace_ok)(const ct_tensor *x, ct_err *err); /* ct_inplace_ok */
} ct_lua_capi;
extern const ct_lua_capi ct_lua_capi_table;

/* Each adds its functions to the table on top of the stack (crater.core). */
void ct_lua_open_tensor(lua_State *L);
void ct_lua_open_autograd(lua_State *L);
void ct_lua_open_optim(lua_State *L); /* src/lua/loptim.c */
void ct_lua_open_data(lua_State *L); /* src/lua/ldata.c: IDX reader, checkpoint I/O */
void ct_lua_open_nn(lua_State *L); /* src/lua/lnn.c: conv/pool kernels */
void ct_lua_open_fuse(lua_State *L); /* src/lua/lfuse.c: crater.fuse's programs */

#endif
