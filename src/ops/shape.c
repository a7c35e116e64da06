/* crater ops: views (share storage), copies between geometries, joining and indexing
 * (cat, gather/scatter_add, index_select/index_add, masked_fill, where), each with its
 * backward beside it.  Views record a node whose backward is the adjoint view. */
#include <math.h>
#include <string.h>

#include "ops.h"

static char sa_[96], sb_[96];
#define SHP(t) ct_shape_str(sa_, (t)->ndim, (t)->shape)
#define SHP2(t) ct_shape_str(sb_, (t)->ndim, (t)->shape)

static int check_dim(int dim, int ndim, ct_err *err) {
  if (dim < 0 || dim >= (ndim ? ndim : 1))
    return ct_fail(err, "dimension %d out of range (the tensor has %d dims)", dim + 1, ndim);
  return 1;
}

/* A new view of x with the given geometry, refused when it reaches outside x's storage
 * (every view op comes here: the last line of defence against a size that overflowed). */
static ct_tensor *make_view(ct_tensor *x, int ndim, const int64_t *shape, const int64_t *stride,
                            int64_t offset, ct_err *err) {
  if (!ct_check_view(x->storage, x->dtype, ndim, shape, stride, offset, err)) return NULL;
  ct_tensor *v = ct_tensor_alias(x, err);
  if (v == NULL) return NULL;
  v->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    v->shape[i] = shape[i];
    v->stride[i] = stride[i];
  }
  v->offset = offset;
  /* a view of the storage's own tensor (directly or through views) follows its history;
   * a view of a detached alias does not, as in PyTorch */
  v->view = x->view || x->storage->base == x;
  v->view_history = x->storage->history;
  return v;
}

/* Records op for a single-input result, keeping args (or nothing: NULL) in node->arg.
 * On failure releases y. */
static ct_tensor *record1(const ct_op *op, ct_tensor *y, ct_tensor *x, const ct_node_args *args,
                          ct_err *err) {
  if (y == NULL || !ct_needs_grad(1, &x)) return y;
  ct_node *nd = ct_record(op, y, 1, &x, err);
  if (nd == NULL) {
    ct_tensor_release(y);
    return NULL;
  }
  if (args) nd->arg = *args;
  return y;
}

/* each row's graph node (ops.def), defined at the end, after the backward functions */
static const ct_op shape_ops[CT_SHAPE_COUNT], index_ops[CT_INDEX_COUNT];

/* ---- reshape / view: backward reshapes the gradient back ---- */

static int view_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_reshape(g, nd->edge[0].ndim, nd->edge[0].shape, err);
  return gin[0] != NULL;
}

static int infer_shape(const ct_tensor *x, int ndim, const int64_t *in, int64_t *out, ct_err *err) {
  int64_t n = ct_numel(x);
  int infer = -1;
  if (ndim > CT_MAXDIM) return ct_fail(err, "at most %d dimensions are supported", CT_MAXDIM);
  for (int i = 0; i < ndim; i++) {
    if (in[i] == -1) {
      if (infer >= 0) return ct_fail(err, "only one dimension can be inferred (-1)");
      infer = i;
    } else if (in[i] < 0) {
      return ct_fail(err, "invalid size %lld at dim %d", (long long)in[i], i + 1);
    }
    out[i] = in[i] == -1 ? 1 : in[i];
  }
  int64_t known = ct_shape_numel(ndim, out, NULL); /* -1 when the sizes overflow: no match */
  if (infer >= 0) out[infer] = -1;
  if (known < 0) goto bad;
  if (infer >= 0) {
    if (known == 0 || n % known != 0) goto bad;
    out[infer] = n / known;
  } else if (known != n) {
    goto bad;
  }
  return 1;
bad:;
  char want[96];
  return ct_fail(err, "shape %s is invalid for input of size %lld (shape %s)", ct_shape_str(want, ndim, in),
                 (long long)n, SHP(x));
}

ct_tensor *ct_view(ct_tensor *x, int ndim, const int64_t *shape, ct_err *err) {
  int64_t sh[CT_MAXDIM], st[CT_MAXDIM];
  if (!infer_shape(x, ndim, shape, sh, err)) return NULL;
  if (!ct_is_contiguous(x))
    return ct_fail(err, "view of a non-contiguous tensor of shape %s (use reshape or contiguous)", SHP(x)),
           NULL;
  ct_contiguous_strides(ndim, sh, st);
  return record1(&shape_ops[CT_SHAPE_VIEW], make_view(x, ndim, sh, st, x->offset, err), x, NULL, err);
}

ct_tensor *ct_reshape(ct_tensor *x, int ndim, const int64_t *shape, ct_err *err) {
  int64_t sh[CT_MAXDIM];
  if (!infer_shape(x, ndim, shape, sh, err)) return NULL;
  if (ct_is_contiguous(x)) return ct_view(x, ndim, sh, err);
  ct_tensor *c = ct_contiguous(x, err);
  ct_tensor *v = c ? ct_view(c, ndim, sh, err) : NULL;
  ct_tensor_release(c);
  return v;
}

ct_tensor *ct_flatten(ct_tensor *x, int start, int end, ct_err *err) {
  if (x->ndim == 0) return ct_reshape(x, 1, (int64_t[]){1}, err);
  if (!check_dim(start, x->ndim, err) || !check_dim(end, x->ndim, err)) return NULL;
  if (start > end) return ct_fail(err, "start dim %d comes after end dim %d", start + 1, end + 1), NULL;
  int64_t sh[CT_MAXDIM];
  int n = 0;
  for (int i = 0; i < start; i++) sh[n++] = x->shape[i];
  sh[n++] = ct_shape_numel(end - start + 1, x->shape + start, NULL); /* fits: x's shape passed it */
  for (int i = end + 1; i < x->ndim; i++) sh[n++] = x->shape[i];
  return ct_reshape(x, n, sh, err);
}

