/* crater ops: matrix products through OpenBLAS's CBLAS (sgemm/dgemm).  Transposed
 * views go to BLAS as transposes, not copies; 1-D operands become matrices by views. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "ops.h"

void openblas_set_num_threads(int n);

/* The core owns the thread count (ct_set_num_threads); the binding passes it on here.
 * OpenBLAS stays on one thread: ct_gemm splits the products over crater's own pool, so
 * that OpenBLAS's workers, which spin after each call, never compete with it. */
void ct_blas_set_num_threads(int n) {
  (void)n;
  openblas_set_num_threads(1);
}
__attribute__((constructor)) static void blas_single(void) { openblas_set_num_threads(1); }

typedef struct {
  ct_dtype dt;
  bool ta, tb, rows; /* rows: split C's rows (A's), else its columns (B's) */
  int m, n, k, lda, ldb, ldc, per; /* per: rows or columns in a block */
  double alpha, beta;
  const char *a, *b;
  char *c;
} gemm_job;

#define PANEL 16 /* a block is whole register tiles and cache lines of C */
#define BLOCK_MACS ((size_t)1 << 22) /* ~40 us: each block packs the other operand again */

static void gemm_range(void *vj, size_t lo, size_t hi) {
  const gemm_job *j = vj;
  size_t es = ct_dtype_size(j->dt);
  int total = j->rows ? j->m : j->n, i0 = (int)lo * j->per,
      i1 = (int)hi * j->per < total ? (int)hi * j->per : total;
  if (i1 <= i0) return;
  const char *a = j->a, *b = j->b;
  char *c = j->c;
  int m = j->m, n = j->n;
  if (j->rows) { /* A's rows i0..i1: row i of A is at i*lda, or column i of a transposed A */
    a += (size_t)i0 * (j->ta ? 1 : (size_t)j->lda) * es;
    c += (size_t)i0 * (size_t)j->ldc * es;
    m = i1 - i0;
  } else { /* B's columns i0..i1 */
    b += (size_t)i0 * (j->tb ? (size_t)j->ldb : 1) * es;
    c += (size_t)i0 * es;
    n = i1 - i0;
  }
  /* beta 0: OpenBLAS zeroes C in a pass of its own (sgemm_beta, 11 GB/s on this AMD EPYC, 4-6%
   * of CNN and MLP training) before adding the product onto it; memset does the same zeroing
   * at memory speed, and beta 1 then adds onto C: the same sums, the same bits */
  double beta = j->beta;
  if (beta == 0) {
    for (int i = 0; i < m; i++) memset(c + (size_t)i * (size_t)j->ldc * es, 0, (size_t)n * es);
    beta = 1;
  }
  CBLAS_TRANSPOSE ta = j->ta ? CblasTrans : CblasNoTrans, tb = j->tb ? CblasTrans : CblasNoTrans;
  if (j->dt == CT_F32)
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, j->k, (float)j->alpha, (const float *)a, j->lda,
                (const float *)b, j->ldb, (float)beta, (float *)c, j->ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, j->k, j->alpha, (const double *)a, j->lda, (const double *)b,
                j->ldb, beta, (double *)c, j->ldc);
}

void ct_gemm(ct_dtype dt, bool ta, bool tb, int m, int n, int k, double alpha, const void *a, int lda,
             const void *b, int ldb, double beta, void *c, int ldc) {
  bool rows = m >= n;
  int total = rows ? m : n, other = rows ? n : m;
  size_t panels = (size_t)(total + PANEL - 1) / PANEL, panel_macs = (size_t)PANEL * (size_t)other * (size_t)k;
  /* one block per thread, of at least BLOCK_MACS: each block packs the other operand
   * again (two per thread, for balance on a busy machine, cost the MLP bench 4%) */
  size_t per_thread = (size_t)ct_get_num_threads(), group = (panels + per_thread - 1) / per_thread;
  size_t least = panel_macs > 0 ? (BLOCK_MACS + panel_macs - 1) / panel_macs : 1;
  if (group < least) group = least;
  gemm_job j = {dt, ta, tb, rows, m, n, k, lda, ldb, ldc, (int)group * PANEL, alpha, beta, a, b, c};
  /* a block's work counted in multiply-adds: small products stay on this thread */
  ct_parallel_blocks((panels + group - 1) / group, group * panel_macs, gemm_range, &j);
}

/* How BLAS can read a (rows x cols) matrix with strides rs, cs: as is (row-major with
 * leading dim rs), as a transpose, or not at all (then the caller copies). */
