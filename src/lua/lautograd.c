/* crater binding: backward, crater.grad, grad mode, hooks, anomaly mode, memory and
 * thread settings. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lbind.h"

/* ---- Lua values kept for tensors and nodes: hook lists, Functions' backwards ----
 * The C struct keeps an id (x->hook, nd->hook, nd->lua_state).  The value lives in the user
 * value of the box it was attached through (OWNERS[id] = that box, weakly), so a hook
 * capturing its own tensor is a cycle the collector sees and frees.  While a graph edge
 * holds the tensor or node, ORPHANS[id] holds the value too (pinned: a backward may still
 * need it, and what it captures, after the box goes).  A box that goes while its tensor or
 * node lives on hands its values to ORPHANS, until the C side drops them (boxes have no
 * finaliser: the first value attached gives the box a guard that does it, src/lua/ltensor.c).  No coroutine's
 * state is kept past the call that got it (a coroutine dies and is freed): hooks run on
 * the thread that called backward, drops and pins (from anywhere in C) on the main thread. */
static lua_State *main_state;
static lua_State *run_state; /* the thread of the backward running now */
static int64_t last_id;
static const char ORPHANS_KEY = 'o', OWNERS_KEY = 'w', DROPPED_KEY = 'd';

/* Pushes registry[key], made at open time (so pushing it never allocates). */
static void push_store(lua_State *L, const char *key) { lua_rawgetp(L, LUA_REGISTRYINDEX, key); }