ct_tensor *ct_squeeze(ct_tensor *x, int dim, ct_err *err) {
  int64_t sh[CT_MAXDIM], st[CT_MAXDIM];
  int n = 0;
  if (dim >= 0 && !check_dim(dim, x->ndim, err)) return NULL;
  for (int i = 0; i < x->ndim; i++) {
    if (x->shape[i] == 1 && (dim < 0 || dim == i)) continue;
    sh[n] = x->shape[i];
    st[n++] = x->stride[i];
  }
  return record1(&shape_ops[CT_SHAPE_VIEW], make_view(x, n, sh, st, x->offset, err), x, NULL, err);
}

ct_tensor *ct_unsqueeze(ct_tensor *x, int dim, ct_err *err) {
  if (dim < 0 || dim > x->ndim)
    return ct_fail(err, "dimension %d out of range (the tensor has %d dims)", dim + 1, x->ndim), NULL;
  if (x->ndim == CT_MAXDIM) return ct_fail(err, "at most %d dimensions are supported", CT_MAXDIM), NULL;
  int64_t sh[CT_MAXDIM], st[CT_MAXDIM];
  int n = 0;
  for (int i = 0; i <= x->ndim; i++) {
    if (i == dim) {
      sh[n] = 1;
      st[n++] = i < x->ndim ? x->shape[i] * x->stride[i] : 1;
    }
    if (i < x->ndim) {
      sh[n] = x->shape[i];
      st[n++] = x->stride[i];
    }
  }
  return record1(&shape_ops[CT_SHAPE_VIEW], make_view(x, n, sh, st, x->offset, err), x, NULL, err);
}

/* ---- transpose / permute ---- */

static int transpose_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_transpose(g, nd->arg.transpose.d1, nd->arg.transpose.d2, err);
  return gin[0] != NULL;
}

ct_tensor *ct_transpose(ct_tensor *x, int d1, int d2, ct_err *err) {
  if (x->ndim == 0 && d1 == 0 && d2 == 0) return ct_detach(x, err);
  if (!check_dim(d1, x->ndim, err) || !check_dim(d2, x->ndim, err)) return NULL;
  int64_t sh[CT_MAXDIM], st[CT_MAXDIM];
  memcpy(sh, x->shape, sizeof sh);
  memcpy(st, x->stride, sizeof st);
  sh[d1] = x->shape[d2];
  sh[d2] = x->shape[d1];
  st[d1] = x->stride[d2];
  st[d2] = x->stride[d1];
  return record1(&shape_ops[CT_SHAPE_TRANSPOSE], make_view(x, x->ndim, sh, st, x->offset, err), x,
                 &(ct_node_args){.transpose = {d1, d2}}, err);
}

static int permute_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  int inv[CT_MAXDIM];
  for (int i = 0; i < nd->edge[0].ndim; i++) inv[nd->arg.permute.perm[i]] = i;
  gin[0] = ct_permute(g, inv, err);
  return gin[0] != NULL;
}

ct_tensor *ct_permute(ct_tensor *x, const int *dims, ct_err *err) {
  int64_t sh[CT_MAXDIM], st[CT_MAXDIM];
  ct_node_args args;
  bool seen[CT_MAXDIM] = {false};
  for (int i = 0; i < x->ndim; i++) {
    if (!check_dim(dims[i], x->ndim, err)) return NULL;
    if (seen[dims[i]]) return ct_fail(err, "dim %d repeats in the permutation", dims[i] + 1), NULL;
    seen[dims[i]] = true;
    sh[i] = x->shape[dims[i]];
    st[i] = x->stride[dims[i]];
    args.permute.perm[i] = dims[i];
  }
  return record1(&shape_ops[CT_SHAPE_PERMUTE], make_view(x, x->ndim, sh, st, x->offset, err), x, &args, err);
}

/* ---- narrow / select and their adjoint (pad with zeros) ---- */

static int narrow_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_narrow_pad(g, nd->edge[0].ndim, nd->edge[0].shape, nd->arg.dim.dim, nd->arg.dim.index, err);
  return gin[0] != NULL;
}

ct_tensor *ct_narrow(ct_tensor *x, int dim, int64_t start, int64_t len, ct_err *err) {
  if (!check_dim(dim, x->ndim, err)) return NULL;
  if (x->ndim == 0) return ct_fail(err, "cannot narrow a 0-d tensor"), NULL;
  int64_t end;
  if (start >= 0 && len >= 0 && __builtin_add_overflow(start, len, &end))
    return ct_fail(err, "start + length (%llu + %lld) overflows for dim %d of size %lld",
                   (unsigned long long)start + 1, (long long)len, dim + 1, (long long)x->shape[dim]),
           NULL;
  if (start < 0 || len < 0 || end > x->shape[dim])
    return ct_fail(err, "range [%lld, %lld] out of bounds for size %lld of dim %d (shape %s)",
                   (long long)start + 1, (long long)(start + len), (long long)x->shape[dim], dim + 1, SHP(x)),
           NULL;
  int64_t sh[CT_MAXDIM];
  memcpy(sh, x->shape, sizeof sh);
  sh[dim] = len;
  return record1(&shape_ops[CT_SHAPE_NARROW],
                 make_view(x, x->ndim, sh, x->stride, x->offset + start * x->stride[dim], err), x,
                 &(ct_node_args){.dim = {dim, start}}, err);
}

static ct_tensor *select_pad(ct_tensor *g, int ndim, const int64_t *shape, int dim, int64_t index,
                             ct_err *err);

/* A stack view of t at index of dim, without that dim: no reference taken, so it serves only
 * while t lives, as a kernel's destination. */
static ct_tensor slice_at(const ct_tensor *t, int dim, int64_t index) {
  ct_tensor s = *t;
  s.ndim = t->ndim - 1;
  for (int i = dim; i < s.ndim; i++) {
    s.shape[i] = t->shape[i + 1];
    s.stride[i] = t->stride[i + 1];
  }
  s.offset = t->offset + index * t->stride[dim];
  return s;
}

static int select_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  gin[0] = select_pad(g, nd->edge[0].ndim, nd->edge[0].shape, nd->arg.dim.dim, nd->arg.dim.index, err);
  return gin[0] != NULL;
}

