/* crater data: seeded random permutations for DataLoader shuffling.  Its own
 * generator (splitmix64), so a loader's order depends only on its seed and epoch. */
#include "data.h"

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

ct_tensor *ct_randperm(int64_t n, uint64_t seed, int64_t base, ct_err *err) {
  if (n < 0) {
    ct_fail(err, "randperm: n must be non-negative, got %lld", (long long)n);
    return NULL;
  }
  ct_tensor *t = ct_tensor_new(CT_I64, 1, &n, err);
  if (t == NULL) return NULL;
  int64_t *p = (int64_t *)ct_data(t);
  for (int64_t i = 0; i < n; i++) p[i] = i + base;
  uint64_t s = seed;
  for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates; the modulo bias is below 2^-40 */
    int64_t j = (int64_t)(splitmix64(&s) % (uint64_t)(i + 1));
    int64_t tmp = p[i];
    p[i] = p[j];
    p[j] = tmp;
  }
  return t;
}
