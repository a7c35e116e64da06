/* crater ops: every tensor operation, forward kernels with their backward beside them.
 * Each returns a new reference the caller owns, or NULL with a message in err; the
 * arguments are borrowed.  Results record a graph node when ct_grad_enabled and an
 * input requires grad.  In-place forms (ending in _) return 1/0 and change nothing on
 * failure. Dims are 0-based here; the binding converts. */
#ifndef CT_OPS_H
#define CT_OPS_H

#include "../autograd/autograd.h"

/* ---- the op table (ops.def): one row per op; its families' enums below ---- */
#include "ops.def"

typedef enum { CT_DT_INT, CT_DT_INTS, CT_DT_FLOAT, CT_DT_CMP, CT_DT_NOINT } ct_dtype_rule;
enum { CT_SAVE_NONE = 0, CT_SAVE_IN = 1, CT_SAVE_OUT = 2 };

/* One row of the table: the node's name and backward, and what the binding, the docs and
 * the gradcheck spec read. */
typedef struct ct_opinfo {
  ct_op op; /* {node name, backward} */
  const char *name; /* the Lua name */
  ct_dtype_rule dtype;
  int saves; /* CT_SAVE_* bits */
  int nargs; /* scalars of the in-place form, or -1: none */
  const char *args, *grad, *doc;
} ct_opinfo;

/* A row's graph node {name, backward}, for the families' ct_op arrays (in row order, which
 * is their enums' order): each kernel file declares its array first and defines it after
 * the backward functions. */
#define CT_OP_ROW(e, name, node, backward, ...) {node, backward, NULL},

typedef enum {
#define X(e, name, ...) CT_U_##e,
  CT_UNARY_OPS(X)
#undef X
      CT_U_COUNT
} ct_unary_op;
extern const ct_opinfo ct_unary_info[CT_U_COUNT];

ct_tensor *ct_unary(ct_unary_op op, ct_tensor *x, double a, double b, ct_err *err);
/* 1 when x may be written in place: not an expanded view and, while grad mode is on, not
 * a leaf that requires grad nor a view of one; else 0 with the reason in err. */
int ct_inplace_ok(const ct_tensor *x, ct_err *err);
int ct_unary_(ct_unary_op op, ct_tensor *x, double a, double b, ct_err *err);

/* ---- elementwise binary with broadcasting and dtype promotion ---- */
typedef enum {
#define X(e, name, ...) CT_B_##e,
  CT_BINARY_OPS(X)
#undef X
      CT_B_COUNT
} ct_binary_op;
extern const ct_opinfo ct_binary_info[CT_B_COUNT];

/* Comparisons give int64 0/1 (crater has no bool dtype). */
ct_tensor *ct_binary(ct_binary_op op, ct_tensor *a, ct_tensor *b, ct_err *err);
/* a op= b, b broadcast to a's shape; int64 a with a float b is refused. */
int ct_binary_(ct_binary_op op, ct_tensor *a, ct_tensor *b, ct_err *err);
/* comparison into a's dtype (masks for backward formulas) */
ct_tensor *ct_compare_as(ct_binary_op op, ct_tensor *a, ct_tensor *b, ct_err *err);
int ct_broadcast_shape(const ct_tensor *a, const ct_tensor *b, int *ndim, int64_t *shape, ct_err *err);

/* fused in-place kernels for optimizers written in Lua */
int ct_add_(ct_tensor *x, ct_tensor *y, double alpha, ct_err *err); /* x += alpha*y */
int ct_addcmul_(ct_tensor *x, ct_tensor *a, ct_tensor *b, double v, ct_err *err); /* x += v*a*b */
int ct_addcdiv_(ct_tensor *x, ct_tensor *a, ct_tensor *b, double v, ct_err *err); /* x += v*a/b */
int ct_lerp_(ct_tensor *x, ct_tensor *end, double w, ct_err *err); /* x += w*(end-x) */
int ct_fill_(ct_tensor *x, double v, ct_err *err);
int ct_fill_i64_(ct_tensor *x, int64_t k, ct_err *err); /* exact for int64 x */
int ct_copy_(ct_tensor *dst, ct_tensor *src, ct_err *err); /* src broadcast to dst */
/* x[mask] = v in place (mask broadcast to x) */
int ct_masked_fill_(ct_tensor *x, ct_tensor *mask, double v, ct_err *err);