/* g added into row index of acc, when that row is one contiguous run laid out as g: x[1],
 * x[2], x[1] of a small problem then make one gradient of x's shape, not three to sum.
 * The checks are ct_add_'s for its plain path, which the row view then takes. */
static bool select_backward_into(ct_node *nd, ct_tensor *g, ct_tensor *acc) {
  if (ct_grad_enabled || nd->arg.dim.dim != 0 || acc->ndim == 0 || g->dtype != acc->dtype ||
      !ct_is_contiguous(g) || g->storage == acc->storage)
    return false;
  ct_tensor row = slice_at(acc, 0, nd->arg.dim.index);
  if (!ct_same_shape(&row, g)) return false;
  ct_err err;
  return ct_add_(&row, g, 1.0, &err);
}
/* the table's select row, with its accumulation in place */
static const ct_op op_select = {"SelectBackward", select_backward, select_backward_into};

/* The adjoint of select: zeros of 'shape' with g written at 'index' of dim (one op, where
 * unsqueeze + narrow_pad made two; x[i] is everywhere in small problems). */
static int select_pad_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_select(g, nd->arg.dim.dim, nd->arg.dim.index, err);
  return gin[0] != NULL;
}
static const ct_op op_select_pad = {"SelectPadBackward", select_pad_backward, NULL};

static ct_tensor *select_pad(ct_tensor *g, int ndim, const int64_t *shape, int dim, int64_t index,
                             ct_err *err) {
  ct_tensor *y = ct_tensor_zeros(g->dtype, ndim, shape, err);
  if (y == NULL) return NULL;
  if (dim == 0 && ct_is_contiguous(g)) { /* row index of the new y is one run, laid out as g */
    size_t es = ct_dtype_size(g->dtype);
    memcpy(ct_data(y) + (size_t)(index * y->stride[0]) * es, ct_data(g), (size_t)ct_numel(g) * es);
  } else {
    ct_tensor slot = slice_at(y, dim, index);
    ct_copy_into(&slot, g);
  }
  return record1(&op_select_pad, y, g, &(ct_node_args){.dim = {dim, index}}, err);
}

ct_tensor *ct_select(ct_tensor *x, int dim, int64_t index, ct_err *err) {
  if (x->ndim == 0) return ct_fail(err, "cannot index a 0-d tensor"), NULL;
  if (!check_dim(dim, x->ndim, err)) return NULL;
  if (index < 0 || index >= x->shape[dim])
    return ct_fail(err, "index %lld out of range for size %lld of dim %d (shape %s)", (long long)index + 1,
                   (long long)x->shape[dim], dim + 1, SHP(x)),
           NULL;
  int64_t sh[CT_MAXDIM], st[CT_MAXDIM];
  int n = 0;
  for (int i = 0; i < x->ndim; i++)
    if (i != dim) {
      sh[n] = x->shape[i];
      st[n++] = x->stride[i];
    }
  return record1(&op_select, make_view(x, n, sh, st, x->offset + index * x->stride[dim], err), x,
                 &(ct_node_args){.dim = {dim, index}}, err);
}

/* ---- as_strided: a view given by its geometry (nd->arg.view: offset, shape, strides) in
 * the storage of a contiguous tensor.  A view whose base changed in place gets one as its
 * new grad_fn (ct_view_refresh), and CopySlices' backward takes the written region with it;
 * the pad is its adjoint.  Geometries never overlap (no expanded ones come here). ---- */

/* x as a contiguous tensor whose storage starts at its first element (a new reference) */
static ct_tensor *storage_shaped(ct_tensor *x, ct_err *err) {
  if (ct_is_contiguous(x) && x->offset == 0) {
    ct_tensor_retain(x);
    return x;
  }
  return ct_clone(x, err);
}

static int as_strided_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_as_strided_pad(g, nd->edge[0].ndim, nd->edge[0].shape, &nd->arg.view, err);
  return gin[0] != NULL;
}
const ct_op ct_op_as_strided = {"AsStridedBackward", as_strided_backward, NULL};

ct_tensor *ct_as_strided(ct_tensor *x, const ct_geometry *geom, ct_err *err) {
  ct_tensor *base = storage_shaped(x, err);
  if (base == NULL) return NULL;
  ct_tensor *v = make_view(base, geom->ndim, geom->shape, geom->stride, geom->offset, err);
  if (v && ct_needs_grad(1, &base)) {
    ct_node *n = ct_record(&ct_op_as_strided, v, 1, &base, err);
    if (n) n->arg.view = *geom;
    else {
      ct_tensor_release(v);
      v = NULL;
    }
  }
  ct_tensor_release(base);
  return v;
}

static int as_strided_pad_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_as_strided(g, &nd->arg.view, err);
  return gin[0] != NULL;
}
static const ct_op op_as_strided_pad = {"AsStridedPadBackward", as_strided_pad_backward, NULL};

ct_tensor *ct_as_strided_pad(ct_tensor *g, int ndim, const int64_t *shape, const ct_geometry *geom,
                             ct_err *err) {
  ct_tensor *y = ct_tensor_zeros(g->dtype, ndim, shape, err);
  if (y == NULL) return NULL;
  ct_tensor slot = *y; /* a stack view of the region: no allocation, no refcount change */
  slot.ndim = geom->ndim;
  for (int k = 0; k < slot.ndim; k++) {
    slot.shape[k] = geom->shape[k];
    slot.stride[k] = geom->stride[k];
  }
  slot.offset = geom->offset;
  ct_copy_into(&slot, g);
  if (!ct_needs_grad(1, &g)) return y;
  ct_node *n = ct_record(&op_as_strided_pad, y, 1, &g, err);
  if (n == NULL) {
    ct_tensor_release(y);
    return NULL;
  }
  n->arg.view = *geom;
  return y;
}

static int narrow_pad_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_narrow(g, nd->arg.dim.dim, nd->arg.dim.index, nd->edge[0].shape[nd->arg.dim.dim], err);
  return gin[0] != NULL;
}
static const ct_op op_narrow_pad = {"NarrowPadBackward", narrow_pad_backward, NULL};

