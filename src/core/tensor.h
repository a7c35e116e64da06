/* crater core: refcounted storage, tensors as strided views, the accounting allocator.
 * Includes no Lua header.  Every function that can fail returns NULL (or 0) and fills
 * a ct_err; nothing here prints, exits or longjmps. */
#ifndef CT_TENSOR_H
#define CT_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CT_MAXDIM 8

typedef enum { CT_F32 = 0, CT_F64 = 1, CT_I64 = 2 } ct_dtype;

typedef struct ct_err {
  char msg[320];
} ct_err;

/* Refcounted bytes.  'version' counts in-place writes through any view, so autograd
 * can refuse a saved tensor that changed after it was saved. */
typedef struct ct_tensor ct_tensor;
typedef struct ct_storage {
  void *data;
  size_t nbytes;
  int refs;
  uint64_t version;
  uint64_t history; /* in-place writes that changed the autograd history of a tensor on it */
  ct_tensor *base; /* the tensor it was made for, while that one lives (not owned) */
  ct_tensor *block; /* the tensor whose allocation holds this storage, or NULL */
} ct_storage;

typedef struct ct_node ct_node; /* the tape layer's graph node: the core only holds it */

struct ct_tensor { /* a view into a storage */
  ct_storage *storage; /* holds one reference */
  int64_t shape[CT_MAXDIM], stride[CT_MAXDIM], offset; /* in elements */
  int ndim, refs;
  ct_dtype dtype;
  bool requires_grad; /* leaves: set by the user; results: set by autograd */
  struct ct_tensor *grad; /* owned; NULL until a backward reaches a leaf */
  ct_node *grad_fn; /* owned reference; NULL for leaves */
  int64_t hook; /* binding's id of a Lua hook list, 0 for none */
  int edges; /* graph edges holding it (they keep its hooks alive) */
  bool view; /* made by a view op: its grad_fn is a view of its base's */
  bool in_block; /* the struct lives in the block of the storage made with it */
  uint64_t view_history; /* storage->history when the view was taken */
};

/* ---- allocator with accounting (every C byte goes through here) ---- */
void *ct_malloc(size_t n, ct_err *err); /* NULL + "not enough memory" on failure */
void ct_free(void *p, size_t n);
/* allocated: every byte ever handed out (only grows), so a caller can see how much was
 * allocated between two points even when frees happened in between. */
typedef struct ct_memstat {
  int64_t bytes, peak_bytes, tensors, allocated;
} ct_memstat;
ct_memstat ct_memory(void);
void ct_memory_reset_peak(void);
/* The small-block pool under ct_malloc, without its accounting or failure injection, for
 * a host's own allocator: the crater executable gives Lua blocks from it, so the program
 * and the module recycle small blocks the same way.  ct_pool_take(n) takes n <= CT_POOL_MAX
 * bytes (16-byte aligned; NULL when malloc fails); ct_pool_give takes the block back with
 * the size it was taken with.  Like ct_malloc, for the main thread only. */
#define CT_POOL_MAX 1024
void *ct_pool_take(size_t n);
void ct_pool_give(void *p, size_t n);
/* The n-th allocation from now fails (n = 0: the next); always: every later one too.
 * n < 0 turns injection off. */
void ct_debug_fail_alloc(int64_t n, bool always);

/* ---- errors ---- */
int ct_fail(ct_err *err, const char *fmt, ...); /* fills err, returns 0 */
/* Writes "{2,3}" into buf (at least 96 bytes) and returns buf. */
char *ct_shape_str(char *buf, int ndim, const int64_t *shape);
const char *ct_dtype_name(ct_dtype dt);
static inline size_t ct_dtype_size(ct_dtype dt) {
  return dt == CT_F32 ? 4 : 8;
} /* inline: every kernel call asks */
ct_dtype ct_promote(ct_dtype a, ct_dtype b);

/* ---- size arithmetic: every product or sum of sizes, strides and offsets is checked ---- */
/* The element count of a shape; -1 with err ("sizes overflow: ...") on a negative size or
 * when the product of the nonzero sizes passes INT64_MAX.  Every tensor and view passes it,
 * so any product of some of a tensor's sizes fits in int64. */
int64_t ct_shape_numel(int ndim, const int64_t *shape, ct_err *err);
/* 1 when a view of this geometry on s stays inside it: a valid shape (ct_shape_numel),
 * offset >= 0 and, unless empty, offset + sum((size-1)*|stride|) within s's elements,
 * all in checked arithmetic; else 0 with err.  Every view op goes through it. */
int ct_check_view(const ct_storage *s, ct_dtype dt, int ndim, const int64_t *shape, const int64_t *stride,
                  int64_t offset, ct_err *err);

/* ---- tensors ---- */
/* A new contiguous tensor with uninitialised data; the caller owns it.  Fails on a
 * negative size, more than CT_MAXDIM dims, a byte count that overflows, or no memory. */
ct_tensor *ct_tensor_new(ct_dtype dt, int ndim, const int64_t *shape, ct_err *err);
ct_tensor *ct_tensor_zeros(ct_dtype dt, int ndim, const int64_t *shape, ct_err *err);
ct_tensor *ct_tensor_full(ct_dtype dt, int ndim, const int64_t *shape, double v, ct_err *err);
ct_tensor *ct_tensor_scalar(ct_dtype dt, double v, ct_err *err); /* 0-d */
/* An int64 tensor filled with k exactly (no trip through double). */
ct_tensor *ct_tensor_full_i64(int ndim, const int64_t *shape, int64_t k, ct_err *err);
/* A double as int64 the way a cast should be and C's is not: truncated, saturated at the
 * ends of the range, NaN as INT64_MIN (what x86 gives PyTorch), never undefined. */
