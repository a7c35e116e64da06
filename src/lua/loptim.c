/* crater binding: the fused optimizer kernels of src/optim as crater.core.<name>_step.
 * Each checks its tensors (contiguous, one floating dtype, equal numel, no shared
 * storage), reads its scalars, runs one kernel and bumps the version of what it wrote.
 * The Lua classes in lua/crater/optim/ call these; the arithmetic is all in the kernels. */
#include "../optim/optim.h"
#include "lbind.h"

#define MAXARR 6

typedef struct arrays {
  ct_tensor *t[MAXARR];
  int count;
  size_t n;
  ct_dtype dt;
} arrays;

/* Reads 'count' tensor arguments starting at 1: the parameter, its gradient (true: the
 * parameter's .grad), then the state tensors; an argument whose bit is set in 'optional'
 * may be nil (its slot is NULL).  Raises "<fn>: <name> ..." unless all are contiguous, of
 * the parameter's floating dtype, of its number of elements, and on distinct storages. */
static void check_arrays(lua_State *L, const char *fn, const char *const *names, int count,
                         unsigned optional, arrays *a) {
  a->count = count;
  for (int i = 0; i < count; i++) {
    if ((optional >> i & 1u) && lua_isnoneornil(L, i + 1)) { a->t[i] = NULL; continue; }
    if (i == 1 && lua_type(L, 2) == LUA_TBOOLEAN && lua_toboolean(L, 2)) {   /* true: param's .grad */
      a->t[1] = a->t[0]->grad;
      if (a->t[1] == NULL) luaL_error(L, "%s: param has no grad", fn);
      continue;
    }
    a->t[i] = ct_lua_check(L, i + 1);
  }
  ct_tensor *p = a->t[0];
  if (p->dtype != CT_F32 && p->dtype != CT_F64)
    luaL_error(L, "%s: param must be float32 or float64, got %s", fn, ct_dtype_name(p->dtype));
  a->dt = p->dtype;
  a->n = (size_t)ct_numel(p);
  for (int i = 0; i < count; i++) {
    ct_tensor *t = a->t[i];
    if (t == NULL) continue;
    if (t->dtype != a->dt)
      luaL_error(L, "%s: %s is %s but param is %s", fn, names[i], ct_dtype_name(t->dtype),
                 ct_dtype_name(a->dt));
    if ((size_t)ct_numel(t) != a->n)
      luaL_error(L, "%s: %s has %d elements but param has %d", fn, names[i],
                 (int)ct_numel(t), (int)a->n);
    if (!ct_is_contiguous(t)) luaL_error(L, "%s: %s must be contiguous", fn, names[i]);
    for (int j = 0; j < i; j++)   /* the kernels take restrict pointers */
      if (a->t[j] != NULL && a->t[j]->storage == t->storage && a->n > 0)
        luaL_error(L, "%s: %s and %s share storage", fn, names[j], names[i]);
  }
}

/* Every array but the gradient (slot 1) is written. */
static void bump_written(arrays *a) {
  for (int i = 0; i < a->count; i++)
    if (i != 1 && a->t[i] != NULL) ct_bump(a->t[i]);
}

/* A kernel call over elements [lo, hi) of the arrays, run by ct_optim_parallel. */
typedef struct job {
  const arrays *a;
  const void *args;
} job;

#define A32(i) (j->a->t[i] ? (float *)ct_data(j->a->t[i]) + lo : NULL)
#define A64(i) (j->a->t[i] ? (double *)ct_data(j->a->t[i]) + lo : NULL)
#define RANGE3(kernel)                                                                    \
  static void kernel##_range(void *ctx, size_t lo, size_t hi) {                           \
    const job *j = ctx;                                                                   \
    if (j->a->dt == CT_F32) kernel##_f32(A32(0), A32(1), A32(2), hi - lo, j->args);       \
    else kernel##_f64(A64(0), A64(1), A64(2), hi - lo, j->args);                          \
  }
#define RANGE4(kernel)                                                                    \
  static void kernel##_range(void *ctx, size_t lo, size_t hi) {                           \
    const job *j = ctx;                                                                   \
    if (j->a->dt == CT_F32) kernel##_f32(A32(0), A32(1), A32(2), A32(3), hi - lo, j->args); \
    else kernel##_f64(A64(0), A64(1), A64(2), A64(3), hi - lo, j->args);                  \
  }
#define RANGE5(kernel)                                                                    \
  static void kernel##_range(void *ctx, size_t lo, size_t hi) {                           \
    const job *j = ctx;                                                                   \
    if (j->a->dt == CT_F32)                                                               \
      kernel##_f32(A32(0), A32(1), A32(2), A32(3), A32(4), hi - lo, j->args);             \
    else kernel##_f64(A64(0), A64(1), A64(2), A64(3), A64(4), hi - lo, j->args);          \
  }
#define RANGE6(kernel)                                                                    \
  static void kernel##_range(void *ctx, size_t lo, size_t hi) {                           \
    const job *j = ctx;                                                                   \
    if (j->a->dt == CT_F32)                                                               \
      kernel##_f32(A32(0), A32(1), A32(2), A32(3), A32(4), A32(5), hi - lo, j->args);     \
    else kernel##_f64(A64(0), A64(1), A64(2), A64(3), A64(4), A64(5), hi - lo, j->args);  \
  }