ct_tensor *ct_narrow_pad(ct_tensor *x, int ndim, const int64_t *shape, int dim, int64_t start, ct_err *err) {
  ct_tensor *y = ct_tensor_zeros(x->dtype, ndim, shape, err);
  if (y == NULL) return NULL;
  ct_tensor slot = *y; /* a stack view of the slice: no allocation, no refcount change */
  slot.shape[dim] = x->shape[dim];
  slot.offset = start * y->stride[dim];
  ct_copy_into(&slot, x);
  return record1(&op_narrow_pad, y, x, &(ct_node_args){.dim = {dim, start}}, err);
}

/* ---- expand and its adjoint ---- */

static int expand_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_sum_to(g, nd->edge[0].ndim, nd->edge[0].shape, err);
  return gin[0] != NULL;
}

ct_tensor *ct_expand(ct_tensor *x, int ndim, const int64_t *shape, ct_err *err) {
  if (ndim < x->ndim || ndim > CT_MAXDIM) {
    char want[96];
    return ct_fail(err, "cannot expand shape %s to %s", SHP(x), ct_shape_str(want, ndim, shape)), NULL;
  }
  int64_t sh[CT_MAXDIM], st[CT_MAXDIM];
  for (int i = 0; i < ndim; i++) {
    int ix = x->ndim - ndim + i;
    int64_t have = ix >= 0 ? x->shape[ix] : 1;
    int64_t want = shape[i] == -1 ? have : shape[i];
    if (want < 0) {
      char w[96];
      return ct_fail(err, "cannot expand shape %s to %s (size %lld at dim %d is negative)", SHP(x),
                     ct_shape_str(w, ndim, shape), (long long)want, i + 1),
             NULL;
    }
    if (ix < 0 && shape[i] == -1) {
      char w[96];
      return ct_fail(err, "cannot expand shape %s to %s (-1 in a new leading dim)", SHP(x),
                     ct_shape_str(w, ndim, shape)),
             NULL;
    }
    if (have != want && have != 1) {
      char w[96];
      return ct_fail(err, "cannot expand shape %s to %s (size %lld at dim %d is not 1)", SHP(x),
                     ct_shape_str(w, ndim, shape), (long long)have, i + 1),
             NULL;
    }
    sh[i] = want;
    st[i] = (ix < 0 || (have == 1 && want != 1)) ? 0 : x->stride[ix];
  }
  return record1(&shape_ops[CT_SHAPE_EXPAND], make_view(x, ndim, sh, st, x->offset, err), x, NULL, err);
}

static void accumulate_loop(char **p, const int64_t *s, int64_t n, void *ctx) {
  ct_dtype dt = *(ct_dtype *)ctx;
  if (dt == CT_F32) {
    float *o = (float *)p[0];
    const float *a = (const float *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s[0]] += a[i * s[1]];
  } else if (dt == CT_F64) {
    double *o = (double *)p[0];
    const double *a = (const double *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s[0]] += a[i * s[1]];
  } else {
    int64_t *o = (int64_t *)p[0];
    const int64_t *a = (const int64_t *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s[0]] += a[i * s[1]];
  }
}

static int sum_to_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_expand(g, nd->edge[0].ndim, nd->edge[0].shape, err);
  return gin[0] != NULL;
}
static const ct_op op_sum_to = {"SumToBackward", sum_to_backward, NULL};

ct_tensor *ct_sum_to(ct_tensor *x, int ndim, const int64_t *shape, ct_err *err) {
  ct_tensor *y = ct_tensor_zeros(x->dtype, ndim, shape, err);
  if (y == NULL) return NULL;
  int64_t st[2][CT_MAXDIM];
  for (int i = 0; i < x->ndim; i++) {
    int iy = ndim - x->ndim + i;
    if (iy >= 0 && y->shape[iy] != 1 && y->shape[iy] != x->shape[i]) {
      char w[96];
      ct_tensor_release(y);
      return ct_fail(err, "cannot sum shape %s to %s", SHP(x), ct_shape_str(w, ndim, shape)), NULL;
    }
    st[0][i] = (iy < 0 || (y->shape[iy] == 1 && x->shape[i] != 1)) ? 0 : y->stride[iy];
    st[1][i] = x->stride[i];
  }
  char *base[2] = {ct_data(y), ct_data(x)};
  ct_dtype dt = x->dtype;
  size_t es = ct_dtype_size(dt);
  ct_iterate(2, base, (size_t[]){es, es}, x->ndim, x->shape, st, accumulate_loop, &dt);
  return record1(&op_sum_to, y, x, NULL, err);
}

/* ---- copies: contiguous, clone, detach, to ---- */

static int clone_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor_retain(g);
  gin[0] = g;
  return 1;
}

ct_tensor *ct_clone(ct_tensor *x, ct_err *err) {
  ct_tensor *y = ct_tensor_new(x->dtype, x->ndim, x->shape, err);
  if (y) ct_copy_into(y, x);
  return record1(&shape_ops[CT_SHAPE_CLONE], y, x, NULL, err);
}

ct_tensor *ct_contiguous(ct_tensor *x, ct_err *err) {
  if (ct_is_contiguous(x)) {
    ct_tensor_retain(x);
    return x;
  }
  return ct_clone(x, err);
}

ct_tensor *ct_detach(ct_tensor *x, ct_err *err) { return ct_tensor_alias(x, err); }

static int to_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_to(g, nd->edge[0].dtype, err);
  return gin[0] != NULL;
}

ct_tensor *ct_to(ct_tensor *x, ct_dtype dt, ct_err *err) {
  if (x->dtype == dt) {
    ct_tensor_retain(x);
    return x;
  }
  ct_tensor *y = ct_tensor_new(dt, x->ndim, x->shape, err);
  if (y) ct_copy_into(y, x);
  if (dt == CT_I64) return y; /* integers carry no gradient */
  return record1(&shape_ops[CT_SHAPE_TO], y, x, NULL, err);
}

/* ---- cat / stack ---- */

