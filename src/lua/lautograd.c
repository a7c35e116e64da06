/* crater binding: backward, crater.grad, grad mode, hooks, anomaly mode, memory and
 * thread settings. */
#include <string.h>

#include "lbind.h"

static lua_State *hook_state;   /* the state hooks run in (crater is single-threaded) */
static const char HOOKS_KEY = 'h';   /* registry[&HOOKS_KEY] = { [handle] = {fn, ...} } */
static int next_hook = 1;

static void push_hooks(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &HOOKS_KEY) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &HOOKS_KEY);
  }
}

/* Runs every hook of 'handle' on grad; a hook returning a tensor replaces it. */
static int call_hooks(int handle, ct_tensor *grad, ct_tensor **out, ct_err *err) {
  lua_State *L = hook_state;
  int top = lua_gettop(L);
  push_hooks(L);
  lua_rawgeti(L, -1, handle);
  int list = lua_gettop(L);
  ct_tensor *cur = grad;
  ct_tensor_retain(cur);
  for (lua_Integer i = 1; lua_rawgeti(L, list, i) == LUA_TFUNCTION; i++) {
    ct_tensor **box = ct_lua_newbox(L);
    ct_tensor_retain(cur);
    *box = cur;
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      ct_fail(err, "hook failed: %s", lua_tostring(L, -1));
      ct_tensor_release(cur);
      lua_settop(L, top);
      return 0;
    }
    ct_tensor *r = ct_lua_test(L, -1);
    if (r) {
      ct_tensor_retain(r);
      ct_tensor_release(cur);
      cur = r;
    } else if (!lua_isnil(L, -1)) {
      ct_fail(err, "hook must return nil or a tensor, got %s", luaL_typename(L, -1));
      ct_tensor_release(cur);
      lua_settop(L, top);
      return 0;
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  if (cur == grad) { ct_tensor_release(cur); *out = NULL; }
  else *out = cur;
  return 1;
}

static int t_register_hook(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!x->requires_grad)
    return luaL_error(L, "register_hook: cannot register a hook on a tensor that doesn't require grad");
  int *slot = x->grad_fn ? &x->grad_fn->hook : &x->hook;
  push_hooks(L);
  if (*slot == 0) {
    *slot = next_hook++;
    lua_newtable(L);
    lua_rawseti(L, -2, *slot);
  }
  lua_rawgeti(L, -1, *slot);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  return 0;
}

/* x:retain_grad(): a non-leaf's gradient is kept in its .grad by the next backwards, as
 * a leaf's (summed over backwards); on a leaf it does nothing. */
static int t_retain_grad(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  if (ct_view_stale(x) && !ct_view_refresh(x, &err)) return ct_lua_error(L, "retain_grad", &err);
  if (!x->requires_grad)
    return luaL_error(L, "retain_grad: can't retain the gradient of a tensor that doesn't require grad");
  if (x->grad_fn) x->grad_fn->retain_out = x;
  lua_settop(L, 1);
  return 1;
}

static bool opt_bool(lua_State *L, int idx, const char *key, bool dflt) {
  if (!lua_istable(L, idx)) return dflt;
  lua_getfield(L, idx, key);
  bool v = lua_isnil(L, -1) ? dflt : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* x:backward(grad?, {retain_graph=, create_graph=}) */
static int t_backward(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_tensor *g = ct_lua_test(L, 2);
  int opts = g ? 3 : (lua_istable(L, 2) ? 2 : 3);
  if (!g && !lua_isnoneornil(L, 2) && !lua_istable(L, 2)) return luaL_typeerror(L, 2, "crater.Tensor, table or nil");
  bool create = opt_bool(L, opts, "create_graph", false);
  bool retain = opt_bool(L, opts, "retain_graph", create);
  ct_err err;
  hook_state = L;
  if (!ct_backward(1, &x, &g, retain, create, 0, NULL, NULL, &err)) return ct_lua_error(L, "backward", &err);
  return 0;
}

/* crater.grad(outputs, inputs, {grad_outputs=, create_graph=, retain_graph=, allow_unused=}) */
static int t_grad(lua_State *L) {
  ct_tensor *outs[64], *ins[256], *gouts[64] = {0}, *res[256];
  int no = 0, ni = 0;
  if (ct_lua_test(L, 1)) { outs[0] = ct_lua_check(L, 1); no = 1; }
  else {
    luaL_checktype(L, 1, LUA_TTABLE);
    no = (int)luaL_len(L, 1);
    if (no > 64) return luaL_error(L, "grad: at most 64 outputs");
    for (int i = 0; i < no; i++) { lua_geti(L, 1, i + 1); outs[i] = ct_lua_check(L, -1); lua_pop(L, 1); }
  }
  bool single = ct_lua_test(L, 2) != NULL;
  if (single) { ins[0] = ct_lua_check(L, 2); ni = 1; }
  else {
    luaL_checktype(L, 2, LUA_TTABLE);
    ni = (int)luaL_len(L, 2);
    if (ni > 256) return luaL_error(L, "grad: at most 256 inputs");
    for (int i = 0; i < ni; i++) { lua_geti(L, 2, i + 1); ins[i] = ct_lua_check(L, -1); lua_pop(L, 1); }
  }
  if (ni == 0) return luaL_error(L, "grad: inputs is empty");
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "grad_outputs");
    if (ct_lua_test(L, -1)) gouts[0] = ct_lua_test(L, -1);
    else if (lua_istable(L, -1))
      for (int i = 0; i < no; i++) { lua_geti(L, -1, i + 1); gouts[i] = ct_lua_test(L, -1); lua_pop(L, 1); }
    lua_pop(L, 1);
  }
  bool create = opt_bool(L, 3, "create_graph", false);
  bool retain = opt_bool(L, 3, "retain_graph", create);
  bool allow_unused = opt_bool(L, 3, "allow_unused", false);
  ct_err err;
  hook_state = L;
  if (!ct_backward(no, outs, gouts, retain, create, ni, ins, res, &err)) return ct_lua_error(L, "grad", &err);
  lua_createtable(L, ni, 0);
  int list = lua_gettop(L);
  for (int i = 0; i < ni; i++) {   /* box every result first, so a raise below leaks nothing */
    if (res[i] == NULL) continue;
    ct_tensor **box = ct_lua_newbox(L);
    *box = res[i];
    lua_rawseti(L, list, i + 1);
  }
  for (int i = 0; i < ni; i++)
    if (res[i] == NULL && !allow_unused)
      return luaL_error(L, "grad: input %d was not used in the graph (pass allow_unused=true)", i + 1);
  return 1;
}

