/* crater binding: the crater.Tensor userdata, constructors, every tensor method and its
 * crater.<name> function form, operators and indexing.  Arguments are checked here, at
 * the door; shape and dtype errors come from the core as "fn: message". */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lbind.h"

/* ---------------- boxes ---------------- */

/* The metatable is kept under a light-userdata key and, for the state that opened crater
 * last, under an integer reference too: every op boxes its result, and reading the
 * registry's array part costs a fifth of hashing a pointer key (about 90 instructions of
 * a small op).  The registry's address tells the states apart; once two are open at
 * once, every box takes the pointer key. */
static const char MT_KEY = 'm';
static int mt_ref = LUA_NOREF;
static const void *mt_ref_registry;
static bool mt_ref_off;
/* the thread last seen with that registry: the same thread asks no API call (a fifth of
 * this function); reset whenever a state opens crater */
static lua_State *mt_ref_thread;

static void push_metatable(lua_State *L) {
  if (!mt_ref_off &&
      (L == mt_ref_thread || (lua_topointer(L, LUA_REGISTRYINDEX) == mt_ref_registry && (mt_ref_thread = L))))
    lua_rawgeti(L, LUA_REGISTRYINDEX, mt_ref);
  else lua_rawgetp(L, LUA_REGISTRYINDEX, &MT_KEY);
}

/* A tensor looks like 16 bytes to Lua's collector, which therefore never hurries to
 * free the C memory behind dead tensors: a loop of small ops made a few hundred bytes of
 * C memory per op and no Lua garbage worth a young collection, so dead tensors piled up
 * for thousands of steps and the working set left the caches (the Rosenbrock benchmark
 * ran at half speed).  Two remedies:
 * - the C bytes allocated since the last box, up to BOX_WEIGHT, count as Lua allocation
 *   (added to the collector's debt every GC_STEP), so young collections keep pace with
 *   small tensors.  The cap keeps big tensors from running a young collection at every
 *   op: those would promote a forward pass's activations to the old generation, where
 *   only a major cycle frees them (the MLP's peak grew by 15%);
 * - a full collection runs whenever live C bytes pass a threshold (a quarter more than
 *   the bytes that survived the last one, and at least GC_SLACK more): generational mode
 *   keeps old garbage until a major cycle, and a CNN run grew by megabytes a batch. */
#define BOX_WEIGHT ((int64_t)4 << 10)
#define GC_STEP ((int64_t)16 << 10)
#define GC_SLACK ((int64_t)32 << 20)
static int64_t gc_threshold = GC_SLACK, gc_seen, gc_debt;

static void collect_if_due(lua_State *L) {
  ct_memstat m = ct_memory();
  gc_debt += m.allocated - gc_seen < BOX_WEIGHT ? m.allocated - gc_seen : BOX_WEIGHT;
  gc_seen = m.allocated;
  if (gc_debt >= GC_STEP) {
    lua_gc(L, LUA_GCSTEP, (int)(gc_debt >> 10));
    gc_debt = 0;
    ct_lua_release_dead();
  }
  if (m.bytes <= gc_threshold) return;
  lua_gc(L, LUA_GCCOLLECT);
  ct_lua_release_dead();
  int64_t live = ct_memory().bytes;
  gc_threshold = live + (live / 4 > GC_SLACK ? live / 4 : GC_SLACK);
}

/* A box is the tensor and a tag: the box's own address scrambled with a constant, so no
 * other userdata passes for a box by accident.  Checking size and tag takes two API calls
 * where comparing metatables took four, and a Rosenbrock step tests some forty boxes. */
typedef struct tensor_box {
  ct_tensor *t;
  uintptr_t tag;
  struct tensor_box *prev, *next; /* the wrapped state's live boxes (see below) */
} tensor_box;
#define BOX_KEY ((uintptr_t)0x9e3779b97f4a7c15u)
static bool is_box(const tensor_box *b) { return b->tag == ((uintptr_t)b ^ BOX_KEY); }

/* ---- boxes without finalisers ----
 * A finaliser costs Lua some 500 instructions an object (a protected call each, and the
 * object lives one more cycle), a quarter of a small op.  So boxes have none: crater wraps
 * the state's allocator, which sees a box's block go (its size, then its tag) and queues
 * the box's tensor; the queue is released at the next box made, after crater's own
 * collections and before crater.memory() reads.  A box that holds Lua values (hooks, a
 * Function's state) must hand them over when it goes: attaching the first one gives it a
 * guard (box_guard), a finalised userdata kept by the box's user value that keeps the box.
 * One state at a time is wrapped; another, while it lives, keeps __gc on its metatable.
 * At lua_close the finalisers run before the frees (and before lua5.4 unloads this
 * library), so a closing sentinel releases the queue and the tensor of every live box (a
 * list of them) while Lua still stands, then gives the state its own allocator back. */
static lua_State *wrapped; /* the main thread of the wrapped state */
static lua_Alloc inner_alloc;
static void *inner_ud;
static bool making_box;
static size_t box_block; /* the size of a box's block, once learned */
static void *new_block; /* the block of the box being made */
static ptrdiff_t box_offset; /* where a box sits in its block */
static ct_tensor **dead; /* the tensors of freed boxes, to release */
static size_t ndead, dead_cap, live_boxes; /* ndead + live_boxes <= dead_cap: no overflow */
static tensor_box live = {NULL, 0, &live, &live};

static void *box_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (ptr == NULL) {
    void *p = inner_alloc(inner_ud, NULL, osize, nsize);
    if (making_box && osize == LUA_TUSERDATA) { /* osize is the type of a new object */
      making_box = false;
      new_block = p;
      box_block = nsize;
    }
    return p;
  }
  if (nsize == 0 && osize == box_block && box_offset) {
    tensor_box *b = (tensor_box *)((char *)ptr + box_offset);
    if (is_box(b)) {
      b->tag = 0;
      b->prev->next = b->next;
      b->next->prev = b->prev;
      live_boxes--;
      if (b->t) dead[ndead++] = b->t;
    }
  }
  return inner_alloc(inner_ud, ptr, osize, nsize);
}

void ct_lua_release_dead(void) {
  while (ndead > 0) ct_tensor_release(dead[--ndead]); /* a release frees no box: no growth */
}

static bool is_wrapped(lua_State *L) { return wrapped != NULL && lua_getallocf(L, NULL) == box_alloc; }

static int closing_gc(lua_State *L) {
  ct_lua_release_dead();
  for (tensor_box *b = live.next; b != &live; b = b->next) {
    ct_tensor_release(b->t);
    b->t = NULL;
    b->tag = 0;
  }
  live.next = live.prev = &live;
  live_boxes = 0;
  ct_lua_autograd_close(L);
  lua_setallocf(L, inner_alloc, inner_ud);
  wrapped = NULL;
  free(dead); /* no box is counted from here on (and lua5.4 may unload this library) */
  dead = NULL;
  dead_cap = 0;
  return 0;
}

ct_tensor **ct_lua_newbox(lua_State *L) {
  ct_lua_release_dead();
  collect_if_due(L);
  bool counted = is_wrapped(L);
  if (counted && live_boxes + ndead + 1 > dead_cap) {
    size_t cap = dead_cap ? 2 * dead_cap : 1024;
    ct_tensor **d = realloc(dead, cap * sizeof *d);
    if (d == NULL) luaL_error(L, "not enough memory");
    dead = d;
    dead_cap = cap;
  }
  making_box = counted;
  tensor_box *b = lua_newuserdatauv(L, sizeof *b, 1); /* the user value: hooks and such */
  making_box = false;
  b->t = NULL;
  b->tag = (uintptr_t)b ^ BOX_KEY;
  if (counted) {
    live_boxes++;
    b->prev = &live;
    b->next = live.next;
    live.next->prev = b;
    live.next = b;
  }
  push_metatable(L);
  lua_setmetatable(L, -2);
  return &b->t;
}

/* The box at idx will hold Lua values: a wrapped state's box gets its guard (once), which
 * its user value table at uv keeps under the key "guard". */