RANGE3(ct_optim_sgd)
RANGE5(ct_optim_adam)
RANGE3(ct_optim_adagrad)
RANGE5(ct_optim_rmsprop)
RANGE4(ct_optim_adadelta)
RANGE4(ct_optim_adamax)
RANGE4(ct_optim_nadam)
RANGE4(ct_optim_radam)
RANGE3(ct_optim_asgd)
RANGE4(ct_optim_rprop)
RANGE5(ct_optim_sf_adamw)
RANGE3(ct_optim_sf_sgd)
RANGE4(ct_optim_sophia)
RANGE3(ct_optim_sophia_hess)
RANGE4(ct_optim_prodigy)
RANGE3(ct_optim_lion)
RANGE3(ct_optim_lamb)
RANGE3(ct_optim_lars)
RANGE5(ct_optim_adabelief)
RANGE6(ct_optim_adan)

/* Runs the kernel over all elements (split over threads) and bumps what it wrote. */
#define RUN(kernel, a, o)                                          \
  do {                                                             \
    job j_ = {&(a), &(o)};                                         \
    ct_optim_parallel((a).n, kernel##_range, &j_);                 \
    bump_written(&(a));                                            \
  } while (0)

#define NUM(i) luaL_checknumber(L, i)
#define BOOL(i) lua_toboolean(L, i)

static int o_sgd (lua_State *L) {
  static const char *const names[] = {"param", "grad", "momentum_buffer"};
  arrays a;
  check_arrays(L, "sgd_step", names, 3, 1u << 2, &a);
  ct_sgd_args o = {.lr = NUM(4), .momentum = NUM(5), .dampening = NUM(6),
                   .weight_decay = NUM(7), .nesterov = BOOL(8), .maximize = BOOL(9),
                   .first = BOOL(10)};
  RUN(ct_optim_sgd, a, o);
  return 0;
}

static int o_adam (lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_avg_sq",
                                      "max_exp_avg_sq"};
  arrays a;
  check_arrays(L, "adam_step", names, 5, 1u << 4, &a);
  ct_adam_args o = {.lr = NUM(6), .beta1 = NUM(7), .beta2 = NUM(8), .eps = NUM(9),
                    .weight_decay = NUM(10), .step = NUM(11), .amsgrad = BOOL(12),
                    .maximize = BOOL(13), .decoupled = BOOL(14)};
  if (o.amsgrad && a.t[4] == NULL) return luaL_error(L, "adam_step: amsgrad needs max_exp_avg_sq");
  RUN(ct_optim_adam, a, o);
  return 0;
}

static int o_adagrad (lua_State *L) {
  static const char *const names[] = {"param", "grad", "sum"};
  arrays a;
  check_arrays(L, "adagrad_step", names, 3, 0, &a);
  ct_adagrad_args o = {.lr = NUM(4), .lr_decay = NUM(5), .weight_decay = NUM(6),
                       .eps = NUM(7), .step = NUM(8), .maximize = BOOL(9)};
  RUN(ct_optim_adagrad, a, o);
  return 0;
}

static int o_rmsprop (lua_State *L) {
  static const char *const names[] = {"param", "grad", "square_avg", "grad_avg",
                                      "momentum_buffer"};
  arrays a;
  check_arrays(L, "rmsprop_step", names, 5, 3u << 3, &a);
  ct_rmsprop_args o = {.lr = NUM(6), .alpha = NUM(7), .eps = NUM(8), .weight_decay = NUM(9),
                       .momentum = NUM(10), .centered = BOOL(11), .maximize = BOOL(12)};
  if (o.centered && a.t[3] == NULL) return luaL_error(L, "rmsprop_step: centered needs grad_avg");
  if (o.momentum > 0 && a.t[4] == NULL)
    return luaL_error(L, "rmsprop_step: momentum needs momentum_buffer");
  RUN(ct_optim_rmsprop, a, o);
  return 0;
}

static int o_adadelta (lua_State *L) {
  static const char *const names[] = {"param", "grad", "square_avg", "acc_delta"};
  arrays a;
  check_arrays(L, "adadelta_step", names, 4, 0, &a);
  ct_adadelta_args o = {.lr = NUM(5), .rho = NUM(6), .eps = NUM(7), .weight_decay = NUM(8),
                        .maximize = BOOL(9)};
  RUN(ct_optim_adadelta, a, o);
  return 0;
}

static int o_adamax (lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_inf"};
  arrays a;
  check_arrays(L, "adamax_step", names, 4, 0, &a);
  ct_adamax_args o = {.lr = NUM(5), .beta1 = NUM(6), .beta2 = NUM(7), .eps = NUM(8),
                      .weight_decay = NUM(9), .step = NUM(10), .maximize = BOOL(11)};
  RUN(ct_optim_adamax, a, o);
  return 0;
}

static int o_nadam (lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
  arrays a;
  check_arrays(L, "nadam_step", names, 4, 0, &a);
  ct_nadam_args o = {.lr = NUM(5), .beta1 = NUM(6), .beta2 = NUM(7), .eps = NUM(8),
                     .weight_decay = NUM(9), .step = NUM(10), .mu = NUM(11),
                     .mu_next = NUM(12), .mu_product = NUM(13), .mu_product_next = NUM(14),
                     .maximize = BOOL(15), .decoupled = BOOL(16)};
  RUN(ct_optim_nadam, a, o);
  return 0;
}