static bool blas_view(int64_t rows, int64_t cols, int64_t rs, int64_t cs, bool *trans, int64_t *ld) {
  if (cols == 1) cs = 1;
  if (rows == 1) rs = cols > 0 ? cols : 1;
  if (rs > INT_MAX || cs > INT_MAX) return false; /* BLAS takes int leading dims: copy */
  if (cs == 1 && rs >= (cols > 0 ? cols : 1)) {
    *trans = false;
    *ld = rs;
    return true;
  }
  if (rs == 1 && cs >= (rows > 0 ? rows : 1)) {
    *trans = true;
    *ld = cs;
    return true;
  }
  return false;
}

/* y(n,m) = a(n,k) b(k,m) for one matrix each, given element pointers and strides. */
static void gemm(ct_dtype dt, char *y, const char *a, const int64_t *as, const char *b, const int64_t *bs,
                 int64_t n, int64_t k, int64_t m) {
  bool ta = false, tb = false;
  int64_t lda = 1, ldb = 1;
  blas_view(n, k, as[0], as[1], &ta, &lda);
  blas_view(k, m, bs[0], bs[1], &tb, &ldb);
  if (n == 0 || m == 0) return;
  if (k == 0) {
    memset(y, 0, (size_t)(n * m) * ct_dtype_size(dt));
    return;
  }
  if (dt != CT_I64)
    ct_gemm(dt, ta, tb, (int)n, (int)m, (int)k, 1.0, a, (int)lda, b, (int)ldb, 0.0, y, (int)m);
  else {
    /* int64 products wrap, as PyTorch's: computed in uint64 (signed overflow is UB in C) */
    int64_t *o = (int64_t *)y;
    const int64_t *pa = (const int64_t *)a, *pb = (const int64_t *)b;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < m; j++) {
        uint64_t s = 0;
        for (int64_t q = 0; q < k; q++)
          s += (uint64_t)pa[i * as[0] + q * as[1]] * (uint64_t)pb[q * bs[0] + j * bs[1]];
        o[i * m + j] = (int64_t)s;
      }
  }
}

int ct_blas_sizes(int64_t n, int64_t k, int64_t m, ct_err *err) {
  if (n > INT_MAX || k > INT_MAX || m > INT_MAX)
    return ct_fail(err, "sizes %lldx%lld times %lldx%lld pass BLAS's limit of 2^31-1 per dim", (long long)n,
                   (long long)k, (long long)k, (long long)m);
  return 1;
}

/* A matrix operand BLAS can read: t itself or a contiguous copy (new reference). */
static ct_tensor *blas_ready(ct_tensor *t, ct_err *err) {
  int d = t->ndim;
  bool tr;
  int64_t ld;
  if (t->dtype == CT_I64 ||
      blas_view(t->shape[d - 2], t->shape[d - 1], t->stride[d - 2], t->stride[d - 1], &tr, &ld)) {
    ct_tensor_retain(t);
    return t;
  }
  return ct_contig(t, true, err);
}

/* each row's graph node (ops.def), defined at the end, after the backward functions */
static const ct_op matmul_ops[CT_MATMUL_COUNT];

/* a (n,k) or (B,n,k); b (k,m) or (B,k,m) (a 2-D b is shared by every batch). */
static ct_tensor *mm_core(ct_tensor *a0, ct_tensor *b0, ct_err *err) {
  ct_tensor *in[2] = {a0, b0};
  int da = a0->ndim, db = b0->ndim;
  int64_t n = a0->shape[da - 2], k = a0->shape[da - 1], m = b0->shape[db - 1];
  int64_t batch = da == 3 ? a0->shape[0] : 1;
  if (da == 3 && db == 3 && b0->shape[0] != batch) {
    char x[96], y[96];
    return ct_fail(err, "shapes %s and %s do not match (batch sizes %lld and %lld)",
                   ct_shape_str(x, da, a0->shape), ct_shape_str(y, db, b0->shape), (long long)batch,
                   (long long)b0->shape[0]),
           NULL;
  }
  if (b0->shape[db - 2] != k || (da == 2 && db == 3)) {
    char x[96], y[96];
    return ct_fail(err, "shapes %s and %s do not match (inner sizes %lld and %lld)",
                   ct_shape_str(x, da, a0->shape), ct_shape_str(y, db, b0->shape), (long long)k,
                   (long long)b0->shape[db - 2]),
           NULL;
  }
  if ((a0->dtype != CT_I64 || b0->dtype != CT_I64) && !ct_blas_sizes(n, k, m, err)) return NULL;
  ct_tensor *a = NULL, *b = NULL, *y = NULL;
  if (!(a0->dtype == b0->dtype
            ? (ct_tensor_retain(a0), ct_tensor_retain(b0), a = a0, b = b0, 1)
            : (a = ct_to(a0, ct_promote(a0->dtype, b0->dtype), err)) && (b = ct_to(b0, a->dtype, err))))
    goto done;
  ct_tensor *ra = blas_ready(a, err), *rb = ra ? blas_ready(b, err) : NULL;
  ct_tensor_release(a);
  ct_tensor_release(b);
  a = ra;
  b = rb;
  if (b == NULL) goto done;
  int64_t shape[3] = {batch, n, m};
  y = ct_tensor_new(a->dtype, da, da == 3 ? shape : shape + 1, err);
  if (y == NULL) goto done;
  size_t es = ct_dtype_size(a->dtype);
  for (int64_t i = 0; i < (n > 0 && m > 0 ? batch : 0); i++) { /* an empty result: no batch loop */
    const char *pa = ct_data(a) + (size_t)(da == 3 ? i * a->stride[0] : 0) * es;
    const char *pb = ct_data(b) + (size_t)(db == 3 ? i * b->stride[0] : 0) * es;
    gemm(a->dtype, ct_data(y) + (size_t)(i * n * m) * es, pa, a->stride + da - 2, pb, b->stride + db - 2, n,
         k, m);
  }
  if (ct_needs_grad(2, in)) {
    ct_node *nd = ct_record(&matmul_ops[da == 3 ? CT_MATMUL_BMM : CT_MATMUL_MM], y, 2, in, err);
    if (nd == NULL || !ct_save(nd, a0, false, err) || !ct_save(nd, b0, false, err)) {
      ct_tensor_release(y);
      y = NULL;
    }
  }
done:
  ct_tensor_release(a);
  ct_tensor_release(b);
  return y;
}

