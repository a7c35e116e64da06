/* crater core: the accounting allocator, refcounted storage, tensors as views,
 * the strided iterator and the random number generator. */
#include "tensor.h"

#include <sys/mman.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- allocator ---------------- */

static ct_memstat mem;
ct_autograd_release_fn ct_autograd_release = NULL;
static int64_t fail_countdown = -1;
static bool fail_always;

void ct_debug_fail_alloc(int64_t n, bool always) {
  fail_countdown = n;
  fail_always = always;
}

/* Small blocks are recycled through per-size free lists: tensors are made and dropped
 * in bursts (Lua's collector frees thousands at once), where malloc's slow path showed
 * up as the largest cost of a small op.  The lists hold at most POOL_CAP bytes. */
#define POOL_MAX CT_POOL_MAX
#define POOL_CAP ((size_t)8 << 20)
typedef struct pool_block {
  struct pool_block *next;
} pool_block;
static pool_block *pool[POOL_MAX / 16 + 1];
static size_t pooled_bytes;

static size_t pool_class(size_t n) { return (n + 15) / 16; }

void *ct_pool_take(size_t n) { /* 16-byte aligned, like malloc */
  size_t c = pool_class(n ? n : 1);
  if (pool[c] == NULL) return malloc(c * 16);
  void *p = pool[c];
  pool[c] = pool[c]->next;
  pooled_bytes -= c * 16;
  return p;
}

void ct_pool_give(void *p, size_t n) {
  if (p == NULL) return;
  if (pooled_bytes >= POOL_CAP) {
    free(p);
    return;
  }
  size_t c = pool_class(n ? n : 1);
  pool_block *b = p;
  b->next = pool[c];
  pool[c] = b;
  pooled_bytes += c * 16;
}

/* Large blocks come straight from mmap and go back with munmap, and the last few freed
 * are kept for reuse.  In malloc's heap, small objects settled into the holes that
 * freed activations left, so the next batch's im2col buffer no longer fitted and the
 * heap grew without end (a CNN epoch reached 7 GB with 190 MB live); a fresh mapping,
 * on the other hand, faults on every page, which made an out-of-place op on 10M floats
 * five times slower than a copy: hence the cache of exact sizes. */
#define MMAP_MIN ((size_t)64 << 10)
#define BIG_SLOTS 128
#define BIG_CAP ((size_t)1 << 30)
static struct {
  void *p;
  size_t size;
} big[BIG_SLOTS];
static size_t big_bytes;

static size_t big_round(size_t n) { return (n + 4095) & ~(size_t)4095; }

/* big_take and big_give stay out of line: inlined (as -flto does), their registers and
 * stack made every small ct_malloc and ct_free save and restore them (700 instructions of
 * a Rosenbrock step) */