/* ---- views (share storage) ---- */
enum { /* the table's rows */
#define X(e, ...) CT_SHAPE_##e,
       CT_SHAPE_OPS(X)
#undef X
           CT_SHAPE_COUNT
};
ct_tensor *ct_reshape(ct_tensor *x, int ndim, const int64_t *shape, ct_err *err); /* one -1 allowed */
ct_tensor *ct_view(ct_tensor *x, int ndim, const int64_t *shape, ct_err *err); /* never copies */
ct_tensor *ct_transpose(ct_tensor *x, int d1, int d2, ct_err *err);
ct_tensor *ct_permute(ct_tensor *x, const int *dims, ct_err *err);
ct_tensor *ct_narrow(ct_tensor *x, int dim, int64_t start, int64_t len, ct_err *err);
ct_tensor *ct_select(ct_tensor *x, int dim, int64_t index, ct_err *err);
ct_tensor *ct_squeeze(ct_tensor *x, int dim, ct_err *err); /* dim -1: every size-1 dim */
ct_tensor *ct_unsqueeze(ct_tensor *x, int dim, ct_err *err);
ct_tensor *ct_expand(ct_tensor *x, int ndim, const int64_t *shape, ct_err *err); /* -1 keeps */
ct_tensor *ct_flatten(ct_tensor *x, int start, int end, ct_err *err);
ct_tensor *ct_contiguous(ct_tensor *x, ct_err *err);
ct_tensor *ct_clone(ct_tensor *x, ct_err *err);
ct_tensor *ct_detach(ct_tensor *x, ct_err *err);
ct_tensor *ct_to(ct_tensor *x, ct_dtype dt, ct_err *err);
/* sums x down to a broadcast-compatible shape (the adjoint of expand) */
ct_tensor *ct_sum_to(ct_tensor *x, int ndim, const int64_t *shape, ct_err *err);
/* zeros of 'shape' with x written at [start, start+len) of dim (the adjoint of narrow) */
ct_tensor *ct_narrow_pad(ct_tensor *x, int ndim, const int64_t *shape, int dim, int64_t start, ct_err *err);
/* A view of x (made contiguous, starting at its storage's first element) with the geometry
 * geom = {offset, ndim, shape..., strides...}; and its adjoint, zeros of 'shape' with g
 * summed into that geometry.  Used by autograd for views of tensors changed in place. */
ct_tensor *ct_as_strided(ct_tensor *x, const ct_geometry *geom, ct_err *err);
ct_tensor *ct_as_strided_pad(ct_tensor *g, int ndim, const int64_t *shape, const ct_geometry *geom,
                             ct_err *err);

/* ---- reductions (dim < 0: over all elements, result 0-d) ---- */
typedef enum { CT_R_SUM, CT_R_MEAN, CT_R_PROD, CT_R_MAX, CT_R_MIN } ct_reduce_op;
enum { /* the table's rows; the first five are ct_reduce's, in its order */
#define X(e, ...) CT_REDUCE_##e,
       CT_REDUCE_OPS(X)
#undef X
           CT_REDUCE_COUNT
};
ct_tensor *ct_reduce(ct_reduce_op op, ct_tensor *x, int dim, bool keepdim, ct_err *err);
/* max/min over a dim with indices (int64, 0-based) */
ct_tensor *ct_maxmin_dim(ct_tensor *x, int dim, bool keepdim, bool is_max, ct_tensor **indices, ct_err *err);
ct_tensor *ct_argmaxmin(ct_tensor *x, int dim, bool keepdim, bool is_max, ct_err *err);
ct_tensor *ct_var(ct_tensor *x, int dim, double correction, bool keepdim, bool take_sqrt, ct_err *err);
ct_tensor *ct_norm(ct_tensor *x, double p, int dim, bool keepdim, ct_err *err);
ct_tensor *ct_logsumexp(ct_tensor *x, int dim, bool keepdim, ct_err *err);
ct_tensor *ct_softmax(ct_tensor *x, int dim, bool log, ct_err *err);

