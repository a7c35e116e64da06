/* crater optimizers: one fused update kernel per optimizer, on raw contiguous arrays.
 * Each kernel reads and writes its arrays in one pass, allocates nothing, and follows
 * PyTorch 1.13's single-tensor arithmetic order (torch/optim/<name>.py), so float64
 * results agree with PyTorch to rounding.  The f32 kernels do the same arithmetic in
 * float, with the double hyper-parameters rounded to float as PyTorch does.
 * Arrays are borrowed and must not overlap; n is their common length.  NaN and Inf in
 * a gradient flow through the formulas exactly as in PyTorch (nothing is checked). */
#ifndef CT_OPTIM_H
#define CT_OPTIM_H

#include <stdbool.h>
#include <stddef.h>

/* SGD: d = g (+ wd*p); buf = momentum*buf + (1-dampening)*d (buf = d when 'first');
 * d = nesterov ? d + momentum*buf : buf; p -= lr*d.  buf is NULL when momentum == 0. */
typedef struct ct_sgd_args {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize, first;
} ct_sgd_args;
void ct_optim_sgd_f32(float *restrict p, const float *restrict g, float *restrict buf, size_t n,
                      const ct_sgd_args *a);
void ct_optim_sgd_f64(double *restrict p, const double *restrict g, double *restrict buf, size_t n,
                      const ct_sgd_args *a);

/* Adam and AdamW ('decoupled': p *= 1 - lr*wd instead of g += wd*p).  'step' counts
 * from 1.  vmax (max_exp_avg_sq) is NULL unless amsgrad. */
typedef struct ct_adam_args {
  double lr, beta1, beta2, eps, weight_decay, step;
  bool amsgrad, maximize, decoupled;
} ct_adam_args;
void ct_optim_adam_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                       float *restrict vmax, size_t n, const ct_adam_args *a);
void ct_optim_adam_f64(double *restrict p, const double *restrict g, double *restrict m, double *restrict v,
                       double *restrict vmax, size_t n, const ct_adam_args *a);

/* Adagrad: sum += g*g; p -= clr * g / (sqrt(sum) + eps), clr = lr / (1 + (step-1)*lr_decay). */
typedef struct ct_adagrad_args {
  double lr, lr_decay, weight_decay, eps, step;
  bool maximize;
} ct_adagrad_args;
void ct_optim_adagrad_f32(float *restrict p, const float *restrict g, float *restrict sum, size_t n,
                          const ct_adagrad_args *a);
void ct_optim_adagrad_f64(double *restrict p, const double *restrict g, double *restrict sum, size_t n,
                          const ct_adagrad_args *a);

/* RMSprop: sq = alpha*sq + (1-alpha)*g*g; centered: ga = alpha*ga + (1-alpha)*g and
 * avg = sqrt(sq - ga*ga) + eps, else sqrt(sq) + eps; momentum > 0: buf = momentum*buf +
 * g/avg, p -= lr*buf; else p -= lr*g/avg.  ga is NULL unless centered, buf unless momentum > 0. */
typedef struct ct_rmsprop_args {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered, maximize;
} ct_rmsprop_args;
void ct_optim_rmsprop_f32(float *restrict p, const float *restrict g, float *restrict sq, float *restrict ga,
                          float *restrict buf, size_t n, const ct_rmsprop_args *a);
void ct_optim_rmsprop_f64(double *restrict p, const double *restrict g, double *restrict sq,
                          double *restrict ga, double *restrict buf, size_t n, const ct_rmsprop_args *a);

/* Adadelta: sq = rho*sq + (1-rho)*g*g; d = sqrt(acc+eps)/sqrt(sq+eps)*g;
 * acc = rho*acc + (1-rho)*d*d; p -= lr*d. */
typedef struct ct_adadelta_args {
  double lr, rho, eps, weight_decay;
  bool maximize;
} ct_adadelta_args;
void ct_optim_adadelta_f32(float *restrict p, const float *restrict g, float *restrict sq,
                           float *restrict acc, size_t n, const ct_adadelta_args *a);
void ct_optim_adadelta_f64(double *restrict p, const double *restrict g, double *restrict sq,
                           double *restrict acc, size_t n, const ct_adadelta_args *a);

/* Adamax: m = b1*m + (1-b1)*g; u = max(b2*u, |g| + eps); p -= lr/(1-b1^step) * m/u. */
typedef struct ct_adamax_args {
  double lr, beta1, beta2, eps, weight_decay, step;
  bool maximize;
} ct_adamax_args;
void ct_optim_adamax_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict u,
                         size_t n, const ct_adamax_args *a);