static int cat_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  int dim = nd->arg.dim.dim;
  int64_t at = 0;
  for (int k = 0; k < nd->nin; k++) {
    int64_t len = nd->edge[k].shape[dim];
    if (nd->edge[k].needs && (gin[k] = ct_narrow(g, dim, at, len, err)) == NULL) return 0;
    at += len;
  }
  return 1;
}

ct_tensor *ct_cat(int n, ct_tensor **xs, int dim, ct_err *err) {
  if (n == 0) return ct_fail(err, "expected a non-empty list of tensors"), NULL;
  ct_tensor *x0 = xs[0];
  if (x0->ndim == 0)
    return ct_fail(err, "zero-dimensional tensor (at position 1) cannot be concatenated"), NULL;
  if (!check_dim(dim, x0->ndim, err)) return NULL;
  int64_t sh[CT_MAXDIM], sum;
  memcpy(sh, x0->shape, sizeof sh);
  sh[dim] = 0;
  ct_dtype dt = x0->dtype;
  for (int k = 0; k < n; k++) {
    ct_tensor *x = xs[k];
    bool ok = x->ndim == x0->ndim;
    for (int i = 0; ok && i < x->ndim; i++)
      if (i != dim && x->shape[i] != x0->shape[i]) ok = false;
    if (!ok)
      return ct_fail(err,
                     "sizes of tensors must match except in dim %d: shapes %s (position 1) "
                     "and %s (position %d)",
                     dim + 1, SHP(x0), SHP2(x), k + 1),
             NULL;
    if (__builtin_add_overflow(sh[dim], x->shape[dim], &sum))
      return ct_fail(err,
                     "sizes overflow: the sizes along dim %d pass 2^63-1 at position %d "
                     "(%lld so far + %lld)",
                     dim + 1, k + 1, (long long)sh[dim], (long long)x->shape[dim]),
             NULL;
    sh[dim] = sum;
    dt = ct_promote(dt, x->dtype);
  }
  ct_tensor *y = ct_tensor_new(dt, x0->ndim, sh, err);
  if (y == NULL) return NULL;
  int64_t at = 0;
  for (int k = 0; k < n; k++) {
    ct_tensor slot = *y;
    slot.shape[dim] = xs[k]->shape[dim];
    slot.offset = at * y->stride[dim];
    ct_copy_into(&slot, xs[k]);
    at += xs[k]->shape[dim];
  }
  if (ct_needs_grad(n, xs)) {
    ct_node *nd = ct_record(&shape_ops[CT_SHAPE_CAT], y, n, xs, err);
    if (nd == NULL) {
      ct_tensor_release(y);
      return NULL;
    }
    nd->arg.dim.dim = dim;
  }
  return y;
}

ct_tensor *ct_stack(int n, ct_tensor **xs, int dim, ct_err *err) {
  if (n == 0) return ct_fail(err, "expected a non-empty list of tensors"), NULL;
  for (int k = 1; k < n; k++)
    if (!ct_same_shape(xs[k], xs[0]))
      return ct_fail(err,
                     "stack expects each tensor to be equal size, but got %s at position 1 "
                     "and %s at position %d",
                     SHP(xs[0]), SHP2(xs[k]), k + 1),
             NULL;
  if (dim < 0 || dim > xs[0]->ndim)
    return ct_fail(err, "dimension %d out of range (the result has %d dims)", dim + 1, xs[0]->ndim + 1), NULL;
  ct_tensor *us[n];
  int m = 0;
  ct_tensor *y = NULL;
  for (; m < n; m++)
    if ((us[m] = ct_unsqueeze(xs[m], dim, err)) == NULL) goto done;
  y = ct_cat(n, us, dim, err);
done:
  for (int k = 0; k < m; k++) ct_tensor_release(us[k]);
  return y;
}

/* ---- gather / scatter_add ---- */

/* Checks an index tensor: int64, values in [0, size). */
static int check_index(const ct_tensor *idx, int64_t size, const char *what, ct_err *err) {
  if (idx->dtype != CT_I64)
    return ct_fail(err, "%s must be an int64 tensor, got %s", what, ct_dtype_name(idx->dtype));
  int64_t n = ct_numel(idx);
  for (int64_t i = 0; i < n; i++) {
    int64_t v = (int64_t)ct_get_flat(idx, i);
    if (v < 0 || v >= size)
      return ct_fail(err, "%s value %lld out of range for size %lld", what, (long long)v + 1,
                     (long long)size);
  }
  return 1;
}

/* Walks every element of idx (shape of idx), calling visit with the offsets (in
 * elements) into a (indexed along dim by idx's value) and into b (at the same
 * coordinates as idx). */
typedef void (*visit_fn)(char *a, char *b, ct_dtype dt, int add);
static void index_walk(ct_tensor *idx, int dim, ct_tensor *a, ct_tensor *b, int add) {
  int64_t n = ct_numel(idx), coord[CT_MAXDIM] = {0};
  size_t es = ct_dtype_size(a->dtype);
  for (int64_t i = 0; i < n; i++) {
    int64_t oi = idx->offset, oa = a->offset, ob = b->offset;
    for (int d = 0; d < idx->ndim; d++) {
      oi += coord[d] * idx->stride[d];
      ob += coord[d] * b->stride[d];
      if (d != dim) oa += coord[d] * a->stride[d];
    }
    int64_t v = ((int64_t *)idx->storage->data)[oi];
    oa += v * a->stride[dim];
    char *pa = (char *)a->storage->data + (size_t)oa * es, *pb = (char *)b->storage->data + (size_t)ob * es;
    if (add == 0) memcpy(pb, pa, es); /* gather: b <- a */
    else if (a->dtype == CT_F32) *(float *)pa += *(float *)pb; /* scatter_add: a += b */
    else if (a->dtype == CT_F64) *(double *)pa += *(double *)pb;
    else *(int64_t *)pa += *(int64_t *)pb;
    for (int d = idx->ndim - 1; d >= 0; d--) {
      if (++coord[d] < idx->shape[d]) break;
      coord[d] = 0;
    }
  }
}

