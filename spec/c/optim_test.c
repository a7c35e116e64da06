/* C-level tests of two optimizer kernels, against the update rule worked by hand. */
#include <math.h>

#include "ctest.h"
#include "../../src/optim/optim.h"

/* SGD, momentum 0.9, lr 0.1, g = 1 twice: buf = 1 then 0.9 + 1 = 1.9; p = 1 - 0.1 - 0.19 */
static void sgd_momentum_two_steps(void **state) {
  double p[2] = {1, -1}, g[2] = {1, -2}, buf[2] = {0, 0};
  ct_sgd_args a = {.lr = 0.1, .momentum = 0.9, .first = true};
  ct_optim_sgd_f64(p, g, buf, 2, &a);
  a.first = false;
  ct_optim_sgd_f64(p, g, buf, 2, &a);
  assert_true(fabs(p[0] - 0.71) < 1e-15);
  assert_true(fabs(p[1] - (-1 + 0.2 + 0.38)) < 1e-15);
  assert_true(fabs(buf[0] - 1.9) < 1e-15 && fabs(buf[1] - (-3.8)) < 1e-15);
}

/* Adam's first step moves every coordinate by lr * sign(g) (up to eps): m/(1-b1) = g and
 * sqrt(v/(1-b2)) = |g|.  The second step is checked against the formula written out. */
static void adam_steps_follow_the_formula(void **state) {
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  double p[2] = {1, 2}, g[2] = {0.5, -3}, m[2] = {0, 0}, v[2] = {0, 0};
  ct_adam_args a = {.lr = lr, .beta1 = b1, .beta2 = b2, .eps = eps, .step = 1};
  ct_optim_adam_f64(p, g, m, v, NULL, 2, &a);
  assert_true(fabs(p[0] - (1 - lr * 0.5 / (0.5 + eps))) < 1e-15);
  assert_true(fabs(p[1] - (2 + lr * 3 / (3 + eps))) < 1e-15);
  double g2[2] = {1, 1}, want[2];
  for (int i = 0; i < 2; i++) {
    double m1 = (1 - b1) * g[i], v1 = (1 - b2) * g[i] * g[i]; /* after the first step */
    double mi = b1 * m1 + (1 - b1) * g2[i], vi = b2 * v1 + (1 - b2) * g2[i] * g2[i];
    want[i] = p[i] - lr / (1 - b1 * b1) * mi / (sqrt(vi) / sqrt(1 - b2 * b2) + eps);
  }
  a.step = 2;
  ct_optim_adam_f64(p, g2, m, v, NULL, 2, &a);
  for (int i = 0; i < 2; i++) assert_true(fabs(p[i] - want[i]) < 1e-14);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sgd_momentum_two_steps),
      cmocka_unit_test(adam_steps_follow_the_formula),
  };
  return cmocka_run_group_tests_name("optim", tests, NULL, NULL);
}
