/* crater.distributed: MPI for crater, built on its own as build/lib/crater/distributed.so,
 * the only part of crater that links MPI.  Collectives work in place on a tensor's memory;
 * each first exchanges a small header so that ranks that disagree on the call, the shape
 * or the dtype all raise the same error instead of hanging or reducing garbage. */
#include <assert.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lbind.h"

int luaopen_crater_distributed(lua_State *L);

static const ct_lua_capi *capi; /* crater.core's functions (lbind.h) */
static MPI_Comm comm = MPI_COMM_NULL; /* a duplicate of MPI_COMM_WORLD: ours alone */
static int me, nranks = 1, local_me, local_n = 1;
static int started, ended; /* init() ran; finalize() ran (MPI cannot restart) */

/* ---- the header every collective exchanges first ---- */

enum {
  K_BARRIER,
  K_ALL_REDUCE,
  K_BROADCAST,
  K_ALL_GATHER,
  K_REDUCE_SCATTER,
  K_GATHER_BYTES,
  K_BCAST_BYTES,
  K_QUEUE
};
static const char *const kind_names[] = {"barrier",         "all_reduce",     "broadcast",
                                         "all_gather",      "reduce_scatter", "all_gather_bytes",
                                         "broadcast_bytes", "work_queue"};
enum { OP_SUM, OP_MEAN, OP_MAX, OP_MIN };
static const char *const op_names[] = {"sum", "mean", "max", "min", NULL};

/* int64 words: kind, status (1 = a local error), dtype (-1: none), ndim, 8 sizes, extra
 * (the reduction op or the root) */
enum { H_KIND, H_BAD, H_DTYPE, H_NDIM, H_SHAPE, H_EXTRA = H_SHAPE + CT_MAXDIM, H_LEN };
#define MSG_LEN 240

typedef struct call {
  const char *fn;
  int64_t h[H_LEN];
  char msg[MSG_LEN]; /* this rank's local error, when h[H_BAD] */
} call;

static void call_begin(lua_State *L, call *c, const char *fn, int kind) {
  if (!started || ended)
    luaL_error(L, "%s: crater.distributed.init() has not been called%s", fn,
               ended ? " (or finalize() has)" : "");
  memset(c, 0, sizeof *c);
  c->fn = fn;
  c->h[H_KIND] = kind;
  c->h[H_DTYPE] = -1;
}

/* Records the first local error; the exchange makes every rank raise it. */
static void bad(call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(call *c, const char *fmt, ...) {
  if (c->h[H_BAD]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->msg, sizeof c->msg, fmt, ap);
  va_end(ap);
  c->h[H_BAD] = 1;
}

static void describe(luaL_Buffer *b, const call *c, const int64_t *h, int r) {
  char shape[128];
  int64_t sh[CT_MAXDIM];
  for (int i = 0; i < (int)h[H_NDIM] && i < CT_MAXDIM; i++) sh[i] = h[H_SHAPE + i];
  lua_pushfstring(b->L, "rank %d %s %s", r, h[H_DTYPE] >= 0 ? capi->dtype_name((ct_dtype)h[H_DTYPE]) : "?",
                  capi->shape_str(shape, (int)h[H_NDIM], sh));
  luaL_addvalue(b);
  (void)c;
}

static int same_tensor(const int64_t *a, const int64_t *b) {
  if (a[H_DTYPE] != b[H_DTYPE] || a[H_NDIM] != b[H_NDIM]) return 0;
  for (int i = 0; i < (int)a[H_NDIM]; i++)
    if (a[H_SHAPE + i] != b[H_SHAPE + i]) return 0;
  return 1;
}

/* Raises "fn: what: rank 0 X, rank r Y, ..." listing rank 0 and up to 4 ranks that differ
 * from it by 'differs'; the same text on every rank. */
static int raise_mismatch(lua_State *L, const call *c, const int64_t *all, const char *what,
                          int (*differs)(const int64_t *, const int64_t *),
                          void (*show)(luaL_Buffer *, const call *, const int64_t *, int)) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "%s: %s: ", c->fn, what);
  luaL_addvalue(&b);
  show(&b, c, all, 0);
  int listed = 0, more = 0;
  for (int r = 1; r < nranks; r++) {
    if (!differs(all, all + (size_t)r * H_LEN)) continue;
    if (listed++ < 4) {
      luaL_addstring(&b, ", ");
      show(&b, c, all + (size_t)r * H_LEN, r);
    } else more++;
  }
  if (more) {
    lua_pushfstring(L, " (and %d more)", more);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return lua_error(L);
}