void ct_optim_adamax_f64(double *restrict p, const double *restrict g, double *restrict m, double *restrict u,
                         size_t n, const ct_adamax_args *a);

/* NAdam: m, v as Adam; denom = sqrt(v/(1-b2^step)) + eps;
 * p -= lr*(1-mu)/(1-mu_product) * g/denom + lr*mu_next/(1-mu_product_next) * m/denom.
 * The caller keeps the momentum schedule (mu, mu_next and the products). */
typedef struct ct_nadam_args {
  double lr, beta1, beta2, eps, weight_decay, step;
  double mu, mu_next, mu_product, mu_product_next;
  bool maximize, decoupled;
} ct_nadam_args;
void ct_optim_nadam_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                        size_t n, const ct_nadam_args *a);
void ct_optim_nadam_f64(double *restrict p, const double *restrict g, double *restrict m, double *restrict v,
                        size_t n, const ct_nadam_args *a);

/* RAdam: m, v as Adam; while the variance is tractable (rho_t > 5)
 * p -= lr * m/(1-b1^step) * rect * sqrt(1-b2^step)/(sqrt(v)+eps), else p -= lr * m/(1-b1^step). */
typedef struct ct_radam_args {
  double lr, beta1, beta2, eps, weight_decay, step;
  bool maximize, decoupled;
} ct_radam_args;
void ct_optim_radam_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                        size_t n, const ct_radam_args *a);
void ct_optim_radam_f64(double *restrict p, const double *restrict g, double *restrict m, double *restrict v,
                        size_t n, const ct_radam_args *a);

/* ASGD: p = p*(1 - lambd*eta) - eta*g; ax += mu*(p - ax) (ax = p when mu == 1).
 * The caller keeps eta and mu (PyTorch rounds both to float32). */
typedef struct ct_asgd_args {
  double eta, mu, lambd, weight_decay;
  bool maximize;
} ct_asgd_args;
void ct_optim_asgd_f32(float *restrict p, const float *restrict g, float *restrict ax, size_t n,
                       const ct_asgd_args *a);
void ct_optim_asgd_f64(double *restrict p, const double *restrict g, double *restrict ax, size_t n,
                       const ct_asgd_args *a);

/* Rprop: s = sign(g*prev) mapped to etaplus/etaminus/1; step = clamp(step*s, min, max);
 * where s == etaminus the gradient counts as 0; p -= sign(g)*step; prev = g. */
typedef struct ct_rprop_args {
  double etaminus, etaplus, step_min, step_max;
  bool maximize;
} ct_rprop_args;
void ct_optim_rprop_f32(float *restrict p, const float *restrict g, float *restrict prev,
                        float *restrict step, size_t n, const ct_rprop_args *a);
void ct_optim_rprop_f64(double *restrict p, const double *restrict g, double *restrict prev,
                        double *restrict step, size_t n, const ct_rprop_args *a);

/* Schedule-free AdamW (facebookresearch/schedule_free, adamw_schedulefree.py) on the
 * training point y = p, with z the SGD sequence and v the second moment:
 *   v = b2*v + (1-b2)*g*g;  u = (m/bc1 or g) / (sqrt(v/bc2) + eps)  [m = im*m + (1-im)*g]
 *   u += wd*y;  y = lerp(y, z, ckp1);  y += lr*(b1*(1-ckp1) - 1)*u;  z -= lr*u.
 * The caller keeps the schedule (lr after warmup, ckp1, bc1, bc2); m is NULL unless
 * inner_momentum != 0. */
typedef struct ct_sf_adamw_args {
  double lr, beta1, beta2, eps, weight_decay, inner_momentum, bc1, bc2, ckp1;
} ct_sf_adamw_args;
void ct_optim_sf_adamw_f32(float *restrict y, const float *restrict g, float *restrict z, float *restrict v,
                           float *restrict m, size_t n, const ct_sf_adamw_args *a);
void ct_optim_sf_adamw_f64(double *restrict y, const double *restrict g, double *restrict z,
                           double *restrict v, double *restrict m, size_t n, const ct_sf_adamw_args *a);

/* Schedule-free SGD (sgd_schedulefree.py): u = g + wd*y; y = lerp(y, z, ckp1);
 * y += lr*(momentum*(1-ckp1) - 1)*u; z -= lr*u. */