__attribute__((noinline)) static void *big_take(size_t n) {
  if (n < MMAP_MIN) { /* 64-byte alignment for the vector units */
    size_t rounded = (n + 63) & ~(size_t)63;
    return aligned_alloc(64, rounded);
  }
  size_t size = big_round(n);
  if (size < n) return NULL;
  for (int i = 0; i < BIG_SLOTS; i++)
    if (big[i].p && big[i].size == size) {
      void *p = big[i].p;
      big[i].p = NULL;
      big_bytes -= size;
      return p;
    }
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

__attribute__((noinline)) static void big_give(void *p, size_t n) {
  if (n < MMAP_MIN) {
    free(p);
    return;
  }
  size_t size = big_round(n);
  int slot = -1;
  for (int i = 0; i < BIG_SLOTS && slot < 0; i++)
    if (big[i].p == NULL) slot = i;
  for (int i = 0; i < BIG_SLOTS && (slot < 0 || big_bytes + size > BIG_CAP); i++)
    if (big[i].p) { /* full: unmap cached blocks until this one fits */
      munmap(big[i].p, big[i].size);
      big_bytes -= big[i].size;
      big[i].p = NULL;
      slot = i;
    }
  if (slot < 0 || size > BIG_CAP) {
    munmap(p, size);
    return;
  }
  big[slot].p = p;
  big[slot].size = size;
  big_bytes += size;
}

/* CRATER_MEMORY_LIMIT=<MiB> caps live C memory, so a fuzzer (or a shared machine) sees
 * "not enough memory" rather than a legal 8 GiB tensor; read once, at the first large
 * allocation. */
static bool over_limit(size_t n) {
  static int64_t limit = -1;
  if (limit < 0) {
    const char *s = getenv("CRATER_MEMORY_LIMIT");
    long long mib = s ? atoll(s) : 0;
    limit = mib > 0 && mib < (INT64_MAX >> 20) ? (int64_t)mib << 20 : INT64_MAX;
  }
  return mem.bytes >= limit || n > (size_t)(limit - mem.bytes);
}

void *ct_malloc(size_t n, ct_err *err) {
  if (fail_countdown >= 0) {
    if (fail_countdown == 0) {
      if (!fail_always) fail_countdown = -1;
      ct_fail(err, "not enough memory (allocation of %zu bytes failed)", n);
      return NULL;
    }
    fail_countdown--;
  }
  void *p = n <= POOL_MAX ? ct_pool_take(n) : over_limit(n) ? NULL : big_take(n);
  if (p == NULL) {
    ct_fail(err, "not enough memory (allocation of %zu bytes failed)", n);
    return NULL;
  }
  mem.bytes += (int64_t)n;
  mem.allocated += (int64_t)n;
  if (mem.bytes > mem.peak_bytes) mem.peak_bytes = mem.bytes;
  return p;
}

void ct_free(void *p, size_t n) {
  if (p == NULL) return;
  mem.bytes -= (int64_t)n;
  if (n > POOL_MAX) big_give(p, n);
  else ct_pool_give(p, n);
}

ct_memstat ct_memory(void) { return mem; }
void ct_memory_reset_peak(void) { mem.peak_bytes = mem.bytes; }

/* ---------------- errors and names ---------------- */

int ct_fail(ct_err *err, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return 0;
}

char *ct_shape_str(char *buf, int ndim, const int64_t *shape) {
  size_t k = 0;
  buf[k++] = '{';
  for (int i = 0; i < ndim; i++) { /* 8 sizes of 19 digits need more than 96 bytes */
    char num[24];
    size_t len = (size_t)snprintf(num, sizeof num, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (k + len + 5 > 96) {
      memcpy(buf + k, "...", 3);
      k += 3;
      break;
    } /* room for "...}" */
    memcpy(buf + k, num, len);
    k += len;
  }
  buf[k++] = '}';
  buf[k] = '\0';
  return buf;
}

const char *ct_dtype_name(ct_dtype dt) {
  static const char *names[] = {"float32", "float64", "int64"};
  return names[dt];
}

/* PyTorch's promotion for the three dtypes: any float beats int64, float64 beats float32. */
ct_dtype ct_promote(ct_dtype a, ct_dtype b) {
  if (a == b) return a;
  if (a == CT_I64) return b;
  if (b == CT_I64) return a;
  return CT_F64;
}

/* ---------------- storage and tensors ---------------- */

/* header and data in one block: one allocation per new tensor's bytes; the header is
 * padded so that the data keeps the block's alignment */
static size_t storage_head(size_t nbytes) {
  return nbytes + sizeof(ct_storage) <= POOL_MAX ? (sizeof(ct_storage) + 15) & ~(size_t)15
                                                 : (sizeof(ct_storage) + 63) & ~(size_t)63;
}

/* A small new tensor is one block: the struct, then its storage's header and data.  A
 * step of small ops makes and drops dozens of tensors, and one allocation instead of two
 * each was worth it there.  The block outlives the struct while views still hold the
 * storage; the storage's last release frees it. */
#define TENSOR_SPAN ((sizeof(ct_tensor) + 15) & ~(size_t)15)
static size_t block_size(size_t nbytes) { return TENSOR_SPAN + storage_head(nbytes) + nbytes; }
/* The storage made in one block with t (valid while t->in_block). */
static ct_storage *home_storage(ct_tensor *t) { return (ct_storage *)((char *)t + TENSOR_SPAN); }
#define BLOCK_MAX_BYTES (POOL_MAX - TENSOR_SPAN - ((sizeof(ct_storage) + 15) & ~(size_t)15))

static ct_storage *storage_new(size_t nbytes, ct_err *err) {
  size_t head = storage_head(nbytes);
  if (nbytes > SIZE_MAX - head) {
    ct_fail(err, "not enough memory (size overflow)");
    return NULL;
  }
  ct_storage *s = ct_malloc(head + nbytes, err);
  if (s == NULL) return NULL;
  s->data = (char *)s + head;
  s->nbytes = nbytes;
  s->refs = 1;
  s->version = 0;
  s->history = 0;
  s->base = s->block = NULL;
  return s;
}

static void storage_release(ct_storage *s) {
  if (s == NULL || --s->refs > 0) return;
  if (s->block) ct_free(s->block, block_size(s->nbytes));
  else ct_free(s, storage_head(s->nbytes) + s->nbytes);
}

void ct_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t st = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    stride[i] = st;
    st *= shape[i] > 0 ? shape[i] : 1;
  }
}

