/* C-level tests of the core: creation, strides, views sharing storage, checked size
 * arithmetic, allocation failure and the allocator's accounting, the thread pool. */
#include <stdatomic.h>
#include <unistd.h>

#include "ctest.h"

static void new_tensor_is_contiguous_row_major(void **state) {
  ct_err err;
  ct_tensor *t = ct_tensor_zeros(CT_F32, 3, (int64_t[]){2, 3, 4}, &err);
  assert_non_null(t);
  assert_int_equal(ct_numel(t), 24);
  assert_int_equal(t->stride[0], 12);
  assert_int_equal(t->stride[1], 4);
  assert_int_equal(t->stride[2], 1);
  assert_true(ct_is_contiguous(t));
  assert_int_equal(t->storage->nbytes, 24 * 4);
  for (int64_t i = 0; i < 24; i++) assert_true(ct_get_flat(t, i) == 0.0);
  ct_tensor_release(t);
}

static void negative_size_and_too_many_dims_are_refused(void **state) {
  ct_err err;
  assert_null(ct_tensor_new(CT_F64, 2, (int64_t[]){2, -1}, &err));
  assert_null(ct_tensor_new(CT_F64, CT_MAXDIM + 1, (int64_t[CT_MAXDIM + 1]){1}, &err));
}

static void element_counts_are_checked(void **state) {
  ct_err err;
  assert_int_equal(ct_shape_numel(3, (int64_t[]){2, 3, 7}, &err), 42);
  assert_int_equal(ct_shape_numel(2, (int64_t[]){(int64_t)1 << 62, 4}, &err), -1);
  assert_error(&err, "overflow");
  assert_int_equal(ct_shape_numel(2, (int64_t[]){3, INT64_MAX / 2}, &err), -1);
  /* 2^62 elements of 8 bytes pass int64 as a byte count: never allocated */
  assert_null(ct_tensor_new(CT_F64, 1, (int64_t[]){(int64_t)1 << 62}, &err));
}

static void views_share_storage_and_stay_inside_it(void **state) {
  ct_err err;
  ct_tensor *x = f64_tensor(2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
  ct_tensor *n = ct_narrow(x, 1, 1, 2, &err); /* columns 1..2 */
  assert_non_null(n);
  assert_ptr_equal(n->storage, x->storage);
  assert_int_equal(n->offset, 1);
  assert_false(ct_is_contiguous(n));
  assert_values(n, (double[]){2, 3, 5, 6}, 4, 0);
  ct_set_at(n, (int64_t[]){1, 0}, 50); /* writes x[1][1] */
  assert_values(x, (double[]){1, 2, 3, 4, 50, 6}, 6, 0);
  /* start + length past the dim, and start + length overflowing int64 */
  assert_null(ct_narrow(x, 1, 2, 2, &err));
  assert_null(ct_narrow(x, 1, 2, INT64_MAX, &err));
  /* a geometry reaching past the storage is refused by the one check every view passes */
  assert_int_equal(ct_check_view(x->storage, CT_F64, 1, (int64_t[]){7}, (int64_t[]){1}, 0, &err), 0);
  assert_int_equal(ct_check_view(x->storage, CT_F64, 1, (int64_t[]){3}, (int64_t[]){2}, 2, &err),
                   0); /* elements 2, 4, 6 */
  assert_int_equal(ct_check_view(x->storage, CT_F64, 1, (int64_t[]){3}, (int64_t[]){2}, 0, &err), 1);
  ct_tensor_release(n);
  ct_tensor_release(x);
}

static void transpose_then_contiguous_copies_in_logical_order(void **state) {
  ct_err err;
  ct_tensor *x = f64_tensor(2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
  ct_tensor *t = ct_transpose(x, 0, 1, &err);
  assert_false(ct_is_contiguous(t));
  ct_tensor *c = ct_contiguous(t, &err);
  assert_true(ct_is_contiguous(c));
  assert_ptr_not_equal(c->storage, x->storage);
  assert_values(c, (double[]){1, 4, 2, 5, 3, 6}, 6, 0);
  ct_tensor *v = ct_view(c, 1, (int64_t[]){6}, &err);
  assert_ptr_equal(v->storage, c->storage);
  assert_null(ct_view(t, 1, (int64_t[]){6}, &err)); /* a transpose cannot be flattened in place */
  ct_tensor_release(v), ct_tensor_release(c), ct_tensor_release(t), ct_tensor_release(x);
}

static void failed_allocation_reports_and_leaks_nothing(void **state) {
  ct_err err;
  ct_memstat before = ct_memory();
  ct_debug_fail_alloc(0, false);
  assert_null(ct_tensor_new(CT_F32, 1, (int64_t[]){1000}, &err));
  assert_error(&err, "not enough memory");
  ct_debug_fail_alloc(-1, false);
  ct_tensor *t = ct_tensor_new(CT_F32, 1, (int64_t[]){1000}, &err);
  assert_non_null(t);
  assert_true(ct_memory().bytes >= before.bytes + 4000);
  ct_tensor_release(t);
  assert_int_equal(ct_memory().bytes, before.bytes);
  assert_int_equal(ct_memory().tensors, before.tensors);
}

/* Counts, per element, the chunks of a job that covered it. */
#define MAXN 5000
static atomic_int runs[MAXN];
static void count_range(void *ctx, size_t lo, size_t hi) {
  (void)ctx;
  for (size_t i = lo; i < hi; i++) atomic_fetch_add(&runs[i], 1);
}

/* Thousands of jobs of odd sizes on 2 threads, with pauses long enough for the worker to
 * fall asleep, so that it often wakes after the caller has run its job alone: every element
 * must still be run once, never twice, never left out. */
static void pool_runs_every_element_once(void **state) {
  int before = ct_get_num_threads();
  ct_set_num_threads(2);
  for (int job = 0; job < 4000; job++) {
    size_t n = 128 + (size_t)(job * 7919) % (MAXN - 128);
    for (size_t i = 0; i < MAXN; i++) atomic_store(&runs[i], 0);
    ct_parallel_grain(n, 32, count_range, NULL);
    for (size_t i = 0; i < MAXN; i++) assert_int_equal(atomic_load(&runs[i]), i < n ? 1 : 0);
    if (job % 50 == 0) usleep(1000); /* past the worker's 400 us of spinning */
  }
  ct_set_num_threads(before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(new_tensor_is_contiguous_row_major),
      cmocka_unit_test(negative_size_and_too_many_dims_are_refused),
      cmocka_unit_test(element_counts_are_checked),
      cmocka_unit_test(views_share_storage_and_stay_inside_it),
      cmocka_unit_test(transpose_then_contiguous_copies_in_logical_order),
      cmocka_unit_test(failed_allocation_reports_and_leaks_nothing),
      cmocka_unit_test(pool_runs_every_element_once),
  };
  return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