static ct_tensor *mT(ct_tensor *t, ct_err *err) { return ct_transpose(t, t->ndim - 2, t->ndim - 1, err); }

static int mm_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *a = ct_saved(nd, 0, err), *b = a ? ct_saved(nd, 1, err) : NULL;
  int ok = b != NULL;
  if (ok && nd->edge[0].needs) { /* ga = g b^T */
    ct_tensor *bt = mT(b, err);
    gin[0] = bt ? mm_core(g, bt, err) : NULL;
    ct_tensor_release(bt);
    ok = gin[0] != NULL;
  }
  if (ok && nd->edge[1].needs) { /* gb = a^T g (summed over batches when b was shared) */
    ct_tensor *at = mT(a, err);
    gin[1] = at ? mm_core(at, g, err) : NULL;
    ct_tensor_release(at);
    ok = gin[1] != NULL;
  }
  ct_tensor_release(a);
  ct_tensor_release(b);
  return ok;
}

ct_tensor *ct_mm(ct_tensor *a, ct_tensor *b, ct_err *err) {
  if (a->ndim != 2 || b->ndim != 2) {
    char x[96], y[96];
    return ct_fail(err, "expected 2-D tensors, got shapes %s and %s", ct_shape_str(x, a->ndim, a->shape),
                   ct_shape_str(y, b->ndim, b->shape)),
           NULL;
  }
  return mm_core(a, b, err);
}

ct_tensor *ct_bmm(ct_tensor *a, ct_tensor *b, ct_err *err) {
  if (a->ndim != 3 || b->ndim != 3) {
    char x[96], y[96];
    return ct_fail(err, "expected 3-D tensors, got shapes %s and %s", ct_shape_str(x, a->ndim, a->shape),
                   ct_shape_str(y, b->ndim, b->shape)),
           NULL;
  }
  return mm_core(a, b, err);
}

ct_tensor *ct_matmul(ct_tensor *a, ct_tensor *b, ct_err *err) {
  char x[96], y[96];
  if (a->ndim == 0 || b->ndim == 0 || a->ndim > 3 || b->ndim > 3)
    return ct_fail(err, "shapes %s and %s: only 1-D, 2-D and 3-D operands are supported",
                   ct_shape_str(x, a->ndim, a->shape), ct_shape_str(y, b->ndim, b->shape)),
           NULL;
  if (a->ndim == 1 && b->ndim == 1 && a->shape[0] != b->shape[0])
    return ct_fail(err, "shapes %s and %s do not match (inner sizes %lld and %lld)",
                   ct_shape_str(x, 1, a->shape), ct_shape_str(y, 1, b->shape), (long long)a->shape[0],
                   (long long)b->shape[0]),
           NULL;
  /* 1-D operands: a row vector on the left, a column on the right; drop them after */
  ct_tensor *am = a->ndim == 1 ? ct_unsqueeze(a, 0, err) : (ct_tensor_retain(a), a);
  ct_tensor *bm = am ? (b->ndim == 1 ? ct_unsqueeze(b, 1, err) : (ct_tensor_retain(b), b)) : NULL;
  ct_tensor *r = NULL;
  if (bm) {
    if (am->ndim == 2 && bm->ndim == 3) { /* (n,k) x (B,k,m): broadcast a over the batch */
      ct_tensor *ae = ct_expand(am, 3, (int64_t[]){bm->shape[0], am->shape[0], am->shape[1]}, err);
      r = ae ? mm_core(ae, bm, err) : NULL;
      ct_tensor_release(ae);
    } else {
      r = mm_core(am, bm, err);
    }
    if (r == NULL && (a->ndim != am->ndim || b->ndim != bm->ndim) && /* report the user's shapes */
        a->shape[a->ndim - 1] != b->shape[b->ndim == 1 ? 0 : b->ndim - 2]) /* not a failed allocation? */
      ct_fail(err, "shapes %s and %s do not match (inner sizes %lld and %lld)",
              ct_shape_str(x, a->ndim, a->shape), ct_shape_str(y, b->ndim, b->shape),
              (long long)a->shape[a->ndim - 1], (long long)b->shape[b->ndim == 1 ? 0 : b->ndim - 2]);
  }
  if (r && b->ndim == 1) {
    ct_tensor *s = ct_squeeze(r, r->ndim - 1, err);
    ct_tensor_release(r);
    r = s;
  }
  if (r && a->ndim == 1) {
    ct_tensor *s = ct_squeeze(r, r->ndim - (b->ndim == 1 ? 1 : 2), err);
    ct_tensor_release(r);
    r = s;
  }
  ct_tensor_release(am);
  ct_tensor_release(bm);
  return r;
}