/* Every field but shape and stride, which whoever makes the tensor fills for its ndim dims
 * (their other entries are never read): most of the struct's bytes, written at every op. */
static void tensor_init(ct_tensor *t) {
  t->storage = NULL;
  t->offset = 0;
  t->ndim = 0;
  t->refs = 1;
  t->dtype = CT_F32;
  t->requires_grad = false;
  t->grad = NULL;
  t->grad_fn = NULL;
  t->hook = 0;
  t->edges = 0;
  t->view = false;
  t->in_block = false;
  t->view_history = 0;
  mem.tensors++;
}

static ct_tensor *tensor_struct(ct_err *err) {
  ct_tensor *t = ct_malloc(sizeof *t, err);
  if (t) tensor_init(t);
  return t;
}

/* A new tensor with its own storage of nbytes (as one block when small). */
static ct_tensor *tensor_with_storage(size_t nbytes, ct_err *err) {
  ct_tensor *t;
  if (nbytes <= BLOCK_MAX_BYTES) {
    if ((t = ct_malloc(block_size(nbytes), err)) == NULL) return NULL;
    tensor_init(t);
    ct_storage *s = (ct_storage *)((char *)t + TENSOR_SPAN);
    s->data = (char *)s + storage_head(nbytes);
    s->nbytes = nbytes;
    s->refs = 1;
    s->version = 0;
    s->history = 0;
    s->block = s->base = t;
    t->storage = s;
    t->in_block = true;
    return t;
  }
  if ((t = tensor_struct(err)) == NULL) return NULL;
  if ((t->storage = storage_new(nbytes, err)) == NULL) {
    mem.tensors--;
    ct_free(t, sizeof *t);
    return NULL;
  }
  t->storage->base = t;
  return t;
}

/* ---------------- size arithmetic ---------------- */

int64_t ct_shape_numel(int ndim, const int64_t *shape, ct_err *err) {
  int64_t n = 1, nonzero = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return ct_fail(err, "size %lld of dim %d is negative", (long long)shape[i], i + 1), -1;
    /* zeros skipped: a sub-product of an empty shape must fit too (flatten, reshape) */
    if (shape[i] > 0 && __builtin_mul_overflow(nonzero, shape[i], &nonzero)) {
      char buf[96];
      return ct_fail(err, "sizes overflow: shape %s has more than 2^63-1 elements%s",
                     ct_shape_str(buf, ndim, shape), n ? "" : " (not counting its zero sizes)"),
             -1;
    }
    n = shape[i] ? n : 0;
  }
  return n ? nonzero : 0;
}

int ct_check_view(const ct_storage *s, ct_dtype dt, int ndim, const int64_t *shape, const int64_t *stride,
                  int64_t offset, ct_err *err) {
  if (ndim < 0 || ndim > CT_MAXDIM)
    return ct_fail(err, "at most %d dimensions are supported, got %d", CT_MAXDIM, ndim);
  int64_t n = ct_shape_numel(ndim, shape, err);
  if (n < 0) return 0;
  char buf[96];
  if (offset < 0 || offset > INT64_MAX / (int64_t)ct_dtype_size(dt))
    return ct_fail(err, "view of shape %s at offset %lld lies outside its storage",
                   ct_shape_str(buf, ndim, shape), (long long)offset);
  if (n == 0) return 1; /* addresses nothing */
  int64_t lo = offset, hi = offset, span, have = (int64_t)(s->nbytes / ct_dtype_size(dt));
  bool over = false;
  for (int i = 0; i < ndim && !over; i++)
    over = __builtin_mul_overflow(shape[i] - 1, stride[i], &span) ||
        (span < 0 ? __builtin_add_overflow(lo, span, &lo) : __builtin_add_overflow(hi, span, &hi));
  if (over || lo < 0 || hi >= have) {
    char sbuf[96];
    return ct_fail(err,
                   "view of shape %s with strides %s at offset %lld reaches outside its storage "
                   "of %lld elements",
                   ct_shape_str(buf, ndim, shape), ct_shape_str(sbuf, ndim, stride), (long long)offset,
                   (long long)have);
  }
  return 1;
}