/* ---- matrix products (OpenBLAS) ---- */
enum { /* the table's rows */
#define X(e, ...) CT_MATMUL_##e,
       CT_MATMUL_OPS(X)
#undef X
           CT_MATMUL_COUNT
};
ct_tensor *ct_matmul(ct_tensor *a, ct_tensor *b, ct_err *err); /* 1-D, 2-D, batched 3-D */
ct_tensor *ct_mm(ct_tensor *a, ct_tensor *b, ct_err *err); /* 2-D only */
/* Eigenvalues (ascending) and eigenvectors (the columns) of the symmetric matrix a, as
 * torch.linalg.eigh with its lower triangle read (LAPACK syev); new tensors, no graph. */
int ct_eigh(ct_tensor *a, ct_tensor **values, ct_tensor **vectors, ct_err *err);
ct_tensor *ct_bmm(ct_tensor *a, ct_tensor *b, ct_err *err); /* 3-D only */
/* 1 when an (n,k) x (k,m) product fits BLAS's int sizes, else 0 with err. */
int ct_blas_sizes(int64_t n, int64_t k, int64_t m, ct_err *err);
/* OpenBLAS's thread count (crater.set_num_threads sets the core's and this one). */
void ct_blas_set_num_threads(int n);
/* c = alpha op(a) op(b) + beta c for row-major float32 or float64 matrices (m x k times
 * k x n, op a transpose when ta or tb), as cblas_?gemm, with OpenBLAS on one thread and
 * c's rows or columns split over crater's threads: the same sums on any thread count. */
void ct_gemm(ct_dtype dt, bool ta, bool tb, int m, int n, int k, double alpha, const void *a, int lda,
             const void *b, int ldb, double beta, void *c, int ldc);

/* ---- joining and indexing ---- */
enum { /* the table's rows */
#define X(e, ...) CT_INDEX_##e,
       CT_INDEX_OPS(X)
#undef X
           CT_INDEX_COUNT
};
ct_tensor *ct_cat(int n, ct_tensor **xs, int dim, ct_err *err);
ct_tensor *ct_stack(int n, ct_tensor **xs, int dim, ct_err *err);
ct_tensor *ct_gather(ct_tensor *x, int dim, ct_tensor *index, ct_err *err);
/* base + scatter of src at index along dim (out-of-place scatter_add) */
ct_tensor *ct_scatter_add(ct_tensor *base, int dim, ct_tensor *index, ct_tensor *src, ct_err *err);
ct_tensor *ct_index_select(ct_tensor *x, int dim, ct_tensor *index, ct_err *err);
ct_tensor *ct_index_add(ct_tensor *base, int dim, ct_tensor *index, ct_tensor *src, ct_err *err);
ct_tensor *ct_masked_fill(ct_tensor *x, ct_tensor *mask, double v, ct_err *err);
ct_tensor *ct_where(ct_tensor *cond, ct_tensor *a, ct_tensor *b, ct_err *err);
bool ct_allclose(ct_tensor *a, ct_tensor *b, double rtol, double atol, bool equal_nan);

/* ---- constructors ---- */
ct_tensor *ct_arange(double start, double end, double step, ct_dtype dt, ct_err *err);
ct_tensor *ct_arange_i64(int64_t start, int64_t end, int64_t step, ct_err *err);
ct_tensor *ct_linspace(double start, double end, int64_t n, ct_dtype dt, ct_err *err);
ct_tensor *ct_eye(int64_t n, int64_t m, ct_dtype dt, ct_err *err);

/* helpers used by backward formulas */
ct_tensor *ct_zeros_like(ct_tensor *x, ct_err *err);
ct_tensor *ct_mul(ct_tensor *a, ct_tensor *b, ct_err *err);
ct_tensor *ct_add(ct_tensor *a, ct_tensor *b, ct_err *err);
ct_tensor *ct_sub(ct_tensor *a, ct_tensor *b, ct_err *err);
ct_tensor *ct_div(ct_tensor *a, ct_tensor *b, ct_err *err);
ct_tensor *ct_scale(ct_tensor *x, double s, ct_err *err);

#endif