static int o_radam (lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
  arrays a;
  check_arrays(L, "radam_step", names, 4, 0, &a);
  ct_radam_args o = {.lr = NUM(5), .beta1 = NUM(6), .beta2 = NUM(7), .eps = NUM(8),
                     .weight_decay = NUM(9), .step = NUM(10), .maximize = BOOL(11),
                     .decoupled = BOOL(12)};
  RUN(ct_optim_radam, a, o);
  return 0;
}

static int o_asgd (lua_State *L) {
  static const char *const names[] = {"param", "grad", "ax"};
  arrays a;
  check_arrays(L, "asgd_step", names, 3, 0, &a);
  ct_asgd_args o = {.eta = NUM(4), .mu = NUM(5), .lambd = NUM(6), .weight_decay = NUM(7),
                    .maximize = BOOL(8)};
  RUN(ct_optim_asgd, a, o);
  return 0;
}

static int o_rprop (lua_State *L) {
  static const char *const names[] = {"param", "grad", "prev", "step_size"};
  arrays a;
  check_arrays(L, "rprop_step", names, 4, 0, &a);
  ct_rprop_args o = {.etaminus = NUM(5), .etaplus = NUM(6), .step_min = NUM(7),
                     .step_max = NUM(8), .maximize = BOOL(9)};
  RUN(ct_optim_rprop, a, o);
  return 0;
}

static int o_sf_adamw (lua_State *L) {
  static const char *const names[] = {"param", "grad", "z", "exp_avg_sq", "exp_avg"};
  arrays a;
  check_arrays(L, "sf_adamw_step", names, 5, 1u << 4, &a);
  ct_sf_adamw_args o = {.lr = NUM(6), .beta1 = NUM(7), .beta2 = NUM(8), .eps = NUM(9),
                        .weight_decay = NUM(10), .inner_momentum = NUM(11), .bc1 = NUM(12),
                        .bc2 = NUM(13), .ckp1 = NUM(14)};
  if (o.inner_momentum != 0 && a.t[4] == NULL)
    return luaL_error(L, "sf_adamw_step: inner_momentum needs exp_avg");
  RUN(ct_optim_sf_adamw, a, o);
  return 0;
}

static int o_sf_sgd (lua_State *L) {
  static const char *const names[] = {"param", "grad", "z"};
  arrays a;
  check_arrays(L, "sf_sgd_step", names, 3, 0, &a);
  ct_sf_sgd_args o = {.lr = NUM(4), .momentum = NUM(5), .weight_decay = NUM(6), .ckp1 = NUM(7)};
  RUN(ct_optim_sf_sgd, a, o);
  return 0;
}

static int o_sophia (lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg", "hessian"};
  arrays a;
  check_arrays(L, "sophia_step", names, 4, 0, &a);
  ct_sophia_args o = {.lr = NUM(5), .beta1 = NUM(6), .rho_bs = NUM(7), .weight_decay = NUM(8),
                      .maximize = BOOL(9)};
  RUN(ct_optim_sophia, a, o);
  return 0;
}

/* sophia_hessian_step(param, grad, hessian, beta2): only the hessian is written. */
static int o_sophia_hess (lua_State *L) {
  static const char *const names[] = {"param", "grad", "hessian"};
  arrays a;
  check_arrays(L, "sophia_hessian_step", names, 3, 0, &a);
  double beta2 = NUM(4);
  job j = {&a, &beta2};
  ct_optim_parallel(a.n, ct_optim_sophia_hess_range, &j);
  ct_bump(a.t[2]);
  return 0;
}

/* Two sums over the elements, split into fixed blocks (their size depends only on n), one
 * partial per block, added in block order: the same bits on any thread count. */
#define MAXBLOCKS 1024
typedef struct blocked {
  const arrays *a;
  const void *args;
  size_t n, block, align;   /* blocks start at multiples of align (0: 1) */
  double (*part)[2];
  void *extra[2];            /* arrays indexed per aligned element (Prodigy's s and p0) */
  void (*run)(const struct blocked *b, size_t lo, size_t n, double *sums);   /* one block */
} blocked;

static void blocked_range(void *ctx, size_t lo, size_t hi) {
  const blocked *b = ctx;
  for (size_t k = lo; k < hi; k++) {
    size_t off = k * b->block, len = b->n - off < b->block ? b->n - off : b->block;
    b->run(b, off, len, b->part[k]);
  }
}

static void blocked_sums(blocked *b, double *sums) {
  double part[MAXBLOCKS][2];
  size_t align = b->align ? b->align : 1, block = ((size_t)1 << 16) * align;
  if ((b->n + block - 1) / block > MAXBLOCKS) {
    block = (b->n + MAXBLOCKS - 1) / MAXBLOCKS;
    block = (block + 16 * align - 1) / (16 * align) * (16 * align);
  }
  size_t nblocks = (b->n + block - 1) / block;
  b->block = block;
  b->part = part;
  ct_parallel_blocks(nblocks, block, blocked_range, b);
  sums[0] = sums[1] = 0;
  for (size_t k = 0; k < nblocks; k++) { sums[0] += part[k][0]; sums[1] += part[k][1]; }
}