ct_tensor *ct_tensor_new(ct_dtype dt, int ndim, const int64_t *shape, ct_err *err) {
  if (ndim < 0 || ndim > CT_MAXDIM)
    return ct_fail(err, "at most %d dimensions are supported, got %d", CT_MAXDIM, ndim), NULL;
  int64_t n = ct_shape_numel(ndim, shape, err), bytes;
  if (n < 0) return NULL;
  if (__builtin_mul_overflow(n, (int64_t)ct_dtype_size(dt), &bytes)) {
    char buf[96];
    return ct_fail(err, "sizes overflow: shape %s of %s needs more than 2^63-1 bytes",
                   ct_shape_str(buf, ndim, shape), ct_dtype_name(dt)),
           NULL;
  }
  ct_tensor *t = tensor_with_storage((size_t)bytes, err);
  if (t == NULL) return NULL;
  t->dtype = dt;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  ct_contiguous_strides(ndim, shape, t->stride);
  return t;
}

ct_tensor *ct_tensor_zeros(ct_dtype dt, int ndim, const int64_t *shape, ct_err *err) {
  ct_tensor *t = ct_tensor_new(dt, ndim, shape, err);
  if (t) memset(t->storage->data, 0, t->storage->nbytes);
  return t;
}

static void fill_contig(char *p, ct_dtype dt, int64_t n, double v) {
  if (dt == CT_F32) {
    float f = (float)v, *q = (float *)p;
    for (int64_t i = 0; i < n; i++) q[i] = f;
  } else if (dt == CT_F64) {
    double *q = (double *)p;
    for (int64_t i = 0; i < n; i++) q[i] = v;
  } else {
    int64_t k = ct_i64_of(v), *q = (int64_t *)p;
    for (int64_t i = 0; i < n; i++) q[i] = k;
  }
}

ct_tensor *ct_tensor_full(ct_dtype dt, int ndim, const int64_t *shape, double v, ct_err *err) {
  ct_tensor *t = ct_tensor_new(dt, ndim, shape, err);
  if (t) fill_contig(t->storage->data, dt, ct_numel(t), v);
  return t;
}

ct_tensor *ct_tensor_full_i64(int ndim, const int64_t *shape, int64_t k, ct_err *err) {
  ct_tensor *t = ct_tensor_new(CT_I64, ndim, shape, err);
  if (t == NULL) return NULL;
  int64_t *q = (int64_t *)t->storage->data, n = ct_numel(t);
  for (int64_t i = 0; i < n; i++) q[i] = k;
  return t;
}

ct_tensor *ct_tensor_scalar(ct_dtype dt, double v, ct_err *err) {
  return ct_tensor_full(dt, 0, NULL, v, err);
}

ct_tensor *ct_tensor_alias(ct_tensor *src, ct_err *err) {
  ct_tensor *t = tensor_struct(err);
  if (t == NULL) return NULL;
  t->storage = src->storage;
  t->storage->refs++;
  t->dtype = src->dtype;
  t->ndim = src->ndim;
  t->offset = src->offset;
  memcpy(t->shape, src->shape, sizeof t->shape);
  memcpy(t->stride, src->stride, sizeof t->stride);
  return t;
}

void ct_tensor_release(ct_tensor *t) {
  if (t == NULL || --t->refs > 0) return;
  ct_tensor_release(t->grad);
  if ((t->grad_fn || t->hook) && ct_autograd_release) ct_autograd_release(t);
  mem.tensors--;
  ct_storage *s = t->storage;
  if (s && s->base == t) s->base = NULL;
  if (t->in_block) { /* the home block frees t too, unless a view still holds it */
    ct_storage *home = home_storage(t);
    if (s != home) storage_release(s);
    storage_release(home);
  } else {
    storage_release(s);
    ct_free(t, sizeof *t);
  }
}