static int gather_check(ct_tensor *x, int dim, ct_tensor *index, const ct_tensor *other, ct_err *err) {
  if (!check_dim(dim, x->ndim, err)) return 0;
  if (index->ndim != x->ndim)
    return ct_fail(err, "index %s and input %s must have the same number of dims", SHP(index), SHP2(x));
  for (int d = 0; d < x->ndim; d++)
    if (d != dim && index->shape[d] > x->shape[d])
      return ct_fail(err, "index %s is larger than input %s at dim %d", SHP(index), SHP2(x), d + 1);
  if (other && !ct_same_shape(other, index))
    return ct_fail(err, "src %s and index %s must have the same shape", SHP(other), SHP2(index));
  return check_index(index, x->shape[dim], "index", err);
}

static int gather_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *idx = ct_saved(nd, 0, err);
  if (idx == NULL) return 0;
  ct_tensor *z = ct_tensor_zeros(g->dtype, nd->edge[0].ndim, nd->edge[0].shape, err);
  gin[0] = z ? ct_scatter_add(z, nd->arg.dim.dim, idx, g, err) : NULL;
  ct_tensor_release(z);
  ct_tensor_release(idx);
  return gin[0] != NULL;
}

ct_tensor *ct_gather(ct_tensor *x, int dim, ct_tensor *index, ct_err *err) {
  if (!gather_check(x, dim, index, NULL, err)) return NULL;
  ct_tensor *y = ct_tensor_new(x->dtype, index->ndim, index->shape, err);
  if (y == NULL) return NULL;
  index_walk(index, dim, x, y, 0);
  if (ct_needs_grad(1, &x)) {
    ct_node *nd = ct_record(&index_ops[CT_INDEX_GATHER], y, 1, &x, err);
    if (nd == NULL || !ct_save(nd, index, false, err)) {
      ct_tensor_release(y);
      return NULL;
    }
    nd->arg.dim.dim = dim;
  }
  return y;
}

static int scatter_add_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  if (nd->edge[0].needs) {
    ct_tensor_retain(g);
    gin[0] = g;
  }
  if (nd->edge[1].needs) {
    ct_tensor *idx = ct_saved(nd, 0, err);
    if (idx == NULL) return 0;
    gin[1] = ct_gather(g, nd->arg.dim.dim, idx, err);
    ct_tensor_release(idx);
    if (gin[1] == NULL) return 0;
  }
  return 1;
}

ct_tensor *ct_scatter_add(ct_tensor *base, int dim, ct_tensor *index, ct_tensor *src, ct_err *err) {
  if (!gather_check(base, dim, index, src, err)) return NULL;
  if (src->dtype != base->dtype)
    return ct_fail(err, "src dtype %s differs from self dtype %s", ct_dtype_name(src->dtype),
                   ct_dtype_name(base->dtype)),
           NULL;
  ct_tensor *y = ct_tensor_new(base->dtype, base->ndim, base->shape, err);
  if (y == NULL) return NULL;
  ct_copy_into(y, base);
  index_walk(index, dim, y, src, 1);
  ct_tensor *in[2] = {base, src};
  if (ct_needs_grad(2, in)) {
    ct_node *nd = ct_record(&index_ops[CT_INDEX_SCATTER_ADD], y, 2, in, err);
    if (nd == NULL || !ct_save(nd, index, false, err)) {
      ct_tensor_release(y);
      return NULL;
    }
    nd->arg.dim.dim = dim;
  }
  return y;
}

/* ---- index_select / index_add ---- */

static int index_select_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *idx = ct_saved(nd, 0, err);
  if (idx == NULL) return 0;
  ct_tensor *z = ct_tensor_zeros(g->dtype, nd->edge[0].ndim, nd->edge[0].shape, err);
  gin[0] = z ? ct_index_add(z, nd->arg.dim.dim, idx, g, err) : NULL;
  ct_tensor_release(z);
  ct_tensor_release(idx);
  return gin[0] != NULL;
}

static int index1d_check(ct_tensor *x, int dim, ct_tensor *index, ct_err *err) {
  if (!check_dim(dim, x->ndim, err)) return 0;
  if (index->ndim > 1) return ct_fail(err, "index must be 1-D, got shape %s", SHP(index));
  return check_index(index, x->ndim ? x->shape[dim] : 1, "index", err);
}

ct_tensor *ct_index_select(ct_tensor *x, int dim, ct_tensor *index, ct_err *err) {
  if (!index1d_check(x, dim, index, err)) return NULL;
  int64_t sh[CT_MAXDIM];
  memcpy(sh, x->shape, sizeof sh);
  int64_t n = ct_numel(index);
  if (x->ndim) sh[dim] = n;
  ct_tensor *y = ct_tensor_new(x->dtype, x->ndim, sh, err);
  if (y == NULL) return NULL;
  for (int64_t k = 0; k < n; k++) { /* one (strided) slab copy per index */
    int64_t v = (int64_t)ct_get_flat(index, k);
    ct_tensor src = *x, dst = *y;
    if (x->ndim) {
      src.shape[dim] = dst.shape[dim] = 1;
      src.offset = x->offset + v * x->stride[dim];
      dst.offset = k * y->stride[dim];
    }
    ct_copy_into(&dst, &src);
  }
  if (ct_needs_grad(1, &x)) {
    ct_node *nd = ct_record(&index_ops[CT_INDEX_INDEX_SELECT], y, 1, &x, err);
    if (nd == NULL || !ct_save(nd, index, false, err)) {
      ct_tensor_release(y);
      return NULL;
    }
    nd->arg.dim.dim = dim;
  }
  return y;
}

static int index_add_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  if (nd->edge[0].needs) {
    ct_tensor_retain(g);
    gin[0] = g;
  }
  if (nd->edge[1].needs) {
    ct_tensor *idx = ct_saved(nd, 0, err);
    if (idx == NULL) return 0;
    gin[1] = ct_index_select(g, nd->arg.dim.dim, idx, err);
    ct_tensor_release(idx);
    if (gin[1] == NULL) return 0;
  }
  return 1;
}