static void prodigy_block(const blocked *b, size_t off, size_t len, double *sums) {
  const arrays *a = b->a;
  const ct_prodigy_stats_args *o = b->args;
  size_t j = off / o->slice_p, j0 = o->p0_scalar ? 0 : j;   /* the block's first sliced element */
  if (a->dt == CT_F32)
    ct_optim_prodigy_stats_f32((float *)ct_data(a->t[0]) + off, (float *)ct_data(a->t[1]) + off,
                               a->t[2] ? (float *)ct_data(a->t[2]) + off : NULL, (float *)ct_data(a->t[3]) + off,
                               (float *)b->extra[0] + j, (float *)b->extra[1] + j0, len, o, sums);
  else
    ct_optim_prodigy_stats_f64((double *)ct_data(a->t[0]) + off, (double *)ct_data(a->t[1]) + off,
                               a->t[2] ? (double *)ct_data(a->t[2]) + off : NULL, (double *)ct_data(a->t[3]) + off,
                               (double *)b->extra[0] + j, (double *)b->extra[1] + j0, len, o, sums);
}

/* prodigy_stats(param, grad, exp_avg|nil, exp_avg_sq, s, p0, beta1, beta2, beta3, l2,
 * m_alpha, v_alpha, s_alpha, slice_p) -> dot, sum|s|: the statistics pass (one thread: it
 * sums).  s holds every slice_p-th element; p0 as many, or one (the reference's 0-d p0). */
static int o_prodigy_stats(lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
  arrays a;
  check_arrays(L, "prodigy_stats", names, 4, 1u << 2, &a);
  ct_tensor *s = ct_lua_check(L, 5), *p0 = ct_lua_check(L, 6);
  lua_Integer slice = luaL_checkinteger(L, 14);
  luaL_argcheck(L, slice >= 1, 14, "slice_p must be a positive integer");
  size_t ns = a.n == 0 ? 0 : (a.n - 1) / (size_t)slice + 1;
  ct_tensor *extra[2] = {s, p0};
  for (int i = 0; i < 2; i++) {
    ct_tensor *t = extra[i];
    size_t n = (size_t)ct_numel(t);
    if (t->dtype != a.dt || !ct_is_contiguous(t) || (n != ns && !(i == 1 && n == 1)))
      return luaL_error(L, "prodigy_stats: %s must be a contiguous %s tensor of %d elements",
                        i ? "p0" : "s", ct_dtype_name(a.dt), (int)ns);
    for (int k = 0; k < 4; k++)
      if (a.t[k] && a.t[k]->storage == t->storage)
        return luaL_error(L, "prodigy_stats: %s and %s share storage", names[k], i ? "p0" : "s");
  }
  if (s->storage == p0->storage) return luaL_error(L, "prodigy_stats: s and p0 share storage");
  ct_prodigy_stats_args o = {.beta1 = NUM(7), .beta2 = NUM(8), .beta3 = NUM(9), .l2 = NUM(10),
                             .m_alpha = NUM(11), .v_alpha = NUM(12), .s_alpha = NUM(13),
                             .slice_p = (size_t)slice, .p0_scalar = ct_numel(p0) == 1};
  double sums[2];
  blocked b = {.a = &a, .args = &o, .n = a.n, .align = (size_t)slice, .run = prodigy_block,
               .extra = {ct_data(s), ct_data(p0)}};
  blocked_sums(&b, sums);
  if (a.t[2]) ct_bump(a.t[2]);
  ct_bump(a.t[3]);
  ct_bump(s);
  lua_pushnumber(L, sums[0]);
  lua_pushnumber(L, sums[1]);
  return 2;
}

/* prodigy_step(param, grad, exp_avg|nil, exp_avg_sq, dlr, d, d_eps, decoupled_wd, l2):
 * the update pass; only the parameter is written. */
static int o_prodigy(lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
  arrays a;
  check_arrays(L, "prodigy_step", names, 4, 1u << 2, &a);
  ct_prodigy_args o = {.dlr = NUM(5), .d = NUM(6), .d_eps = NUM(7), .decoupled_wd = NUM(8),
                       .l2 = NUM(9)};
  job j = {&a, &o};
  ct_optim_parallel(a.n, ct_optim_prodigy_range, &j);
  ct_bump(a.t[0]);
  return 0;
}

static int o_lion(lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg"};
  arrays a;
  check_arrays(L, "lion_step", names, 3, 0, &a);
  ct_lion_args o = {.lr = NUM(4), .beta1 = NUM(5), .beta2 = NUM(6), .weight_decay = NUM(7)};
  RUN(ct_optim_lion, a, o);
  return 0;
}

/* the arrays of a one-thread pass (the sums must not depend on the thread count) */
#define P32(i) ((float *)ct_data(a.t[i]))
#define P64(i) ((double *)ct_data(a.t[i]))

static void lamb_block(const blocked *b, size_t off, size_t len, double *sums) {
  const arrays *a = b->a;
  if (a->dt == CT_F32)
    ct_optim_lamb_stats_f32((float *)ct_data(a->t[0]) + off, (float *)ct_data(a->t[1]) + off,
                            (float *)ct_data(a->t[2]) + off, (float *)ct_data(a->t[3]) + off, len, b->args, sums);
  else
    ct_optim_lamb_stats_f64((double *)ct_data(a->t[0]) + off, (double *)ct_data(a->t[1]) + off,
                            (double *)ct_data(a->t[2]) + off, (double *)ct_data(a->t[3]) + off, len, b->args, sums);
}

/* lamb_stats(param, grad, exp_avg, exp_avg_sq, beta1, beta2, eps, weight_decay)
 * -> sum p^2, sum a^2 (m and v updated) */