static int guard_gc(lua_State *L);
void ct_lua_box_keeps_values(lua_State *L, int box, int uv) {
  if (!is_wrapped(L)) return;
  bool guarded = lua_getfield(L, uv, "guard") != LUA_TNIL;
  lua_pop(L, 1);
  if (guarded) return;
  lua_newuserdatauv(L, 0, 1);
  lua_pushvalue(L, box);
  lua_setiuservalue(L, -2, 1);
  if (luaL_newmetatable(L, "crater.box_guard")) {
    lua_pushcfunction(L, guard_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_setfield(L, uv, "guard");
}

static ct_tensor **test_box(lua_State *L, int idx) {
  if (ndead) ct_lua_release_dead(); /* a collection freed boxes since: their tensors go first */
  tensor_box *b = lua_touserdata(L, idx); /* light userdata has length 0: never read below */
  if (b == NULL || lua_rawlen(L, idx) != sizeof *b || !is_box(b)) return NULL;
  return &b->t;
}

ct_tensor *ct_lua_test(lua_State *L, int idx) {
  ct_tensor **box = test_box(L, idx);
  return box ? *box : NULL;
}

ct_tensor *ct_lua_check(lua_State *L, int idx) {
  ct_tensor **box = test_box(L, idx);
  if (box == NULL) luaL_typeerror(L, idx, CT_TENSOR_MT);
  if (*box == NULL) luaL_argerror(L, idx, "tensor was released");
  return *box;
}

int ct_lua_error(lua_State *L, const char *fn, ct_err *err) { return luaL_error(L, "%s: %s", fn, err->msg); }

int ct_lua_push(lua_State *L, ct_tensor *t, const char *fn, ct_err *err) {
  if (t == NULL) return ct_lua_error(L, fn, err);
  ct_tensor **box = ct_lua_newbox(L);
  *box = t;
  return 1;
}

ct_dtype ct_lua_dtype(lua_State *L, int idx, ct_dtype dflt) {
  static const char *const names[] = {"float32", "float64", "int64", "float", "double", "long", NULL};
  static const ct_dtype map[] = {CT_F32, CT_F64, CT_I64, CT_F32, CT_F64, CT_I64};
  if (lua_isnoneornil(L, idx)) return dflt;
  return map[luaL_checkoption(L, idx, NULL, names)];
}

lua_Integer ct_lua_list(lua_State *L, int idx, lua_Integer max, const char *fn, const char *what) {
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx)) luaL_error(L, "%s: %s must be a table, got %s", fn, what, luaL_typename(L, idx));
  lua_len(L, idx); /* __len may answer anything */
  int isint = 0;
  lua_Integer n = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
  if (!isint)
    luaL_error(L, "%s: the length of %s is not an integer (got %s)", fn, what,
               lua_type(L, -1) == LUA_TNUMBER ? luaL_tolstring(L, -1, NULL) : luaL_typename(L, -1));
  lua_pop(L, 1);
  if (n < 0 || n > max)
    luaL_error(L, "%s: %s has length %I (expected 0 to %I)", fn, what, (LUAI_UACINT)n, (LUAI_UACINT)max);
  if (luaL_getmetafield(L, idx, "__len") != LUA_TNIL) {
    lua_pop(L, 1);
    return n;
  }
  /* # of a plain table is any border: the list is whole when keys 1..n are all there and
   * no integer key lies beyond */
  lua_Integer count = 0, beyond = 0;
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
    if (!lua_isinteger(L, -2)) continue;
    lua_Integer k = lua_tointeger(L, -2);
    if (k >= 1 && k <= n) count++;
    else if (k > n && beyond == 0) beyond = k;
  }
  if (count < n || beyond) {
    lua_Integer hole = 1;
    while (hole <= n && lua_rawgeti(L, idx, hole) != LUA_TNIL) {
      lua_pop(L, 1);
      hole++;
    }
    luaL_error(L, "%s: %s has a hole: element %I is nil (a list needs elements 1 to %I)", fn, what,
               (LUAI_UACINT)hole, (LUAI_UACINT)(beyond ? beyond : n));
  }
  return n;
}

/* core.internal.check_list(t, fn, what, max?) -> #t: the same checks for the Lua modules */
static int t_check_list(lua_State *L) {
  const char *fn = luaL_checkstring(L, 2), *what = luaL_checkstring(L, 3);
  lua_pushinteger(L, ct_lua_list(L, 1, luaL_optinteger(L, 4, LUA_MAXINTEGER), fn, what));
  return 1;
}

/* The end of the box at idx: __close, an unwrapped state's __gc and a guard's. */
static void let_go(lua_State *L, int idx) {
  ct_tensor **box = test_box(L, idx);
  if (box == NULL) return;
  ct_lua_hand_over(L, idx);
  ct_tensor_release(*box);
  *box = NULL;
}
static int t_gc(lua_State *L) {
  let_go(L, 1);
  return 0;
}
static int guard_gc(lua_State *L) {
  if (lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA) let_go(L, 2);
  return 0;
}

#define PUSH(L, expr, fn) (ct_lua_push((L), (expr), (fn), &err))

/* ---------------- argument helpers ---------------- */

/* A 1-based (or negative, from the end) Lua dim to a 0-based one; ndim 0 counts as 1. */
static int check_dim(lua_State *L, int idx, int ndim, bool extra) {
  lua_Integer d = luaL_checkinteger(L, idx);
  int n = (ndim ? ndim : 1) + (extra ? 1 : 0);
  if (d < 0) d += n + 1;
  if (d < 1 || d > n)
    return luaL_argerror(L, idx,
                         lua_pushfstring(L, "dimension %d out of range (the tensor has %d dims)",
                                         (int)luaL_checkinteger(L, idx), ndim));
  return (int)d - 1;
}

static int opt_dim(lua_State *L, int idx, int ndim) {
  return lua_isnoneornil(L, idx) ? -1 : check_dim(L, idx, ndim, false);
}

static int64_t check_size(lua_State *L, int idx, lua_Integer v, int isnum) {
  if (!isnum) luaL_argerror(L, idx, "sizes must be integers");
  if (v < 0) luaL_argerror(L, idx, lua_pushfstring(L, "size %I is negative", (LUAI_UACINT)v));
  return (int64_t)v;
}

/* Sizes given as a table {2,3} at idx or as integers from idx on (stops at a non-number).
 * Returns the count; *next is the first unread index. -1 entries allowed when allow_neg1. */
static int read_sizes(lua_State *L, int idx, int64_t *shape, int *next, bool allow_neg1, const char *fn) {
  int n = 0;
  if (lua_istable(L, idx) && !luaL_testudata(L, idx, CT_TENSOR_MT)) {
    lua_Integer len = ct_lua_list(L, idx, CT_MAXDIM, fn, "the size list");
    for (lua_Integer i = 1; i <= len; i++) {
      lua_geti(L, idx, i);
      int isnum;
      lua_Integer v = lua_tointegerx(L, -1, &isnum);
      lua_pop(L, 1);
      shape[n++] = (allow_neg1 && v == -1) ? -1 : check_size(L, idx, v, isnum);
    }
    *next = idx + 1;
    return n;
  }
  while (lua_type(L, idx) == LUA_TNUMBER) {
    if (n == CT_MAXDIM) luaL_argerror(L, idx, "too many dimensions");
    int isnum;
    lua_Integer v = lua_tointegerx(L, idx, &isnum);
    shape[n++] = (allow_neg1 && v == -1) ? -1 : check_size(L, idx, v, isnum);
    idx++;
  }
  *next = idx;
  return n;
}

/* options table at idx (or nil): dtype and requires_grad */
static ct_dtype opt_dtype(lua_State *L, int idx, ct_dtype dflt) {
  if (!lua_istable(L, idx)) return dflt;
  lua_getfield(L, idx, "dtype");
  if (!lua_isnil(L, -1)) { /* name the options argument, not a stack slot */
    const char *s = lua_tostring(L, -1);
    static const char *const ok[] = {"float32", "float64", "int64", "float", "double", "long"};
    bool known = false;
    for (size_t k = 0; s && k < sizeof ok / sizeof ok[0]; k++) known = known || strcmp(s, ok[k]) == 0;
    if (!known)
      luaL_argerror(L, idx,
                    lua_pushfstring(L, "unknown dtype '%s' (expected float32, float64 or int64)",
                                    s ? s : luaL_typename(L, -1)));
  }
  ct_dtype dt = ct_lua_dtype(L, -1, dflt);
  lua_pop(L, 1);
  return dt;
}

static void apply_requires_grad(lua_State *L, int opts, ct_tensor *t) {
  if (!lua_istable(L, opts)) return;
  lua_getfield(L, opts, "requires_grad");
  if (lua_toboolean(L, -1)) {
    if (t->dtype == CT_I64) luaL_error(L, "only floating point tensors can require gradients (got int64)");
    t->requires_grad = true;
  }
  lua_pop(L, 1);
}

/* The dtype of new float tensors when none is asked for (crater.set_default_dtype). */
static ct_dtype default_float = CT_F32;

static int t_set_default_dtype(lua_State *L) {
  ct_dtype dt = ct_lua_dtype(L, 1, CT_I64);
  if (lua_isnoneornil(L, 1) || dt == CT_I64)
    return luaL_error(L, "set_default_dtype: only floating dtypes are supported (float32 or float64), got %s",
                      lua_isnoneornil(L, 1) ? "nothing" : lua_tostring(L, 1));
  default_float = dt;
  return 0;
}

static int t_get_default_dtype(lua_State *L) {
  lua_pushstring(L, ct_dtype_name(default_float));
  return 1;
}

/* A tensor operand at idx; numbers become 0-d tensors of a dtype that fits 'like'. */
static ct_tensor *operand(lua_State *L, int idx, const ct_tensor *like) {
  ct_tensor *t = ct_lua_test(L, idx);
  if (t) return t;
  if (lua_type(L, idx) != LUA_TNUMBER) luaL_typeerror(L, idx, "crater.Tensor or number");
  ct_err err;
  ct_dtype dt = like ? like->dtype : default_float;
  if (dt == CT_I64 && !lua_isinteger(L, idx)) dt = default_float;
  ct_tensor **box = ct_lua_newbox(L); /* left on the stack; collected later */
  *box = dt == CT_I64 ? ct_tensor_full_i64(0, NULL, lua_tointeger(L, idx), &err) /* exact */
                      : ct_tensor_scalar(dt, lua_tonumber(L, idx), &err);
  if (*box == NULL) ct_lua_error(L, "tensor", &err);
  lua_replace(L, idx);
  return *box;
}

/* ---------------- constructors ---------------- */

static int make_filled(lua_State *L, const char *fn, int mode) { /* 0 zeros 1 ones 2 empty 3 rand 4 randn */
  int64_t shape[CT_MAXDIM];
  int next, n = read_sizes(L, 1, shape, &next, false, fn);
  if (!lua_isnoneornil(L, next) && !lua_istable(L, next))
    luaL_typeerror(L, next, next == 1 ? "sizes" : "options table");
  ct_dtype dt = opt_dtype(L, next, default_float);
  ct_err err;
  ct_tensor **box = ct_lua_newbox(L);
  *box = mode == 0 ? ct_tensor_zeros(dt, n, shape, &err)
      : mode == 1  ? ct_tensor_full(dt, n, shape, 1, &err)
                   : ct_tensor_new(dt, n, shape, &err);
  if (*box == NULL) return ct_lua_error(L, fn, &err);
  if (mode == 2 && (*box)->dtype != CT_I64) memset((*box)->storage->data, 0, (*box)->storage->nbytes);
  if (mode == 3) ct_fill_uniform(*box, 0, 1);
  if (mode == 4) ct_fill_normal(*box, 0, 1);
  apply_requires_grad(L, next, *box);
  return 1;
}
static int t_zeros(lua_State *L) { return make_filled(L, "zeros", 0); }
static int t_ones(lua_State *L) { return make_filled(L, "ones", 1); }
static int t_empty(lua_State *L) { return make_filled(L, "empty", 2); }
static int t_rand(lua_State *L) { return make_filled(L, "rand", 3); }
static int t_randn(lua_State *L) { return make_filled(L, "randn", 4); }