static void make_store(lua_State *L, const char *key, bool weak_values) {
  lua_newtable(L);
  if (weak_values) {
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

/* Pushes the value of id (nil when there is none) and returns its type. */
static int attached(lua_State *L, int64_t id) {
  int top = lua_gettop(L);
  push_store(L, &ORPHANS_KEY);
  if (lua_rawgeti(L, -1, id) == LUA_TNIL) {
    push_store(L, &OWNERS_KEY);
    if (lua_rawgeti(L, -1, id) == LUA_TUSERDATA && lua_getiuservalue(L, -1, 1) == LUA_TTABLE)
      lua_rawgeti(L, -1, id);
    else lua_pushnil(L);
  }
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return lua_type(L, -1);
}

/* Keeps the value at 'value' under id (a new one when id is 0) in the box at 'box';
 * returns the id. */
static int64_t attach(lua_State *L, int box, int value, int64_t id) {
  box = lua_absindex(L, box);
  value = lua_absindex(L, value);
  if (id == 0) id = ++last_id;
  if (lua_getiuservalue(L, box, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, box, 1);
    ct_lua_box_keeps_values(L, box, lua_gettop(L));
  }
  lua_pushvalue(L, value);
  lua_rawseti(L, -2, id);
  push_store(L, &OWNERS_KEY);
  lua_pushvalue(L, box);
  lua_rawseti(L, -2, id);
  push_store(L, &ORPHANS_KEY); /* adopted, if it was an orphan */
  lua_pushnil(L);
  lua_rawseti(L, -2, id);
  lua_pop(L, 3);
  return id;
}

/* The C side is done with id (its tensor or node is freed, or a Function's state). */
static void drop(int64_t id) {
  lua_State *L = main_state;
  if (L == NULL || !lua_checkstack(L, 4)) return;
  int top = lua_gettop(L);
  push_store(L, &ORPHANS_KEY);
  if (lua_rawgeti(L, -1, id) != LUA_TNIL) {
    lua_pushnil(L);
    lua_rawseti(L, top + 1, id);
  } else {
    push_store(L, &OWNERS_KEY);
    if (lua_rawgeti(L, -1, id) == LUA_TUSERDATA) {
      if (lua_getiuservalue(L, -1, 1) == LUA_TTABLE) {
        lua_pushnil(L);
        lua_rawseti(L, -2, id);
      }
      lua_pushnil(L);
      lua_rawseti(L, top + 3, id);
    } else { /* its box is unreachable, its finalizer not run yet: tell the finalizer */
      push_store(L, &DROPPED_KEY);
      lua_pushboolean(L, 1);
      lua_rawseti(L, -2, id);
    }
  }
  lua_settop(L, top);
}

/* A graph edge holds id's tensor or node (on), or the last one let go. */
static void pin(int64_t id, bool on) {
  lua_State *L = main_state;
  if (L == NULL || !lua_checkstack(L, 6)) return;
  int top = lua_gettop(L);
  push_store(L, &ORPHANS_KEY);
  if (on) {
    if (attached(L, id) != LUA_TNIL) lua_rawseti(L, top + 1, id);
  } else {
    push_store(L, &OWNERS_KEY);
    if (lua_rawgeti(L, -1, id) != LUA_TNIL) { /* its box keeps it */
      lua_pushnil(L);
      lua_rawseti(L, top + 1, id);
    }
  }
  lua_settop(L, top);
}

void ct_lua_hand_over(lua_State *L, int box) {
  if (lua_getiuservalue(L, box, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  int u = lua_gettop(L);
  push_store(L, &ORPHANS_KEY);
  push_store(L, &OWNERS_KEY);
  push_store(L, &DROPPED_KEY);
  lua_pushnil(L);
  while (lua_next(L, u)) {
    if (!lua_isinteger(L, -2)) { /* the guard */
      lua_pop(L, 1);
      continue;
    }
    lua_Integer id = lua_tointeger(L, -2);
    if (lua_rawgeti(L, u + 3, id) != LUA_TNIL) { /* dropped meanwhile */
      lua_pushnil(L);
      lua_rawseti(L, u + 3, id);
    } else {
      int t = lua_rawgeti(L, u + 2, id);
      if (t == LUA_TNIL || lua_rawequal(L, -1, box)) { /* still this box's */
        lua_pushvalue(L, -3);
        lua_rawseti(L, u + 1, id);
        lua_pushnil(L);
        lua_rawseti(L, u + 2, id);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  lua_settop(L, u - 1);
  lua_pushnil(L);
  lua_setiuservalue(L, box, 1);
}

/* The error a hook or a Lua backward raised, as text (a non-string error is named). */
static const char *error_text(lua_State *L) {
  return lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1);
}

/* Runs every hook of 'id' on grad; a hook returning a tensor replaces it. */
static int call_hooks(int64_t id, ct_tensor *grad, ct_tensor **out, ct_err *err) {
  lua_State *L = run_state;
  if (L == NULL || !lua_checkstack(L, 4)) return ct_fail(err, "register_hook: no Lua thread to run hooks on");
  int top = lua_gettop(L);
  attached(L, id);
  int list = lua_gettop(L);
  ct_tensor *cur = grad;
  ct_tensor_retain(cur);
  for (lua_Integer i = 1; lua_istable(L, list) && lua_rawgeti(L, list, i) == LUA_TFUNCTION; i++) {
    ct_tensor **box = ct_lua_newbox(L);
    ct_tensor_retain(cur);
    *box = cur;
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      ct_fail(err, "hook failed: %s", error_text(L));
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
  if (cur == grad) {
    ct_tensor_release(cur);
    *out = NULL;
  } else *out = cur;
  return 1;
}

static int t_register_hook(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!x->requires_grad)
    return luaL_error(L, "register_hook: cannot register a hook on a tensor that doesn't require grad");
  int64_t *slot = x->grad_fn ? &x->grad_fn->hook : &x->hook;
  if (*slot && attached(L, *slot) == LUA_TTABLE) {
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    attach(L, 1, -1, *slot); /* this box keeps it from now on (it may be an orphan) */
  } else {
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 1);
    *slot = attach(L, 1, -1, *slot);
  }
  if (x->grad_fn ? x->grad_fn->edges : x->edges) pin(*slot, true);
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

/* ---- crater.autograd.Function: an op whose backward is a Lua function ----
 * Each Function has a userdata holding its ct_op (named "<Name>Backward"); each recorded
 * node keeps, as its attached value (id in lua_state), {backward closure, that userdata}: the
 * closure until the node's saved state is freed (after a backward without retain_graph),
 * the userdata as long as the node (nd->op points into it). */
typedef struct {
  ct_op op;
  char name[64];
} lua_op;

/* Calls the node's Lua backward with the gradient; it returns one gradient (or nil) per
 * tensor input. */
static int function_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  lua_State *L = run_state;
  if (L == NULL || !lua_checkstack(L, nd->nin + 4))
    return ct_fail(err, "no Lua thread to run the backward on");
  int top = lua_gettop(L);
  if (attached(L, nd->lua_state) != LUA_TTABLE || lua_rawgeti(L, -1, 1) != LUA_TFUNCTION) {
    lua_settop(L, top);
    return ct_fail(err,
                   "trying to backward through the graph a second time (%s's saved "
                   "tensors were freed); pass retain_graph=true to the first backward",
                   nd->op->name);
  }
  ct_tensor **box = ct_lua_newbox(L);
  ct_tensor_retain(g);
  *box = g;
  if (lua_pcall(L, 1, nd->nin, 0) != LUA_OK) {
    ct_fail(err, "%s", error_text(L));
    lua_settop(L, top);
    return 0;
  }
  int first = lua_gettop(L) - nd->nin + 1;
  for (int k = 0; k < nd->nin; k++) {
    ct_tensor *t = ct_lua_test(L, first + k);
    if (t == NULL && !lua_isnil(L, first + k)) {
      ct_fail(err, "backward must return a tensor or nil for each tensor input, got %s for input %d",
              luaL_typename(L, first + k), k + 1);
      for (int j = 0; j < k; j++) {
        ct_tensor_release(gin[j]);
        gin[j] = NULL;
      }
      lua_settop(L, top);
      return 0;
    }
    if (t && nd->edge[k].needs) {
      ct_tensor_retain(t);
      gin[k] = t;
    }
  }
  lua_settop(L, top);
  return 1;
}

static void function_release(ct_node *nd, bool gone) {
  if (nd->lua_state == 0) return;
  if (gone) {
    drop(nd->lua_state);
    nd->lua_state = 0;
    return;
  }
  lua_State *L = main_state; /* the saved state goes, the op stays */
  if (L == NULL || !lua_checkstack(L, 4)) return;
  int top = lua_gettop(L);
  if (attached(L, nd->lua_state) == LUA_TTABLE) {
    lua_pushnil(L);
    lua_rawseti(L, -2, 1);
  }
  lua_settop(L, top);
}

/* core.internal.function_op(name): the op of a new Function, "<name>Backward" */
static int t_function_op(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_op *op = lua_newuserdatauv(L, sizeof *op, 0);
  snprintf(op->name, sizeof op->name, "%.50sBackward", name);
  op->op = (ct_op){op->name, function_backward, NULL};
  return 1;
}

/* core.internal.function_record(out, inputs, op, backward): out's grad_fn becomes a node of op over
 * the tensors in inputs, whose backward calls backward(grad). */
static int t_function_record(lua_State *L) {
  ct_tensor *out = ct_lua_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (lua_type(L, 3) != LUA_TUSERDATA || lua_rawlen(L, 3) != sizeof(lua_op))
    return luaL_argerror(L, 3, "a Function's op (from core.internal.function_op)");
  lua_op *op = lua_touserdata(L, 3);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  int nin = (int)ct_lua_list(L, 2, 64, "function_record", "the inputs");
  if (nin < 1) return luaL_error(L, "function_record: 1 to 64 tensor inputs, got %d", nin);
  ct_tensor *in[64];
  for (int k = 0; k < nin; k++) {
    lua_geti(L, 2, k + 1);
    in[k] = ct_lua_check(L, -1);
    lua_pop(L, 1);
  }
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 4);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 3);
  lua_rawseti(L, -2, 2);
  ct_err err;
  ct_node *nd = ct_record(&op->op, out, nin, in, &err);
  if (nd == NULL) return ct_lua_error(L, op->op.name, &err);
  nd->lua_state = attach(L, 1, -1, 0);
  nd->release = function_release;
  return 0;
}

/* True when k is one of the words of 'known' (separated by single spaces). */
static bool is_word_of(const char *known, const char *k) {
  size_t n = strlen(k);
  for (const char *p = known; n > 0 && (p = strstr(p, k)) != NULL; p += n)
    if ((p == known || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return true;
  return false;
}

/* The options table at idx (or none) has only the keys in 'known': a misspelt option is
 * refused, not ignored. */
static void check_opts(lua_State *L, int idx, const char *fn, const char *known) {
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx)) luaL_typeerror(L, idx, "table of options");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "%s: option keys are names, got a %s key (known: %s)", fn, luaL_typename(L, -1), known);
    if (!is_word_of(known, lua_tostring(L, -1)))
      luaL_error(L, "%s: unknown option '%s' (known: %s)", fn, lua_tostring(L, -1), known);
  }
}

/* A boolean option (nil gives dflt); anything else is refused. */
static bool opt_bool(lua_State *L, int idx, const char *fn, const char *key, bool dflt) {
  if (!lua_istable(L, idx)) return dflt;
  int t = lua_getfield(L, idx, key);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_error(L, "%s: option %s must be a boolean, got %s", fn, key, luaL_typename(L, -1));
  bool v = t == LUA_TNIL ? dflt : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Callbacks that hooks queue during x:backward() (crater.autograd.queue_callback, as
 * PyTorch's engine.queue_callback): they run in order once that backward has accumulated
 * every gradient into .grad.  DistributedDataParallel reduces its gradient buckets there.
 * CALLBACKS[level] is the list of the backward running at that nesting level. */
static const char CALLBACKS_KEY = 'c';
static int backward_level;
/* The callback lists that exist, in any state: while there are none, a backward skips the
 * two look-ups of CALLBACKS (some 450 instructions of a small problem's step). */
static int callback_lists;

static int t_backward_running(lua_State *L) {
  lua_pushboolean(L, backward_level > 0);
  return 1;
}

static int t_queue_callback(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (backward_level == 0)
    return luaL_error(L, "queue_callback: no backward is running (call it from a hook)");
  push_store(L, &CALLBACKS_KEY);
  if (lua_rawgeti(L, -1, backward_level) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, backward_level);
    callback_lists++;
  }
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

/* Takes the callback list of 'level' off CALLBACKS and runs it when 'run' (the backward
 * succeeded); a raising callback raises from backward. */
static void finish_callbacks(lua_State *L, int level, int run) {
  if (callback_lists == 0) return;
  push_store(L, &CALLBACKS_KEY);
  int t = lua_rawgeti(L, -1, level);
  lua_pushnil(L);
  lua_rawseti(L, -3, level);
  if (t == LUA_TTABLE) callback_lists--;
  if (t == LUA_TTABLE && run)
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TFUNCTION; i++) { lua_call(L, 0, 0); }
}

/* ct_backward with hooks and Lua backwards running on L, for this call only. */
static int run_backward(lua_State *L, int nroots, ct_tensor **roots, ct_tensor **grads, bool retain,
                        bool create, int ninputs, ct_tensor **inputs, ct_tensor **results, ct_err *err) {
  lua_State *outer = run_state;
  run_state = L;
  int ok = ct_backward(nroots, roots, grads, retain, create, ninputs, inputs, results, err);
  run_state = outer;
  return ok;
}

/* x:backward(grad?, {retain_graph=, create_graph=}) */
static int t_backward(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_tensor *g = ct_lua_test(L, 2);
  int opts = g ? 3 : (lua_istable(L, 2) ? 2 : 3);
  if (!g && !lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    return luaL_typeerror(L, 2, "crater.Tensor, table or nil");
  check_opts(L, opts, "backward", "retain_graph create_graph");
  bool create = opt_bool(L, opts, "backward", "create_graph", false);
  bool retain = opt_bool(L, opts, "backward", "retain_graph", create);
  ct_err err;
  int level = ++backward_level, top = lua_gettop(L);
  finish_callbacks(L, level, 0); /* a list a failed backward left behind */
  lua_settop(L, top);
  int ok = run_backward(L, 1, &x, &g, retain, create, 0, NULL, NULL, &err);
  backward_level--;
  finish_callbacks(L, level, ok);
  lua_settop(L, top);
  if (!ok) return ct_lua_error(L, "backward", &err);
  return 0;
}

/* The tensors of crater.grad's argument idx: one tensor, or a list of 1 to max of them
 * (ct_lua_list refuses a bad length or a hole, naming the argument). */
static int grad_tensors(lua_State *L, int idx, const char *what, int max, ct_tensor **t) {
  if ((t[0] = ct_lua_test(L, idx)) != NULL) return 1;
  lua_Integer n = ct_lua_list(L, idx, max, "grad", what);
  if (n == 0)
    return luaL_error(L, "grad: %s must be a tensor or a list of 1 to %d tensors (its length is 0)", what,
                      max);
  for (int i = 0; i < n; i++) {
    lua_geti(L, idx, i + 1);
    if ((t[i] = ct_lua_test(L, -1)) == NULL)
      return luaL_error(L, "grad: %s[%d] must be a tensor, got %s", what, i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  return (int)n;
}

/* crater.grad(outputs, inputs, {grad_outputs=, create_graph=, retain_graph=, allow_unused=}) */
static int t_grad(lua_State *L) {
  ct_tensor *outs[64], *ins[256], *gouts[64] = {0}, *res[256];
  int no = grad_tensors(L, 1, "outputs", 64, outs);
  int ni = grad_tensors(L, 2, "inputs", 256, ins);
  check_opts(L, 3, "grad", "grad_outputs create_graph retain_graph allow_unused");
  if (lua_istable(L, 3)) { /* grad_outputs: a tensor, or a list of tensors (nil for implicit ones) */
    lua_getfield(L, 3, "grad_outputs");
    if (ct_lua_test(L, -1)) gouts[0] = ct_lua_test(L, -1);
    else if (lua_istable(L, -1))
      for (int i = 0; i < no; i++) {
        lua_geti(L, -1, i + 1);
        if ((gouts[i] = ct_lua_test(L, -1)) == NULL && !lua_isnil(L, -1))
          return luaL_error(L, "grad: grad_outputs[%d] must be a tensor or nil, got %s", i + 1,
                            luaL_typename(L, -1));
        lua_pop(L, 1);
      }
    else if (!lua_isnil(L, -1))
      return luaL_error(L, "grad: grad_outputs must be a tensor or a list of tensors, got %s",
                        luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  bool create = opt_bool(L, 3, "grad", "create_graph", false);
  bool retain = opt_bool(L, 3, "grad", "retain_graph", create);
  bool allow_unused = opt_bool(L, 3, "grad", "allow_unused", false);
  ct_err err;
  int level = backward_level; /* hooks inside crater.grad see no backward: it fills no .grad */
  backward_level = 0;
  int ok = run_backward(L, no, outs, gouts, retain, create, ni, ins, res, &err);
  backward_level = level;
  if (!ok) return ct_lua_error(L, "grad", &err);
  lua_createtable(L, ni, 0);
  int list = lua_gettop(L);
  for (int i = 0; i < ni; i++) { /* box every result first, so a raise below leaks nothing */
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
static int t_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, ct_grad_enabled);
  return 1;
}
static int t_set_anomaly(lua_State *L) {
  lua_pushboolean(L, ct_anomaly_enabled);
  ct_anomaly_enabled = lua_toboolean(L, 1);
  return 1;
}

/* core.internal.version(x): how many in-place writes x's storage has seen (saved-tensor checks) */
static int t_version(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ct_lua_check(L, 1)->storage->version);
  return 1;
}

static int t_memory(lua_State *L) {
  ct_lua_release_dead();
  ct_memstat m = ct_memory();
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, m.bytes);
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, m.tensors);
  lua_setfield(L, -2, "tensors");
  lua_pushinteger(L, m.peak_bytes);
  lua_setfield(L, -2, "peak_bytes");
  lua_pushinteger(L, m.allocated); /* only grows: what a step allocated, frees aside */
  lua_setfield(L, -2, "allocated_bytes");
  return 1;
}
static int t_reset_peak(lua_State *L) {
  ct_memory_reset_peak();
  return 0;
}

static int t_fail_alloc(lua_State *L) {
  ct_debug_fail_alloc(luaL_optinteger(L, 1, -1), lua_toboolean(L, 2));
  return 0;
}

/* The range is checked on the Lua number, before it becomes an int (2^40 would wrap). */
#define MAX_NUM_THREADS 1024
static int t_set_num_threads(lua_State *L) {
  double v = luaL_checknumber(L, 1);
  if (lua_gettop(L) > 1)
    return luaL_error(L, "set_num_threads: expected one argument, got %d", lua_gettop(L));
  if (!(v >= 1 && v <= MAX_NUM_THREADS) || v != floor(v))
    return luaL_error(L, "set_num_threads: n must be an integer in [1, %d], got %s", MAX_NUM_THREADS,
                      luaL_tolstring(L, 1, NULL));
  ct_set_num_threads((int)v);
  ct_blas_set_num_threads((int)v); /* OpenBLAS keeps its own count */
  return 0;
}
static int t_get_num_threads(lua_State *L) {
  lua_pushinteger(L, ct_get_num_threads());
  return 1;
}

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
  int64_t shape[CT_MAXDIM];
  int n = (int)ct_lua_list(L, 3, CT_MAXDIM, "from_bytes", "the size list");
  for (int i = 0; i < n; i++) {
    lua_geti(L, 3, i + 1);
    shape[i] = (int64_t)luaL_checkinteger(L, -1);
    if (shape[i] < 0) return luaL_error(L, "from_bytes: negative size");
    lua_pop(L, 1);
  }
  ct_err err;
  int64_t numel = ct_shape_numel(n, shape, &err), need; /* checked before allocating */
  if (numel < 0) return ct_lua_error(L, "from_bytes", &err);
  if (__builtin_mul_overflow(numel, (int64_t)ct_dtype_size(dt), &need) || (uint64_t)need != len)
    return luaL_error(L, "from_bytes: %I bytes do not make a %s tensor of %I elements", (LUAI_UACINT)len,
                      ct_dtype_name(dt), (LUAI_UACINT)numel);
  ct_tensor **box = ct_lua_newbox(L);
  if ((*box = ct_tensor_new(dt, n, shape, &err)) == NULL) return ct_lua_error(L, "from_bytes", &err);
  memcpy((*box)->storage->data, s, len);
  return 1;
}

void ct_lua_autograd_close(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  bool ours = lua_tothread(L, -1) == main_state;
  lua_pop(L, 1);
  if (!ours) return;
  main_state = NULL;
  ct_hook_drop = NULL;
  ct_hook_pin = NULL;
}

void ct_lua_open_autograd(lua_State *L) {
  static const luaL_Reg pub[] = {{"grad", t_grad},
                                 {"no_grad", t_no_grad},
                                 {"enable_grad", t_enable_grad},
                                 {"set_grad_enabled", t_set_grad_enabled},
                                 {"is_grad_enabled", t_is_grad_enabled},
                                 {"memory", t_memory},
                                 {"reset_peak_memory", t_reset_peak},
                                 {"set_num_threads", t_set_num_threads},
                                 {"get_num_threads", t_get_num_threads},
                                 {"register_hook", t_register_hook},
                                 {"retain_grad", t_retain_grad},
                                 {NULL, NULL}};
  static const luaL_Reg internal[] = {/* crater.autograd's, checkpoint's and the specs' */
                                      {"set_anomaly", t_set_anomaly},
                                      {"fail_alloc", t_fail_alloc},
                                      {"from_bytes", t_from_bytes},
                                      {"backward", t_backward},
                                      {"bytes", t_storage_bytes},
                                      {"function_op", t_function_op},
                                      {"function_record", t_function_record},
                                      {"version", t_version},
                                      {"queue_callback", t_queue_callback},
                                      {"backward_running", t_backward_running},
                                      {NULL, NULL}};
  ct_lua_setfuncs(L, pub, internal);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  main_state = lua_tothread(L, -1);
  lua_pop(L, 1);
  make_store(L, &ORPHANS_KEY, false);
  make_store(L, &OWNERS_KEY, true);
  make_store(L, &DROPPED_KEY, false);
  make_store(L, &CALLBACKS_KEY, false);
  ct_hook_call = call_hooks;
  ct_hook_drop = drop;
  ct_hook_pin = pin;
  ct_autograd_release = ct_autograd_release_tensor; /* tensors with hooks and no grad_fn */
  lua_getfield(L, -1, "Tensor"); /* methods too */
  lua_pushcfunction(L, t_backward);
  lua_setfield(L, -2, "backward");
  lua_pushcfunction(L, t_register_hook);
  lua_setfield(L, -2, "register_hook");
  lua_pushcfunction(L, t_retain_grad);
  lua_setfield(L, -2, "retain_grad");
  lua_pop(L, 1);
}