typedef struct ct_sf_sgd_args {
  double lr, momentum, weight_decay, ckp1;
} ct_sf_sgd_args;
void ct_optim_sf_sgd_f32(float *restrict y, const float *restrict g, float *restrict z, size_t n,
                         const ct_sf_sgd_args *a);
void ct_optim_sf_sgd_f64(double *restrict y, const double *restrict g, double *restrict z, size_t n,
                         const ct_sf_sgd_args *a);

/* SophiaG (Liuhong99/Sophia sophia.py): p *= 1 - lr*wd; m = b1*m + (1-b1)*g;
 * p -= lr * sign(m) * min(|m| / (rho*bs*h + 1e-15), 1).  hess: h = b2*h + (1-b2)*g*g. */
typedef struct ct_sophia_args {
  double lr, beta1, beta2, rho_bs, weight_decay; /* beta2: the Hessian's EMA only */
  bool maximize;
} ct_sophia_args;
void ct_optim_sophia_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict h,
                         size_t n, const ct_sophia_args *a);
void ct_optim_sophia_f64(double *restrict p, const double *restrict g, double *restrict m, double *restrict h,
                         size_t n, const ct_sophia_args *a);
void ct_optim_sophia_hess_f32(float *restrict unused, const float *restrict g, float *restrict h, size_t n,
                              const ct_sophia_args *a);
void ct_optim_sophia_hess_f64(double *restrict unused, const double *restrict g, double *restrict h, size_t n,
                              const ct_sophia_args *a);

/* Prodigy (konstmish/prodigy prodigy.py).  Statistics pass, g' = g + l2*p (l2: the
 * coupled weight decay, else 0): m = b1*m + m_alpha*g' (m NULL when beta1 == 0),
 * v = b2*v + v_alpha*g'*g', and on every slice_p-th element j: s = b3*s + s_alpha*g',
 * sums[0] += g' * (p0 - p), sums[1] += |s| (p0 one element when p0_scalar).  Update
 * pass: p += decoupled_wd*p, then p -= dlr*m/(sqrt(v) + d_eps) (m NULL: dlr*d*g'). */
typedef struct ct_prodigy_stats_args {
  double beta1, beta2, beta3, l2, m_alpha, v_alpha, s_alpha;
  size_t slice_p;
  bool p0_scalar;
} ct_prodigy_stats_args;
void ct_optim_prodigy_stats_f32(const float *restrict p, const float *restrict g, float *restrict m,
                                float *restrict v, float *restrict s, const float *restrict p0, size_t n,
                                const ct_prodigy_stats_args *a, double *sums);
void ct_optim_prodigy_stats_f64(const double *restrict p, const double *restrict g, double *restrict m,
                                double *restrict v, double *restrict s, const double *restrict p0, size_t n,
                                const ct_prodigy_stats_args *a, double *sums);
typedef struct ct_prodigy_args {
  double dlr, d, d_eps, decoupled_wd, l2;
  double beta1, beta2; /* the group's betas: m is NULL when beta1 == 0 */
} ct_prodigy_args;
void ct_optim_prodigy_f32(float *restrict p, const float *restrict g, const float *restrict m,
                          const float *restrict v, size_t n, const ct_prodigy_args *a);
void ct_optim_prodigy_f64(double *restrict p, const double *restrict g, const double *restrict m,
                          const double *restrict v, size_t n, const ct_prodigy_args *a);

/* Lion (google/automl lion_pytorch.py): p = p*(1 - lr*wd) - lr*sign(b1*m + (1-b1)*g);
 * m = b2*m + (1-b2)*g. */
typedef struct ct_lion_args {
  double lr, beta1, beta2, weight_decay;
} ct_lion_args;
void ct_optim_lion_f32(float *restrict p, const float *restrict g, float *restrict m, size_t n,
                       const ct_lion_args *a);
void ct_optim_lion_f64(double *restrict p, const double *restrict g, double *restrict m, size_t n,
                       const ct_lion_args *a);

/* LAMB (cybertronai/pytorch-lamb lamb.py).  Stats: m = b1*m + (1-b1)*g, v = b2*v +
 * (1-b2)*g*g, sums[0] = sum p^2, sums[1] = sum a^2 with a = m/(sqrt(v) + eps) + wd*p.
 * Step: p += step*a (step = -lr*trust_ratio). */
