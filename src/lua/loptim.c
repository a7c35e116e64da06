/* crater binding: the fused optimizer kernels of src/optim as crater.core.<name>_step.
 * A call is core.<name>(opt, param, grad, state, group[, scalars]): each kernel reads its
 * hyper-parameters by name through its field table, checks its tensors (contiguous, one
 * floating dtype, equal numel, no shared storage), runs once and bumps the version of
 * what it wrote.  The Lua classes in lua/crater/optim/ call these; the arithmetic is all
 * in the kernels. */
#include <stddef.h>
#include <string.h>

#include "../optim/optim.h"
#include "lbind.h"

/* ---- named arguments ----
 * The arguments' positions.  opt is the optimizer: its class's __name names it in errors,
 * and a kernel may read a class constant from it (AdamW's decoupled).  state is the
 * parameter's state table, whose tensors are read by name; scalars is a table the class
 * fills with what it derives per step (bias corrections, schedules) when a kernel needs
 * such values.  Reading by name costs a table look-up per field, about what the Lua side
 * paid to pass them by position, and a swapped pair can no longer change the maths. */
enum { OPT = 1, PARAM, GRAD, STATE, GROUP, SCALARS };

/* What a field holds: a number, a boolean, a boolean that may be absent (false: an option
 * that a class may not have, as MuonWithAuxAdam's groups have no amsgrad), an int, a size
 * (an integer >= 0, as size_t), or a list of 2 or 3 numbers read into consecutive doubles
 * (betas). */
enum { NUM, BOOL, FLAG, INT, SIZE, NUM2, NUM3 };

/* One named argument: table[name] read from the argument 'from' into the args struct at
 * 'off' (the doubles or bool, or the int of INT). */
typedef struct field {
  const char *name;
  unsigned char from, kind;
  size_t off;
} field;

#define F(name, from, kind, type, member) \
  { name, from, kind, offsetof(type, member) }
/* NUM2 and NUM3 write beta1, beta2 (, beta3): they must follow each other */
#define CONSECUTIVE(type, a, b) \
  _Static_assert(offsetof(type, b) == offsetof(type, a) + sizeof(double), #type "." #a " then " #b)

/* The optimizer's name for errors (its class's __name), else the kernel's. */
static const char *who(lua_State *L, const char *fn) {
  const char *name = NULL;
  if (lua_istable(L, OPT)) {
    if (lua_getfield(L, OPT, "__name") == LUA_TSTRING) name = lua_tostring(L, -1);
    lua_pop(L, 1); /* the class table keeps the string */
  }
  return name ? name : fn;
}

static const char *const from_label[] = {
    [OPT] = "", [STATE] = "state.", [GROUP] = "group.", [SCALARS] = "scalars."};

/* Raises "<Optimizer>: group.betas must be a list of 2 numbers, got nil (adam_step)". */
static int bad_field(lua_State *L, const char *fn, const field *f, const char *must) {
  return luaL_error(L, "%s: %s%s must be %s, got %s (%s)", who(L, fn), from_label[f->from], f->name, must,
                    luaL_typename(L, -1), fn);
}

/* Where a kernel call finds its arguments: at[from] is the stack index of argument 'from'
 * (at[GRAD] 0: true, the param's .grad), and closure the stack index of the o_step closure
 * whose upvalues hold the interned names (0: the running function's own).  A C function
 * called from Lua has them at 1.. (own_args); o_fast_step runs a kernel on its slots. */
typedef struct frame {
  int at[SCALARS + 1];
  int closure;
} frame;
static const frame own_args = {{0, OPT, PARAM, GRAD, STATE, GROUP, SCALARS}, 0};

static void push_name(lua_State *L, const frame *fr, int up) {
  if (fr->closure) lua_getupvalue(L, fr->closure, up);
  else lua_pushvalue(L, lua_upvalueindex(up));
}

/* Reads every field of the list (ended by a NULL name) into args.  keys: 0, or the upvalue
 * index of the first field's name as an interned string, the others following it (o_step's
 * closures): pushing that and reading with lua_rawget skips lua_getfield's hashing of a C
 * string, about half of what a field read costs (an Adam step reads 8).  opt's fields go
 * through lua_gettable, as they may be class constants reached through __index. */
static void read_fields(lua_State *L, const char *fn, const field *f, void *args, int keys, int skip,
                        const frame *fr) {
  int base = lua_gettop(L), seen = 0; /* bit i: some field is read from argument i */
  for (const field *g = f; g->name != NULL; g++)
    if (g->from != skip) seen |= 1 << g->from;
  for (int from = OPT; from <= SCALARS; from++) /* before anything is pushed above them */
    if ((seen >> from & 1) && !lua_istable(L, fr->at[from]))
      luaL_error(L, "%s: %s expects %s as argument #%d (a table), got %s", who(L, fn), fn,
                 from == SCALARS     ? "the step's scalars"
                     : from == GROUP ? "the param group"
                     : from == STATE ? "the parameter's state"
                                     : "the optimizer",
                 from, luaL_typename(L, fr->at[from]));
  for (; f->name != NULL; f++, keys += keys != 0) {
    if (f->from == skip) continue;
    /* the values stay on the stack until the end, popped at once, 12 at most (Lua gives a
     * C function 20 free slots) */
    if (lua_gettop(L) - base >= 12) lua_settop(L, base);
    int t;
    int at = fr->at[f->from];
    if (keys == 0) t = lua_getfield(L, at, f->name);
    else {
      push_name(L, fr, keys);
      t = f->from == OPT ? lua_gettable(L, at) : lua_rawget(L, at);
    }
    char *dst = (char *)args + f->off;
    switch (f->kind) {
    case NUM:
      if (t != LUA_TNUMBER) bad_field(L, fn, f, "a number");
      *(double *)dst = lua_tonumber(L, -1);
      break;
    case BOOL:
    case FLAG:
      if (t != LUA_TBOOLEAN && !(f->kind == FLAG && t == LUA_TNIL)) bad_field(L, fn, f, "a boolean");
      *(bool *)dst = lua_toboolean(L, -1);
      break;
    case INT: {
      lua_Integer v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : (lua_Integer)INT32_MAX + 1;
      if (v < INT32_MIN || v > INT32_MAX) bad_field(L, fn, f, "an integer");
      *(int *)dst = (int)v;
      break;
    }
    case SIZE:
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0) bad_field(L, fn, f, "an integer >= 0");
      *(size_t *)dst = (size_t)lua_tointeger(L, -1);
      break;
    default: { /* NUM2, NUM3 */
      int count = f->kind == NUM2 ? 2 : 3;
      if (t != LUA_TTABLE) bad_field(L, fn, f, count == 2 ? "a list of 2 numbers" : "a list of 3 numbers");
      for (int k = 0; k < count; k++) {
        if (lua_geti(L, -1 - k, k + 1) != LUA_TNUMBER) {
          lua_pop(L, k + 1);
          bad_field(L, fn, f, count == 2 ? "a list of 2 numbers" : "a list of 3 numbers");
        }
        ((double *)dst)[k] = lua_tonumber(L, -1);
      }
      lua_pop(L, count);
    }
    }
  }
  lua_settop(L, base);
}

/* ---- the tensors ---- */
#define MAXARR 6

typedef struct arrays {
  ct_tensor *t[MAXARR];
  int count;
  size_t n;
  ct_dtype dt;
} arrays;

/* Reads 'count' tensors: the parameter (argument 2), its gradient (argument 3; true: the
 * parameter's .grad, read without a box), then state[names[i]] for i >= 2 whose bit is set
 * in 'need' (the others are NULL: not used by this call).  Raises "<Optimizer>: state.<name>
 * ..." unless all are tensors, contiguous, of the parameter's floating dtype, of its number
 * of elements, and on distinct storages. */
static void check_arrays(lua_State *L, const char *fn, const char *const *names, int count, unsigned need,
                         arrays *a, int keys, const frame *fr) {
  int grad = fr->at[GRAD], state = fr->at[STATE];
  a->count = count;
  a->t[0] = ct_lua_check(L, fr->at[PARAM]);
  if (count > 1) {
    if (grad == 0 || (lua_type(L, grad) == LUA_TBOOLEAN && lua_toboolean(L, grad))) { /* param's .grad */
      a->t[1] = a->t[0]->grad;
      if (a->t[1] == NULL) luaL_error(L, "%s: param has no grad (%s)", who(L, fn), fn);
    } else {
      a->t[1] = ct_lua_check(L, grad);
    }
  }
  if (count > 2) luaL_checktype(L, state, LUA_TTABLE);
  for (int i = 2; i < count; i++) {
    a->t[i] = NULL;
    if (!(need >> i & 1u)) continue;
    if (keys == 0) lua_getfield(L, state, names[i]);
    else { /* names[i] interned at upvalue keys + i - 2, as read_fields' keys */
      push_name(L, fr, keys + i - 2);
      lua_rawget(L, state);
    }
    if ((a->t[i] = ct_lua_test(L, -1)) == NULL)
      luaL_error(L, "%s: state.%s must be a tensor, got %s (%s)", who(L, fn), names[i], luaL_typename(L, -1),
                 fn);
    lua_pop(L, 1); /* the state table keeps the box */
  }
  ct_tensor *p = a->t[0];
  if (p->dtype != CT_F32 && p->dtype != CT_F64)
    luaL_error(L, "%s: param must be float32 or float64, got %s (%s)", who(L, fn), ct_dtype_name(p->dtype),
               fn);
  a->dt = p->dtype;
  a->n = (size_t)ct_numel(p);
  for (int i = 0; i < count; i++) {
    ct_tensor *t = a->t[i];
    if (t == NULL) continue;
    const char *st = i >= 2 ? "state." : "";
    if (t->dtype != a->dt)
      luaL_error(L, "%s: %s%s is %s but param is %s (%s)", who(L, fn), st, names[i], ct_dtype_name(t->dtype),
                 ct_dtype_name(a->dt), fn);
    if ((size_t)ct_numel(t) != a->n)
      luaL_error(L, "%s: %s%s has %d elements but param has %d (%s)", who(L, fn), st, names[i],
                 (int)ct_numel(t), (int)a->n, fn);
    if (!ct_is_contiguous(t)) luaL_error(L, "%s: %s%s must be contiguous (%s)", who(L, fn), st, names[i], fn);
    for (int j = 0; j < i; j++) /* the kernels take restrict pointers */
      if (a->t[j] != NULL && a->t[j]->storage == t->storage && a->n > 0)
        luaL_error(L, "%s: %s and %s share storage (%s)", who(L, fn), names[j], names[i], fn);
  }
}