static int t_full(lua_State *L) {
  int64_t shape[CT_MAXDIM];
  luaL_checktype(L, 1, LUA_TTABLE);
  int next, n = read_sizes(L, 1, shape, &next, false, "full");
  double v = luaL_checknumber(L, next);
  ct_dtype dt = opt_dtype(L, next + 1, default_float);
  ct_err err;
  ct_tensor **box = ct_lua_newbox(L);
  *box = dt == CT_I64 && lua_isinteger(L, next) ? ct_tensor_full_i64(n, shape, lua_tointeger(L, next), &err)
                                                : ct_tensor_full(dt, n, shape, v, &err);
  if (*box == NULL) return ct_lua_error(L, "full", &err);
  apply_requires_grad(L, next + 1, *box);
  return 1;
}

static int t_randint(lua_State *L) {
  lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
  luaL_argcheck(L, hi > lo, 2, "high must be greater than low");
  int64_t shape[CT_MAXDIM];
  int next, n = read_sizes(L, 3, shape, &next, false, "randint");
  ct_dtype dt = opt_dtype(L, next, CT_I64);
  ct_err err;
  ct_tensor **box = ct_lua_newbox(L);
  if ((*box = ct_tensor_new(dt, n, shape, &err)) == NULL) return ct_lua_error(L, "randint", &err);
  int64_t cnt = ct_numel(*box);
  uint64_t range = (uint64_t)hi - (uint64_t)lo; /* in uint64: the full int64 range fits */
  for (int64_t i = 0; i < cnt; i++) {
    int64_t k = (int64_t)((uint64_t)lo + ct_rng_next() % range);
    if (dt == CT_I64) ((int64_t *)(*box)->storage->data)[i] = k;
    else if (dt == CT_F32) ((float *)(*box)->storage->data)[i] = (float)k;
    else ((double *)(*box)->storage->data)[i] = (double)k;
  }
  return 1;
}

static int t_eye(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  lua_Integer m = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : n;
  luaL_argcheck(L, n >= 0 && m >= 0, 1, "sizes must be non-negative");
  ct_err err;
  return PUSH(L, ct_eye(n, m, opt_dtype(L, lua_isinteger(L, 2) ? 3 : 2, default_float), &err), "eye");
}

static int t_arange(lua_State *L) {
  double a = luaL_checknumber(L, 1), b, step = 1;
  int opts = 2;
  bool all_int = lua_isinteger(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    b = lua_tonumber(L, 2);
    all_int = all_int && lua_isinteger(L, 2);
    opts = 3;
    if (lua_type(L, 3) == LUA_TNUMBER) {
      step = lua_tonumber(L, 3);
      all_int = all_int && lua_isinteger(L, 3);
      opts = 4;
    }
  } else {
    b = a;
    a = 0;
  }
  ct_dtype dt = opt_dtype(L, opts, default_float); /* the default float dtype unless asked */
  ct_err err;
  ct_tensor **box = ct_lua_newbox(L);
  if (dt == CT_I64 && all_int) /* exact: the integers never pass through double */
    *box = ct_arange_i64(opts == 2 ? 0 : lua_tointeger(L, 1), lua_tointeger(L, opts == 2 ? 1 : 2),
                         opts == 4 ? lua_tointeger(L, 3) : 1, &err);
  else *box = ct_arange(a, b, step, dt, &err);
  if (*box == NULL) return ct_lua_error(L, "arange", &err);
  apply_requires_grad(L, opts, *box);
  return 1;
}

static int t_linspace(lua_State *L) {
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  ct_err err;
  return PUSH(L, ct_linspace(a, b, n, opt_dtype(L, 4, default_float), &err), "linspace");
}

/* crater.tensor(nested table or number, opts) */
static void nested_shape(lua_State *L, int idx, int depth, int64_t *shape, int *ndim) {
  if (lua_type(L, idx) == LUA_TNUMBER || lua_type(L, idx) == LUA_TBOOLEAN) {
    *ndim = depth;
    return;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "tensor: expected numbers or nested tables, got %s", luaL_typename(L, idx));
  if (depth == CT_MAXDIM) luaL_error(L, "tensor: too many dimensions (at most %d)", CT_MAXDIM);
  shape[depth] = (int64_t)ct_lua_list(L, idx, LUA_MAXINTEGER, "tensor", "the nested table");
  if (shape[depth] == 0) {
    *ndim = depth + 1;
    return;
  }
  lua_geti(L, idx, 1);
  nested_shape(L, lua_gettop(L), depth + 1, shape, ndim);
  lua_pop(L, 1);
}

static void nested_fill(lua_State *L, int idx, int depth, const int64_t *shape, int ndim, ct_tensor *t,
                        int64_t *pos) {
  if (depth == ndim) {
    double v;
    if (lua_type(L, idx) == LUA_TNUMBER) v = lua_tonumber(L, idx);
    else if (lua_type(L, idx) == LUA_TBOOLEAN) v = lua_toboolean(L, idx);
    else {
      luaL_error(L, "tensor: ragged nested table (expected a number at depth %d)", depth + 1);
      return;
    }
    char *p = (char *)t->storage->data + (size_t)(*pos)++ * ct_dtype_size(t->dtype);
    if (t->dtype == CT_F32) *(float *)p = (float)v;
    else if (t->dtype == CT_F64) *(double *)p = v;
    else *(int64_t *)p = lua_isinteger(L, idx) ? lua_tointeger(L, idx) : ct_i64_of(v); /* exact */
    return;
  }
  if (!lua_istable(L, idx) ||
      ct_lua_list(L, idx, LUA_MAXINTEGER, "tensor", "the nested table") != shape[depth])
    luaL_error(L, "tensor: ragged nested table (expected %d elements at depth %d)", (int)shape[depth],
               depth + 1);
  for (int64_t i = 1; i <= shape[depth]; i++) {
    lua_geti(L, idx, i);
    nested_fill(L, lua_gettop(L), depth + 1, shape, ndim, t, pos);
    lua_pop(L, 1);
  }
}

static int t_tensor(lua_State *L) {
  ct_tensor *src = ct_lua_test(L, 1);
  ct_err err;
  if (src) { /* crater.tensor(t): a copy */
    ct_tensor **box = ct_lua_newbox(L);
    ct_tensor *c = ct_tensor_new(opt_dtype(L, 2, src->dtype), src->ndim, src->shape, &err);
    if ((*box = c) == NULL) return ct_lua_error(L, "tensor", &err);
    ct_copy_into(c, src);
    apply_requires_grad(L, 2, c);
    return 1;
  }
  int64_t shape[CT_MAXDIM];
  int ndim = 0;
  nested_shape(L, 1, 0, shape, &ndim);
  ct_tensor **box = ct_lua_newbox(L);
  if ((*box = ct_tensor_new(opt_dtype(L, 2, default_float), ndim, shape, &err)) == NULL)
    return ct_lua_error(L, "tensor", &err);
  int64_t pos = 0;
  nested_fill(L, 1, 0, shape, ndim, *box, &pos);
  apply_requires_grad(L, 2, *box);
  return 1;
}

static int t_manual_seed(lua_State *L) {
  ct_manual_seed((uint64_t)luaL_checkinteger(L, 1));
  return 0;
}

/* ---------------- facts ---------------- */