static int o_lamb_stats(lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
  arrays a;
  check_arrays(L, "lamb_stats", names, 4, 0, &a);
  ct_lamb_args o = {.beta1 = NUM(5), .beta2 = NUM(6), .eps = NUM(7), .weight_decay = NUM(8)};
  double sums[2];
  blocked b = {.a = &a, .args = &o, .n = a.n, .run = lamb_block};
  blocked_sums(&b, sums);
  ct_bump(a.t[2]);
  ct_bump(a.t[3]);
  lua_pushnumber(L, sums[0]);
  lua_pushnumber(L, sums[1]);
  return 2;
}

/* lamb_step(param, exp_avg, exp_avg_sq, eps, weight_decay, step): p += step * a */
static int o_lamb(lua_State *L) {
  static const char *const names[] = {"param", "exp_avg", "exp_avg_sq"};
  arrays a;
  check_arrays(L, "lamb_step", names, 3, 0, &a);
  ct_lamb_args o = {.eps = NUM(4), .weight_decay = NUM(5), .step = NUM(6)};
  job j = {&a, &o};
  ct_optim_parallel(a.n, ct_optim_lamb_range, &j);
  ct_bump(a.t[0]);
  return 0;
}

/* lars_norms(param, grad, weight_decay) -> sum p^2, sum (g + wd*p)^2 */
static int o_lars_norms(lua_State *L) {
  static const char *const names[] = {"param", "grad"};
  arrays a;
  check_arrays(L, "lars_norms", names, 2, 0, &a);
  double sums[2], wd = NUM(3);
  if (a.dt == CT_F32) ct_optim_lars_norms_f32(P32(0), P32(1), a.n, wd, sums);
  else ct_optim_lars_norms_f64(P64(0), P64(1), a.n, wd, sums);
  lua_pushnumber(L, sums[0]);
  lua_pushnumber(L, sums[1]);
  return 2;
}

/* lars_step(param, grad, mu, lr, momentum, weight_decay, q, scaled) */
static int o_lars(lua_State *L) {
  static const char *const names[] = {"param", "grad", "mu"};
  arrays a;
  check_arrays(L, "lars_step", names, 3, 0, &a);
  ct_lars_args o = {.lr = NUM(4), .momentum = NUM(5), .weight_decay = NUM(6), .q = NUM(7),
                    .scaled = BOOL(8)};
  RUN(ct_optim_lars, a, o);
  return 0;
}

/* adabelief_step(param, grad, exp_avg, exp_avg_var, max_exp_avg_var|nil, beta1, beta2, eps,
 * weight_decay, decoupled, decay, sqrt_bc2, mode, coef) */
static int o_adabelief(lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_avg_var", "max_exp_avg_var"};
  arrays a;
  check_arrays(L, "adabelief_step", names, 5, 1u << 4, &a);
  lua_Integer mode = luaL_checkinteger(L, 13);
  luaL_argcheck(L, mode >= CT_ADABELIEF_ADAM && mode <= CT_ADABELIEF_NONE, 13, "unknown mode");
  ct_adabelief_args o = {.beta1 = NUM(6), .beta2 = NUM(7), .eps = NUM(8), .weight_decay = NUM(9),
                         .decoupled = BOOL(10), .decay = NUM(11), .sqrt_bc2 = NUM(12),
                         .mode = (int)mode, .coef = NUM(14)};
  RUN(ct_optim_adabelief, a, o);
  return 0;
}

/* adan_step(param, grad, exp_avg, exp_avg_sq, exp_avg_diff, neg_pre_grad, lr, beta1, beta2,
 * beta3, eps, weight_decay, clip, bc1, bc2, sqrt_bc3, no_prox, first) */
static int o_adan(lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_avg_sq", "exp_avg_diff",
                                      "neg_pre_grad"};
  arrays a;
  check_arrays(L, "adan_step", names, 6, 0, &a);
  ct_adan_args o = {.lr = NUM(7), .beta1 = NUM(8), .beta2 = NUM(9), .beta3 = NUM(10), .eps = NUM(11),
                    .weight_decay = NUM(12), .clip = NUM(13), .bc1 = NUM(14), .bc2 = NUM(15),
                    .sqrt_bc3 = NUM(16), .no_prox = BOOL(17), .first = BOOL(18)};
  RUN(ct_optim_adan, a, o);
  return 0;
}

/* A contiguous tensor argument of dtype dt and n elements, as a data pointer. */
static void *vector_arg(lua_State *L, int idx, const char *fn, const char *name, ct_dtype dt, size_t n) {
  ct_tensor *t = ct_lua_check(L, idx);
  if (t->dtype != dt || !ct_is_contiguous(t) || (size_t)ct_numel(t) != n)
    luaL_error(L, "%s: %s must be a contiguous %s tensor of %d elements", fn, name, ct_dtype_name(dt), (int)n);
  return ct_data(t);
}

static size_t size_arg(lua_State *L, int idx) {
  lua_Integer v = luaL_checkinteger(L, idx);
  luaL_argcheck(L, v >= 0, idx, "size must be >= 0");
  return (size_t)v;
}

/* Adafactor's matrix passes, over ranges of its B*R rows (or B*C columns) that
 * ct_parallel_blocks splits among threads; each row's and column's sum keeps its order,
 * and the sum of squares is added per fixed block of rows, so the bits do not depend on
 * the thread count. */
typedef struct af_job {
  ct_dtype dt;
  void *p, *m;
  const void *g, *rf, *cf;
  void *rowmean, *colmean;
  size_t R, C, rows, rows_per_block;
  double eps1, *part;
  const ct_adafactor_args *o;
} af_job;