/* The tensors whose bit is set in 'writes' get a new version. */
static void bump_written(arrays *a, unsigned writes) {
  for (int i = 0; i < a->count; i++)
    if ((writes >> i & 1u) && a->t[i] != NULL) ct_bump(a->t[i]);
}
#define ALL_BUT_GRAD (~2u)

/* A kernel call over elements [lo, hi) of the arrays, run by ct_optim_parallel. */
typedef struct job {
  const arrays *a;
  const void *args;
} job;

#define A32(i) (j->a->t[i] ? (float *)ct_data(j->a->t[i]) + lo : NULL)
#define A64(i) (j->a->t[i] ? (double *)ct_data(j->a->t[i]) + lo : NULL)
#define RANGE3(kernel)                                                              \
  static void kernel##_range(void *ctx, size_t lo, size_t hi) {                     \
    const job *j = ctx;                                                             \
    if (j->a->dt == CT_F32) kernel##_f32(A32(0), A32(1), A32(2), hi - lo, j->args); \
    else kernel##_f64(A64(0), A64(1), A64(2), hi - lo, j->args);                    \
  }
#define RANGE4(kernel)                                                                      \
  static void kernel##_range(void *ctx, size_t lo, size_t hi) {                             \
    const job *j = ctx;                                                                     \
    if (j->a->dt == CT_F32) kernel##_f32(A32(0), A32(1), A32(2), A32(3), hi - lo, j->args); \
    else kernel##_f64(A64(0), A64(1), A64(2), A64(3), hi - lo, j->args);                    \
  }
#define RANGE5(kernel)                                                                              \
  static void kernel##_range(void *ctx, size_t lo, size_t hi) {                                     \
    const job *j = ctx;                                                                             \
    if (j->a->dt == CT_F32) kernel##_f32(A32(0), A32(1), A32(2), A32(3), A32(4), hi - lo, j->args); \
    else kernel##_f64(A64(0), A64(1), A64(2), A64(3), A64(4), hi - lo, j->args);                    \
  }
#define RANGE6(kernel)                                                                                      \
  static void kernel##_range(void *ctx, size_t lo, size_t hi) {                                             \
    const job *j = ctx;                                                                                     \
    if (j->a->dt == CT_F32) kernel##_f32(A32(0), A32(1), A32(2), A32(3), A32(4), A32(5), hi - lo, j->args); \
    else kernel##_f64(A64(0), A64(1), A64(2), A64(3), A64(4), A64(5), hi - lo, j->args);                    \
  }
RANGE3(ct_optim_sgd)
RANGE5(ct_optim_adam)
RANGE3(ct_optim_adagrad)
RANGE5(ct_optim_rmsprop)
RANGE4(ct_optim_adadelta)
RANGE4(ct_optim_adamax)
RANGE4(ct_optim_nadam)
RANGE4(ct_optim_radam)
RANGE3(ct_optim_asgd)
RANGE4(ct_optim_rprop)
RANGE5(ct_optim_sf_adamw)
RANGE3(ct_optim_sf_sgd)
RANGE4(ct_optim_sophia)
RANGE3(ct_optim_sophia_hess)
RANGE4(ct_optim_prodigy)
RANGE3(ct_optim_lion)
RANGE3(ct_optim_lars)
RANGE5(ct_optim_adabelief)
RANGE6(ct_optim_adan)

/* lamb_step's kernel reads p, m and v: the gradient (slot 1) is checked, not read */
static void ct_optim_lamb_range(void *ctx, size_t lo, size_t hi) {
  const job *j = ctx;
  if (j->a->dt == CT_F32) ct_optim_lamb_f32(A32(0), A32(2), A32(3), hi - lo, j->args);
  else ct_optim_lamb_f64(A64(0), A64(2), A64(3), hi - lo, j->args);
}

/* ---- the one-pass kernels, one row each ---- */

/* Every kernel's arguments fit in this. */
typedef union any_args {
  ct_sgd_args sgd;
  ct_adam_args adam;
  ct_adagrad_args adagrad;
  ct_rmsprop_args rmsprop;
  ct_adadelta_args adadelta;
  ct_adamax_args adamax;
  ct_nadam_args nadam;
  ct_radam_args radam;
  ct_asgd_args asgd;
  ct_rprop_args rprop;
  ct_sf_adamw_args sf_adamw;
  ct_sf_sgd_args sf_sgd;
  ct_sophia_args sophia;
  ct_prodigy_args prodigy;
  ct_lion_args lion;
  ct_lamb_args lamb;
  ct_lars_args lars;
  ct_adabelief_args adabelief;
  ct_adan_args adan;
} any_args;

typedef struct kernel {
  const char *fn; /* its name in crater.core */
  const char *const *arrays; /* param, grad, then the state tensors' names */
  int count; /* of arrays */
  const field *fields;
  /* the state tensors this call uses (bits of 'arrays'); NULL: all of them.  May raise
   * when the arguments do not fit together. */
  unsigned (*need)(lua_State *L, const any_args *o);
  unsigned writes; /* the arrays the kernel writes */
  void (*range)(void *ctx, size_t lo, size_t hi);
} kernel;

/* ---- the group's options, kept for the one-call step ----
 * A kernel's group options are what a group's compiled options test (opt._checked[group],
 * see step_cache.lua) checks at each step: while that test passes, they read as they read
 * when it was made.  So o_fast_step gives the kernel, as a seventh argument, a block kept
 * per test (opt._checked[test]: that table's keys are weak): the first call fills it, later
 * ones copy it and read only the state's and the class's fields (the named reads were a
 * quarter of a small Adam step).  A block is filled only when the test covers every group
 * field the kernel reads (each is in opt._keys) and no list option has a metatable (whose
 * entries the test cannot see); else it stays empty and every call reads.  Once filled,
 * o_fast_step runs the kernel itself, on its own slots, without a Lua call to o_step. */
typedef struct kernel_cache {
  uintptr_t tag; /* its address scrambled, as a tensor box's */
  const kernel *k; /* the kernel that filled it; NULL: empty */
  int array_keys; /* that o_step closure's upvalue 2 */
  bool never; /* the test does not cover this kernel's group fields */
  any_args args;
} kernel_cache;
#define CACHE 7 /* its argument */
#define CACHE_KEY ((uintptr_t)0x5851f42d4c957f2du)

static kernel_cache *to_cache(lua_State *L, int idx) {
  kernel_cache *c = lua_touserdata(L, idx);
  return c && lua_rawlen(L, idx) == sizeof *c && c->tag == ((uintptr_t)c ^ CACHE_KEY) ? c : NULL;
}

/* True when every group field of the list is one of opt._keys and no list option has a
 * metatable: the options test then sees every change to what the kernel reads. */
static bool test_covers(lua_State *L, const field *f, const frame *fr) {
  int base = lua_gettop(L);
  bool ok = lua_getfield(L, fr->at[OPT], "_keys") == LUA_TTABLE;
  lua_Integer n = ok ? (lua_Integer)lua_rawlen(L, -1) : 0;
  for (; ok && f->name != NULL; f++) {
    if (f->from != GROUP) continue;
    bool found = false;
    for (lua_Integer i = 1; !found && i <= n; i++) {
      lua_rawgeti(L, base + 1, i);
      found = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), f->name) == 0;
      lua_pop(L, 1);
    }
    ok = found;
    if (ok && (f->kind == NUM2 || f->kind == NUM3)) {
      lua_getfield(L, fr->at[GROUP], f->name);
      ok = !lua_getmetatable(L, -1);
    }
    lua_settop(L, base + 1);
  }
  lua_settop(L, base);
  return ok;
}

/* One call of kernel k on the arguments fr places, with the group's block c (or NULL);
 * array_keys: the upvalue index of the first state tensor's name (see o_step). */
static void kernel_call(lua_State *L, const kernel *k, kernel_cache *c, int array_keys, const frame *fr) {
  any_args o;
  if (c && c->k == k) {
    o = c->args; /* its group fields; the others are read again */
    read_fields(L, k->fn, k->fields, &o, 3, GROUP, fr);
  } else {
    read_fields(L, k->fn, k->fields, &o, 3, 0, fr);
    if (c && !c->never) {
      if (test_covers(L, k->fields, fr)) {
        c->k = k;
        c->array_keys = array_keys;
        c->args = o;
      } else c->never = true;
    }
  }
  unsigned need = k->need ? k->need(L, &o) : ~0u;
  arrays a;
  check_arrays(L, k->fn, k->arrays, k->count, need, &a, array_keys, fr);
  job j = {&a, &o};
  ct_optim_parallel(a.n, k->range, &j);
  bump_written(&a, k->writes);
}

/* core.<fn>(opt, param, grad, state, group[, scalars[, cache]]).  Upvalues: 1 the kernel, 2
 * the upvalue index of the first state tensor's name, from 3 the fields' names, then the
 * state tensors' names (interned strings, see read_fields).  cache: o_fast_step's block. */