static int t_shape(lua_State *L) {
  ct_tensor *t = ct_lua_check(L, 1);
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int t_size(lua_State *L) {
  ct_tensor *t = ct_lua_check(L, 1);
  if (lua_isnoneornil(L, 2)) return t_shape(L);
  if (t->ndim == 0) return luaL_argerror(L, 2, "a 0-d tensor has no dims");
  lua_pushinteger(L, t->shape[check_dim(L, 2, t->ndim, false)]);
  return 1;
}

static int t_stride(lua_State *L) {
  ct_tensor *t = ct_lua_check(L, 1);
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->stride[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int t_dim(lua_State *L) {
  lua_pushinteger(L, ct_lua_check(L, 1)->ndim);
  return 1;
}
static int t_numel(lua_State *L) {
  lua_pushinteger(L, ct_numel(ct_lua_check(L, 1)));
  return 1;
}
static int t_len(lua_State *L) {
  ct_tensor *t = ct_lua_check(L, 1);
  if (t->ndim == 0) return luaL_error(L, "len() of a 0-d tensor");
  lua_pushinteger(L, t->shape[0]);
  return 1;
}
static int t_dtype(lua_State *L) {
  lua_pushstring(L, ct_dtype_name(ct_lua_check(L, 1)->dtype));
  return 1;
}
static int t_is_contiguous(lua_State *L) {
  lua_pushboolean(L, ct_is_contiguous(ct_lua_check(L, 1)));
  return 1;
}

/* Element idx as a Lua number: int64 exactly, as an integer. */
static void push_elem(lua_State *L, const ct_tensor *t, const int64_t *idx) {
  if (t->dtype == CT_I64) lua_pushinteger(L, ct_get_at_i64(t, idx));
  else lua_pushnumber(L, ct_get_at(t, idx));
}

static int t_item(lua_State *L) {
  ct_tensor *t = ct_lua_check(L, 1);
  if (ct_numel(t) != 1)
    return luaL_error(L, "item: a tensor with %I elements cannot be converted to a number",
                      (LUAI_UACINT)ct_numel(t));
  push_elem(L, t, (int64_t[CT_MAXDIM]){0}); /* every size is 1 */
  return 1;
}

static void totable_rec(lua_State *L, ct_tensor *t, int d, int64_t *idx) {
  lua_createtable(L, (int)t->shape[d], 0);
  for (int64_t i = 0; i < t->shape[d]; i++) {
    idx[d] = i;
    if (d == t->ndim - 1) push_elem(L, t, idx);
    else totable_rec(L, t, d + 1, idx);
    lua_rawseti(L, -2, i + 1);
  }
}

static int t_totable(lua_State *L) {
  ct_tensor *t = ct_lua_check(L, 1);
  int64_t idx[CT_MAXDIM] = {0};
  if (t->ndim == 0) push_elem(L, t, idx);
  else totable_rec(L, t, 0, idx);
  return 1;
}

/* x:get(i, j, ...) -> number, 1-based, bounds-checked */
static void read_index(lua_State *L, ct_tensor *t, int first, int64_t *idx) {
  int n = lua_gettop(L) - first + 1;
  if (n != t->ndim) luaL_error(L, "get: expected %d indices for a %d-d tensor, got %d", t->ndim, t->ndim, n);
  for (int d = 0; d < t->ndim; d++) {
    lua_Integer i = luaL_checkinteger(L, first + d);
    if (i < 0) i = i + t->shape[d] + 1; /* in this order: a size may be 2^63-1 */
    if (i < 1 || i > t->shape[d])
      luaL_argerror(L, first + d,
                    lua_pushfstring(L, "index %I out of range for size %I of dim %d",
                                    (LUAI_UACINT)luaL_checkinteger(L, first + d), (LUAI_UACINT)t->shape[d],
                                    d + 1));
    idx[d] = i - 1;
  }
}

static int t_get(lua_State *L) {
  ct_tensor *t = ct_lua_check(L, 1);
  int64_t idx[CT_MAXDIM];
  read_index(L, t, 2, idx);
  push_elem(L, t, idx);
  return 1;
}

/* ---------------- elementwise ops ---------------- */

/* The scalars a, b of unary op `op` from the Lua arguments after x, with the op's defaults:
 * one parser for x:op() and x:op_() so that both forms take the same arguments. */
static void unary_scalars(lua_State *L, ct_unary_op op, bool inplace, double *a, double *b) {
  *a = 0, *b = 0;
  switch (op) {
  case CT_U_LEAKY_RELU: *a = luaL_optnumber(L, 2, 0.01); break;
  case CT_U_SOFTPLUS:
    *a = luaL_optnumber(L, 2, 1);
    *b = luaL_optnumber(L, 3, 20);
    break;
  case CT_U_CLAMP:
    *a = luaL_optnumber(L, 2, -INFINITY);
    *b = luaL_optnumber(L, 3, INFINITY);
    if (lua_isnoneornil(L, 2) && lua_isnoneornil(L, 3))
      luaL_error(L, "%s: at least one of min and max must be given", inplace ? "clamp_" : "clamp");
    break;
  case CT_U_POW:
  case CT_U_MULS:
  case CT_U_DIVS:
  case CT_U_ADDS: *a = luaL_checknumber(L, 2); break;
  default: break;
  }
}

static int t_unary(lua_State *L) {
  ct_unary_op op = (ct_unary_op)lua_tointeger(L, lua_upvalueindex(1));
  ct_tensor *x = ct_lua_check(L, 1);
  double a, b;
  unary_scalars(L, op, false, &a, &b);
  ct_err err;
  return PUSH(L, ct_unary(op, x, a, b, &err), ct_unary_info[op].name);
}

static int t_unary_(lua_State *L) {
  ct_unary_op op = (ct_unary_op)lua_tointeger(L, lua_upvalueindex(1));
  ct_tensor *x = ct_lua_check(L, 1);
  int nargs = ct_unary_info[op].nargs;
  if (lua_gettop(L) > nargs + 1)
    return luaL_error(L, "%s_: expected at most %d argument%s after the tensor, got %d",
                      ct_unary_info[op].name, nargs, nargs == 1 ? "" : "s", lua_gettop(L) - 1);
  double a, b;
  unary_scalars(L, op, true, &a, &b);
  ct_err err;
  if (!ct_unary_(op, x, a, b, &err)) {
    lua_pushfstring(L, "%s_", ct_unary_info[op].name);
    return ct_lua_error(L, lua_tostring(L, -1), &err);
  }
  lua_settop(L, 1);
  return 1;
}

/* Binary ops with a Lua number on either side take the scalar kernels. */
static int binary_dispatch(lua_State *L, ct_binary_op op, const char *fn) {
  ct_tensor *a = ct_lua_test(L, 1), *b = ct_lua_test(L, 2);
  ct_err err;
  bool na = !a && lua_type(L, 1) == LUA_TNUMBER, nb = !b && lua_type(L, 2) == LUA_TNUMBER;
  /* an int64 with an integer past 2^53 (which no double holds) takes the exact tensor path */
  bool exact_int = a && a->dtype == CT_I64 && lua_isinteger(L, 2) &&
      (lua_tointeger(L, 2) > (1LL << 53) || lua_tointeger(L, 2) < -(1LL << 53));
  if (a && nb && !exact_int &&
      !(a->dtype == CT_I64 && !lua_isinteger(L, 2) && ct_binary_info[op].dtype == CT_DT_CMP)) {
    double s = lua_tonumber(L, 2);
    switch (op) {
    case CT_B_ADD: return PUSH(L, ct_unary(CT_U_ADDS, a, s, 0, &err), fn);
    case CT_B_SUB: return PUSH(L, ct_unary(CT_U_ADDS, a, -s, 0, &err), fn);
    case CT_B_MUL: return PUSH(L, ct_unary(CT_U_MULS, a, s, 0, &err), fn);
    case CT_B_DIV:
      if (a->dtype != CT_I64) return PUSH(L, ct_unary(CT_U_DIVS, a, s, 0, &err), fn);
      break;
    case CT_B_POW:
      if (a->dtype != CT_I64) return PUSH(L, ct_unary(CT_U_POW, a, s, 0, &err), fn);
      break;
    default: break;
    }
  }
  if (b && na && b->dtype != CT_I64) {
    double s = lua_tonumber(L, 1);
    switch (op) {
    case CT_B_ADD: return PUSH(L, ct_unary(CT_U_ADDS, b, s, 0, &err), fn);
    case CT_B_SUB: return PUSH(L, ct_unary(CT_U_RSUBS, b, s, 0, &err), fn);
    case CT_B_MUL: return PUSH(L, ct_unary(CT_U_MULS, b, s, 0, &err), fn);
    case CT_B_DIV: return PUSH(L, ct_unary(CT_U_RDIVS, b, s, 0, &err), fn);
    case CT_B_POW:
      if (s > 0) return PUSH(L, ct_unary(CT_U_RPOW, b, s, 0, &err), fn);
      break;
    default: break;
    }
  }
  if (a == NULL && b == NULL) {
    if (!na) luaL_typeerror(L, 1, "crater.Tensor or number");
    luaL_typeerror(L, 2, "crater.Tensor");
  }
  if (a == NULL) a = operand(L, 1, b);
  if (b == NULL) b = operand(L, 2, a);
  return PUSH(L, ct_binary(op, a, b, &err), fn);
}

static int t_binary(lua_State *L) {
  ct_binary_op op = (ct_binary_op)lua_tointeger(L, lua_upvalueindex(1));
  if ((op == CT_B_ADD || op == CT_B_SUB) && lua_type(L, 3) == LUA_TNUMBER) { /* add(x, y, alpha) */
    double alpha = lua_tonumber(L, 3);
    ct_tensor *x = operand(L, 1, NULL), *y = operand(L, 2, x);
    ct_err err;
    ct_tensor **box = ct_lua_newbox(L);
    if ((*box = ct_scale(y, alpha, &err)) == NULL) return ct_lua_error(L, ct_binary_info[op].name, &err);
    return PUSH(L, ct_binary(op, x, *box, &err), ct_binary_info[op].name);
  }
  return binary_dispatch(L, op, ct_binary_info[op].name);
}

static int t_add_mm(lua_State *L) { return binary_dispatch(L, CT_B_ADD, "add"); }
static int t_sub_mm(lua_State *L) { return binary_dispatch(L, CT_B_SUB, "sub"); }
static int t_mul_mm(lua_State *L) { return binary_dispatch(L, CT_B_MUL, "mul"); }
static int t_div_mm(lua_State *L) { return binary_dispatch(L, CT_B_DIV, "div"); }
static int t_pow_mm(lua_State *L) { return binary_dispatch(L, CT_B_POW, "pow"); }
static int t_unm(lua_State *L) {
  ct_err err;
  return PUSH(L, ct_unary(CT_U_NEG, ct_lua_check(L, 1), 0, 0, &err), "neg");
}

/* 0-d tensors compare with numbers: x[1] < 3 */
static double scalar_of(lua_State *L, int idx, const char *what) {
  if (lua_type(L, idx) == LUA_TNUMBER) return lua_tonumber(L, idx);
  ct_tensor *t = ct_lua_check(L, idx);
  if (ct_numel(t) != 1)
    luaL_error(L, "%s: only one-element tensors compare with '<' and '<=' (got %I elements)", what,
               (LUAI_UACINT)ct_numel(t));
  return ct_get_flat(t, 0);
}
static int t_lt_mm(lua_State *L) {
  lua_pushboolean(L, scalar_of(L, 1, "lt") < scalar_of(L, 2, "lt"));
  return 1;
}
static int t_le_mm(lua_State *L) {
  lua_pushboolean(L, scalar_of(L, 1, "le") <= scalar_of(L, 2, "le"));
  return 1;
}

/* x:<op>_(y): in-place binary with a number or a tensor (the table's rows with an
 * in-place form; the upvalues are the op and the method's name) */
static int t_binary_(lua_State *L) {
  ct_binary_op op = (ct_binary_op)lua_tointeger(L, lua_upvalueindex(1));
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  int ok, nargs = ct_binary_info[op].nargs;
  const char *fn = lua_tostring(L, lua_upvalueindex(2));
  if (lua_gettop(L) > nargs + 1)
    return luaL_error(L, "%s: expected at most %d argument%s after the tensor, got %d", fn, nargs,
                      nargs == 1 ? "" : "s", lua_gettop(L) - 1);
  if (op == CT_B_POW && lua_type(L, 2) == LUA_TNUMBER && !(x->dtype == CT_I64 && lua_isinteger(L, 2))) {
    ok = ct_unary_(CT_U_POW, x, lua_tonumber(L, 2), 0, &err);
  } else if (lua_type(L, 2) == LUA_TNUMBER && x->dtype != CT_I64 &&
             (op == CT_B_ADD || op == CT_B_SUB || op == CT_B_MUL || op == CT_B_DIV)) {
    double s = lua_tonumber(L, 2);
    ct_unary_op u = op == CT_B_ADD ? CT_U_ADDS
        : op == CT_B_SUB           ? CT_U_ADDS
        : op == CT_B_MUL           ? CT_U_MULS
                                   : CT_U_DIVS;
    if (op == CT_B_SUB) s = -s;
    if (op == CT_B_ADD || op == CT_B_SUB) s *= luaL_optnumber(L, 3, 1);
    ok = ct_unary_(u, x, s, 0, &err);
  } else {
    ct_tensor *y = operand(L, 2, x);
    if (op == CT_B_ADD || op == CT_B_SUB) {
      double alpha = luaL_optnumber(L, 3, 1);
      ok = ct_add_(x, y, op == CT_B_SUB ? -alpha : alpha, &err);
    } else {
      ok = ct_binary_(op, x, y, &err);
    }
  }
  if (!ok) return ct_lua_error(L, fn, &err);
  lua_settop(L, 1);
  return 1;
}

static int t_addcmul_(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1), *a = ct_lua_check(L, 2), *b = ct_lua_check(L, 3);
  ct_err err;
  if (!ct_addcmul_(x, a, b, luaL_optnumber(L, 4, 1), &err)) return ct_lua_error(L, "addcmul_", &err);
  lua_settop(L, 1);
  return 1;
}

static int t_addcdiv_(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1), *a = ct_lua_check(L, 2), *b = ct_lua_check(L, 3);
  ct_err err;
  if (!ct_addcdiv_(x, a, b, luaL_optnumber(L, 4, 1), &err)) return ct_lua_error(L, "addcdiv_", &err);
  lua_settop(L, 1);
  return 1;
}

static int t_lerp_(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1), *e = operand(L, 2, x);
  ct_err err;
  if (!ct_lerp_(x, e, luaL_checknumber(L, 3), &err)) return ct_lua_error(L, "lerp_", &err);
  lua_settop(L, 1);
  return 1;
}