/* LAPACK's symmetric eigensolvers, which OpenBLAS carries (no LAPACKE header needed). */
void ssyev_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w, float *work,
            const int *lwork, int *info);
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info);

static int syev(ct_dtype dt, int n, void *a, void *w, void *work, int lwork) {
  int info = 0;
  if (dt == CT_F32) ssyev_("V", "L", &n, a, &n, w, work, &lwork, &info);
  else dsyev_("V", "L", &n, a, &n, w, work, &lwork, &info);
  return info;
}

int ct_eigh(ct_tensor *a, ct_tensor **values, ct_tensor **vectors, ct_err *err) {
  char s[96];
  *values = *vectors = NULL;
  if (a->ndim != 2 || a->shape[0] != a->shape[1] || a->dtype == CT_I64)
    return ct_fail(err, "expected a square float32 or float64 matrix, got %s %s", ct_dtype_name(a->dtype),
                   ct_shape_str(s, a->ndim, a->shape));
  if (a->shape[0] > INT_MAX / 2)
    return ct_fail(err, "matrix of size %lld is too large for LAPACK", (long long)a->shape[0]);
  int n = (int)a->shape[0];
  /* LAPACK is column-major: the row-major copy is the transpose, the same symmetric matrix,
   * and the eigenvectors come back as its rows; the result's columns are them */
  ct_tensor *rows = ct_contig(a, true, err), *cols = NULL;
  *values = rows ? ct_tensor_new(a->dtype, 1, a->shape, err) : NULL;
  size_t es = ct_dtype_size(a->dtype);
  if (*values == NULL) goto fail;
  for (int64_t i = 0; i < (int64_t)n * n; i++) { /* LAPACK may not return on NaN or inf */
    double v = a->dtype == CT_F32 ? ((float *)ct_data(rows))[i] : ((double *)ct_data(rows))[i];
    if (!isfinite(v)) {
      ct_fail(err, "the matrix has a non-finite entry (at row %lld, column %lld)", (long long)(i / n + 1),
              (long long)(i % n + 1));
      goto fail;
    }
  }
  if (n > 0) {
    double query = 0;
    float queryf = 0;
    if (syev(a->dtype, n, ct_data(rows), ct_data(*values),
             a->dtype == CT_F32 ? (void *)&queryf : (void *)&query, -1))
      goto lapack;
    int lwork = a->dtype == CT_F32 ? (int)queryf : (int)query;
    void *work = ct_malloc((size_t)lwork * es, err);
    if (work == NULL) goto fail;
    int info = syev(a->dtype, n, ct_data(rows), ct_data(*values), work, lwork);
    ct_free(work, (size_t)lwork * es);
    if (info != 0) goto lapack;
  }
  cols = ct_transpose(rows, 0, 1, err);
  if (cols == NULL || (*vectors = ct_contig(cols, true, err)) == NULL) goto fail;
  ct_tensor_release(cols);
  ct_tensor_release(rows);
  return 1;
lapack:
  ct_fail(err, "LAPACK's eigensolver did not converge on this %dx%d matrix (is it finite?)", n, n);
fail:
  ct_tensor_release(cols);
  ct_tensor_release(rows);
  ct_tensor_release(*values);
  *values = NULL;
  return 0;
}

static const ct_op matmul_ops[CT_MATMUL_COUNT] = {CT_MATMUL_OPS(CT_OP_ROW)};
