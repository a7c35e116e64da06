/* Shared by the C-level tests (spec/c/): cmocka, and builders that make a tensor from a
 * literal list of values.  The tests link only libcrater.a: no Lua anywhere. */
#ifndef CT_CTEST_H
#define CT_CTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/ops/ops.h"

/* A contiguous float64 tensor of the given shape holding vals (row-major). */
static inline ct_tensor *f64_tensor(int ndim, const int64_t *shape, const double *vals) {
  ct_err err;
  ct_tensor *t = ct_tensor_new(CT_F64, ndim, shape, &err);
  assert_non_null(t);
  memcpy(ct_data(t), vals, (size_t)ct_numel(t) * sizeof(double));
  return t;
}

/* Every element of t (any layout, read as double) equals want[i] within tol. */
static inline void assert_values(const ct_tensor *t, const double *want, int64_t n, double tol) {
  assert_int_equal(ct_numel(t), n);
  for (int64_t i = 0; i < n; i++) {
    double got = ct_get_flat(t, i);
    if (!(got >= want[i] - tol && got <= want[i] + tol))
      fail_msg("element %lld: got %.17g, want %.17g", (long long)i, got, want[i]);
  }
}

/* err's message contains part. */
static inline void assert_error(const ct_err *err, const char *part) {
  if (strstr(err->msg, part) == NULL) fail_msg("error \"%s\" lacks \"%s\"", err->msg, part);
}

#endif