static int t_lerp(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1), *e = operand(L, 2, x);
  double w = luaL_checknumber(L, 3);
  ct_err err;
  ct_tensor **box = ct_lua_newbox(L);
  if ((*box = ct_sub(e, x, &err)) == NULL) return ct_lua_error(L, "lerp", &err);
  ct_tensor **box2 = ct_lua_newbox(L);
  if ((*box2 = ct_scale(*box, w, &err)) == NULL) return ct_lua_error(L, "lerp", &err);
  return PUSH(L, ct_add(x, *box2, &err), "lerp");
}

static int t_fill_(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  double v = luaL_checknumber(L, 2);
  int ok = lua_isinteger(L, 2) ? ct_fill_i64_(x, lua_tointeger(L, 2), &err) : ct_fill_(x, v, &err);
  if (!ok) return ct_lua_error(L, "fill_", &err);
  lua_settop(L, 1);
  return 1;
}

static int t_zero_(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  if (!ct_fill_(x, 0, &err)) return ct_lua_error(L, "zero_", &err);
  lua_settop(L, 1);
  return 1;
}

static int t_copy_(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1), *s = operand(L, 2, x);
  ct_err err;
  if (!ct_copy_(x, s, &err)) return ct_lua_error(L, "copy_", &err);
  lua_settop(L, 1);
  return 1;
}

static int t_masked_fill_(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1), *m = ct_lua_check(L, 2);
  ct_err err;
  if (!ct_masked_fill_(x, m, luaL_checknumber(L, 3), &err)) return ct_lua_error(L, "masked_fill_", &err);
  lua_settop(L, 1);
  return 1;
}

/* uniform_ and normal_ read and check their bounds before fill_ (their writability
 * check, which also records the graph) writes the first zero; ranges as PyTorch's. */
static int t_uniform_(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  double a = luaL_optnumber(L, 2, 0), b = luaL_optnumber(L, 3, 1);
  if (!isfinite(a) || !isfinite(b) || !isfinite(b - a))
    return luaL_error(L, "uniform_: from and to must be finite with a finite to - from, got from=%f, to=%f",
                      a, b);
  if (a > b) return luaL_error(L, "uniform_: expects a [from, to) range, but found from=%f > to=%f", a, b);
  ct_err err;
  if (!ct_fill_(x, 0, &err)) return ct_lua_error(L, "uniform_", &err);
  ct_fill_uniform(x, a, b);
  lua_settop(L, 1);
  return 1;
}

static int t_normal_(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  double mean = luaL_optnumber(L, 2, 0), std = luaL_optnumber(L, 3, 1);
  if (!isfinite(mean)) return luaL_error(L, "normal_: mean must be finite, got %f", mean);
  if (!(std >= 0) || !isfinite(std))
    return luaL_error(L, "normal_: expects a finite std >= 0, but found std=%f", std);
  ct_err err;
  if (!ct_fill_(x, 0, &err)) return ct_lua_error(L, "normal_", &err);
  ct_fill_normal(x, mean, std);
  lua_settop(L, 1);
  return 1;
}

static int t_masked_fill(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1), *m = ct_lua_check(L, 2);
  ct_err err;
  return PUSH(L, ct_masked_fill(x, m, luaL_checknumber(L, 3), &err), "masked_fill");
}

static int t_where(lua_State *L) {
  ct_tensor *c = ct_lua_check(L, 1);
  ct_tensor *a = ct_lua_test(L, 2), *b = ct_lua_test(L, 3);
  a = operand(L, 2, a ? a : b);
  b = operand(L, 3, a);
  ct_err err;
  return PUSH(L, ct_where(c, a, b, &err), "where");
}

/* x:where(cond, y): PyTorch's method form, x where cond holds, else y */
static int t_where_method(lua_State *L) {
  lua_settop(L, 3);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  lua_replace(L, 2);
  lua_replace(L, 1);
  return t_where(L);
}

static int t_allclose(lua_State *L) {
  ct_tensor *a = ct_lua_check(L, 1), *b = operand(L, 2, a);
  lua_pushboolean(
      L, ct_allclose(a, b, luaL_optnumber(L, 3, 1e-5), luaL_optnumber(L, 4, 1e-8), lua_toboolean(L, 5)));
  return 1;
}

/* ---------------- reductions ---------------- */

static int t_reduce(lua_State *L) {
  ct_reduce_op op = (ct_reduce_op)lua_tointeger(L, lua_upvalueindex(1));
  const char *fn = lua_tostring(L, lua_upvalueindex(2)); /* the row's name */
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  if ((op == CT_R_MAX || op == CT_R_MIN) && ct_lua_test(L, 2)) /* max(a, b) = maximum */
    return PUSH(L, ct_binary(op == CT_R_MAX ? CT_B_MAXIMUM : CT_B_MINIMUM, x, ct_lua_check(L, 2), &err), fn);
  int dim = opt_dim(L, 2, x->ndim);
  bool keepdim = lua_toboolean(L, 3);
  if ((op == CT_R_MAX || op == CT_R_MIN) && dim >= 0) { /* values, 1-based indices */
    ct_tensor **vbox = ct_lua_newbox(L);
    ct_tensor **ibox = ct_lua_newbox(L);
    ct_tensor *idx = NULL;
    if ((*vbox = ct_maxmin_dim(x, dim, keepdim, op == CT_R_MAX, &idx, &err)) == NULL)
      return ct_lua_error(L, fn, &err);
    *ibox = ct_unary(CT_U_ADDS, idx, 1, 0, &err); /* 1-based; idx stays saved for backward */
    ct_tensor_release(idx);
    if (*ibox == NULL) return ct_lua_error(L, fn, &err);
    return 2;
  }
  return PUSH(L, ct_reduce(op, x, dim, keepdim, &err), fn);
}

static int t_argmaxmin(lua_State *L) {
  bool is_max = lua_tointeger(L, lua_upvalueindex(1)) != 0;
  const char *fn = lua_tostring(L, lua_upvalueindex(2));
  ct_tensor *x = ct_lua_check(L, 1);
  int dim = opt_dim(L, 2, x->ndim);
  bool keepdim = lua_toboolean(L, 3); /* read before the box takes slot 3 */
  ct_err err;
  ct_tensor **box = ct_lua_newbox(L);
  if ((*box = ct_argmaxmin(x, dim, keepdim, is_max, &err)) == NULL) return ct_lua_error(L, fn, &err);
  if (!ct_unary_(CT_U_ADDS, *box, 1, 0, &err)) /* 1-based */
    return ct_lua_error(L, fn, &err);
  return 1;
}

/* var/std(dim?, {unbiased=true, correction=, keepdim=}) or (dim, unbiased, keepdim) */
static int t_var_std(lua_State *L) {
  bool take_sqrt = lua_tointeger(L, lua_upvalueindex(1)) != 0;
  const char *fn = lua_tostring(L, lua_upvalueindex(2));
  ct_tensor *x = ct_lua_check(L, 1);
  int dim = lua_type(L, 2) == LUA_TNUMBER ? check_dim(L, 2, x->ndim, false) : -1;
  int o = lua_type(L, 2) == LUA_TNUMBER ? 3 : 2;
  double correction = 1;
  bool keepdim = false;
  if (lua_istable(L, o)) {
    lua_getfield(L, o, "unbiased");
    if (lua_isboolean(L, -1)) correction = lua_toboolean(L, -1) ? 1 : 0;
    lua_getfield(L, o, "correction");
    if (lua_isnumber(L, -1)) correction = lua_tonumber(L, -1);
    lua_getfield(L, o, "keepdim");
    keepdim = lua_toboolean(L, -1);
    lua_pop(L, 3);
  } else {
    if (lua_isboolean(L, o)) correction = lua_toboolean(L, o) ? 1 : 0;
    keepdim = lua_toboolean(L, o + 1);
  }
  ct_err err;
  return PUSH(L, ct_var(x, dim, correction, keepdim, take_sqrt, &err), fn);
}