int ct_tensor_set_data(ct_tensor *t, ct_tensor *src, ct_err *err) {
  if (t->grad_fn != NULL)
    return ct_fail(err, "only a leaf tensor's data can be replaced (this one is the result of an op)");
  /* t holds its home block (while in_block) and its current storage when that is another */
  ct_storage *old = t->storage, *s = src->storage, *home = t->in_block ? home_storage(t) : NULL;
  if (s != home) s->refs++;
  if (old->base == t) old->base = NULL;
  if (s->base == src) s->base = t;
  if (s->version <= old->version) s->version = old->version + 1;
  if (old != home) storage_release(old);
  t->storage = s;
  t->dtype = src->dtype;
  t->ndim = src->ndim;
  t->offset = src->offset;
  memcpy(t->shape, src->shape, sizeof t->shape);
  memcpy(t->stride, src->stride, sizeof t->stride);
  return 1;
}

static double load(const char *p, ct_dtype dt) {
  if (dt == CT_F32) return *(const float *)p;
  if (dt == CT_F64) return *(const double *)p;
  return (double)*(const int64_t *)p;
}

static void store(char *p, ct_dtype dt, double v) {
  if (dt == CT_F32) *(float *)p = (float)v;
  else if (dt == CT_F64) *(double *)p = v;
  else *(int64_t *)p = ct_i64_of(v);
}

static char *element(const ct_tensor *t, const int64_t *idx) {
  int64_t off = t->offset;
  for (int i = 0; i < t->ndim; i++) off += idx[i] * t->stride[i];
  return (char *)t->storage->data + (size_t)off * ct_dtype_size(t->dtype);
}

double ct_get_at(const ct_tensor *t, const int64_t *idx) { return load(element(t, idx), t->dtype); }

void ct_set_at(ct_tensor *t, const int64_t *idx, double v) {
  store(element(t, idx), t->dtype, v);
  ct_bump(t);
}

int64_t ct_get_at_i64(const ct_tensor *t, const int64_t *idx) {
  if (t->dtype != CT_I64) return ct_i64_of(ct_get_at(t, idx));
  return *(const int64_t *)element(t, idx);
}

void ct_set_at_i64(ct_tensor *t, const int64_t *idx, int64_t k) {
  if (t->dtype != CT_I64) {
    ct_set_at(t, idx, (double)k);
    return;
  }
  *(int64_t *)element(t, idx) = k;
  ct_bump(t);
}

double ct_get_flat(const ct_tensor *t, int64_t i) {
  int64_t idx[CT_MAXDIM];
  for (int d = t->ndim - 1; d >= 0; d--) {
    idx[d] = t->shape[d] ? i % t->shape[d] : 0;
    i = t->shape[d] ? i / t->shape[d] : 0;
  }
  return ct_get_at(t, idx);
}

/* ---------------- strided iteration ---------------- */