ct_tensor *ct_index_add(ct_tensor *base, int dim, ct_tensor *index, ct_tensor *src, ct_err *err) {
  if (!index1d_check(base, dim, index, err)) return NULL;
  int64_t n = ct_numel(index);
  bool ok = src->ndim == base->ndim && src->dtype == base->dtype;
  for (int d = 0; ok && d < base->ndim; d++)
    if (src->shape[d] != (d == dim ? n : base->shape[d])) ok = false;
  if (!ok)
    return ct_fail(err, "source %s does not fit self %s with %lld indices at dim %d", SHP(src), SHP2(base),
                   (long long)n, dim + 1),
           NULL;
  ct_tensor *y = ct_tensor_new(base->dtype, base->ndim, base->shape, err);
  if (y == NULL) return NULL;
  ct_copy_into(y, base);
  ct_dtype dt = y->dtype;
  for (int64_t k = 0; k < n; k++) {
    int64_t v = (int64_t)ct_get_flat(index, k);
    ct_tensor s = *src, d = *y;
    int64_t st[2][CT_MAXDIM];
    s.shape[dim] = d.shape[dim] = 1;
    s.offset = src->offset + k * src->stride[dim];
    d.offset = v * y->stride[dim];
    memcpy(st[0], d.stride, sizeof st[0]);
    memcpy(st[1], s.stride, sizeof st[1]);
    char *b2[2] = {ct_data(&d), ct_data(&s)};
    size_t es = ct_dtype_size(dt);
    ct_iterate(2, b2, (size_t[]){es, es}, d.ndim, d.shape, st, accumulate_loop, &dt);
  }
  ct_tensor *in[2] = {base, src};
  if (ct_needs_grad(2, in)) {
    ct_node *nd = ct_record(&index_ops[CT_INDEX_INDEX_ADD], y, 2, in, err);
    if (nd == NULL || !ct_save(nd, index, false, err)) {
      ct_tensor_release(y);
      return NULL;
    }
    nd->arg.dim.dim = dim;
  }
  return y;
}

/* ---- masked_fill / where ---- */

static int masked_fill_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *m = ct_saved(nd, 0, err);
  if (m == NULL) return 0;
  gin[0] = ct_masked_fill(g, m, 0, err);
  ct_tensor_release(m);
  return gin[0] != NULL;
}

ct_tensor *ct_masked_fill(ct_tensor *x, ct_tensor *mask, double v, ct_err *err) {
  ct_tensor *y = ct_tensor_new(x->dtype, x->ndim, x->shape, err);
  if (y == NULL) return NULL;
  ct_copy_into(y, x);
  bool saved = ct_grad_enabled;
  ct_grad_enabled = false;
  int ok = ct_masked_fill_(y, mask, v, err);
  ct_grad_enabled = saved;
  if (!ok) {
    ct_tensor_release(y);
    return NULL;
  }
  if (ct_needs_grad(1, &x)) {
    ct_node *nd = ct_record(&index_ops[CT_INDEX_MASKED_FILL], y, 1, &x, err);
    if (nd == NULL || !ct_save(nd, mask, false, err)) {
      ct_tensor_release(y);
      return NULL;
    }
  }
  return y;
}

typedef struct {
  ct_dtype dt;
} where_ctx;
static void where_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  size_t es = ct_dtype_size(((where_ctx *)vctx)->dt);
  const int64_t *c = (const int64_t *)p[1];
  for (int64_t i = 0; i < n; i++)
    memcpy(p[0] + (size_t)(i * s[0]) * es,
           c[i * s[1]] ? p[2] + (size_t)(i * s[2]) * es : p[3] + (size_t)(i * s[3]) * es, es);
}

static int where_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *c = ct_saved(nd, 0, err);
  if (c == NULL) return 0;
  ct_tensor *zero = ct_tensor_scalar(g->dtype, 0, err);
  if (zero && nd->edge[1].needs) gin[1] = ct_where(c, g, zero, err);
  if (zero && nd->edge[2].needs) gin[2] = ct_where(c, zero, g, err);
  ct_tensor_release(zero);
  ct_tensor_release(c);
  return (!nd->edge[1].needs || gin[1]) && (!nd->edge[2].needs || gin[2]);
}

static void bstrides(const ct_tensor *t, int ndim, const int64_t *shape, int64_t *st) {
  for (int i = 0; i < ndim; i++) {
    int it = t->ndim - ndim + i;
    st[i] = (it < 0 || (t->shape[it] == 1 && shape[i] != 1)) ? 0 : t->stride[it];
  }
}

ct_tensor *ct_where(ct_tensor *cond, ct_tensor *a, ct_tensor *b, ct_err *err) {
  int n1, n2;
  int64_t s1[CT_MAXDIM], s2[CT_MAXDIM];
  if (!ct_broadcast_shape(a, b, &n1, s1, err)) return NULL;
  ct_tensor shape_ab = *a; /* only its shape is read */
  shape_ab.ndim = n1;
  memcpy(shape_ab.shape, s1, sizeof s1);
  if (!ct_broadcast_shape(cond, &shape_ab, &n2, s2, err)) return NULL;
  ct_dtype dt = ct_promote(a->dtype, b->dtype);
  ct_tensor *aa = ct_to(a, dt, err), *bb = aa ? ct_to(b, dt, err) : NULL, *c = NULL, *y = NULL;
  ct_tensor *zero = bb ? ct_tensor_scalar(cond->dtype, 0, err) : NULL;
  if (zero) c = ct_binary(CT_B_NE, cond, zero, err); /* int64 0/1 */
  if (c) y = ct_tensor_new(dt, n2, s2, err);
  if (y) {
    int64_t st[4][CT_MAXDIM];
    memcpy(st[0], y->stride, sizeof st[0]);
    bstrides(c, n2, s2, st[1]);
    bstrides(aa, n2, s2, st[2]);
    bstrides(bb, n2, s2, st[3]);
    char *base[4] = {ct_data(y), ct_data(c), ct_data(aa), ct_data(bb)};
    where_ctx wc = {dt};
    size_t es = ct_dtype_size(dt);
    ct_iterate(4, base, (size_t[]){es, 8, es, es}, n2, s2, st, where_loop, &wc);
    ct_tensor *in[3] = {NULL, aa, bb};
    if (ct_needs_grad(3, in)) {
      ct_node *nd = ct_record(&index_ops[CT_INDEX_WHERE], y, 3, in, err);
      if (nd == NULL || !ct_save(nd, c, false, err)) {
        ct_tensor_release(y);
        y = NULL;
      }
    }
  }
  ct_tensor_release(zero);
  ct_tensor_release(c);
  ct_tensor_release(aa);
  ct_tensor_release(bb);
  return y;
}