static void af_rowmeans(void *ctx, size_t lo, size_t hi) {
  const af_job *j = ctx;
  if (j->dt == CT_F32) ct_optim_adafactor_rowmeans_f32(j->g, j->C, lo, hi, j->eps1, j->rowmean);
  else ct_optim_adafactor_rowmeans_f64(j->g, j->C, lo, hi, j->eps1, j->rowmean);
}

static void af_colmeans(void *ctx, size_t lo, size_t hi) {
  const af_job *j = ctx;
  if (j->dt == CT_F32) ct_optim_adafactor_colmeans_f32(j->g, j->R, j->C, lo, hi, j->eps1, j->colmean);
  else ct_optim_adafactor_colmeans_f64(j->g, j->R, j->C, lo, hi, j->eps1, j->colmean);
}

static double af_rows(const af_job *j, void *p, size_t lo, size_t hi) {
  return j->dt == CT_F32
    ? ct_optim_adafactor_factored_f32(p, j->g, j->m, j->rf, j->cf, j->R, j->C, lo, hi, j->o)
    : ct_optim_adafactor_factored_f64(p, j->g, j->m, j->rf, j->cf, j->R, j->C, lo, hi, j->o);
}

static void af_write(void *ctx, size_t lo, size_t hi) { af_rows(ctx, ((const af_job *)ctx)->p, lo, hi); }

static void af_squares(void *ctx, size_t lo, size_t hi) {   /* blocks [lo, hi) of rows */
  const af_job *j = ctx;
  for (size_t k = lo; k < hi; k++) {
    size_t r0 = k * j->rows_per_block, r1 = r0 + j->rows_per_block < j->rows ? r0 + j->rows_per_block : j->rows;
    j->part[k] = af_rows(j, NULL, r0, r1);
  }
}

/* adafactor_means(param, grad, B, R, C, eps1, rowmean, colmean): the means of g^2 + eps1
 * over each row and each column of the B matrices. */
static int o_adafactor_means(lua_State *L) {
  static const char *const names[] = {"param", "grad"};
  arrays a;
  check_arrays(L, "adafactor_means", names, 2, 0, &a);
  size_t B = size_arg(L, 3), R = size_arg(L, 4), C = size_arg(L, 5);
  if (B * R * C != a.n) return luaL_error(L, "adafactor_means: B*R*C is not the parameter's size");
  af_job j = {.dt = a.dt, .g = ct_data(a.t[1]), .R = R, .C = C, .eps1 = NUM(6),
              .rowmean = vector_arg(L, 7, "adafactor_means", "rowmean", a.dt, B * R),
              .colmean = vector_arg(L, 8, "adafactor_means", "colmean", a.dt, B * C)};
  if (ct_get_num_threads() == 1) {   /* one pass: g read once */
    if (a.dt == CT_F32) ct_optim_adafactor_means_f32(j.g, B, R, C, j.eps1, j.rowmean, j.colmean);
    else ct_optim_adafactor_means_f64(j.g, B, R, C, j.eps1, j.rowmean, j.colmean);
  } else {
    ct_parallel_blocks(B * R, C, af_rowmeans, &j);
    ct_parallel_blocks(B * C, R, af_colmeans, &j);
  }
  return 0;
}

/* adafactor_factors(row, col, rowmean, colmean, rf, cf, B, R, C, beta2t): the factors'
 * EMAs (row, col written) and the step's factors rf, cf. */
static int o_adafactor_factors(lua_State *L) {
  ct_tensor *row = ct_lua_check(L, 1);
  ct_dtype dt = row->dtype;
  if (dt != CT_F32 && dt != CT_F64) return luaL_error(L, "adafactor_factors: row must be float32 or float64");
  size_t B = size_arg(L, 7), R = size_arg(L, 8), C = size_arg(L, 9);
  static const char *const what[] = {"row", "col", "rowmean", "colmean", "rf", "cf"};
  void *p[6];
  for (int i = 0; i < 6; i++) {
    p[i] = vector_arg(L, i + 1, "adafactor_factors", what[i], dt, (i % 2 == 0 ? R : C) * B);
    for (int j = 0; j < i; j++)
      if (ct_lua_check(L, j + 1)->storage == ct_lua_check(L, i + 1)->storage)
        return luaL_error(L, "adafactor_factors: %s and %s share storage", what[j], what[i]);
  }
  if (dt == CT_F32) ct_optim_adafactor_factors_f32(p[0], p[1], p[2], p[3], p[4], p[5], B, R, C, NUM(10));
  else ct_optim_adafactor_factors_f64(p[0], p[1], p[2], p[3], p[4], p[5], B, R, C, NUM(10));
  ct_bump(ct_lua_check(L, 1));
  ct_bump(ct_lua_check(L, 2));
  return 0;
}

/* adafactor_factored(param, grad, exp_avg|nil, rf, cf, B, R, C, write, den, lr, beta1, wd_lr)
 * -> sum u^2 when write is false (nothing written), else the step. */