static int kind_differs(const int64_t *a, const int64_t *b) { return a[H_KIND] != b[H_KIND]; }
static int tensor_differs(const int64_t *a, const int64_t *b) { return !same_tensor(a, b); }
static int extra_differs(const int64_t *a, const int64_t *b) { return a[H_EXTRA] != b[H_EXTRA]; }
static void show_kind(luaL_Buffer *b, const call *c, const int64_t *h, int r) {
  lua_pushfstring(b->L, "rank %d %s", r, kind_names[h[H_KIND]]);
  luaL_addvalue(b);
  (void)c;
}
static void show_extra(luaL_Buffer *b, const call *c, const int64_t *h, int r) {
  int k = (int)c->h[H_KIND];
  if (k == K_ALL_REDUCE || k == K_REDUCE_SCATTER)
    lua_pushfstring(b->L, "rank %d '%s'", r, op_names[h[H_EXTRA]]);
  else lua_pushfstring(b->L, "rank %d root %d", r, (int)h[H_EXTRA]);
  luaL_addvalue(b);
}

/* Exchanges the headers (one MPI_Allgather of a few words) and raises on every rank when
 * any rank had a local error or when the ranks disagree.  Returns the headers of all ranks,
 * in a userdata left on the stack.  'tensors': whether the dtypes and shapes must agree. */
static const int64_t *exchange(lua_State *L, call *c, int tensors) {
  int64_t *all = lua_newuserdatauv(L, (size_t)nranks * H_LEN * sizeof(int64_t), 0);
  MPI_Allgather(c->h, H_LEN, MPI_INT64_T, all, H_LEN, MPI_INT64_T, comm);
  int nbad = 0, first = -1;
  for (int r = 0; r < nranks; r++)
    if (all[(size_t)r * H_LEN + H_BAD]) {
      nbad++;
      if (first < 0) first = r;
    }
  char *msgs = NULL;
  if (nbad) { /* every rank saw the same flags, so every rank takes part in this one */
    msgs = lua_newuserdatauv(L, (size_t)nranks * MSG_LEN, 0);
    MPI_Allgather(c->msg, MSG_LEN, MPI_CHAR, msgs, MSG_LEN, MPI_CHAR, comm);
  }
  for (int r = 1; r < nranks; r++)
    if (kind_differs(all, all + (size_t)r * H_LEN))
      return raise_mismatch(L, c, all, "the ranks called different collectives", kind_differs, show_kind),
             NULL;
  if (tensors)
    for (int r = 1; r < nranks; r++)
      if (tensor_differs(all, all + (size_t)r * H_LEN) && !all[H_BAD] && !all[(size_t)r * H_LEN + H_BAD])
        return raise_mismatch(L, c, all, "tensors differ across ranks", tensor_differs, describe), NULL;
  if (nbad) {
    msgs[(size_t)first * MSG_LEN + MSG_LEN - 1] = '\0';
    if (nbad == 1) luaL_error(L, "%s: on rank %d: %s", c->fn, first, msgs + (size_t)first * MSG_LEN);
    luaL_error(L, "%s: on rank %d (and %d more): %s", c->fn, first, nbad - 1, msgs + (size_t)first * MSG_LEN);
  }
  for (int r = 1; r < nranks; r++)
    if (extra_differs(all, all + (size_t)r * H_LEN))
      return raise_mismatch(L, c, all,
                            c->h[H_KIND] == K_ALL_REDUCE || c->h[H_KIND] == K_REDUCE_SCATTER
                                ? "the ranks asked for different ops"
                                : "the ranks named different roots",
                            extra_differs, show_extra),
             NULL;
  if (msgs) lua_pop(L, 1);
  return all;
}

/* ---- arguments, checked without raising: a raise on one rank would hang the others ---- */