static int t_norm(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  double p = 2;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *s = lua_tostring(L, 2);
    if (strcmp(s, "inf") == 0) p = INFINITY;
    else if (strcmp(s, "-inf") == 0) p = -INFINITY;
    else if (strcmp(s, "fro") == 0) p = 2;
    else return luaL_argerror(L, 2, "expected a number, 'inf', '-inf' or 'fro'");
  } else {
    p = luaL_optnumber(L, 2, 2);
  }
  int dim = opt_dim(L, 3, x->ndim);
  ct_err err;
  return PUSH(L, ct_norm(x, p, dim, lua_toboolean(L, 4), &err), "norm");
}

static int t_logsumexp(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  int dim = check_dim(L, 2, x->ndim, false);
  ct_err err;
  return PUSH(L, ct_logsumexp(x, dim, lua_toboolean(L, 3), &err), "logsumexp");
}

static int t_softmax(lua_State *L) {
  bool log_ = lua_tointeger(L, lua_upvalueindex(1)) != 0;
  const char *fn = lua_tostring(L, lua_upvalueindex(2));
  ct_tensor *x = ct_lua_check(L, 1);
  int dim = check_dim(L, 2, x->ndim, false);
  ct_err err;
  return PUSH(L, ct_softmax(x, dim, log_, &err), fn);
}

/* ---------------- matrix products ---------------- */

static int t_matmul(lua_State *L) {
  ct_err err;
  return PUSH(L, ct_matmul(ct_lua_check(L, 1), ct_lua_check(L, 2), &err), "matmul");
}
static int t_mm(lua_State *L) {
  ct_err err;
  return PUSH(L, ct_mm(ct_lua_check(L, 1), ct_lua_check(L, 2), &err), "mm");
}
static int t_bmm(lua_State *L) {
  ct_err err;
  return PUSH(L, ct_bmm(ct_lua_check(L, 1), ct_lua_check(L, 2), &err), "bmm");
}
static int t_dot(lua_State *L) {
  ct_tensor *a = ct_lua_check(L, 1), *b = ct_lua_check(L, 2);
  if (a->ndim != 1 || b->ndim != 1)
    return luaL_error(L, "dot: expected 1-D tensors, got %d-D and %d-D", a->ndim, b->ndim);
  ct_err err;
  return PUSH(L, ct_matmul(a, b, &err), "dot");
}

/* eigh(a) -> eigenvalues (ascending), eigenvectors (columns): torch.linalg.eigh */
static int t_eigh(lua_State *L) {
  ct_tensor *a = ct_lua_check(L, 1), *w, *v;
  ct_err err;
  ct_tensor **wbox = ct_lua_newbox(L), **vbox = ct_lua_newbox(L); /* boxes first: a raise cannot leak */
  if (!ct_eigh(a, &w, &v, &err)) return ct_lua_error(L, "eigh", &err);
  *wbox = w;
  *vbox = v;
  return 2;
}

/* ---------------- views ---------------- */

static int t_view_like(lua_State *L, bool reshape, const char *fn) {
  ct_tensor *x = ct_lua_check(L, 1);
  int64_t shape[CT_MAXDIM];
  int next, n = read_sizes(L, 2, shape, &next, true, fn);
  ct_err err;
  return PUSH(L, reshape ? ct_reshape(x, n, shape, &err) : ct_view(x, n, shape, &err), fn);
}
static int t_view(lua_State *L) { return t_view_like(L, false, "view"); }
static int t_reshape(lua_State *L) { return t_view_like(L, true, "reshape"); }

static int t_t(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  if (x->ndim > 2) return luaL_error(L, "t: expects a tensor with at most 2 dims, got %d", x->ndim);
  ct_err err;
  if (x->ndim < 2) return PUSH(L, ct_transpose(x, 0, 0, &err), "t");
  return PUSH(L, ct_transpose(x, 0, 1, &err), "t");
}

static int t_transpose(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  int a = check_dim(L, 2, x->ndim, false), b = check_dim(L, 3, x->ndim, false);
  ct_err err;
  if (x->ndim == 0) return PUSH(L, ct_transpose(x, 0, 0, &err), "transpose");
  return PUSH(L, ct_transpose(x, a, b, &err), "transpose");
}

static int t_permute(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  int64_t dims[CT_MAXDIM];
  int next, n = read_sizes(L, 2, dims, &next, true, "permute");
  if (n != x->ndim)
    return luaL_error(L, "permute: expected %d dims for a %d-d tensor, got %d", x->ndim, x->ndim, n);
  int d[CT_MAXDIM];
  for (int i = 0; i < n; i++) {
    int64_t v = dims[i] < 0 ? dims[i] + n + 1 : dims[i];
    if (v < 1 || v > n) return luaL_error(L, "permute: dimension %d out of range", (int)dims[i]);
    d[i] = (int)v - 1;
  }
  ct_err err;
  return PUSH(L, ct_permute(x, d, &err), "permute");
}

static int t_narrow(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  int dim = check_dim(L, 2, x->ndim, false);
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  if (x->ndim == 0) return luaL_error(L, "narrow: cannot narrow a 0-d tensor");
  if (start < 0) start = start + x->shape[dim] + 1; /* in this order: a size may be 2^63-1 */
  if (start < 1 || start - 1 > x->shape[dim])
    return luaL_argerror(L, 3,
                         lua_pushfstring(L, "start %I out of range for size %I",
                                         (LUAI_UACINT)luaL_checkinteger(L, 3), (LUAI_UACINT)x->shape[dim]));
  if (len < 0) return luaL_argerror(L, 4, "length must be non-negative");
  ct_err err;
  return PUSH(L, ct_narrow(x, dim, start - 1, len, &err), "narrow");
}

static int t_select(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  if (x->ndim == 0) return luaL_error(L, "select: cannot index a 0-d tensor");
  int dim = check_dim(L, 2, x->ndim, false);
  lua_Integer i = luaL_checkinteger(L, 3);
  if (i < 0) i = i + x->shape[dim] + 1;
  if (i < 1 || i > x->shape[dim])
    return luaL_argerror(L, 3,
                         lua_pushfstring(L, "index %I out of range for size %I of dim %d",
                                         (LUAI_UACINT)luaL_checkinteger(L, 3), (LUAI_UACINT)x->shape[dim],
                                         dim + 1));
  ct_err err;
  return PUSH(L, ct_select(x, dim, i - 1, &err), "select");
}

static int t_squeeze(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  return PUSH(L, ct_squeeze(x, opt_dim(L, 2, x->ndim), &err), "squeeze");
}

static int t_unsqueeze(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  lua_Integer d = luaL_checkinteger(L, 2);
  if (d < 0) d += x->ndim + 2;
  if (d < 1 || d > x->ndim + 1)
    return luaL_argerror(L, 2,
                         lua_pushfstring(L, "dimension %d out of range (the result has %d dims)",
                                         (int)luaL_checkinteger(L, 2), x->ndim + 1));
  return PUSH(L, ct_unsqueeze(x, (int)d - 1, &err), "unsqueeze");
}

static int t_expand(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  int64_t shape[CT_MAXDIM];
  int next, n = read_sizes(L, 2, shape, &next, true, "expand");
  ct_err err;
  return PUSH(L, ct_expand(x, n, shape, &err), "expand");
}

static int t_expand_as(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1), *o = ct_lua_check(L, 2);
  ct_err err;
  return PUSH(L, ct_expand(x, o->ndim, o->shape, &err), "expand_as");
}

static int t_flatten(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  int s = lua_isnoneornil(L, 2) ? 0 : check_dim(L, 2, x->ndim, false);
  int e = lua_isnoneornil(L, 3) ? (x->ndim ? x->ndim - 1 : 0) : check_dim(L, 3, x->ndim, false);
  ct_err err;
  return PUSH(L, ct_flatten(x, s, e, &err), "flatten");
}

static int t_contiguous(lua_State *L) {
  ct_err err;
  return PUSH(L, ct_contiguous(ct_lua_check(L, 1), &err), "contiguous");
}
static int t_clone(lua_State *L) {
  ct_err err;
  return PUSH(L, ct_clone(ct_lua_check(L, 1), &err), "clone");
}
static int t_detach(lua_State *L) {
  ct_err err;
  return PUSH(L, ct_detach(ct_lua_check(L, 1), &err), "detach");
}
static int t_to(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  return PUSH(L, ct_to(x, ct_lua_dtype(L, 2, x->dtype), &err), "to");
}
static int t_to_fixed(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  return PUSH(L, ct_to(x, (ct_dtype)lua_tointeger(L, lua_upvalueindex(1)), &err), "to");
}

/* ---------------- joining and indexing ---------------- */

static int read_list(lua_State *L, int idx, ct_tensor **xs, int max, const char *fn) {
  int n = (int)ct_lua_list(L, idx, max, fn, "the list of tensors");
  for (int i = 0; i < n; i++) {
    lua_geti(L, idx, i + 1);
    xs[i] = ct_lua_test(L, -1);
    if (xs[i] == NULL) luaL_error(L, "%s: element %d of the list is not a tensor", fn, i + 1);
    lua_pop(L, 1); /* still referenced by the list */
  }
  return n;
}

static int t_cat_stack(lua_State *L) {
  bool stack = lua_tointeger(L, lua_upvalueindex(1)) != 0;
  const char *fn = lua_tostring(L, lua_upvalueindex(2));
  ct_tensor *xs[256];
  int n = read_list(L, 1, xs, 256, fn);
  if (n == 0) return luaL_error(L, "%s: expected a non-empty list of tensors", fn);
  int dim = lua_isnoneornil(L, 2) ? 0 : check_dim(L, 2, xs[0]->ndim, stack);
  ct_err err;
  return PUSH(L, stack ? ct_stack(n, xs, dim, &err) : ct_cat(n, xs, dim, &err), fn);
}