static int o_adafactor_factored(lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg"};
  arrays a;
  check_arrays(L, "adafactor_factored", names, 3, 1u << 2, &a);
  size_t B = size_arg(L, 6), R = size_arg(L, 7), C = size_arg(L, 8);
  if (B * R * C != a.n) return luaL_error(L, "adafactor_factored: B*R*C is not the parameter's size");
  bool write = BOOL(9);
  ct_adafactor_args o = {.den = NUM(10), .lr = NUM(11), .beta1 = NUM(12), .wd_lr = NUM(13)};
  af_job j = {.dt = a.dt, .p = ct_data(a.t[0]), .g = ct_data(a.t[1]), .m = a.t[2] ? ct_data(a.t[2]) : NULL,
              .rf = vector_arg(L, 4, "adafactor_factored", "rf", a.dt, B * R),
              .cf = vector_arg(L, 5, "adafactor_factored", "cf", a.dt, B * C), .R = R, .C = C, .rows = B * R,
              .o = &o};
  double ss = 0;
  if (write) {
    ct_parallel_blocks(j.rows, C, af_write, &j);
    bump_written(&a);
  } else {   /* blocks of about 64K elements, at most MAXBLOCKS of them */
    double part[MAXBLOCKS];
    size_t per = ((size_t)1 << 16) / (C > 0 ? C : 1);
    j.rows_per_block = per > 0 ? per : 1;
    if ((j.rows + j.rows_per_block - 1) / j.rows_per_block > MAXBLOCKS)
      j.rows_per_block = (j.rows + MAXBLOCKS - 1) / MAXBLOCKS;
    size_t nblocks = (j.rows + j.rows_per_block - 1) / j.rows_per_block;
    j.part = part;
    ct_parallel_blocks(nblocks, j.rows_per_block * C, af_squares, &j);
    for (size_t k = 0; k < nblocks; k++) ss += part[k];
  }
  lua_pushnumber(L, ss);
  return 1;
}

/* adafactor_vector(param, grad, exp_avg|nil, exp_avg_sq, write, beta2t, eps1, den, lr, beta1,
 * wd_lr) -> sum u^2 (write false: v updated), or the step (write true). */
static int o_adafactor_vector(lua_State *L) {
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
  arrays a;
  check_arrays(L, "adafactor_vector", names, 4, 1u << 2, &a);
  bool write = BOOL(5);
  ct_adafactor_args o = {.beta2t = NUM(6), .eps1 = NUM(7), .den = NUM(8), .lr = NUM(9), .beta1 = NUM(10),
                         .wd_lr = NUM(11)};
  double ss = a.dt == CT_F32
    ? ct_optim_adafactor_vector_f32(write ? P32(0) : NULL, P32(1), a.t[2] ? P32(2) : NULL, P32(3), a.n, &o)
    : ct_optim_adafactor_vector_f64(write ? P64(0) : NULL, P64(1), a.t[2] ? P64(2) : NULL, P64(3), a.n, &o);
  if (write) { ct_bump(a.t[0]); if (a.t[2]) ct_bump(a.t[2]); }
  else ct_bump(a.t[3]);
  lua_pushnumber(L, ss);
  return 1;
}

/* muon_step(param, grad, momentum_buffer, x, y, A, B, rows, lr, weight_decay, momentum,
 * scale, steps): the param viewed as rows x (numel/rows); x, y, A and B are the
 * Newton-Schulz workspaces (the Lua class keeps them per parameter). */
static int o_muon(lua_State *L) {
  static const char *const names[] = {"param", "grad", "momentum_buffer"};
  arrays a;
  check_arrays(L, "muon_step", names, 3, 0, &a);
  lua_Integer rows = luaL_checkinteger(L, 8);
  if (rows < 1 || a.n == 0 || a.n % (size_t)rows != 0)
    luaL_error(L, "muon_step: rows %I does not divide the param's %d elements", rows, (int)a.n);
  size_t r = (size_t)rows, c = a.n / r, k = r < c ? r : c;
  if (r > INT32_MAX || c > INT32_MAX)
    luaL_error(L, "muon_step: a %dx%d matrix passes BLAS's int sizes", (int)r, (int)c);
  static const char *const ws[] = {"x", "y", "A", "B"};
  ct_tensor *w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = ct_lua_check(L, 4 + i);
    size_t need = i < 2 ? a.n : k * k;
    if (w[i]->dtype != a.dt || !ct_is_contiguous(w[i]) || (size_t)ct_numel(w[i]) != need)
      luaL_error(L, "muon_step: workspace %s must be a contiguous %s tensor of %d elements", ws[i],
                 ct_dtype_name(a.dt), (int)need);
    for (int j = 0; j < 3; j++)
      if (w[i]->storage == a.t[j]->storage) luaL_error(L, "muon_step: workspace %s shares storage with %s", ws[i], names[j]);
    for (int j = 0; j < i; j++)
      if (w[i]->storage == w[j]->storage) luaL_error(L, "muon_step: workspaces %s and %s share storage", ws[j], ws[i]);
  }
  lua_Integer steps = luaL_checkinteger(L, 13);
  if (steps < 0 || steps > 100) luaL_error(L, "muon_step: steps must be in [0, 100], got %I", steps);
  ct_muon_args o = {.lr = NUM(9), .weight_decay = NUM(10), .momentum = NUM(11), .scale = NUM(12),
                    .steps = (int)steps};
  if (a.dt == CT_F32)
    ct_optim_muon_f32(P32(0), P32(1), P32(2), (float *)ct_data(w[0]), (float *)ct_data(w[1]),
                      (float *)ct_data(w[2]), (float *)ct_data(w[3]), r, c, &o);
  else
    ct_optim_muon_f64(P64(0), P64(1), P64(2), (double *)ct_data(w[0]), (double *)ct_data(w[1]),
                      (double *)ct_data(w[2]), (double *)ct_data(w[3]), r, c, &o);
  bump_written(&a);
  return 0;
}