static ct_tensor *tensor_arg(lua_State *L, int idx, call *c, int write) {
  ct_tensor *t = capi->test(L, idx);
  if (t == NULL) {
    int released = 0;
    if (lua_type(L, idx) == LUA_TUSERDATA && luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) {
      released = strcmp(lua_tostring(L, -1), CT_TENSOR_MT) == 0;
      lua_pop(L, 1);
    }
    if (released) bad(c, "argument #%d: the tensor was released", idx);
    else bad(c, "argument #%d: expected a crater.Tensor, got %s", idx, luaL_typename(L, idx));
    return NULL;
  }
  c->h[H_DTYPE] = t->dtype;
  c->h[H_NDIM] = t->ndim;
  for (int i = 0; i < t->ndim; i++) c->h[H_SHAPE + i] = t->shape[i];
  if (!ct_is_contiguous(t)) {
    char s1[128], s2[128];
    bad(c,
        "argument #%d is not contiguous (sizes %s, strides %s): collectives work in place on "
        "contiguous memory; use a :contiguous() copy",
        idx, capi->shape_str(s1, t->ndim, t->shape), capi->shape_str(s2, t->ndim, t->stride));
    return t;
  }
  ct_err err;
  if (write && !capi->inplace_ok(t, &err)) bad(c, "argument #%d: %s", idx, err.msg);
  return t;
}

/* The reduction op: nil (sum), a name, or a table {op = name}. */
static int op_arg(lua_State *L, int idx, call *c) {
  int t = lua_type(L, idx);
  if (t == LUA_TTABLE) {
    lua_getfield(L, idx, "op");
    lua_replace(L, idx);
    t = lua_type(L, idx);
  }
  if (t == LUA_TNIL || t == LUA_TNONE) return OP_SUM;
  if (t == LUA_TSTRING)
    for (int i = 0; op_names[i]; i++)
      if (strcmp(op_names[i], lua_tostring(L, idx)) == 0) {
        c->h[H_EXTRA] = i;
        return i;
      }
  bad(c, "op must be \"sum\", \"mean\", \"max\" or \"min\", got %s%s%s", t == LUA_TSTRING ? "'" : "",
      t == LUA_TSTRING ? lua_tostring(L, idx) : lua_typename(L, t), t == LUA_TSTRING ? "'" : "");
  return OP_SUM;
}

static int root_arg(lua_State *L, int idx, call *c) {
  if (lua_isnoneornil(L, idx)) return 0;
  int isint;
  lua_Integer r = lua_tointegerx(L, idx, &isint);
  if (!isint || r < 0 || r >= nranks) {
    bad(c, "argument #%d: root must be a rank from 0 to %d, got %s", idx, nranks - 1,
        luaL_tolstring(L, idx, NULL));
    lua_pop(L, 1);
    return 0;
  }
  c->h[H_EXTRA] = r;
  return (int)r;
}

static MPI_Datatype mpi_type(ct_dtype dt) {
  return dt == CT_F32 ? MPI_FLOAT : dt == CT_F64 ? MPI_DOUBLE : MPI_INT64_T;
}
static MPI_Op mpi_op(int op) { return op == OP_MAX ? MPI_MAX : op == OP_MIN ? MPI_MIN : MPI_SUM; }

/* x /= n over count elements (mean = sum / world size). */
static void divide(ct_tensor *t, int64_t count, int n) {
  if (t->dtype == CT_F32) {
    float *x = (float *)ct_data(t), k = 1.0f / (float)n;
    for (int64_t i = 0; i < count; i++) x[i] *= k;
  } else {
    double *x = (double *)ct_data(t), k = 1.0 / n;
    for (int64_t i = 0; i < count; i++) x[i] *= k;
  }
}

/* MPI counts are ints: large tensors go in chunks of CHUNK elements. */
#define CHUNK ((int64_t)1 << 30)

/* ---- the collectives ---- */

/* The two in-place collectives.  all_reduce(t, {op = "sum"|"mean"|"max"|"min"}): t
 * reduced over the ranks ('mean' is the sum divided by the world size, float tensors
 * only).  broadcast(t, root = 0): root's t copied into t on every rank.  Both return t. */