void ct_iterate(int nops, char **base, const size_t *elsize, int ndim, const int64_t *shape,
                int64_t (*strides)[CT_MAXDIM], ct_loop_fn fn, void *ctx) {
  int64_t sh[CT_MAXDIM], st[4][CT_MAXDIM];
  int nd = 0;
  /* drop size-1 dims, then merge a dim into the next when every operand allows it */
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 0) return;
    if (shape[d] == 1) continue;
    if (nd > 0) {
      bool merge = true;
      for (int k = 0; k < nops; k++)
        if (st[k][nd - 1] != strides[k][d] * shape[d]) merge = false;
      if (merge) {
        sh[nd - 1] *= shape[d];
        for (int k = 0; k < nops; k++) st[k][nd - 1] = strides[k][d];
        continue;
      }
    }
    sh[nd] = shape[d];
    for (int k = 0; k < nops; k++) st[k][nd] = strides[k][d];
    nd++;
  }
  int64_t inner_s[4];
  char *p[4];
  if (nd == 0) { /* a single element */
    for (int k = 0; k < nops; k++) {
      p[k] = base[k];
      inner_s[k] = 0;
    }
    fn(p, inner_s, 1, ctx);
    return;
  }
  for (int k = 0; k < nops; k++) inner_s[k] = st[k][nd - 1];
  int64_t n = sh[nd - 1], idx[CT_MAXDIM] = {0};
  for (int k = 0; k < nops; k++) p[k] = base[k];
  for (;;) {
    fn(p, inner_s, n, ctx);
    int d = nd - 2;
    for (; d >= 0; d--) {
      if (++idx[d] < sh[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return;
    for (int k = 0; k < nops; k++) {
      int64_t off = 0;
      for (int j = 0; j < nd - 1; j++) off += idx[j] * st[k][j];
      p[k] = base[k] + off * (int64_t)elsize[k];
    }
  }
}

/* ---------------- copies ---------------- */

typedef struct {
  ct_dtype d, s;
  size_t dsz, ssz;
} copy_ctx;

static void copy_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  copy_ctx *c = vctx;
  if (c->d == c->s && s[0] == 1 && s[1] == 1) {
    memcpy(p[0], p[1], (size_t)n * c->dsz);
    return;
  }
  if (c->d == CT_F32 && c->s == CT_F32) {
    float *d = (float *)p[0];
    const float *x = (const float *)p[1];
    for (int64_t i = 0; i < n; i++) d[i * s[0]] = x[i * s[1]];
    return;
  }
  if (c->d == CT_I64 && c->s == CT_I64) { /* exact: never through double */
    int64_t *d = (int64_t *)p[0];
    const int64_t *x = (const int64_t *)p[1];
    for (int64_t i = 0; i < n; i++) d[i * s[0]] = x[i * s[1]];
    return;
  }
  for (int64_t i = 0; i < n; i++)
    store(p[0] + (size_t)(i * s[0]) * c->dsz, c->d, load(p[1] + (size_t)(i * s[1]) * c->ssz, c->s));
}

void ct_copy_into(ct_tensor *dst, const ct_tensor *src) {
  copy_ctx c = {dst->dtype, src->dtype, ct_dtype_size(dst->dtype), ct_dtype_size(src->dtype)};
  int64_t st[2][CT_MAXDIM];
  char *base[2] = {ct_data(dst), ct_data(src)};
  int64_t sshape[CT_MAXDIM];
  /* src may have a different shape with the same numel (reshape-copy): walk dst's
   * shape over a contiguous src, or src's own geometry when shapes match */
  if (ct_same_shape(dst, src)) {
    memcpy(st[0], dst->stride, sizeof st[0]);
    memcpy(st[1], src->stride, sizeof st[1]);
    memcpy(sshape, dst->shape, sizeof sshape);
    ct_iterate(2, base, (size_t[]){c.dsz, c.ssz}, dst->ndim, sshape, st, copy_loop, &c);
  } else {
    /* numel equal, src contiguous required by callers */
    memcpy(st[0], dst->stride, sizeof st[0]);
    ct_contiguous_strides(dst->ndim, dst->shape, st[1]);
    ct_iterate(2, base, (size_t[]){c.dsz, c.ssz}, dst->ndim, dst->shape, st, copy_loop, &c);
  }
  ct_bump(dst);
}

ct_tensor *ct_contig(ct_tensor *t, bool always, ct_err *err) {
  if (!always && ct_is_contiguous(t)) {
    ct_tensor_retain(t);
    return t;
  }
  ct_tensor *c = ct_tensor_new(t->dtype, t->ndim, t->shape, err);
  if (c) ct_copy_into(c, t);
  return c;
}

/* ---------------- random numbers ----------------
 * splitmix64 over a counter: portable, seedable, and the same sequence everywhere. */

static uint64_t rng_state = 0x853c49e6748fea9bULL;

void ct_manual_seed(uint64_t seed) { rng_state = seed * 0x9E3779B97F4A7C15ULL + 0x853c49e6748fea9bULL; }

uint64_t ct_rng_next(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double ct_rng_uniform(void) { return (double)(ct_rng_next() >> 11) * 0x1.0p-53; }

double ct_rng_normal(void) { /* Box-Muller, one value per call: simple and reproducible */
  double u1 = ct_rng_uniform(), u2 = ct_rng_uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void fill_random(ct_tensor *t, double a, double b, bool normal) {
  int64_t n = ct_numel(t);
  int64_t idx[CT_MAXDIM] = {0};
  for (int64_t i = 0; i < n; i++) {
    double v = normal ? a + b * ct_rng_normal() : a + (b - a) * ct_rng_uniform();
    int64_t off = t->offset;
    for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
    store((char *)t->storage->data + (size_t)off * ct_dtype_size(t->dtype), t->dtype, v);
    for (int d = t->ndim - 1; d >= 0; d--) {
      if (++idx[d] < t->shape[d]) break;
      idx[d] = 0;
    }
  }
  ct_bump(t);
}

void ct_fill_uniform(ct_tensor *t, double lo, double hi) { fill_random(t, lo, hi, false); }
void ct_fill_normal(ct_tensor *t, double mean, double std) { fill_random(t, mean, std, true); }