/* 1-based index tensor -> 0-based copy in a box on the stack */
static ct_tensor *zero_based(lua_State *L, int idx, const char *fn) {
  ct_tensor *t = ct_lua_check(L, idx);
  if (t->dtype != CT_I64)
    luaL_error(L, "%s: index must be an int64 tensor, got %s", fn, ct_dtype_name(t->dtype));
  ct_err err;
  ct_tensor **box = ct_lua_newbox(L);
  if ((*box = ct_unary(CT_U_ADDS, t, -1, 0, &err)) == NULL) ct_lua_error(L, fn, &err);
  return *box;
}

static int t_gather(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  int dim = check_dim(L, 2, x->ndim, false);
  ct_tensor *idx = zero_based(L, 3, "gather");
  ct_err err;
  return PUSH(L, ct_gather(x, dim, idx, &err), "gather");
}

static int t_scatter_add(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  int dim = check_dim(L, 2, x->ndim, false);
  ct_tensor *idx = zero_based(L, 3, "scatter_add");
  ct_err err;
  return PUSH(L, ct_scatter_add(x, dim, idx, ct_lua_check(L, 4), &err), "scatter_add");
}

static int t_index_select(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  int dim = check_dim(L, 2, x->ndim, false);
  ct_tensor *idx = zero_based(L, 3, "index_select");
  ct_err err;
  return PUSH(L, ct_index_select(x, dim, idx, &err), "index_select");
}

static int t_index_add(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  int dim = check_dim(L, 2, x->ndim, false);
  ct_tensor *idx = zero_based(L, 3, "index_add");
  ct_err err;
  return PUSH(L, ct_index_add(x, dim, idx, ct_lua_check(L, 4), &err), "index_add");
}

/* ---------------- __index / __newindex ---------------- */

/* x[i] (a view of row i) or x[{i, j, ...}] (views down to a 0-d tensor) */
static ct_tensor *index_view(lua_State *L, ct_tensor *x, int key) {
  ct_err err;
  int n = 1;
  bool tab = lua_istable(L, key); /* asked once: each API call costs more than the select */
  if (tab) n = (int)ct_lua_list(L, key, CT_MAXDIM, "index", "the index list");
  if (n > x->ndim) luaL_error(L, "index: %d indices for a %d-d tensor", n, x->ndim);
  ct_tensor **box = ct_lua_newbox(L);
  ct_tensor_retain(x);
  *box = x;
  for (int k = 0; k < n; k++) {
    lua_Integer i;
    if (tab) {
      lua_geti(L, key, k + 1);
      int isnum;
      i = lua_tointegerx(L, -1, &isnum);
      lua_pop(L, 1);
      if (!isnum) luaL_error(L, "index: element %d of the index is not an integer", k + 1);
    } else {
      int isnum;
      i = lua_tointegerx(L, key, &isnum);
      if (!isnum) luaL_error(L, "index: %f is not an integer", lua_tonumber(L, key));
    }
    int64_t size = x->shape[k];
    lua_Integer given = i;
    if (i < 0) i = i + size + 1;
    if (i < 1 || i > size)
      luaL_error(L, "index: index %I out of range for size %I of dim %d", (LUAI_UACINT)given,
                 (LUAI_UACINT)size, k + 1);
    ct_tensor *v = ct_select(*box, 0, i - 1, &err);
    if (v == NULL) ct_lua_error(L, "index", &err);
    ct_tensor_release(*box);
    *box = v;
  }
  return *box;
}

static int t_index(lua_State *L) {
  ct_tensor **box = test_box(L, 1);
  if (box == NULL) return luaL_typeerror(L, 1, CT_TENSOR_MT);
  int kt = lua_type(L, 2);
  if (kt == LUA_TSTRING) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1; /* a method */
    const char *k = lua_tostring(L, 2);
    ct_tensor *x = *box;
    if (x == NULL) return luaL_error(L, "tensor was released");
    ct_err err;
    if (ct_view_stale(x) && !ct_view_refresh(x, &err)) return ct_lua_error(L, k, &err);
    if (strcmp(k, "grad") == 0) {
      if (x->grad == NULL) return 0;
      ct_tensor **g = ct_lua_newbox(L);
      ct_tensor_retain(x->grad);
      *g = x->grad;
      return 1;
    }
    if (strcmp(k, "requires_grad") == 0) {
      lua_pushboolean(L, x->requires_grad);
      return 1;
    }
    if (strcmp(k, "is_leaf") == 0) {
      lua_pushboolean(L, x->grad_fn == NULL);
      return 1;
    }
    if (strcmp(k, "retains_grad") == 0) {
      lua_pushboolean(L, x->grad_fn && x->grad_fn->retain_out == x);
      return 1;
    }
    if (strcmp(k, "grad_fn") == 0) {
      if (x->grad_fn == NULL) return 0;
      lua_pushstring(L, x->grad_fn->op->name);
      return 1;
    }
    if (strcmp(k, "data") == 0) return PUSH(L, ct_detach(x, &err), "data");
    return 0;
  }
  if (kt == LUA_TNUMBER || kt == LUA_TTABLE) {
    if (*box == NULL) return luaL_error(L, "tensor was released");
    if (kt == LUA_TNUMBER && !lua_isinteger(L, 2))
      return luaL_error(L, "index: %f is not an integer", lua_tonumber(L, 2));
    index_view(L, *box, 2);
    return 1;
  }
  return 0;
}

static int t_newindex(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *k = lua_tostring(L, 2);
    if (strcmp(k, "requires_grad") == 0) {
      bool v = lua_toboolean(L, 3);
      if (v && x->dtype == CT_I64)
        return luaL_error(L, "requires_grad: only floating point tensors can require gradients (got int64)");
      if (!v && x->grad_fn)
        return luaL_error(L, "requires_grad: can only change the flag of leaf tensors (use detach())");
      x->requires_grad = v;
      return 0;
    }
    if (strcmp(k, "grad") == 0) {
      ct_tensor *g = lua_isnil(L, 3) ? NULL : ct_lua_check(L, 3);
      if (g && !ct_same_shape(g, x)) {
        char a[96], b[96];
        return luaL_error(L, "grad: assigned grad has shape %s, but the tensor has shape %s",
                          ct_shape_str(a, g->ndim, g->shape), ct_shape_str(b, x->ndim, x->shape));
      }
      if (g) ct_tensor_retain(g);
      ct_tensor_release(x->grad);
      x->grad = g;
      return 0;
    }
    return luaL_error(L, "cannot set field '%s' of a tensor", k);
  }
  if (lua_type(L, 2) != LUA_TNUMBER && !lua_istable(L, 2))
    return luaL_error(L, "index: expected an integer or a table of integers");
  ct_tensor *v = index_view(L, x, 2);
  int ok = lua_isinteger(L, 3)        ? ct_fill_i64_(v, lua_tointeger(L, 3), &err) /* exact into int64 */
      : lua_type(L, 3) == LUA_TNUMBER ? ct_fill_(v, lua_tonumber(L, 3), &err)
                                      : ct_copy_(v, ct_lua_check(L, 3), &err);
  if (!ok) return ct_lua_error(L, "index assignment", &err);
  return 0;
}

/* ---------------- registration ---------------- */

/* core.internal.set_data(t, src): t takes src's data in place (nn.Module:to keeps its parameters'
 * identities, as PyTorch's `param.data = ...`). */
static int t_set_data(lua_State *L) {
  ct_tensor *t = ct_lua_check(L, 1), *src = ct_lua_check(L, 2);
  ct_err err;
  if (!ct_tensor_set_data(t, src, &err)) return ct_lua_error(L, "set_data", &err);
  return 0;
}

/* core.is_tensor(v): the one tensor test (crater.is_tensor; the Lua modules use it too) */
static int t_is_tensor(lua_State *L) {
  lua_pushboolean(L, ct_lua_test(L, 1) != NULL);
  return 1;
}

/* An in-place method refuses arguments it would ignore (x:zero_(v), x:fill_(1, 2)), as
 * PyTorch does: a call that looks meant to do something else fails before writing.  The
 * upvalues: the method, its most arguments after x, its name. */