static int in_place(lua_State *L, const char *fn, int kind) {
  call c;
  call_begin(L, &c, fn, kind);
  lua_settop(L, 2);
  ct_tensor *t = tensor_arg(L, 1, &c, 1);
  int arg = kind == K_ALL_REDUCE ? op_arg(L, 2, &c) : root_arg(L, 2, &c); /* op or root */
  if (t && kind == K_ALL_REDUCE && arg == OP_MEAN && t->dtype == CT_I64)
    bad(&c, "op 'mean' needs a float32 or float64 tensor, got int64 (use 'sum')");
  exchange(L, &c, 1);
  assert(t != NULL); /* a rank without a tensor made exchange() raise on all */
  int64_t n = ct_numel(t);
  size_t es = ct_dtype_size(t->dtype);
  for (int64_t at = 0; at < n; at += CHUNK) {
    int k = (int)(n - at < CHUNK ? n - at : CHUNK);
    char *p = ct_data(t) + (size_t)at * es;
    if (kind == K_ALL_REDUCE) MPI_Allreduce(MPI_IN_PLACE, p, k, mpi_type(t->dtype), mpi_op(arg), comm);
    else MPI_Bcast(p, k, mpi_type(t->dtype), arg, comm);
  }
  if (kind == K_ALL_REDUCE && arg == OP_MEAN) divide(t, n, nranks);
  if (kind == K_ALL_REDUCE || me != arg) ct_bump(t);
  lua_settop(L, 1);
  return 1;
}
static int d_all_reduce(lua_State *L) { return in_place(L, "all_reduce", K_ALL_REDUCE); }
static int d_broadcast(lua_State *L) { return in_place(L, "broadcast", K_BROADCAST); }

/* A new tensor of dtype dt and the given shape in a box pushed on the stack, or NULL
 * (an empty box pushed) with the reason recorded in c. */
static ct_tensor *new_result(lua_State *L, call *c, ct_dtype dt, int ndim, const int64_t *shape) {
  ct_tensor **box = capi->newbox(L);
  if (c->h[H_BAD]) return NULL;
  ct_err err;
  if ((*box = capi->tensor_new(dt, ndim, shape, &err)) == NULL) bad(c, "%s", err.msg);
  return *box;
}

/* all_gather(t): a new tensor of shape {world_size, t's sizes...}; row r+1 is rank r's t. */
static int d_all_gather(lua_State *L) {
  call c;
  call_begin(L, &c, "all_gather", K_ALL_GATHER);
  lua_settop(L, 1);
  ct_tensor *t = tensor_arg(L, 1, &c, 0), *out = NULL;
  if (t && t->ndim == CT_MAXDIM)
    bad(&c, "argument #1 has %d dims; the stacked result would have one more", t->ndim);
  if (t && ct_numel(t) > INT_MAX) bad(&c, "argument #1 has more than %d elements", INT_MAX);
  int64_t shape[CT_MAXDIM] = {nranks};
  if (t) memcpy(shape + 1, t->shape, sizeof(int64_t) * (size_t)(t->ndim < CT_MAXDIM ? t->ndim : 0));
  out = new_result(L, &c, t ? t->dtype : CT_F32, t ? t->ndim + 1 : 1, shape);
  exchange(L, &c, 1);
  assert(t != NULL && out != NULL);
  lua_pop(L, 1); /* the headers: the result is on top */
  int k = (int)ct_numel(t);
  MPI_Allgather(ct_data(t), k, mpi_type(t->dtype), ct_data(out), k, mpi_type(t->dtype), comm);
  return 1;
}

/* reduce_scatter(t, {op=}): t's first dimension, of size world_size * k, is cut into
 * world_size blocks of k rows; rank r gets the reduction over ranks of block r+1, a new
 * tensor of shape {k, t's other sizes...} (PyTorch's reduce_scatter_tensor). */