typedef struct ct_lamb_args {
  double beta1, beta2, eps, weight_decay, step;
} ct_lamb_args;
void ct_optim_lamb_stats_f32(const float *restrict p, const float *restrict g, float *restrict m,
                             float *restrict v, size_t n, const ct_lamb_args *a, double *sums);
void ct_optim_lamb_stats_f64(const double *restrict p, const double *restrict g, double *restrict m,
                             double *restrict v, size_t n, const ct_lamb_args *a, double *sums);
void ct_optim_lamb_f32(float *restrict p, const float *restrict m, const float *restrict v, size_t n,
                       const ct_lamb_args *a);
void ct_optim_lamb_f64(double *restrict p, const double *restrict m, const double *restrict v, size_t n,
                       const ct_lamb_args *a);

/* LARS (facebookresearch/moco-v3 moco/optimizer.py).  Norms: sums[0] = sum p^2,
 * sums[1] = sum (g + wd*p)^2.  Step: d = scaled ? (g + wd*p)*q : g; mu = momentum*mu + d;
 * p -= lr*mu. */
typedef struct ct_lars_args {
  double lr, momentum, weight_decay, q;
  bool scaled;
} ct_lars_args;
void ct_optim_lars_norms_f32(const float *restrict p, const float *restrict g, size_t n, double wd,
                             double *sums);
void ct_optim_lars_norms_f64(const double *restrict p, const double *restrict g, size_t n, double wd,
                             double *sums);
void ct_optim_lars_f32(float *restrict p, const float *restrict g, float *restrict mu, size_t n,
                       const ct_lars_args *a);
void ct_optim_lars_f64(double *restrict p, const double *restrict g, double *restrict mu, size_t n,
                       const ct_lars_args *a);

/* AdaBelief (adabelief_pytorch 0.2.1): p *= decay (decoupled) or g += wd*p;
 * m = b1*m + (1-b1)*g; s = b2*s + (1-b2)*(g-m)^2 + eps; smax = max(smax, s) (amsgrad,
 * else NULL); then by mode: ADAM p += coef*m/(sqrt(s or smax)/sqrt_bc2 + eps),
 * RECTIFIED p += coef*m/(sqrt(s) + eps), SGD p += coef*m, NONE nothing. */
enum { CT_ADABELIEF_ADAM, CT_ADABELIEF_RECTIFIED, CT_ADABELIEF_SGD, CT_ADABELIEF_NONE };
typedef struct ct_adabelief_args {
  double beta1, beta2, eps, weight_decay, decay, sqrt_bc2, coef;
  int mode;
  bool decoupled, amsgrad; /* amsgrad: smax is given */
} ct_adabelief_args;
void ct_optim_adabelief_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict s,
                            float *restrict smax, size_t n, const ct_adabelief_args *a);
void ct_optim_adabelief_f64(double *restrict p, const double *restrict g, double *restrict m,
                            double *restrict s, double *restrict smax, size_t n, const ct_adabelief_args *a);

/* Adan (sail-sg/Adan adan.py): g = clip*g; x = g - g_prev (g_prev = clip*g when first);
 * m = b1*m + (1-b1)*g; d = b2*d + (1-b2)*x; x = g + b2*x; v = b3*v + (1-b3)*x*x;
 * p -= lr/bc1 * m/(sqrt(v)/sqrt_bc3 + eps) + lr*b2/bc2 * d/(...), with the decay
 * p *= 1 - lr*wd before (no_prox) or p /= 1 + lr*wd after; neg = -g. */
typedef struct ct_adan_args {
  double lr, beta1, beta2, beta3, eps, weight_decay, clip, bc1, bc2, sqrt_bc3;
  bool no_prox, first;
} ct_adan_args;
void ct_optim_adan_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                       float *restrict d, float *restrict neg, size_t n, const ct_adan_args *a);
void ct_optim_adan_f64(double *restrict p, const double *restrict g, double *restrict m, double *restrict v,
                       double *restrict d, double *restrict neg, size_t n, const ct_adan_args *a);

/* Adafactor (huggingface/transformers optimization.py): see src/optim/adafactor.c.  den
 * is max(1, RMS(u)/clip_threshold); m is NULL without beta1; wd_lr = weight_decay*lr. */
typedef struct ct_adafactor_args {
  double beta2t, eps1, den, lr, beta1, wd_lr;
} ct_adafactor_args;
void ct_optim_adafactor_means_f32(const float *restrict g, size_t B, size_t R, size_t C, double eps1,
                                  float *restrict rowmean, float *restrict colmean);