static inline int64_t ct_i64_of(double v) {
  if (v != v) return INT64_MIN;
  if (v >= 9223372036854775808.0) return INT64_MAX;
  if (v < -9223372036854775808.0) return INT64_MIN;
  return (int64_t)v;
}
/* A new tensor struct on the same storage with the same geometry and no autograd
 * state (a detached alias); the caller owns it. */
ct_tensor *ct_tensor_alias(ct_tensor *t, ct_err *err);
/* t takes src's storage, dtype and geometry, in place (PyTorch's `t.data = src`), so
 * every reference to t (an optimizer's, a module's) sees the new data; t keeps its
 * grad, requires_grad and hooks.  Only a leaf: a result's graph was built on its data.
 * Graphs that saved t before see a newer version and refuse to run backward. */
int ct_tensor_set_data(ct_tensor *t, ct_tensor *src, ct_err *err);
static inline void ct_tensor_retain(ct_tensor *t) { t->refs++; }
void ct_tensor_release(ct_tensor *t); /* NULL is fine */
/* The tape layer's teardown of a tensor's autograd state (its grad_fn and hook), which
 * the core holds but cannot interpret: installed by autograd when it first gives a
 * tensor either, so the core needs no autograd header. */
typedef void (*ct_autograd_release_fn)(ct_tensor *t);
extern ct_autograd_release_fn ct_autograd_release;

/* inline, as the two below: small ops call them several times each, across files */
static inline int64_t ct_numel(const ct_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}
static inline bool ct_is_contiguous(const ct_tensor *t) {
  int64_t st = 1;
  bool ok = true;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] == 0) return true; /* no elements: any strides will do, as PyTorch */
    if (t->shape[i] != 1 && t->stride[i] != st) ok = false;
    st *= t->shape[i];
  }
  return ok;
}
/* An expanded view: some element is reached through several indices (a write to it would
 * take several values). */
static inline bool ct_is_expanded(const ct_tensor *t) {
  for (int i = 0; i < t->ndim; i++)
    if (t->stride[i] == 0 && t->shape[i] > 1) return true;
  return false;
}
void ct_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
static inline char *ct_data(const ct_tensor *t) {
  return (char *)t->storage->data + (size_t)t->offset * ct_dtype_size(t->dtype);
}
static inline bool ct_same_shape(const ct_tensor *a, const ct_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}
/* Reads element number i (row-major logical order) as a double. */
double ct_get_flat(const ct_tensor *t, int64_t i);
double ct_get_at(const ct_tensor *t, const int64_t *idx);
void ct_set_at(ct_tensor *t, const int64_t *idx, double v);
/* Exact element access for int64 tensors (any dtype works: others go through double). */
int64_t ct_get_at_i64(const ct_tensor *t, const int64_t *idx);
void ct_set_at_i64(ct_tensor *t, const int64_t *idx, int64_t k);
/* Copies src into dst (same numel, any strides and dtypes). Bumps dst's version. */
void ct_copy_into(ct_tensor *dst, const ct_tensor *src);
/* A contiguous copy (or a new reference to t when already contiguous and 'always' is false). */
ct_tensor *ct_contig(ct_tensor *t, bool always, ct_err *err);
static inline void ct_bump(ct_tensor *t) { t->storage->version++; }

/* ---- random numbers: a counter-based generator, the same on every machine ---- */
void ct_manual_seed(uint64_t seed);
uint64_t ct_rng_next(void); /* 64 random bits */
double ct_rng_uniform(void); /* [0,1) with 53 bits */
double ct_rng_normal(void);
void ct_fill_uniform(ct_tensor *t, double lo, double hi);
void ct_fill_normal(ct_tensor *t, double mean, double std);

/* ---- threads ---- */
void ct_set_num_threads(int n);
int ct_get_num_threads(void);
/* Calls fn(ctx, lo, hi) over [0, n) split into chunks for up to ct_get_num_threads()
 * threads of 2^18 elements or more each (below 2^19 it all runs on the calling thread).
 * fn must touch only elements lo..hi-1, so results do not depend on the thread count. */
typedef void (*ct_range_fn)(void *ctx, size_t lo, size_t hi);
void ct_parallel(size_t n, ct_range_fn fn, void *ctx);
/* ct_parallel for a kernel with more work per element than a copy: it takes a thread per
 * `grain` elements, from two grains on. */
void ct_parallel_grain(size_t n, size_t grain, ct_range_fn fn, void *ctx);
/* fn over block indices [0, nblocks) (each block `block` elements of work), the blocks
 * split among threads: a reduction that keeps one partial per block and adds them in block
 * order gives the same result on any thread count. */
void ct_parallel_blocks(size_t nblocks, size_t block, ct_range_fn fn, void *ctx);

/* ---- strided iteration over up to 4 operands of one shape ----
 * fn gets pointers to the first element of each operand for one run of the innermost
 * (coalesced) dim, the element strides of that dim, and its length.  Strides are in
 * elements; elsize gives each operand's element size in bytes. */
typedef void (*ct_loop_fn)(char **p, const int64_t *s, int64_t n, void *ctx);
void ct_iterate(int nops, char **base, const size_t *elsize, int ndim, const int64_t *shape,
                int64_t (*strides)[CT_MAXDIM], ct_loop_fn fn, void *ctx);

#endif