static int d_reduce_scatter(lua_State *L) {
  call c;
  call_begin(L, &c, "reduce_scatter", K_REDUCE_SCATTER);
  lua_settop(L, 2);
  ct_tensor *t = tensor_arg(L, 1, &c, 0), *out = NULL;
  int op = op_arg(L, 2, &c);
  int64_t shape[CT_MAXDIM];
  if (t && t->ndim == 0) bad(&c, "argument #1 is 0-d; it needs a first dimension to scatter");
  else if (t && t->shape[0] % nranks != 0)
    bad(&c, "argument #1's first size %lld is not divisible by the world size %d", (long long)t->shape[0],
        nranks);
  if (t && op == OP_MEAN && t->dtype == CT_I64)
    bad(&c, "op 'mean' needs a float32 or float64 tensor, got int64 (use 'sum')");
  if (t && ct_numel(t) / nranks > INT_MAX) bad(&c, "argument #1 has more than %d elements per rank", INT_MAX);
  if (t) {
    memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    if (t->ndim > 0) shape[0] /= nranks;
  }
  out = new_result(L, &c, t ? t->dtype : CT_F32, t ? t->ndim : 0, shape);
  exchange(L, &c, 1);
  assert(t != NULL && out != NULL);
  lua_pop(L, 1);
  int k = (int)ct_numel(out);
  MPI_Reduce_scatter_block(ct_data(t), ct_data(out), k, mpi_type(t->dtype), mpi_op(op), comm);
  if (op == OP_MEAN) divide(out, k, nranks);
  return 1;
}

/* barrier(): returns when every rank has called it (a header exchange: a rank that called
 * another collective meanwhile is an error on all of them). */
static int d_barrier(lua_State *L) {
  call c;
  call_begin(L, &c, "barrier", K_BARRIER);
  exchange(L, &c, 0);
  return 0;
}

/* all_gather_bytes(s): the list of every rank's string, rank r's at index r+1 (the lab
 * gathers serialized results with it). */
static int d_all_gather_bytes(lua_State *L) {
  call c;
  call_begin(L, &c, "all_gather_bytes", K_GATHER_BYTES);
  size_t len = 0;
  const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
  if (s == NULL) bad(&c, "argument #1: expected a string, got %s", luaL_typename(L, 1));
  else if (len > INT_MAX) bad(&c, "argument #1 is longer than %d bytes", INT_MAX);
  c.h[H_SHAPE] = (int64_t)len;
  const int64_t *all = exchange(L, &c, 0);
  int *counts = lua_newuserdatauv(L, 2 * sizeof(int) * (size_t)nranks, 0), *displs = counts + nranks;
  int64_t total = 0;
  for (int r = 0; r < nranks; r++) {
    counts[r] = (int)all[(size_t)r * H_LEN + H_SHAPE];
    displs[r] = (int)total;
    total += counts[r];
  }
  if (total > INT_MAX)
    return luaL_error(L, "all_gather_bytes: %I bytes in all, more than %d", (LUAI_UACINT)total, INT_MAX);
  char *buf = lua_newuserdatauv(L, (size_t)total + 1, 0);
  MPI_Allgatherv(s, (int)len, MPI_CHAR, buf, counts, displs, MPI_CHAR, comm);
  lua_createtable(L, nranks, 0);
  for (int r = 0; r < nranks; r++) {
    lua_pushlstring(L, buf + displs[r], (size_t)counts[r]);
    lua_rawseti(L, -2, r + 1);
  }
  return 1;
}