static int o_step(lua_State *L) {
  kernel_cache *c = lua_gettop(L) >= CACHE ? to_cache(L, CACHE) : NULL;
  kernel_call(L, lua_touserdata(L, lua_upvalueindex(1)), c, (int)lua_tointeger(L, lua_upvalueindex(2)),
              &own_args);
  return 0;
}

#define G GROUP
#define S STATE
#define X SCALARS

/* SGD: momentum_buffer only with momentum; 'first' (a new buffer takes d) is the class's */
static const char *const sgd_arrays[] = {"param", "grad", "momentum_buffer"};
static const field sgd_fields[] = {F("lr", G, NUM, ct_sgd_args, lr),
                                   F("momentum", G, NUM, ct_sgd_args, momentum),
                                   F("dampening", G, NUM, ct_sgd_args, dampening),
                                   F("weight_decay", G, NUM, ct_sgd_args, weight_decay),
                                   F("nesterov", G, BOOL, ct_sgd_args, nesterov),
                                   F("maximize", G, BOOL, ct_sgd_args, maximize),
                                   F("first", X, BOOL, ct_sgd_args, first),
                                   {NULL, 0, 0, 0}};
static unsigned sgd_need(lua_State *L, const any_args *o) { return o->sgd.momentum != 0 ? ~0u : 3u; }