/* crater.no_grad(fn, ...) / crater.enable_grad(fn, ...): run fn with recording set,
 * restoring the previous mode even when fn raises. */
static int run_with_mode(lua_State *L, bool mode) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  bool saved = ct_grad_enabled;
  ct_grad_enabled = mode;
  int n = lua_gettop(L) - 1;
  int status = lua_pcall(L, n, LUA_MULTRET, 0);
  ct_grad_enabled = saved;
  if (status != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}
static int t_no_grad(lua_State *L) { return run_with_mode(L, false); }
static int t_enable_grad(lua_State *L) { return run_with_mode(L, true); }
static int t_set_grad_enabled(lua_State *L) {
  lua_pushboolean(L, ct_grad_enabled);
  ct_grad_enabled = lua_toboolean(L, 1);
  return 1;
}
static int t_is_grad_enabled(lua_State *L) { lua_pushboolean(L, ct_grad_enabled); return 1; }
static int t_set_anomaly(lua_State *L) {
  lua_pushboolean(L, ct_anomaly_enabled);
  ct_anomaly_enabled = lua_toboolean(L, 1);
  return 1;
}

static int t_memory(lua_State *L) {
  ct_memstat m = ct_memory();
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, m.bytes);
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, m.tensors);
  lua_setfield(L, -2, "tensors");
  lua_pushinteger(L, m.peak_bytes);
  lua_setfield(L, -2, "peak_bytes");
  return 1;
}
static int t_reset_peak(lua_State *L) { ct_memory_reset_peak(); return 0; }

static int t_fail_alloc(lua_State *L) {
  ct_debug_fail_alloc(luaL_optinteger(L, 1, -1), lua_toboolean(L, 2));
  return 0;
}

static int t_set_num_threads(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1, 1, "the number of threads must be at least 1");
  ct_set_num_threads((int)n);
  return 0;
}
static int t_get_num_threads(lua_State *L) { lua_pushinteger(L, ct_get_num_threads()); return 1; }

/* raw bytes of a tensor (contiguous, native little-endian) and back: for checkpoints */
static int t_storage_bytes(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  ct_tensor *c = ct_contig(x, false, &err);
  if (c == NULL) return ct_lua_error(L, "bytes", &err);
  lua_pushlstring(L, ct_data(c), (size_t)ct_numel(c) * ct_dtype_size(c->dtype));
  ct_tensor_release(c);
  return 1;
}

static int t_from_bytes(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  ct_dtype dt = ct_lua_dtype(L, 2, CT_F32);
  luaL_checktype(L, 3, LUA_TTABLE);
  int64_t shape[CT_MAXDIM];
  int n = (int)luaL_len(L, 3);
  if (n > CT_MAXDIM) return luaL_error(L, "from_bytes: too many dims");
  for (int i = 0; i < n; i++) {
    lua_geti(L, 3, i + 1);
    shape[i] = (int64_t)luaL_checkinteger(L, -1);
    if (shape[i] < 0) return luaL_error(L, "from_bytes: negative size");
    lua_pop(L, 1);
  }
  ct_err err;
  ct_tensor **box = ct_lua_newbox(L);
  if ((*box = ct_tensor_new(dt, n, shape, &err)) == NULL) return ct_lua_error(L, "from_bytes", &err);
  size_t need = (size_t)ct_numel(*box) * ct_dtype_size(dt);
  if (need != len) return luaL_error(L, "from_bytes: %d bytes for %d needed", (int)len, (int)need);
  memcpy((*box)->storage->data, s, len);
  return 1;
}

void ct_lua_open_autograd(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"grad", t_grad}, {"no_grad", t_no_grad}, {"enable_grad", t_enable_grad},
    {"set_grad_enabled", t_set_grad_enabled}, {"is_grad_enabled", t_is_grad_enabled},
    {"set_anomaly", t_set_anomaly}, {"memory", t_memory}, {"reset_peak_memory", t_reset_peak},
    {"fail_alloc", t_fail_alloc}, {"set_num_threads", t_set_num_threads},
    {"get_num_threads", t_get_num_threads}, {"from_bytes", t_from_bytes},
    {"backward", t_backward}, {"register_hook", t_register_hook}, {"bytes", t_storage_bytes},
    {"retain_grad", t_retain_grad},
    {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  hook_state = L;
  ct_hook_call = call_hooks;
  lua_getfield(L, -1, "Tensor");   /* methods too */
  lua_pushcfunction(L, t_backward);
  lua_setfield(L, -2, "backward");
  lua_pushcfunction(L, t_register_hook);
  lua_setfield(L, -2, "register_hook");
  lua_pushcfunction(L, t_retain_grad);
  lua_setfield(L, -2, "retain_grad");
  lua_pop(L, 1);
}