/* broadcast_bytes(s, root = 0): root's string on every rank (s is ignored elsewhere). */
static int d_broadcast_bytes(lua_State *L) {
  call c;
  call_begin(L, &c, "broadcast_bytes", K_BCAST_BYTES);
  lua_settop(L, 2);
  int root = root_arg(L, 2, &c);
  size_t len = 0;
  const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
  if (me == root && s == NULL) bad(&c, "argument #1: the root needs a string, got %s", luaL_typename(L, 1));
  else if (len > INT_MAX) bad(&c, "argument #1 is longer than %d bytes", INT_MAX);
  c.h[H_SHAPE] = (int64_t)len;
  const int64_t *all = exchange(L, &c, 0);
  int n = (int)all[(size_t)root * H_LEN + H_SHAPE];
  char *buf = lua_newuserdatauv(L, (size_t)n + 1, 0);
  if (me == root) memcpy(buf, s, (size_t)n);
  MPI_Bcast(buf, n, MPI_CHAR, root, comm);
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

/* ---- a shared counter for dynamic work queues (an MPI window on rank 0) ---- */

#define QUEUE_MT "crater.distributed.WorkQueue"
typedef struct {
  MPI_Win win;
  int64_t *base;
  int64_t n;
  int open;
} queue;

/* work_queue(n): every rank calls it; then q:next() hands out 1..n, each index to exactly
 * one rank, in the order the ranks ask (MPI_Fetch_and_op on rank 0's counter), and nil
 * when they are used up.  q:close() (collective) frees the window. */
static int d_work_queue(lua_State *L) {
  call c;
  call_begin(L, &c, "work_queue", K_QUEUE);
  int isint;
  lua_Integer n = lua_tointegerx(L, 1, &isint);
  if (!isint || n < 0)
    bad(&c, "argument #1: n must be a non-negative integer, got %s", luaL_tolstring(L, 1, NULL));
  c.h[H_EXTRA] = isint ? n : -1;
  exchange(L, &c, 0);
  queue *q = lua_newuserdatauv(L, sizeof *q, 0);
  q->open = 0;
  q->n = n;
  luaL_setmetatable(L, QUEUE_MT);
  MPI_Win_allocate(me == 0 ? (MPI_Aint)sizeof(int64_t) : 0, sizeof(int64_t), MPI_INFO_NULL, comm, &q->base,
                   &q->win);
  if (me == 0) {
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, q->win);
    *q->base = 0;
    MPI_Win_unlock(0, q->win);
  }
  q->open = 1;
  MPI_Barrier(comm); /* nobody takes before the counter is zero */
  return 1;
}

static int q_next(lua_State *L) {
  queue *q = luaL_checkudata(L, 1, QUEUE_MT);
  if (!q->open) return luaL_error(L, "next: the work queue was closed");
  int64_t one = 1, got = 0;
  MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, q->win);
  MPI_Fetch_and_op(&one, &got, MPI_INT64_T, 0, 0, MPI_SUM, q->win);
  MPI_Win_unlock(0, q->win);
  if (got >= q->n) return 0;
  lua_pushinteger(L, got + 1);
  return 1;
}

static int q_close(lua_State *L) {
  queue *q = luaL_checkudata(L, 1, QUEUE_MT);
  if (q->open && started && !ended) MPI_Win_free(&q->win);
  q->open = 0;
  return 0;
}

/* ---- the world ---- */

static void finalize_now(void) {
  if (!started || ended) return;
  ended = 1;
  MPI_Comm_free(&comm);
  MPI_Finalize();
}
static void at_exit(void) { finalize_now(); }

/* init(): MPI_Init_thread (funneled: only the main thread calls MPI; OpenBLAS's threads
 * never do).  Started by mpirun, the world is mpirun's; started alone, a world of one.
 * Returns rank, world_size.  A second call does nothing. */
static int d_init(lua_State *L) {
  if (ended) return luaL_error(L, "init: crater.distributed was finalized; MPI cannot start again");
  if (!started) {
    int flag = 0, provided;
    MPI_Initialized(&flag);
    if (!flag && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      return luaL_error(L, "init: MPI_Init_thread failed");
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    MPI_Comm_rank(comm, &me);
    MPI_Comm_size(comm, &nranks);
    MPI_Comm local;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, me, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_me);
    MPI_Comm_size(local, &local_n);
    MPI_Comm_free(&local);
    started = 1;
    atexit(at_exit);
  }
  lua_pushinteger(L, me);
  lua_pushinteger(L, nranks);
  return 2;
}

static void need_init(lua_State *L, const char *fn) {
  if (!started || ended)
    luaL_error(L, "%s: crater.distributed.init() has not been called%s", fn,
               ended ? " (or finalize() has)" : "");
}
static int d_rank(lua_State *L) {
  need_init(L, "rank");
  lua_pushinteger(L, me);
  return 1;
}
static int d_world_size(lua_State *L) {
  need_init(L, "world_size");
  lua_pushinteger(L, nranks);
  return 1;
}
static int d_local_rank(lua_State *L) {
  need_init(L, "local_rank");
  lua_pushinteger(L, local_me);
  return 1;
}
static int d_local_size(lua_State *L) {
  need_init(L, "local_size");
  lua_pushinteger(L, local_n);
  return 1;
}
static int d_is_main(lua_State *L) {
  need_init(L, "is_main");
  lua_pushboolean(L, me == 0);
  return 1;
}
static int d_is_initialized(lua_State *L) {
  lua_pushboolean(L, started && !ended);
  return 1;
}