void ct_optim_adafactor_means_f64(const double *restrict g, size_t B, size_t R, size_t C, double eps1,
                                  double *restrict rowmean, double *restrict colmean);
void ct_optim_adafactor_rowmeans_f32(const float *restrict g, size_t C, size_t lo, size_t hi, double eps1,
                                     float *restrict rowmean);
void ct_optim_adafactor_rowmeans_f64(const double *restrict g, size_t C, size_t lo, size_t hi, double eps1,
                                     double *restrict rowmean);
void ct_optim_adafactor_colmeans_f32(const float *restrict g, size_t R, size_t C, size_t lo, size_t hi,
                                     double eps1, float *restrict colmean);
void ct_optim_adafactor_colmeans_f64(const double *restrict g, size_t R, size_t C, size_t lo, size_t hi,
                                     double eps1, double *restrict colmean);
double ct_optim_adafactor_factored_f32(float *restrict p, const float *restrict g, float *restrict m,
                                       const float *restrict rf, const float *restrict cf, size_t R, size_t C,
                                       size_t lo, size_t hi, const ct_adafactor_args *a);
double ct_optim_adafactor_factored_f64(double *restrict p, const double *restrict g, double *restrict m,
                                       const double *restrict rf, const double *restrict cf, size_t R,
                                       size_t C, size_t lo, size_t hi, const ct_adafactor_args *a);
void ct_optim_adafactor_factors_f32(float *restrict row, float *restrict col, const float *restrict rowmean,
                                    const float *restrict colmean, float *restrict rf, float *restrict cf,
                                    size_t B, size_t R, size_t C, double beta2t);
void ct_optim_adafactor_factors_f64(double *restrict row, double *restrict col,
                                    const double *restrict rowmean, const double *restrict colmean,
                                    double *restrict rf, double *restrict cf, size_t B, size_t R, size_t C,
                                    double beta2t);
double ct_optim_adafactor_vector_f32(float *restrict p, const float *restrict g, float *restrict m,
                                     float *restrict v, size_t n, const ct_adafactor_args *a);
double ct_optim_adafactor_vector_f64(double *restrict p, const double *restrict g, double *restrict m,
                                     double *restrict v, size_t n, const ct_adafactor_args *a);

/* Muon on a parameter viewed as a rows x cols matrix: m = lerp(m, g, 1-momentum), the
 * Nesterov update lerp(g, m, momentum) orthogonalized by 'steps' quintic Newton-Schulz
 * iterations (on its transpose when rows > cols), then p = p*(1 - lr*wd) - lr*scale*O.
 * x and y hold rows*cols elements, A and B min(rows, cols)^2; x and y may not alias p, g
 * or m.  The products go through OpenBLAS on its thread count. */
typedef struct ct_muon_args {
  double lr, weight_decay, momentum, scale;
  int steps;
} ct_muon_args;
void ct_optim_muon_f32(float *restrict p, const float *restrict g, float *restrict m, float *x, float *y,
                       float *restrict A, float *restrict B, size_t rows, size_t cols, const ct_muon_args *o);
void ct_optim_muon_f64(double *restrict p, const double *restrict g, double *restrict m, double *x, double *y,
                       double *restrict A, double *restrict B, size_t rows, size_t cols,
                       const ct_muon_args *o);

/* The sum of squares of x (for global gradient norms), accumulated in double. */
double ct_optim_sumsq_f32(const float *x, size_t n);
double ct_optim_sumsq_f64(const double *x, size_t n);

/* Runs fn(ctx, lo, hi) over [0, n) cut into contiguous chunks, one per thread up to
 * ct_get_num_threads(), the first on the calling thread; serially when n is small or
 * one thread is set (or a thread cannot be started).  The kernels above are called on
 * such chunks by the binding: they touch only element i of each array for i in range. */
/* An update reads and writes 3 to 6 arrays per element, with a division and a square root,
 * so a second thread pays from far fewer elements than for an add: Adam on 2 threads, same
 * run, 401K elements 210 -> 125 us, 131K 70 -> 40 us, 65K 37 -> 25 us (the MLP's weights
 * are 401K and 131K), where ct_parallel's grain of 2^18 a thread kept them on one. */
#define CT_OPTIM_GRAIN ((size_t)1 << 15)
#define ct_optim_parallel(n, fn, ctx) ct_parallel_grain(n, CT_OPTIM_GRAIN, fn, ctx) /* src/core/parallel.c */

#endif