static int t_arity(lua_State *L) {
  int n = (int)lua_tointeger(L, lua_upvalueindex(2));
  if (lua_gettop(L) > n + 1)
    return luaL_error(L, "%s: expected at most %d argument%s after the tensor, got %d",
                      lua_tostring(L, lua_upvalueindex(3)), n, n == 1 ? "" : "s", lua_gettop(L) - 1);
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

void ct_lua_setfuncs(lua_State *L, const luaL_Reg *pub, const luaL_Reg *internal) {
  if (pub) luaL_setfuncs(L, pub, 0);
  lua_getfield(L, -1, "internal");
  luaL_setfuncs(L, internal, 0);
  lua_pop(L, 1);
}

void ct_lua_register(lua_State *L, int methods, int core, const ct_lua_reg *r, size_t n) {
  for (; n > 0; n--, r++) {
    if (r->kind == 0) continue;
    if (r->flag >= 0) {
      lua_pushinteger(L, r->flag);
      lua_pushstring(L, r->name);
      lua_pushcclosure(L, r->f, 2);
    } else if (r->nargs >= 0) {
      lua_pushcfunction(L, r->f);
      lua_pushinteger(L, r->nargs);
      lua_pushstring(L, r->name);
      lua_pushcclosure(L, t_arity, 3);
    } else {
      lua_pushcfunction(L, r->f);
    }
    if (r->kind & CT_METHOD) {
      lua_pushvalue(L, -1);
      lua_setfield(L, methods, r->name);
    }
    if (r->kind & CT_INTERNAL) { /* crater.core.internal's only */
      lua_getfield(L, core, "internal");
      lua_insert(L, -2);
      lua_setfield(L, -2, r->name);
      lua_pop(L, 1);
    } else if (r->kind & CT_FUNCTION) {
      lua_setfield(L, core, r->name);
    } else {
      lua_pop(L, 1);
    }
  }
}

/* The op table's rows (ops.def) and the binding's other functions, registered by
 * ct_lua_register.  An elementwise row with a doc is crater.<name> and x:<name>(), and
 * x:<name>_() (unary: always; binary: when it has an in-place form); the internal scalar
 * forms ("" doc: sizeof 1) are left out.  The closures' upvalues are the row's enum and
 * its name. */
#define PUBLIC(doc) (sizeof(doc) > 1)
#define REG_UNARY(e, nm, node, kernel, dt, sv, bw, na, ar, gr, dc) \
  {#nm, t_unary, CT_U_##e, PUBLIC(dc) ? CT_BOTH : 0, -1},          \
      {#nm "_", t_unary_, CT_U_##e, PUBLIC(dc) ? CT_METHOD : 0, -1},
#define REG_BINARY(e, nm, node, kernel, dt, sv, bw, na, ar, gr, dc) \
  {#nm, t_binary, CT_B_##e, PUBLIC(dc) ? CT_BOTH : 0, -1},          \
      {#nm "_", t_binary_, CT_B_##e, PUBLIC(dc) && (na) >= 0 ? CT_METHOD : 0, -1},
#define REG(e, nm, node, bw, bind, flag, kind, na, ...) {#nm, bind, flag, kind, na},
static const ct_lua_reg registry[] = {
    CT_UNARY_OPS(REG_UNARY) CT_BINARY_OPS(REG_BINARY) CT_REDUCE_OPS(REG) CT_SHAPE_OPS(REG) CT_MATMUL_OPS(REG)
        CT_INDEX_OPS(REG)
    /* not ops: facts, constructors, settings (their help is doc_core.lua's own) */
    {"shape", t_shape, -1, CT_BOTH, -1},
    {"size", t_size, -1, CT_BOTH, -1},
    {"stride", t_stride, -1, CT_BOTH, -1},
    {"dim", t_dim, -1, CT_BOTH, -1},
    {"numel", t_numel, -1, CT_BOTH, -1},
    {"nelement", t_numel, -1, CT_BOTH, -1},
    {"dtype", t_dtype, -1, CT_BOTH, -1},
    {"item", t_item, -1, CT_BOTH, -1},
    {"totable", t_totable, -1, CT_BOTH, -1},
    {"is_contiguous", t_is_contiguous, -1, CT_BOTH, -1},
    {"get", t_get, -1, CT_BOTH, -1},
    {"tensor", t_tensor, -1, CT_FUNCTION, -1},
    {"zeros", t_zeros, -1, CT_FUNCTION, -1},
    {"ones", t_ones, -1, CT_FUNCTION, -1},
    {"empty", t_empty, -1, CT_FUNCTION, -1},
    {"full", t_full, -1, CT_FUNCTION, -1},
    {"rand", t_rand, -1, CT_FUNCTION, -1},
    {"randn", t_randn, -1, CT_FUNCTION, -1},
    {"randint", t_randint, -1, CT_FUNCTION, -1},
    {"eye", t_eye, -1, CT_FUNCTION, -1},
    {"arange", t_arange, -1, CT_FUNCTION, -1},
    {"linspace", t_linspace, -1, CT_FUNCTION, -1},
    {"manual_seed", t_manual_seed, -1, CT_FUNCTION, -1},
    {"set_default_dtype", t_set_default_dtype, -1, CT_FUNCTION, -1},
    {"get_default_dtype", t_get_default_dtype, -1, CT_FUNCTION, -1},
    {"is_tensor", t_is_tensor, -1, CT_FUNCTION, -1},
    {"check_list", t_check_list, -1, CT_INTERNAL, -1},
    {"set_data", t_set_data, -1, CT_INTERNAL, -1},
};

/* What core.internal.ops lists of a row: {name=, family=, kind=, node=, args=, grad=, doc=}
 * and, for the elementwise ones, {arity=, dtype=, inplace=}: what doc_core.lua and the
 * gradcheck spec read.  dtype is -1 outside the elementwise families. */
typedef struct {
  const char *name, *family, *node, *args, *grad, *doc;
  int kind, arity, dtype, inplace;
} op_row;
#define ROW_UNARY(e, nm, node, kernel, dt, sv, bw, na, ar, gr, dc) \
  {#nm, "unary", node, ar, gr, dc, CT_BOTH, 1, dt, na},
#define ROW_BINARY(e, nm, node, kernel, dt, sv, bw, na, ar, gr, dc) \
  {#nm, "binary", node, ar, gr, dc, CT_BOTH, 2, dt, na},
#define ROW_FAMILY(family, e, nm, node, bw, bind, flag, kind, na, ar, gr, dc) \
  {#nm, family, node, ar, gr, dc, kind, 0, -1, -1},
#define ROW_REDUCE(...) ROW_FAMILY("reduce", __VA_ARGS__)
#define ROW_SHAPE(...) ROW_FAMILY("shape", __VA_ARGS__)
#define ROW_MATMUL(...) ROW_FAMILY("matmul", __VA_ARGS__)
#define ROW_INDEX(...) ROW_FAMILY("index", __VA_ARGS__)
#define ROW_NN(...) ROW_FAMILY("nn", __VA_ARGS__)
static const op_row op_rows[] = {CT_UNARY_OPS(ROW_UNARY) CT_BINARY_OPS(ROW_BINARY) CT_REDUCE_OPS(
    ROW_REDUCE) CT_SHAPE_OPS(ROW_SHAPE) CT_MATMUL_OPS(ROW_MATMUL) CT_INDEX_OPS(ROW_INDEX) CT_NN_OPS(ROW_NN)};

static void set_string(lua_State *L, const char *k, const char *v) {
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* core.internal.ops: the rows with a doc (the internal scalar forms have none) */
static void push_op_rows(lua_State *L) {
  static const char *const rules[] = {"int", "ints", "float", "compare", "noint"};
  static const char *const kinds[] = {"", "method", "function", "both", "internal"};
  lua_newtable(L);
  int k = 0;
  for (size_t i = 0; i < sizeof op_rows / sizeof op_rows[0]; i++) {
    const op_row *r = &op_rows[i];
    if (r->doc[0] == '\0') continue;
    lua_createtable(L, 0, 10);
    set_string(L, "name", r->name);
    set_string(L, "family", r->family);
    set_string(L, "kind", kinds[r->kind]);
    if (r->node) set_string(L, "node", r->node);
    set_string(L, "args", r->args);
    set_string(L, "grad", r->grad);
    set_string(L, "doc", r->doc);
    if (r->arity) {
      lua_pushinteger(L, r->arity);
      lua_setfield(L, -2, "arity");
    }
    if (r->dtype >= 0) set_string(L, "dtype", rules[r->dtype]);
    if (r->arity && r->inplace >= 0) {
      lua_pushinteger(L, r->inplace);
      lua_setfield(L, -2, "inplace");
    }
    lua_rawseti(L, -2, ++k);
  }
}

/* Wraps L's allocator (see "boxes without finalisers") unless another state has it; true
 * when L's boxes need no finaliser. */
static bool wrap_allocator(lua_State *L) {
  if (lua_getallocf(L, NULL) == box_alloc) return true; /* crater opened again in it */
  if (wrapped != NULL) return false;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  wrapped = lua_tothread(L, -1);
  lua_pop(L, 1);
  inner_alloc = lua_getallocf(L, &inner_ud);
  lua_setallocf(L, box_alloc, NULL);
  making_box = true; /* a probe learns the block's size and the box's place in it */
  tensor_box *probe = lua_newuserdatauv(L, sizeof *probe, 1);
  making_box = false;
  probe->t = NULL;
  probe->tag = 0;
  box_offset = (char *)probe - (char *)new_block;
  lua_pop(L, 1);
  lua_newuserdatauv(L, 0, 0); /* the closing sentinel, kept by the registry */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, closing_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  luaL_ref(L, LUA_REGISTRYINDEX);
  return true;
}

void ct_lua_open_tensor(lua_State *L) {
  int core = lua_gettop(L);
  bool gc = !wrap_allocator(L);
  luaL_newmetatable(L, CT_TENSOR_MT);
  int mt = lua_gettop(L);
  lua_pushvalue(L, mt);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &MT_KEY);
  const void *lua_registry = lua_topointer(L, LUA_REGISTRYINDEX);
  mt_ref_thread = NULL;
  if (mt_ref_registry == NULL || lua_registry == mt_ref_registry) { /* the first state, or it again */
    lua_pushvalue(L, mt);
    mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    mt_ref_registry = lua_registry;
  } else {
    mt_ref_off = true;
  }
  lua_newtable(L); /* the method table, also crater.core.Tensor */
  int m = lua_gettop(L);
  ct_lua_register(L, m, core, registry, sizeof registry / sizeof registry[0]);
  lua_getfield(L, core, "internal");
  push_op_rows(L);
  lua_setfield(L, -2, "ops");
  lua_pop(L, 1);
  /* metamethods */
  lua_pushvalue(L, m);
  lua_pushcclosure(L, t_index, 1);
  lua_setfield(L, mt, "__index");
  static const luaL_Reg meta[] = {{"__newindex", t_newindex}, {"__close", t_gc},   {"__len", t_len},
                                  {"__add", t_add_mm},        {"__sub", t_sub_mm}, {"__mul", t_mul_mm},
                                  {"__div", t_div_mm},        {"__pow", t_pow_mm}, {"__unm", t_unm},
                                  {"__lt", t_lt_mm},          {"__le", t_le_mm},   {NULL, NULL}};
  lua_pushvalue(L, mt);
  luaL_setfuncs(L, meta, 0);
  if (gc) {
    lua_pushcfunction(L, t_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, m);
  lua_setfield(L, core, "Tensor"); /* the method table: Lua adds sugar to it */
  lua_getfield(L, core, "internal");
  lua_pushvalue(L, mt);
  lua_setfield(L, -2, "Tensor_mt");
  lua_settop(L, core);
}