/* finalize(): MPI_Finalize (also done at exit); collectives are refused afterwards. */
static int d_finalize(lua_State *L) {
  finalize_now();
  return 0;
}

/* abort(msg, code = 1): prints "crater: rank r of n: msg" and ends every rank of the job
 * (MPI_Abort); mpirun then exits non-zero.  Without init it just exits. */
static int d_abort(lua_State *L) {
  const char *msg = luaL_optstring(L, 1, "aborted");
  int code = (int)luaL_optinteger(L, 2, 1);
  if (started && !ended) fprintf(stderr, "crater: rank %d of %d: %s\n", me, nranks, msg);
  else fprintf(stderr, "crater: %s\n", msg);
  fflush(stderr);
  if (started && !ended) MPI_Abort(comm, code ? code : 1);
  exit(code ? code : 1);
}

/* The crater executable calls this with an uncaught error's message before it exits: in a
 * world of several ranks the job is aborted (the others may be waiting in a collective for
 * this one); alone, it returns and crater exits as usual. */
static int d_on_uncaught(lua_State *L) {
  if (started && !ended && nranks > 1) return d_abort(L);
  return 0;
}

static int d_gc_sentinel(lua_State *L) {
  finalize_now();
  return 0;
}

/* The module stays loaded until the process ends (RTLD_NODELETE: the atexit handler points
 * into it), and MPI's library is made global, as its plugins, opened later, expect (Lua
 * opens C modules with RTLD_LOCAL). */
static void pin_libraries(void) {
  Dl_info info;
  if (dladdr((void *)luaopen_crater_distributed, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD);
  if (dladdr((void *)MPI_Init_thread, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}

int luaopen_crater_distributed(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "crater.core");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "capi");
  capi = lua_touserdata(L, -1);
  if (capi == NULL || capi->version != CT_LUA_CAPI_VERSION)
    return luaL_error(L, "crater.distributed: crater.core is of another version (rebuild both)");
  lua_pop(L, 2);
  pin_libraries();
  static const luaL_Reg qm[] = {{"next", q_next}, {"close", q_close}, {NULL, NULL}};
  if (luaL_newmetatable(L, QUEUE_MT)) {
    luaL_newlib(L, qm);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  /* finalize when the Lua state closes (lua_close runs before exit's handlers); once per
   * state: a second require (busted unloads modules between files) keeps the first */
  if (lua_getfield(L, LUA_REGISTRYINDEX, "crater.distributed.sentinel") == LUA_TNIL) {
    lua_newuserdatauv(L, 1, 0);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, d_gc_sentinel);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "crater.distributed.sentinel");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"init", d_init},
                                 {"finalize", d_finalize},
                                 {"rank", d_rank},
                                 {"world_size", d_world_size},
                                 {"local_rank", d_local_rank},
                                 {"local_size", d_local_size},
                                 {"is_main", d_is_main},
                                 {"is_initialized", d_is_initialized},
                                 {"barrier", d_barrier},
                                 {"all_reduce", d_all_reduce},
                                 {"broadcast", d_broadcast},
                                 {"all_gather", d_all_gather},
                                 {"reduce_scatter", d_reduce_scatter},
                                 {"all_gather_bytes", d_all_gather_bytes},
                                 {"broadcast_bytes", d_broadcast_bytes},
                                 {"work_queue", d_work_queue},
                                 {"abort", d_abort},
                                 {"_on_uncaught", d_on_uncaught},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  /* the Lua half (printing, checkpoints, Lua values): require("crater.distributed_aux")(lib) */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "crater.distributed_aux");
  lua_call(L, 1, 1);
  lua_insert(L, -2);
  lua_call(L, 1, 1);
  return 1;
}