/* The sum of squares in fixed blocks of 64K elements (at most MAXBLOCKS), split over the
 * threads, the partials added in block order: the same bits on any thread count. */
typedef struct sumsq_job {
  const void *x;
  ct_dtype dt;
  size_t n, block;
  double *part;
} sumsq_job;

static void sumsq_blocks(void *ctx, size_t lo, size_t hi) {
  const sumsq_job *j = ctx;
  for (size_t k = lo; k < hi; k++) {
    size_t off = k * j->block, len = j->n - off < j->block ? j->n - off : j->block;
    j->part[k] = j->dt == CT_F32 ? ct_optim_sumsq_f32((const float *)j->x + off, len)
                                 : ct_optim_sumsq_f64((const double *)j->x + off, len);
  }
}

/* sum_squares(t[, true]): sum of the squares of t (contiguous float), or with true of
 * t's .grad, read without making a box for it. */
static int o_sum_squares(lua_State *L) {
  ct_tensor *t = ct_lua_check(L, 1);
  if (lua_toboolean(L, 2) && (t = t->grad) == NULL) return luaL_error(L, "sum_squares: tensor has no grad");
  if ((t->dtype != CT_F32 && t->dtype != CT_F64) || !ct_is_contiguous(t))
    return luaL_error(L, "sum_squares: tensor must be contiguous float32 or float64, got %s%s",
                      ct_is_contiguous(t) ? "" : "non-contiguous ", ct_dtype_name(t->dtype));
  double part[MAXBLOCKS], ss = 0;
  sumsq_job j = {.x = ct_data(t), .dt = t->dtype, .n = (size_t)ct_numel(t), .block = (size_t)1 << 16, .part = part};
  if ((j.n + j.block - 1) / j.block > MAXBLOCKS) j.block = (j.n + MAXBLOCKS - 1) / MAXBLOCKS;
  size_t nblocks = (j.n + j.block - 1) / j.block;
  ct_parallel_blocks(nblocks, j.block, sumsq_blocks, &j);
  for (size_t k = 0; k < nblocks; k++) ss += part[k];
  lua_pushnumber(L, ss);
  return 1;
}

/* ---- the per-step plumbing of Optimizer:step and zero_grad (lua/crater/optim/optimizer.lua) ---- */

/* core.checked_grad(p, boxed) -> the gradient of p (a new box), or true instead when
 * boxed is false; false when p has none; nil when its shape or dtype is not p's.
 * A box costs more than the fused update of a small parameter, and the kernels read
 * p.grad themselves when given true, so the built-in optimizers make none. */
static int o_checked_grad(lua_State *L) {
  ct_tensor *p = ct_lua_check(L, 1), *g = p->grad;
  if (g == NULL) lua_pushboolean(L, 0);
  else if (g->dtype != p->dtype || !ct_same_shape(g, p)) lua_pushnil(L);
  else if (!lua_toboolean(L, 2)) lua_pushboolean(L, 1);
  else {
    ct_tensor **box = ct_lua_newbox(L);
    ct_tensor_retain(g);
    *box = g;
  }
  return 1;
}

/* core.clear_grads(groups): every parameter's .grad = nil (zero_grad's default). */
static int o_clear_grads(lua_State *L) {
  lua_Integer ngroups = ct_lua_list(L, 1, LUA_MAXINTEGER, "zero_grad", "the param groups");
  for (lua_Integer gi = 1; gi <= ngroups; gi++) {
    lua_geti(L, 1, gi);
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_getfield(L, -1, "params");
    lua_Integer np = ct_lua_list(L, -1, LUA_MAXINTEGER, "zero_grad", "a group's params");
    for (lua_Integer i = 1; i <= np; i++) {
      lua_geti(L, -1, i);
      ct_tensor *p = ct_lua_check(L, -1);
      ct_tensor_release(p->grad);
      p->grad = NULL;
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  return 0;
}

static const luaL_Reg optim_funcs[] = {
  {"checked_grad", o_checked_grad},
  {"clear_grads", o_clear_grads},
  {"sgd_step", o_sgd},
  {"adam_step", o_adam},
  {"adagrad_step", o_adagrad},
  {"rmsprop_step", o_rmsprop},
  {"adadelta_step", o_adadelta},
  {"adamax_step", o_adamax},
  {"nadam_step", o_nadam},
  {"radam_step", o_radam},
  {"asgd_step", o_asgd},
  {"rprop_step", o_rprop},
  {"sf_adamw_step", o_sf_adamw},
  {"sf_sgd_step", o_sf_sgd},
  {"sophia_step", o_sophia},
  {"sophia_hessian_step", o_sophia_hess},
  {"prodigy_stats", o_prodigy_stats},
  {"prodigy_step", o_prodigy},
  {"lion_step", o_lion},
  {"lamb_stats", o_lamb_stats},
  {"lamb_step", o_lamb},
  {"lars_norms", o_lars_norms},
  {"lars_step", o_lars},
  {"adabelief_step", o_adabelief},
  {"adan_step", o_adan},
  {"muon_step", o_muon},
  {"sum_squares", o_sum_squares},
  {"adafactor_means", o_adafactor_means},
  {"adafactor_factored", o_adafactor_factored},
  {"adafactor_factors", o_adafactor_factors},
  {"adafactor_vector", o_adafactor_vector},
  {NULL, NULL}
};

void ct_lua_open_optim(lua_State *L) { luaL_setfuncs(L, optim_funcs, 0); }
