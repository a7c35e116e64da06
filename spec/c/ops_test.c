/* C-level tests of a few ops and their backward, with values worked by hand. */
#include <math.h>

#include "ctest.h"

static void add_broadcasts_a_column_against_a_row(void **state) {
  ct_err err;
  ct_tensor *a = f64_tensor(2, (int64_t[]){2, 1}, (double[]){10, 20});
  ct_tensor *b = f64_tensor(1, (int64_t[]){3}, (double[]){1, 2, 3});
  ct_tensor *c = ct_binary(CT_B_ADD, a, b, &err);
  assert_non_null(c);
  assert_int_equal(c->ndim, 2);
  assert_int_equal(c->shape[0], 2);
  assert_int_equal(c->shape[1], 3);
  assert_values(c, (double[]){11, 12, 13, 21, 22, 23}, 6, 0);
  ct_tensor *bad = f64_tensor(1, (int64_t[]){4}, (double[]){0, 0, 0, 0});
  assert_null(ct_binary(CT_B_ADD, c, bad, &err)); /* {2,3} and {4} do not broadcast */
  ct_tensor_release(bad), ct_tensor_release(c), ct_tensor_release(b), ct_tensor_release(a);
}

static void matmul_of_2x3_and_3x2(void **state) {
  ct_err err;
  ct_tensor *a = f64_tensor(2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
  ct_tensor *b = f64_tensor(2, (int64_t[]){3, 2}, (double[]){7, 8, 9, 10, 11, 12});
  ct_tensor *c = ct_matmul(a, b, &err);
  assert_non_null(c);
  /* [1 2 3; 4 5 6] [7 8; 9 10; 11 12] = [58 64; 139 154] */
  assert_values(c, (double[]){58, 64, 139, 154}, 4, 0);
  assert_null(ct_matmul(a, a, &err)); /* {2,3} @ {2,3}: inner sizes differ */
  ct_tensor_release(c), ct_tensor_release(b), ct_tensor_release(a);
}

static void softmax_rows_sum_to_one(void **state) {
  ct_err err;
  ct_tensor *x = f64_tensor(2, (int64_t[]){2, 2}, (double[]){0, 0, 0, log(3.0)});
  ct_tensor *s = ct_softmax(x, 1, false, &err);
  assert_values(s, (double[]){0.5, 0.5, 0.25, 0.75}, 4, 1e-15);
  ct_tensor_release(s), ct_tensor_release(x);
}

/* d/dx sum(x * x) = 2x, and d/dx sum(x^3) = 3x^2 accumulated into the same .grad */
static void backward_of_sums_accumulates_into_the_leaf(void **state) {
  ct_err err;
  ct_tensor *x = f64_tensor(1, (int64_t[]){3}, (double[]){1, -2, 0.5});
  x->requires_grad = true;
  ct_tensor *y = ct_binary(CT_B_MUL, x, x, &err);
  ct_tensor *s = ct_reduce(CT_R_SUM, y, -1, false, &err);
  assert_non_null(s->grad_fn);
  assert_int_equal(ct_backward(1, &s, (ct_tensor *[]){NULL}, false, false, 0, NULL, NULL, &err), 1);
  assert_non_null(x->grad);
  assert_values(x->grad, (double[]){2, -4, 1}, 3, 0);
  ct_tensor *c = ct_unary(CT_U_POW, x, 3, 0, &err);
  ct_tensor *s3 = ct_reduce(CT_R_SUM, c, -1, false, &err);
  assert_int_equal(ct_backward(1, &s3, (ct_tensor *[]){NULL}, false, false, 0, NULL, NULL, &err), 1);
  assert_values(x->grad, (double[]){2 + 3, -4 + 12, 1 + 0.75}, 3, 1e-15);
  /* the graph's saved tensors are gone after a backward without retain_graph */
  assert_int_equal(ct_backward(1, &s, (ct_tensor *[]){NULL}, false, false, 0, NULL, NULL, &err), 0);
  ct_tensor_release(s3), ct_tensor_release(c), ct_tensor_release(s), ct_tensor_release(y);
  ct_tensor_release(x);
}

static void nothing_records_with_grad_mode_off(void **state) {
  ct_err err;
  ct_tensor *x = f64_tensor(1, (int64_t[]){2}, (double[]){1, 2});
  x->requires_grad = true;
  ct_grad_enabled = false;
  ct_tensor *y = ct_binary(CT_B_MUL, x, x, &err);
  ct_grad_enabled = true;
  assert_null(y->grad_fn);
  assert_false(y->requires_grad);
  ct_tensor_release(y), ct_tensor_release(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(add_broadcasts_a_column_against_a_row),
      cmocka_unit_test(matmul_of_2x3_and_3x2),
      cmocka_unit_test(softmax_rows_sum_to_one),
      cmocka_unit_test(backward_of_sums_accumulates_into_the_leaf),
      cmocka_unit_test(nothing_records_with_grad_mode_off),
  };
  return cmocka_run_group_tests_name("ops", tests, NULL, NULL);
}