/* Adam and AdamW (opt.decoupled); MuonWithAuxAdam's groups have no amsgrad or maximize */
CONSECUTIVE(ct_adam_args, beta1, beta2);
static const char *const adam_arrays[] = {"param", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
static const field adam_fields[] = {F("lr", G, NUM, ct_adam_args, lr),
                                    F("betas", G, NUM2, ct_adam_args, beta1),
                                    F("eps", G, NUM, ct_adam_args, eps),
                                    F("weight_decay", G, NUM, ct_adam_args, weight_decay),
                                    F("amsgrad", G, FLAG, ct_adam_args, amsgrad),
                                    F("maximize", G, FLAG, ct_adam_args, maximize),
                                    F("step", S, NUM, ct_adam_args, step),
                                    F("decoupled", OPT, FLAG, ct_adam_args, decoupled),
                                    {NULL, 0, 0, 0}};
static unsigned adam_need(lua_State *L, const any_args *o) { return o->adam.amsgrad ? ~0u : ~(1u << 4); }

static const char *const adagrad_arrays[] = {"param", "grad", "sum"};
static const field adagrad_fields[] = {F("lr", G, NUM, ct_adagrad_args, lr),
                                       F("lr_decay", G, NUM, ct_adagrad_args, lr_decay),
                                       F("weight_decay", G, NUM, ct_adagrad_args, weight_decay),
                                       F("eps", G, NUM, ct_adagrad_args, eps),
                                       F("maximize", G, BOOL, ct_adagrad_args, maximize),
                                       F("step", S, NUM, ct_adagrad_args, step),
                                       {NULL, 0, 0, 0}};

/* RMSprop: grad_avg only when centered, momentum_buffer only with momentum */
static const char *const rmsprop_arrays[] = {"param", "grad", "square_avg", "grad_avg", "momentum_buffer"};
static const field rmsprop_fields[] = {F("lr", G, NUM, ct_rmsprop_args, lr),
                                       F("alpha", G, NUM, ct_rmsprop_args, alpha),
                                       F("eps", G, NUM, ct_rmsprop_args, eps),
                                       F("weight_decay", G, NUM, ct_rmsprop_args, weight_decay),
                                       F("momentum", G, NUM, ct_rmsprop_args, momentum),
                                       F("centered", G, BOOL, ct_rmsprop_args, centered),
                                       F("maximize", G, BOOL, ct_rmsprop_args, maximize),
                                       {NULL, 0, 0, 0}};
static unsigned rmsprop_need(lua_State *L, const any_args *o) {
  return 7u | (o->rmsprop.centered ? 1u << 3 : 0) | (o->rmsprop.momentum > 0 ? 1u << 4 : 0);
}

static const char *const adadelta_arrays[] = {"param", "grad", "square_avg", "acc_delta"};
static const field adadelta_fields[] = {F("lr", G, NUM, ct_adadelta_args, lr),
                                        F("rho", G, NUM, ct_adadelta_args, rho),
                                        F("eps", G, NUM, ct_adadelta_args, eps),
                                        F("weight_decay", G, NUM, ct_adadelta_args, weight_decay),
                                        F("maximize", G, BOOL, ct_adadelta_args, maximize),
                                        {NULL, 0, 0, 0}};

CONSECUTIVE(ct_adamax_args, beta1, beta2);
static const char *const adamax_arrays[] = {"param", "grad", "exp_avg", "exp_inf"};
static const field adamax_fields[] = {F("lr", G, NUM, ct_adamax_args, lr),
                                      F("betas", G, NUM2, ct_adamax_args, beta1),
                                      F("eps", G, NUM, ct_adamax_args, eps),
                                      F("weight_decay", G, NUM, ct_adamax_args, weight_decay),
                                      F("maximize", G, BOOL, ct_adamax_args, maximize),
                                      F("step", S, NUM, ct_adamax_args, step),
                                      {NULL, 0, 0, 0}};

/* NAdam: the class keeps the momentum schedule (mu, mu_next, mu_product_next in scalars) */
CONSECUTIVE(ct_nadam_args, beta1, beta2);
static const char *const nadam_arrays[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
static const field nadam_fields[] = {F("lr", G, NUM, ct_nadam_args, lr),
                                     F("betas", G, NUM2, ct_nadam_args, beta1),
                                     F("eps", G, NUM, ct_nadam_args, eps),
                                     F("weight_decay", G, NUM, ct_nadam_args, weight_decay),
                                     F("maximize", G, BOOL, ct_nadam_args, maximize),
                                     F("decoupled_weight_decay", G, BOOL, ct_nadam_args, decoupled),
                                     F("step", S, NUM, ct_nadam_args, step),
                                     F("mu_product", S, NUM, ct_nadam_args, mu_product),
                                     F("mu", X, NUM, ct_nadam_args, mu),
                                     F("mu_next", X, NUM, ct_nadam_args, mu_next),
                                     F("mu_product_next", X, NUM, ct_nadam_args, mu_product_next),
                                     {NULL, 0, 0, 0}};

CONSECUTIVE(ct_radam_args, beta1, beta2);
static const char *const radam_arrays[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
static const field radam_fields[] = {F("lr", G, NUM, ct_radam_args, lr),
                                     F("betas", G, NUM2, ct_radam_args, beta1),
                                     F("eps", G, NUM, ct_radam_args, eps),
                                     F("weight_decay", G, NUM, ct_radam_args, weight_decay),
                                     F("maximize", G, BOOL, ct_radam_args, maximize),
                                     F("decoupled_weight_decay", G, BOOL, ct_radam_args, decoupled),
                                     F("step", S, NUM, ct_radam_args, step),
                                     {NULL, 0, 0, 0}};

/* ASGD: eta and mu are the state's (PyTorch keeps them per parameter) */
static const char *const asgd_arrays[] = {"param", "grad", "ax"};
static const field asgd_fields[] = {F("eta", S, NUM, ct_asgd_args, eta),
                                    F("mu", S, NUM, ct_asgd_args, mu),
                                    F("lambd", G, NUM, ct_asgd_args, lambd),
                                    F("weight_decay", G, NUM, ct_asgd_args, weight_decay),
                                    F("maximize", G, BOOL, ct_asgd_args, maximize),
                                    {NULL, 0, 0, 0}};

CONSECUTIVE(ct_rprop_args, etaminus, etaplus);
CONSECUTIVE(ct_rprop_args, step_min, step_max);
static const char *const rprop_arrays[] = {"param", "grad", "prev", "step_size"};
static const field rprop_fields[] = {F("etas", G, NUM2, ct_rprop_args, etaminus),
                                     F("step_sizes", G, NUM2, ct_rprop_args, step_min),
                                     F("maximize", G, BOOL, ct_rprop_args, maximize),
                                     {NULL, 0, 0, 0}};

/* The schedule-free pair: the group's schedule of this step (lr after warmup, ckp1 and
 * the bias corrections) is the class's, in scalars */
CONSECUTIVE(ct_sf_adamw_args, beta1, beta2);
static const char *const sf_adamw_arrays[] = {"param", "grad", "z", "exp_avg_sq", "exp_avg"};
static const field sf_adamw_fields[] = {F("lr", X, NUM, ct_sf_adamw_args, lr),
                                        F("betas", G, NUM2, ct_sf_adamw_args, beta1),
                                        F("eps", G, NUM, ct_sf_adamw_args, eps),
                                        F("weight_decay", G, NUM, ct_sf_adamw_args, weight_decay),
                                        F("inner_momentum", G, NUM, ct_sf_adamw_args, inner_momentum),
                                        F("bc1", X, NUM, ct_sf_adamw_args, bc1),
                                        F("bc2", X, NUM, ct_sf_adamw_args, bc2),
                                        F("ckp1", X, NUM, ct_sf_adamw_args, ckp1),
                                        {NULL, 0, 0, 0}};
static unsigned sf_adamw_need(lua_State *L, const any_args *o) {
  return o->sf_adamw.inner_momentum != 0 ? ~0u : ~(1u << 4);
}

static const char *const sf_sgd_arrays[] = {"param", "grad", "z"};
static const field sf_sgd_fields[] = {F("lr", X, NUM, ct_sf_sgd_args, lr),
                                      F("momentum", G, NUM, ct_sf_sgd_args, momentum),
                                      F("weight_decay", G, NUM, ct_sf_sgd_args, weight_decay),
                                      F("ckp1", X, NUM, ct_sf_sgd_args, ckp1),
                                      {NULL, 0, 0, 0}};

/* SophiaG: rho_bs (rho times the batch's tokens) is the class's; the Hessian step reads
 * only betas[2] and writes only the hessian */
CONSECUTIVE(ct_sophia_args, beta1, beta2);
static const char *const sophia_arrays[] = {"param", "grad", "exp_avg", "hessian"};
static const field sophia_fields[] = {F("lr", G, NUM, ct_sophia_args, lr),
                                      F("betas", G, NUM2, ct_sophia_args, beta1),
                                      F("rho_bs", X, NUM, ct_sophia_args, rho_bs),
                                      F("weight_decay", G, NUM, ct_sophia_args, weight_decay),
                                      F("maximize", G, BOOL, ct_sophia_args, maximize),
                                      {NULL, 0, 0, 0}};
static const char *const sophia_hess_arrays[] = {"param", "grad", "hessian"};
static const field sophia_hess_fields[] = {F("betas", G, NUM2, ct_sophia_args, beta1), {NULL, 0, 0, 0}};

/* Prodigy's update pass: everything but the tensors is derived from the step's d */
CONSECUTIVE(ct_prodigy_args, beta1, beta2);
static const char *const prodigy_arrays[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
static const field prodigy_fields[] = {F("dlr", X, NUM, ct_prodigy_args, dlr),
                                       F("d", X, NUM, ct_prodigy_args, d),
                                       F("d_eps", X, NUM, ct_prodigy_args, d_eps),
                                       F("decoupled_wd", X, NUM, ct_prodigy_args, decoupled_wd),
                                       F("l2", X, NUM, ct_prodigy_args, l2),
                                       F("betas", G, NUM2, ct_prodigy_args, beta1),
                                       {NULL, 0, 0, 0}};
static unsigned prodigy_need(lua_State *L, const any_args *o) {
  return o->prodigy.beta1 > 0 ? ~0u : ~(1u << 2);
}

CONSECUTIVE(ct_lion_args, beta1, beta2);
static const char *const lion_arrays[] = {"param", "grad", "exp_avg"};
static const field lion_fields[] = {F("lr", G, NUM, ct_lion_args, lr),
                                    F("betas", G, NUM2, ct_lion_args, beta1),
                                    F("weight_decay", G, NUM, ct_lion_args, weight_decay),
                                    {NULL, 0, 0, 0}};

/* LAMB's step p += step*a, with step = -lr*trust_ratio from the statistics pass */
static const char *const lamb_step_arrays[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
static const field lamb_step_fields[] = {F("eps", G, NUM, ct_lamb_args, eps),
                                         F("weight_decay", G, NUM, ct_lamb_args, weight_decay),
                                         F("step", X, NUM, ct_lamb_args, step),
                                         {NULL, 0, 0, 0}};

/* LARS: the trust ratio q and whether it scales (weights, not vectors) are the class's */
static const char *const lars_arrays[] = {"param", "grad", "mu"};
static const field lars_fields[] = {F("lr", G, NUM, ct_lars_args, lr),
                                    F("momentum", G, NUM, ct_lars_args, momentum),
                                    F("weight_decay", G, NUM, ct_lars_args, weight_decay),
                                    F("q", X, NUM, ct_lars_args, q),
                                    F("scaled", X, BOOL, ct_lars_args, scaled),
                                    {NULL, 0, 0, 0}};

/* AdaBelief: the mode (rectified or not), its step coefficient and the decay are the
 * class's per step */
CONSECUTIVE(ct_adabelief_args, beta1, beta2);
static const char *const adabelief_arrays[] = {"param", "grad", "exp_avg", "exp_avg_var", "max_exp_avg_var"};
static const field adabelief_fields[] = {F("betas", G, NUM2, ct_adabelief_args, beta1),
                                         F("eps", G, NUM, ct_adabelief_args, eps),
                                         F("weight_decay", G, NUM, ct_adabelief_args, weight_decay),
                                         F("weight_decouple", G, BOOL, ct_adabelief_args, decoupled),
                                         F("amsgrad", G, BOOL, ct_adabelief_args, amsgrad),
                                         F("decay", X, NUM, ct_adabelief_args, decay),
                                         F("sqrt_bc2", X, NUM, ct_adabelief_args, sqrt_bc2),
                                         F("mode", X, INT, ct_adabelief_args, mode),
                                         F("coef", X, NUM, ct_adabelief_args, coef),
                                         {NULL, 0, 0, 0}};
static unsigned adabelief_need(lua_State *L, const any_args *o) {
  int mode = o->adabelief.mode;
  if (mode < CT_ADABELIEF_ADAM || mode > CT_ADABELIEF_NONE)
    luaL_error(L, "%s: scalars.mode must be one of the CT_ADABELIEF modes (0 to 3), got %d (adabelief_step)",
               who(L, "adabelief_step"), mode);
  return o->adabelief.amsgrad ? ~0u : ~(1u << 4);
}

/* Adan: the gradient clip factor and the bias corrections are the class's per step */
CONSECUTIVE(ct_adan_args, beta1, beta2);
CONSECUTIVE(ct_adan_args, beta2, beta3);
static const char *const adan_arrays[] = {"param",      "grad",         "exp_avg",
                                          "exp_avg_sq", "exp_avg_diff", "neg_pre_grad"};
static const field adan_fields[] = {F("lr", G, NUM, ct_adan_args, lr),
                                    F("betas", G, NUM3, ct_adan_args, beta1),
                                    F("eps", G, NUM, ct_adan_args, eps),
                                    F("weight_decay", G, NUM, ct_adan_args, weight_decay),
                                    F("no_prox", G, BOOL, ct_adan_args, no_prox),
                                    F("clip", X, NUM, ct_adan_args, clip),
                                    F("bc1", X, NUM, ct_adan_args, bc1),
                                    F("bc2", X, NUM, ct_adan_args, bc2),
                                    F("sqrt_bc3", X, NUM, ct_adan_args, sqrt_bc3),
                                    F("first", X, BOOL, ct_adan_args, first),
                                    {NULL, 0, 0, 0}};

#define ROW(name, fn, need, writes, range)                                                                 \
  {                                                                                                        \
    fn, name##_arrays, (int)(sizeof name##_arrays / sizeof name##_arrays[0]), name##_fields, need, writes, \
        range                                                                                              \
  }
static const kernel kernels[] = {
    ROW(sgd, "sgd_step", sgd_need, ALL_BUT_GRAD, ct_optim_sgd_range),
    ROW(adam, "adam_step", adam_need, ALL_BUT_GRAD, ct_optim_adam_range),
    ROW(adagrad, "adagrad_step", NULL, ALL_BUT_GRAD, ct_optim_adagrad_range),
    ROW(rmsprop, "rmsprop_step", rmsprop_need, ALL_BUT_GRAD, ct_optim_rmsprop_range),
    ROW(adadelta, "adadelta_step", NULL, ALL_BUT_GRAD, ct_optim_adadelta_range),
    ROW(adamax, "adamax_step", NULL, ALL_BUT_GRAD, ct_optim_adamax_range),
    ROW(nadam, "nadam_step", NULL, ALL_BUT_GRAD, ct_optim_nadam_range),
    ROW(radam, "radam_step", NULL, ALL_BUT_GRAD, ct_optim_radam_range),
    ROW(asgd, "asgd_step", NULL, ALL_BUT_GRAD, ct_optim_asgd_range),
    ROW(rprop, "rprop_step", NULL, ALL_BUT_GRAD, ct_optim_rprop_range),
    ROW(sf_adamw, "sf_adamw_step", sf_adamw_need, ALL_BUT_GRAD, ct_optim_sf_adamw_range),
    ROW(sf_sgd, "sf_sgd_step", NULL, ALL_BUT_GRAD, ct_optim_sf_sgd_range),
    ROW(sophia, "sophia_step", NULL, ALL_BUT_GRAD, ct_optim_sophia_range),
    ROW(sophia_hess, "sophia_hessian_step", NULL, 1u << 2, ct_optim_sophia_hess_range),
    ROW(prodigy, "prodigy_step", prodigy_need, 1u, ct_optim_prodigy_range),
    ROW(lion, "lion_step", NULL, ALL_BUT_GRAD, ct_optim_lion_range),
    ROW(lamb_step, "lamb_step", NULL, 1u, ct_optim_lamb_range),
    ROW(lars, "lars_step", NULL, ALL_BUT_GRAD, ct_optim_lars_range),
    ROW(adabelief, "adabelief_step", adabelief_need, ALL_BUT_GRAD, ct_optim_adabelief_range),
    ROW(adan, "adan_step", NULL, ALL_BUT_GRAD, ct_optim_adan_range),
};

/* Two sums over the elements, split into fixed blocks (their size depends only on n), one
 * partial per block, added in block order: the same bits on any thread count. */
#define MAXBLOCKS 1024
typedef struct blocked {
  const arrays *a;
  const void *args;
  size_t n, block, align; /* blocks start at multiples of align (0: 1) */
  double (*part)[2];
  void *extra[2]; /* arrays indexed per aligned element (Prodigy's s and p0) */
  void (*run)(const struct blocked *b, size_t lo, size_t n, double *sums); /* one block */
} blocked;

static void blocked_range(void *ctx, size_t lo, size_t hi) {
  const blocked *b = ctx;
  for (size_t k = lo; k < hi; k++) {
    size_t off = k * b->block, len = b->n - off < b->block ? b->n - off : b->block;
    b->run(b, off, len, b->part[k]);
  }
}

static void blocked_sums(blocked *b, double *sums) {
  double part[MAXBLOCKS][2];
  size_t align = b->align ? b->align : 1, block = ((size_t)1 << 16) * align;
  if ((b->n + block - 1) / block > MAXBLOCKS) {
    block = (b->n + MAXBLOCKS - 1) / MAXBLOCKS;
    block = (block + 16 * align - 1) / (16 * align) * (16 * align);
  }
  size_t nblocks = (b->n + block - 1) / block;
  b->block = block;
  b->part = part;
  ct_parallel_blocks(nblocks, block, blocked_range, b);
  sums[0] = sums[1] = 0;
  for (size_t k = 0; k < nblocks; k++) {
    sums[0] += part[k][0];
    sums[1] += part[k][1];
  }
}

static void prodigy_block(const blocked *b, size_t off, size_t len, double *sums) {
  const arrays *a = b->a;
  const ct_prodigy_stats_args *o = b->args;
  size_t j = off / o->slice_p, j0 = o->p0_scalar ? 0 : j; /* the block's first sliced element */
  if (a->dt == CT_F32)
    ct_optim_prodigy_stats_f32((float *)ct_data(a->t[0]) + off, (float *)ct_data(a->t[1]) + off,
                               a->t[2] ? (float *)ct_data(a->t[2]) + off : NULL,
                               (float *)ct_data(a->t[3]) + off, (float *)b->extra[0] + j,
                               (float *)b->extra[1] + j0, len, o, sums);
  else
    ct_optim_prodigy_stats_f64((double *)ct_data(a->t[0]) + off, (double *)ct_data(a->t[1]) + off,
                               a->t[2] ? (double *)ct_data(a->t[2]) + off : NULL,
                               (double *)ct_data(a->t[3]) + off, (double *)b->extra[0] + j,
                               (double *)b->extra[1] + j0, len, o, sums);
}

/* The tensor table[name] at idx (borrowed: the table keeps it); raises naming it. */
static ct_tensor *named_tensor(lua_State *L, int idx, const char *name, const char *fn) {
  lua_getfield(L, idx, name);
  ct_tensor *t = ct_lua_test(L, -1);
  if (t == NULL)
    luaL_error(L, "%s: %s%s must be a tensor, got %s (%s)", who(L, fn), from_label[idx], name,
               luaL_typename(L, -1), fn);
  lua_pop(L, 1);
  return t;
}

/* Prodigy's statistics pass: betas, beta3, l2, the alphas are derived from the first group
 * and the step's d, as the reference computes them. */
static const field prodigy_stats_fields[] = {F("beta1", X, NUM, ct_prodigy_stats_args, beta1),
                                             F("beta2", X, NUM, ct_prodigy_stats_args, beta2),
                                             F("beta3", X, NUM, ct_prodigy_stats_args, beta3),
                                             F("l2", X, NUM, ct_prodigy_stats_args, l2),
                                             F("m_alpha", X, NUM, ct_prodigy_stats_args, m_alpha),
                                             F("v_alpha", X, NUM, ct_prodigy_stats_args, v_alpha),
                                             F("s_alpha", X, NUM, ct_prodigy_stats_args, s_alpha),
                                             F("slice_p", G, SIZE, ct_prodigy_stats_args, slice_p),
                                             {NULL, 0, 0, 0}};

/* prodigy_stats(opt, param, grad, state, group, scalars) -> dot, sum|s|: the statistics
 * pass (in fixed blocks: it sums).  state.s holds every slice_p-th element; state.p0 as
 * many, or one (the reference's 0-d p0); state.exp_avg is used when beta1 > 0. */
static int o_prodigy_stats(lua_State *L) {
  static const char *const fn = "prodigy_stats";
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
  ct_prodigy_stats_args o;
  read_fields(L, fn, prodigy_stats_fields, &o, 0, 0, &own_args);
  if (o.slice_p < 1)
    return luaL_error(L, "%s: group.slice_p must be a positive integer (%s)", who(L, fn), fn);
  arrays a;
  check_arrays(L, fn, names, 4, o.beta1 > 0 ? ~0u : ~(1u << 2), &a, 0, &own_args);
  ct_tensor *s = named_tensor(L, STATE, "s", fn), *p0 = named_tensor(L, STATE, "p0", fn);
  size_t ns = a.n == 0 ? 0 : (a.n - 1) / o.slice_p + 1;
  ct_tensor *extra[2] = {s, p0};
  for (int i = 0; i < 2; i++) {
    ct_tensor *t = extra[i];
    size_t n = (size_t)ct_numel(t);
    if (t->dtype != a.dt || !ct_is_contiguous(t) || (n != ns && !(i == 1 && n == 1)))
      return luaL_error(L, "%s: state.%s must be a contiguous %s tensor of %d elements (%s)", who(L, fn),
                        i ? "p0" : "s", ct_dtype_name(a.dt), (int)ns, fn);
    for (int k = 0; k < 4; k++)
      if (a.t[k] && a.t[k]->storage == t->storage)
        return luaL_error(L, "%s: %s and %s share storage (%s)", who(L, fn), names[k], i ? "p0" : "s", fn);
  }
  if (s->storage == p0->storage) return luaL_error(L, "%s: s and p0 share storage (%s)", who(L, fn), fn);
  o.p0_scalar = ct_numel(p0) == 1;
  double sums[2];
  blocked b = {.a = &a,
               .args = &o,
               .n = a.n,
               .align = o.slice_p,
               .run = prodigy_block,
               .extra = {ct_data(s), ct_data(p0)}};
  blocked_sums(&b, sums);
  if (a.t[2]) ct_bump(a.t[2]);
  ct_bump(a.t[3]);
  ct_bump(s);
  lua_pushnumber(L, sums[0]);
  lua_pushnumber(L, sums[1]);
  return 2;
}

/* the arrays of a one-thread pass (the sums must not depend on the thread count) */
#define P32(i) ((float *)ct_data(a.t[i]))
#define P64(i) ((double *)ct_data(a.t[i]))

static void lamb_block(const blocked *b, size_t off, size_t len, double *sums) {
  const arrays *a = b->a;
  if (a->dt == CT_F32)
    ct_optim_lamb_stats_f32((float *)ct_data(a->t[0]) + off, (float *)ct_data(a->t[1]) + off,
                            (float *)ct_data(a->t[2]) + off, (float *)ct_data(a->t[3]) + off, len, b->args,
                            sums);
  else
    ct_optim_lamb_stats_f64((double *)ct_data(a->t[0]) + off, (double *)ct_data(a->t[1]) + off,
                            (double *)ct_data(a->t[2]) + off, (double *)ct_data(a->t[3]) + off, len, b->args,
                            sums);
}

CONSECUTIVE(ct_lamb_args, beta1, beta2);
static const field lamb_stats_fields[] = {F("betas", G, NUM2, ct_lamb_args, beta1),
                                          F("eps", G, NUM, ct_lamb_args, eps),
                                          F("weight_decay", G, NUM, ct_lamb_args, weight_decay),
                                          {NULL, 0, 0, 0}};

/* lamb_stats(opt, param, grad, state, group) -> sum p^2, sum a^2 (m and v updated) */
static int o_lamb_stats(lua_State *L) {
  ct_lamb_args o = {0};
  read_fields(L, "lamb_stats", lamb_stats_fields, &o, 0, 0, &own_args);
  arrays a;
  check_arrays(L, "lamb_stats", lamb_step_arrays, 4, ~0u, &a, 0, &own_args);
  double sums[2];
  blocked b = {.a = &a, .args = &o, .n = a.n, .run = lamb_block};
  blocked_sums(&b, sums);
  ct_bump(a.t[2]);
  ct_bump(a.t[3]);
  lua_pushnumber(L, sums[0]);
  lua_pushnumber(L, sums[1]);
  return 2;
}

static const field lars_norms_fields[] = {F("weight_decay", G, NUM, ct_lars_args, weight_decay),
                                          {NULL, 0, 0, 0}};

/* lars_norms(opt, param, grad, state, group) -> sum p^2, sum (g + wd*p)^2 */
static int o_lars_norms(lua_State *L) {
  static const char *const names[] = {"param", "grad"};
  ct_lars_args o;
  read_fields(L, "lars_norms", lars_norms_fields, &o, 0, 0, &own_args);
  arrays a;
  check_arrays(L, "lars_norms", names, 2, ~0u, &a, 0, &own_args);
  double sums[2];
  if (a.dt == CT_F32) ct_optim_lars_norms_f32(P32(0), P32(1), a.n, o.weight_decay, sums);
  else ct_optim_lars_norms_f64(P64(0), P64(1), a.n, o.weight_decay, sums);
  lua_pushnumber(L, sums[0]);
  lua_pushnumber(L, sums[1]);
  return 2;
}

/* scalars[name], a contiguous tensor of dtype dt and n elements, as a data pointer. */
static void *vector_arg(lua_State *L, const char *fn, const char *name, ct_dtype dt, size_t n) {
  ct_tensor *t = named_tensor(L, SCALARS, name, fn);
  if (t->dtype != dt || !ct_is_contiguous(t) || (size_t)ct_numel(t) != n)
    luaL_error(L, "%s: scalars.%s must be a contiguous %s tensor of %d elements (%s)", who(L, fn), name,
               ct_dtype_name(dt), (int)n, fn);
  return ct_data(t);
}

/* Adafactor's calls: (opt, param, grad, state, group, work), work being the parameter's
 * table of scratch vectors (rowmean, colmean, rf, cf), its B x R x C view and the step's
 * numbers, which the class writes into it. */
typedef struct af_call {
  ct_adafactor_args o;
  size_t B, R, C;
  bool write, momentum; /* momentum: state.exp_avg is used (the group has a beta1) */
} af_call;
#define AF(name, kind, member) F(name, X, kind, af_call, member)
static const field af_means_fields[] = {
    AF("B", SIZE, B), AF("R", SIZE, R), AF("C", SIZE, C), AF("eps1", NUM, o.eps1), {NULL, 0, 0, 0}};
static const field af_factors_fields[] = {
    AF("B", SIZE, B), AF("R", SIZE, R), AF("C", SIZE, C), AF("beta2t", NUM, o.beta2t), {NULL, 0, 0, 0}};
static const field af_factored_fields[] = {AF("B", SIZE, B),
                                           AF("R", SIZE, R),
                                           AF("C", SIZE, C),
                                           AF("write", BOOL, write),
                                           AF("momentum", BOOL, momentum),
                                           AF("den", NUM, o.den),
                                           AF("lr", NUM, o.lr),
                                           AF("beta1", NUM, o.beta1),
                                           AF("wd_lr", NUM, o.wd_lr),
                                           {NULL, 0, 0, 0}};
static const field af_vector_fields[] = {
    AF("write", BOOL, write),  AF("momentum", BOOL, momentum), AF("beta2t", NUM, o.beta2t),
    AF("eps1", NUM, o.eps1),   AF("den", NUM, o.den),          AF("lr", NUM, o.lr),
    AF("beta1", NUM, o.beta1), AF("wd_lr", NUM, o.wd_lr),      {NULL, 0, 0, 0}};

/* Adafactor's matrix passes, over ranges of its B*R rows (or B*C columns) that
 * ct_parallel_blocks splits among threads; each row's and column's sum keeps its order,
 * and the sum of squares is added per fixed block of rows, so the bits do not depend on
 * the thread count. */
typedef struct af_job {
  ct_dtype dt;
  void *p, *m;
  const void *g, *rf, *cf;
  void *rowmean, *colmean;
  size_t R, C, rows, rows_per_block;
  double eps1, *part;
  const ct_adafactor_args *o;
} af_job;

static void af_rowmeans(void *ctx, size_t lo, size_t hi) {
  const af_job *j = ctx;
  if (j->dt == CT_F32) ct_optim_adafactor_rowmeans_f32(j->g, j->C, lo, hi, j->eps1, j->rowmean);
  else ct_optim_adafactor_rowmeans_f64(j->g, j->C, lo, hi, j->eps1, j->rowmean);
}

static void af_colmeans(void *ctx, size_t lo, size_t hi) {
  const af_job *j = ctx;
  if (j->dt == CT_F32) ct_optim_adafactor_colmeans_f32(j->g, j->R, j->C, lo, hi, j->eps1, j->colmean);
  else ct_optim_adafactor_colmeans_f64(j->g, j->R, j->C, lo, hi, j->eps1, j->colmean);
}

static double af_rows(const af_job *j, void *p, size_t lo, size_t hi) {
  return j->dt == CT_F32
      ? ct_optim_adafactor_factored_f32(p, j->g, j->m, j->rf, j->cf, j->R, j->C, lo, hi, j->o)
      : ct_optim_adafactor_factored_f64(p, j->g, j->m, j->rf, j->cf, j->R, j->C, lo, hi, j->o);
}

static void af_write(void *ctx, size_t lo, size_t hi) { af_rows(ctx, ((const af_job *)ctx)->p, lo, hi); }

static void af_squares(void *ctx, size_t lo, size_t hi) { /* blocks [lo, hi) of rows */
  const af_job *j = ctx;
  for (size_t k = lo; k < hi; k++) {
    size_t r0 = k * j->rows_per_block,
           r1 = r0 + j->rows_per_block < j->rows ? r0 + j->rows_per_block : j->rows;
    j->part[k] = af_rows(j, NULL, r0, r1);
  }
}

/* adafactor_means(...): the means of g^2 + eps1 over each row and each column of the B
 * matrices, into work.rowmean and work.colmean. */
static int o_adafactor_means(lua_State *L) {
  static const char *const fn = "adafactor_means";
  static const char *const names[] = {"param", "grad"};
  af_call c;
  read_fields(L, fn, af_means_fields, &c, 0, 0, &own_args);
  arrays a;
  check_arrays(L, fn, names, 2, ~0u, &a, 0, &own_args);
  size_t B = c.B, R = c.R, C = c.C;
  if (B * R * C != a.n) return luaL_error(L, "%s: B*R*C is not the parameter's size (%s)", who(L, fn), fn);
  af_job j = {.dt = a.dt,
              .g = ct_data(a.t[1]),
              .R = R,
              .C = C,
              .eps1 = c.o.eps1,
              .rowmean = vector_arg(L, fn, "rowmean", a.dt, B * R),
              .colmean = vector_arg(L, fn, "colmean", a.dt, B * C)};
  if (ct_get_num_threads() == 1) { /* one pass: g read once */
    if (a.dt == CT_F32) ct_optim_adafactor_means_f32(j.g, B, R, C, j.eps1, j.rowmean, j.colmean);
    else ct_optim_adafactor_means_f64(j.g, B, R, C, j.eps1, j.rowmean, j.colmean);
  } else {
    ct_parallel_blocks(B * R, C, af_rowmeans, &j);
    ct_parallel_blocks(B * C, R, af_colmeans, &j);
  }
  return 0;
}

/* adafactor_factors(...): the factors' EMAs (state.exp_avg_sq_row and _col, written) and
 * the step's factors work.rf, work.cf. */
static int o_adafactor_factors(lua_State *L) {
  static const char *const fn = "adafactor_factors";
  af_call c;
  read_fields(L, fn, af_factors_fields, &c, 0, 0, &own_args);
  luaL_checktype(L, STATE, LUA_TTABLE);
  ct_tensor *row = named_tensor(L, STATE, "exp_avg_sq_row", fn),
            *col = named_tensor(L, STATE, "exp_avg_sq_col", fn);
  ct_dtype dt = row->dtype;
  if (dt != CT_F32 && dt != CT_F64)
    return luaL_error(L, "%s: state.exp_avg_sq_row must be float32 or float64 (%s)", who(L, fn), fn);
  size_t B = c.B, R = c.R, C = c.C;
  static const char *const what[] = {"exp_avg_sq_row", "exp_avg_sq_col", "rowmean", "colmean", "rf", "cf"};
  ct_tensor *t[6] = {row, col};
  void *p[6];
  for (int i = 0; i < 6; i++) {
    if (i >= 2) t[i] = named_tensor(L, SCALARS, what[i], fn);
    if (t[i]->dtype != dt || !ct_is_contiguous(t[i]) || (size_t)ct_numel(t[i]) != (i % 2 == 0 ? R : C) * B)
      return luaL_error(L, "%s: %s must be a contiguous %s tensor of %d elements (%s)", who(L, fn), what[i],
                        ct_dtype_name(dt), (int)((i % 2 == 0 ? R : C) * B), fn);
    p[i] = ct_data(t[i]);
    for (int j = 0; j < i; j++)
      if (t[j]->storage == t[i]->storage)
        return luaL_error(L, "%s: %s and %s share storage (%s)", who(L, fn), what[j], what[i], fn);
  }
  if (dt == CT_F32) ct_optim_adafactor_factors_f32(p[0], p[1], p[2], p[3], p[4], p[5], B, R, C, c.o.beta2t);
  else ct_optim_adafactor_factors_f64(p[0], p[1], p[2], p[3], p[4], p[5], B, R, C, c.o.beta2t);
  ct_bump(row);
  ct_bump(col);
  return 0;
}

/* adafactor_factored(...) -> sum u^2 when work.write is false (nothing written), else the
 * step (p and state.exp_avg written). */
static int o_adafactor_factored(lua_State *L) {
  static const char *const fn = "adafactor_factored";
  static const char *const names[] = {"param", "grad", "exp_avg"};
  af_call c;
  read_fields(L, fn, af_factored_fields, &c, 0, 0, &own_args);
  arrays a;
  check_arrays(L, fn, names, 3, c.momentum ? ~0u : ~(1u << 2), &a, 0, &own_args);
  size_t B = c.B, R = c.R, C = c.C;
  if (B * R * C != a.n) return luaL_error(L, "%s: B*R*C is not the parameter's size (%s)", who(L, fn), fn);
  af_job j = {.dt = a.dt,
              .p = ct_data(a.t[0]),
              .g = ct_data(a.t[1]),
              .m = a.t[2] ? ct_data(a.t[2]) : NULL,
              .rf = vector_arg(L, fn, "rf", a.dt, B * R),
              .cf = vector_arg(L, fn, "cf", a.dt, B * C),
              .R = R,
              .C = C,
              .rows = B * R,
              .o = &c.o};
  double ss = 0;
  if (c.write) {
    ct_parallel_blocks(j.rows, C, af_write, &j);
    bump_written(&a, ALL_BUT_GRAD);
  } else { /* blocks of about 64K elements, at most MAXBLOCKS of them */
    double part[MAXBLOCKS];
    size_t per = ((size_t)1 << 16) / (C > 0 ? C : 1);
    j.rows_per_block = per > 0 ? per : 1;
    if ((j.rows + j.rows_per_block - 1) / j.rows_per_block > MAXBLOCKS)
      j.rows_per_block = (j.rows + MAXBLOCKS - 1) / MAXBLOCKS;
    size_t nblocks = (j.rows + j.rows_per_block - 1) / j.rows_per_block;
    j.part = part;
    ct_parallel_blocks(nblocks, j.rows_per_block * C, af_squares, &j);
    for (size_t k = 0; k < nblocks; k++) ss += part[k];
  }
  lua_pushnumber(L, ss);
  return 1;
}

/* adafactor_vector(...) -> sum u^2 (work.write false: state.exp_avg_sq updated), or the
 * step (write true). */
static int o_adafactor_vector(lua_State *L) {
  static const char *const fn = "adafactor_vector";
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
  af_call c;
  read_fields(L, fn, af_vector_fields, &c, 0, 0, &own_args);
  arrays a;
  check_arrays(L, fn, names, 4, c.momentum ? ~0u : ~(1u << 2), &a, 0, &own_args);
  bool write = c.write;
  double ss = a.dt == CT_F32 ? ct_optim_adafactor_vector_f32(write ? P32(0) : NULL, P32(1),
                                                             a.t[2] ? P32(2) : NULL, P32(3), a.n, &c.o)
                             : ct_optim_adafactor_vector_f64(write ? P64(0) : NULL, P64(1),
                                                             a.t[2] ? P64(2) : NULL, P64(3), a.n, &c.o);
  if (write) {
    ct_bump(a.t[0]);
    if (a.t[2]) ct_bump(a.t[2]);
  } else ct_bump(a.t[3]);
  lua_pushnumber(L, ss);
  return 1;
}

/* Muon's call: the matrix view's rows, the scale and the Newton-Schulz steps are fixed per
 * parameter, and kept with its workspaces (the table given as scalars). */
typedef struct muon_call {
  ct_muon_args o;
  size_t rows;
} muon_call;
static const field muon_fields[] = {F("lr", G, NUM, muon_call, o.lr),
                                    F("weight_decay", G, NUM, muon_call, o.weight_decay),
                                    F("momentum", G, NUM, muon_call, o.momentum),
                                    F("scale", X, NUM, muon_call, o.scale),
                                    F("steps", X, INT, muon_call, o.steps),
                                    F("rows", X, SIZE, muon_call, rows),
                                    {NULL, 0, 0, 0}};

/* muon_step(opt, param, grad, state, group, work): the param viewed as rows x (numel/rows);
 * work.x, y, A and B are the Newton-Schulz workspaces (the Lua class keeps them per
 * parameter, with rows, scale and steps). */
static int o_muon(lua_State *L) {
  static const char *const fn = "muon_step";
  static const char *const names[] = {"param", "grad", "momentum_buffer"};
  muon_call m;
  read_fields(L, fn, muon_fields, &m, 0, 0, &own_args);
  arrays a;
  check_arrays(L, fn, names, 3, ~0u, &a, 0, &own_args);
  if (m.rows < 1 || a.n == 0 || a.n % m.rows != 0)
    luaL_error(L, "%s: rows %d does not divide the param's %d elements (%s)", who(L, fn), (int)m.rows,
               (int)a.n, fn);
  size_t r = m.rows, c = a.n / r, k = r < c ? r : c;
  if (r > INT32_MAX || c > INT32_MAX)
    luaL_error(L, "%s: a %dx%d matrix passes BLAS's int sizes (%s)", who(L, fn), (int)r, (int)c, fn);
  static const char *const ws[] = {"x", "y", "A", "B"};
  ct_tensor *w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = named_tensor(L, SCALARS, ws[i], fn);
    size_t need = i < 2 ? a.n : k * k;
    if (w[i]->dtype != a.dt || !ct_is_contiguous(w[i]) || (size_t)ct_numel(w[i]) != need)
      luaL_error(L, "%s: workspace %s must be a contiguous %s tensor of %d elements (%s)", who(L, fn), ws[i],
                 ct_dtype_name(a.dt), (int)need, fn);
    for (int j = 0; j < 3; j++)
      if (w[i]->storage == a.t[j]->storage)
        luaL_error(L, "%s: workspace %s shares storage with %s (%s)", who(L, fn), ws[i], names[j], fn);
    for (int j = 0; j < i; j++)
      if (w[i]->storage == w[j]->storage)
        luaL_error(L, "%s: workspaces %s and %s share storage (%s)", who(L, fn), ws[j], ws[i], fn);
  }
  if (m.o.steps < 0 || m.o.steps > 100)
    luaL_error(L, "%s: scalars.steps must be in [0, 100], got %d (%s)", who(L, fn), m.o.steps, fn);
  if (a.dt == CT_F32)
    ct_optim_muon_f32(P32(0), P32(1), P32(2), (float *)ct_data(w[0]), (float *)ct_data(w[1]),
                      (float *)ct_data(w[2]), (float *)ct_data(w[3]), r, c, &m.o);
  else
    ct_optim_muon_f64(P64(0), P64(1), P64(2), (double *)ct_data(w[0]), (double *)ct_data(w[1]),
                      (double *)ct_data(w[2]), (double *)ct_data(w[3]), r, c, &m.o);
  bump_written(&a, ALL_BUT_GRAD);
  return 0;
}

/* The sum of squares in fixed blocks of 64K elements (at most MAXBLOCKS), split over the
 * threads, the partials added in block order: the same bits on any thread count. */
typedef struct sumsq_job {
  const void *x;
  ct_dtype dt;
  size_t n, block;
  double *part;
} sumsq_job;

static void sumsq_blocks(void *ctx, size_t lo, size_t hi) {
  const sumsq_job *j = ctx;
  for (size_t k = lo; k < hi; k++) {
    size_t off = k * j->block, len = j->n - off < j->block ? j->n - off : j->block;
    j->part[k] = j->dt == CT_F32 ? ct_optim_sumsq_f32((const float *)j->x + off, len)
                                 : ct_optim_sumsq_f64((const double *)j->x + off, len);
  }
}

/* sum_squares(t[, true]): sum of the squares of t (contiguous float), or with true of
 * t's .grad, read without making a box for it. */
static int o_sum_squares(lua_State *L) {
  ct_tensor *t = ct_lua_check(L, 1);
  if (lua_toboolean(L, 2) && (t = t->grad) == NULL) return luaL_error(L, "sum_squares: tensor has no grad");
  if ((t->dtype != CT_F32 && t->dtype != CT_F64) || !ct_is_contiguous(t))
    return luaL_error(L, "sum_squares: tensor must be contiguous float32 or float64, got %s%s",
                      ct_is_contiguous(t) ? "" : "non-contiguous ", ct_dtype_name(t->dtype));
  double part[MAXBLOCKS], ss = 0;
  sumsq_job j = {
      .x = ct_data(t), .dt = t->dtype, .n = (size_t)ct_numel(t), .block = (size_t)1 << 16, .part = part};
  if ((j.n + j.block - 1) / j.block > MAXBLOCKS) j.block = (j.n + MAXBLOCKS - 1) / MAXBLOCKS;
  size_t nblocks = (j.n + j.block - 1) / j.block;
  ct_parallel_blocks(nblocks, j.block, sumsq_blocks, &j);
  for (size_t k = 0; k < nblocks; k++) ss += part[k];
  lua_pushnumber(L, ss);
  return 1;
}

/* ---- the per-step plumbing of Optimizer:step and zero_grad (lua/crater/optim/optimizer.lua) ---- */

/* core.internal.checked_grad(p, boxed) -> the gradient of p (a new box), or true instead when
 * boxed is false; false when p has none; nil when its shape or dtype is not p's.
 * A box costs more than the fused update of a small parameter, and the kernels read
 * p.grad themselves when given true, so the built-in optimizers make none. */
/* p's gradient has p's dtype and shape (what a kernel given true reads). */
static bool grad_fits(const ct_tensor *p) { return p->grad->dtype == p->dtype && ct_same_shape(p->grad, p); }

static int o_checked_grad(lua_State *L) {
  ct_tensor *p = ct_lua_check(L, 1), *g = p->grad;
  if (g == NULL) lua_pushboolean(L, 0);
  else if (!grad_fits(p)) lua_pushnil(L);
  else if (!lua_toboolean(L, 2)) lua_pushboolean(L, 1);
  else {
    ct_tensor **box = ct_lua_newbox(L);
    ct_tensor_retain(g);
    *box = g;
  }
  return 1;
}

/* core.internal.clear_grads(groups): every parameter's .grad = nil (zero_grad's default).
 * All is checked before any grad goes.  The lists are the optimizer's own plain tables, so
 * raw lengths do (a hole shows as a nil element), and the per-element check of a list
 * (ct_lua_list) would cost two thirds of a small problem's zero_grad. */
static int o_clear_grads(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  /* the checking pass's parameters, when few: the clearing pass then reads no list again */
  ct_tensor *seen[32];
  size_t nseen = 0;
  bool all_seen = true;
  for (int clear = 0; clear <= 1; clear++) {
    if (clear && all_seen) {
      for (size_t i = 0; i < nseen; i++) {
        ct_tensor_release(seen[i]->grad);
        seen[i]->grad = NULL;
      }
      return 0;
    }
    lua_Integer ngroups = (lua_Integer)lua_rawlen(L, 1);
    for (lua_Integer gi = 1; gi <= ngroups; gi++) {
      if (lua_rawgeti(L, 1, gi) != LUA_TTABLE)
        return luaL_error(L, "zero_grad: param group %I is not a table (%s)", (LUAI_UACINT)gi,
                          luaL_typename(L, -1));
      if (lua_getfield(L, -1, "params") != LUA_TTABLE)
        return luaL_error(L, "zero_grad: the params of group %I are not a list (%s)", (LUAI_UACINT)gi,
                          luaL_typename(L, -1));
      lua_Integer np = (lua_Integer)lua_rawlen(L, -1);
      for (lua_Integer i = 1; i <= np; i++) {
        lua_rawgeti(L, -1, i);
        ct_tensor *p = ct_lua_test(L, -1);
        if (p == NULL)
          return luaL_error(L, "zero_grad: params[%I] of group %I is not a tensor (%s)", (LUAI_UACINT)i,
                            (LUAI_UACINT)gi, luaL_typename(L, -1));
        if (clear) {
          ct_tensor_release(p->grad);
          p->grad = NULL;
        } else if (nseen < sizeof seen / sizeof seen[0]) seen[nseen++] = p;
        else all_seen = false;
        lua_pop(L, 1);
      }
      lua_pop(L, 2);
    }
  }
  return 0;
}

/* core.internal.fast_step(opt, how): Optimizer:step's common case in one call, for a class
 * whose update is exactly `state.step = state.step + 1; kernel(opt, p, true, state, group)`
 * (how: the kernel) or a variant of it (how: {kernel, count, scalars, ready}: the step counted
 * or not, a scalars table passed sixth, a ready(opt) that must be true), as
 * Optimizer.kernel_update declares them.  The Lua step (check_step, apply, the update) spent
 * some 8,000 instructions around a small problem's kernel call, on method lookups through
 * the classes and calls; this makes the same checks and calls.  It runs only when nothing is
 * new: every group has its compiled options test (opt._checked) and passes it, every
 * gradient fits its parameter, every parameter with one has a state (with a numeric step
 * when counted), and the class has no begin_step.  Otherwise it returns false having changed
 * nothing, and the Lua step runs (and raises what it raises). */
/* its keys, interned once: upvalues 1.. (a C string key is hashed at each lua_getfield) */
static const char *const fast_keys[] = {"begin_step", "_checked", "param_groups", "state", "params", "step"};
enum { K_BEGIN = 1, K_CHECKED, K_GROUPS, K_STATE, K_PARAMS, K_STEP };
#define KEY(k) lua_pushvalue(L, lua_upvalueindex(k))

/* The kernel of the o_step closure at idx (its upvalue 1). */
static const kernel *closure_kernel(lua_State *L, int idx) {
  lua_getupvalue(L, idx, 1);
  const kernel *k = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return k;
}

static int o_fast_step(lua_State *L) {
  /* the stack: the arguments, then one slot each */
  enum {
    S_OPT = 1,
    S_KERNEL,
    S_COUNT,
    S_SCALARS,
    S_CHECKED,
    S_GROUPS,
    S_STATES,
    S_GROUP,
    S_CACHE, /* the group's block (run 1; nil in run 0) */
    S_PARAMS,
    S_P,
    S_ST,
    S_STEP
  };
  luaL_checktype(L, S_OPT, LUA_TTABLE);
  lua_settop(L, S_KERNEL);
  luaL_checkstack(L, 28, NULL); /* the slots and a kernel call's arguments or reads pass Lua's 20 */
  bool count = true;
  if (lua_istable(L, S_KERNEL)) { /* a variant {kernel, count, scalars, ready} */
    for (int k = 1; k <= 4; k++) lua_rawgeti(L, S_KERNEL, k);
    if (!lua_isnil(L, -1)) { /* ready(opt) */
      lua_pushvalue(L, S_OPT);
      lua_call(L, 1, 1);
      if (!lua_toboolean(L, -1)) {
        lua_pushboolean(L, 0);
        return 1;
      }
    }
    lua_pop(L, 1);
    lua_remove(L, S_KERNEL); /* kernel, count, scalars in their slots */
    count = lua_toboolean(L, S_COUNT);
  }
  lua_settop(L, S_SCALARS);
  luaL_checktype(L, S_KERNEL, LUA_TFUNCTION);
  KEY(K_BEGIN);
  bool ok = lua_gettable(L, S_OPT) == LUA_TNIL; /* through the classes; the fields below are the instance's */
  lua_pop(L, 1);
  KEY(K_CHECKED);
  ok = ok && lua_rawget(L, S_OPT) == LUA_TTABLE;
  KEY(K_GROUPS);
  ok = ok && lua_rawget(L, S_OPT) == LUA_TTABLE;
  KEY(K_STATE);
  ok = ok && lua_rawget(L, S_OPT) == LUA_TTABLE;
  bool cached = ok && lua_tocfunction(L, S_KERNEL) == o_step;
  /* One group of one parameter (a small problem's case) keeps run 0's reads on the stack
   * for run 1: its slots are not reset, and nothing between the runs changes them. */
  lua_Integer ngroups = ok ? (lua_Integer)lua_rawlen(L, S_GROUPS) : 0, np = 0;
  bool has_grad = false; /* run 0's answer for the kept parameter */
  for (int run = 0; ok && run <= 1; run++) { /* checks first, then the updates */
    for (lua_Integer gi = 1; ok && gi <= ngroups; gi++) {
      bool kept = run && ngroups == 1;
      if (!kept) {
        lua_settop(L, S_STATES);
        ok = lua_rawgeti(L, S_GROUPS, gi) == LUA_TTABLE;
        lua_pushnil(L); /* S_CACHE */
      }
      if (ok && !run) {
        lua_pushvalue(L, S_GROUP);
        ok = lua_rawget(L, S_CHECKED) == LUA_TFUNCTION; /* its options test */
        if (ok) {
          lua_pushvalue(L, -1);
          lua_pushvalue(L, S_GROUP);
          lua_call(L, 1, 1);
          ok = lua_toboolean(L, -1);
          lua_pop(L, 1);
        }
        if (ok && cached) { /* the test's block, made at its first one-call step */
          lua_pushvalue(L, -1);
          if (lua_rawget(L, S_CHECKED) != LUA_TUSERDATA) {
            lua_pop(L, 1);
            kernel_cache *c = lua_newuserdatauv(L, sizeof *c, 0);
            c->tag = (uintptr_t)c ^ CACHE_KEY;
            c->k = NULL;
            c->never = false;
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, S_CHECKED);
          }
          lua_replace(L, S_CACHE);
        }
        lua_settop(L, S_CACHE);
      } else if (ok && run && !kept && cached) { /* run 0 made the block */
        lua_pushvalue(L, S_GROUP);
        lua_rawget(L, S_CHECKED);
        lua_rawget(L, S_CHECKED);
        lua_replace(L, S_CACHE);
      }
      if (!kept) {
        KEY(K_PARAMS);
        ok = ok && lua_rawget(L, S_GROUP) == LUA_TTABLE;
        np = ok ? (lua_Integer)lua_rawlen(L, S_PARAMS) : 0;
      }
      for (lua_Integer i = 1; ok && i <= np; i++) {
        if (!(kept && np == 1)) {
          lua_settop(L, S_PARAMS);
          lua_rawgeti(L, S_PARAMS, i);
          ct_tensor *p = ct_lua_test(L, S_P);
          ok = p != NULL && (p->grad == NULL || grad_fits(p));
          has_grad = ok && p->grad != NULL;
          if (!has_grad) continue;
          lua_pushvalue(L, S_P);
          ok = lua_rawget(L, S_STATES) == LUA_TTABLE;
          if (count) {
            KEY(K_STEP);
            ok = ok && lua_rawget(L, S_ST) == LUA_TNUMBER;
          }
        } else if (!has_grad) continue;
        if (!ok || !run) continue;
        if (count) {
          KEY(K_STEP);
          if (lua_isinteger(L, S_STEP))
            lua_pushinteger(L, (lua_Integer)((lua_Unsigned)lua_tointeger(L, S_STEP) + 1));
          else lua_pushnumber(L, lua_tonumber(L, S_STEP) + 1);
          lua_rawset(L, S_ST);
        }
        kernel_cache *c = cached ? to_cache(L, S_CACHE) : NULL;
        if (c && c->k != NULL && c->k == closure_kernel(L, S_KERNEL)) { /* o_step's work, here */
          static const frame slots = {{0, S_OPT, S_P, 0, S_ST, S_GROUP, S_SCALARS}, S_KERNEL};
          kernel_call(L, c->k, c, c->array_keys, &slots);
          continue;
        }
        lua_pushvalue(L, S_KERNEL);
        lua_pushvalue(L, S_OPT);
        lua_pushvalue(L, S_P);
        lua_pushboolean(L, 1);
        lua_pushvalue(L, S_ST);
        lua_pushvalue(L, S_GROUP);
        lua_pushvalue(L, S_SCALARS); /* nil without scalars */
        lua_pushvalue(L, S_CACHE);
        lua_call(L, 7, 0);
      }
    }
  }
  lua_pushboolean(L, ok);
  return 1;
}
#undef KEY

/* crater.core.internal's, like the kernels: the optimizers in lua/crater/optim call them */
static const luaL_Reg optim_funcs[] = {{"checked_grad", o_checked_grad},
                                       {"clear_grads", o_clear_grads},
                                       {"prodigy_stats", o_prodigy_stats},
                                       {"lamb_stats", o_lamb_stats},
                                       {"lars_norms", o_lars_norms},
                                       {"muon_step", o_muon},
                                       {"sum_squares", o_sum_squares},
                                       {"adafactor_means", o_adafactor_means},
                                       {"adafactor_factored", o_adafactor_factored},
                                       {"adafactor_factors", o_adafactor_factors},
                                       {"adafactor_vector", o_adafactor_vector},
                                       {NULL, NULL}};

/* Adds the functions above and one closure of o_step per row of 'kernels' to crater.core.internal. */
void ct_lua_open_optim(lua_State *L) {
  ct_lua_setfuncs(L, NULL, optim_funcs);
  lua_getfield(L, -1, "internal");
  for (size_t k = 0; k < sizeof fast_keys / sizeof fast_keys[0]; k++) lua_pushstring(L, fast_keys[k]);
  lua_pushcclosure(L, o_fast_step, (int)(sizeof fast_keys / sizeof fast_keys[0]));
  lua_setfield(L, -2, "fast_step");
  for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
    const kernel *k = &kernels[i];
    int nf = 0;
    while (k->fields[nf].name) nf++;
    lua_pushlightuserdata(L, (void *)k);
    lua_pushinteger(L, 3 + nf);
    for (int f = 0; f < nf; f++) lua_pushstring(L, k->fields[f].name);
    for (int t = 2; t < k->count; t++) lua_pushstring(L, k->arrays[t]);
    lua_pushcclosure(L, o_step, 2 + nf + (k->count > 2 ? k->count - 2 : 0));
    lua_setfield(L, -2, kernels[i].fn);
  }
  lua_pop(L, 1);
}