bool ct_allclose(ct_tensor *a, ct_tensor *b, double rtol, double atol, bool equal_nan) {
  int nd;
  int64_t shape[CT_MAXDIM];
  if (!ct_broadcast_shape(a, b, &nd, shape, NULL)) return false;
  ct_tensor ea = *a, eb = *b;
  ea.ndim = eb.ndim = nd;
  memcpy(ea.shape, shape, sizeof shape);
  memcpy(eb.shape, shape, sizeof shape);
  bstrides(a, nd, shape, ea.stride);
  bstrides(b, nd, shape, eb.stride);
  /* A dimension along which both are broadcast repeats the same pairs: one pass of it
   * decides, so a 2^62-long expanded view is compared in the time of its one row. */
  for (int d = 0; d < nd; d++)
    if (ea.stride[d] == 0 && eb.stride[d] == 0 && ea.shape[d] > 0) ea.shape[d] = eb.shape[d] = 1;
  int64_t n = ct_numel(&ea);
  for (int64_t i = 0; i < n; i++) {
    double x = ct_get_flat(&ea, i), y = ct_get_flat(&eb, i);
    if (isnan(x) || isnan(y)) {
      if (equal_nan && isnan(x) && isnan(y)) continue;
      return false;
    }
    if (x == y) continue;
    if (!(fabs(x - y) <= atol + rtol * fabs(y))) return false;
  }
  return true;
}

/* ---- constructors ---- */

ct_tensor *ct_arange(double start, double end, double step, ct_dtype dt, ct_err *err) {
  if (!isfinite(start) || !isfinite(end))
    return ct_fail(err, "unsupported range: %g -> %g (the bounds must be finite)", start, end), NULL;
  if (step == 0 || isnan(step)) return ct_fail(err, "step must be nonzero"), NULL;
  if ((end - start) / step < 0)
    return ct_fail(err, "upper bound and larger bound inconsistent with step sign"), NULL;
  double count = ceil((end - start) / step); /* end - start may overflow to inf: refused here */
  if (!(count < 9e15)) /* beyond 2^53 the elements are no longer distinct doubles */
    return ct_fail(err, "range %g -> %g with step %g has too many elements (%g)", start, end, step, count),
           NULL;
  int64_t n = (int64_t)count;
  ct_tensor *y = ct_tensor_new(dt, 1, &n, err);
  if (y == NULL) return NULL;
  for (int64_t i = 0; i < n; i++) {
    double v = start + (double)i * step;
    if (dt == CT_F32) ((float *)y->storage->data)[i] = (float)v;
    else if (dt == CT_F64) ((double *)y->storage->data)[i] = v;
    else ((int64_t *)y->storage->data)[i] = ct_i64_of(v);
  }
  return y;
}

/* Integer bounds and step: exact over the whole int64 range (the span is counted in uint64). */
ct_tensor *ct_arange_i64(int64_t start, int64_t end, int64_t step, ct_err *err) {
  uint64_t ustep = step > 0 ? (uint64_t)step : 0 - (uint64_t)step;
  if (ustep == 0) return ct_fail(err, "step must be nonzero"), NULL;
  if ((step > 0 && end < start) || (step < 0 && end > start))
    return ct_fail(err, "upper bound and larger bound inconsistent with step sign"), NULL;
  uint64_t span = step > 0 ? (uint64_t)end - (uint64_t)start : (uint64_t)start - (uint64_t)end;
  uint64_t count = span / ustep + (span % ustep != 0);
  if (count > (uint64_t)INT64_MAX)
    return ct_fail(err, "range %lld -> %lld with step %lld has too many elements", (long long)start,
                   (long long)end, (long long)step),
           NULL;
  int64_t n = (int64_t)count;
  ct_tensor *y = ct_tensor_new(CT_I64, 1, &n, err);
  if (y == NULL) return NULL;
  int64_t *q = (int64_t *)y->storage->data;
  for (int64_t i = 0; i < n; i++) q[i] = (int64_t)((uint64_t)start + (uint64_t)i * (uint64_t)step);
  return y;
}

ct_tensor *ct_linspace(double start, double end, int64_t n, ct_dtype dt, ct_err *err) {
  if (n < 0) return ct_fail(err, "number of steps must be non-negative, got %lld", (long long)n), NULL;
  ct_tensor *y = ct_tensor_new(dt, 1, &n, err);
  if (y == NULL) return NULL;
  double step = n > 1 ? (end - start) / (double)(n - 1) : 0;
  int64_t half = n > 1 ? n / 2 : 1; /* one step: just start, as PyTorch */
  for (int64_t i = 0; i < n; i++) { /* PyTorch fills from both ends */
    double v = i < half ? start + step * (double)i : end - step * (double)(n - 1 - i);
    if (dt == CT_F32) ((float *)y->storage->data)[i] = (float)v;
    else if (dt == CT_F64) ((double *)y->storage->data)[i] = v;
    else ((int64_t *)y->storage->data)[i] = ct_i64_of(v);
  }
  return y;
}

ct_tensor *ct_eye(int64_t n, int64_t m, ct_dtype dt, ct_err *err) {
  ct_tensor *y = ct_tensor_zeros(dt, 2, (int64_t[]){n, m}, err);
  if (y == NULL) return NULL;
  for (int64_t i = 0; i < n && i < m; i++) ct_set_at(y, (int64_t[]){i, i}, 1);
  return y;
}

static const ct_op shape_ops[CT_SHAPE_COUNT] = {CT_SHAPE_OPS(CT_OP_ROW)};
static const ct_op index_ops[CT_INDEX_COUNT] = {CT_INDEX_OPS(CT_OP_ROW)};
