/* crater autograd: the define-by-run tape.  An op that records makes one ct_node per
 * result; the node knows its op (name + backward), its input edges and what it saved. */
#ifndef CT_AUTOGRAD_H
#define CT_AUTOGRAD_H

#include "../core/tensor.h"

#define CT_MAXSAVE 4

/* A backward returns the gradients of the inputs that need one (nd->edge[i].needs) in
 * gin[i], built from ops so that create_graph works; gin may be broadcast-shaped, the
 * engine sums it back to the input's shape. Returns 0 and fills err on failure. */
typedef int (*ct_backward_fn)(ct_node *nd, ct_tensor *gout, ct_tensor **gin, ct_err *err);

/* Optional, for an op of one input: adds the input's gradient for gout into acc, the sum of
 * that input's gradients so far (private: ct_grad_private, of the input's shape and gout's
 * dtype), when no graph is recorded.  Returns false, having changed nothing, when it cannot;
 * the backward then runs.  For ops whose gradient fills a small part of the input (x[i]):
 * no input-shaped tensor of zeros to make and sum. */
typedef bool (*ct_backward_into_fn)(ct_node *nd, ct_tensor *gout, ct_tensor *acc);

typedef struct ct_op {
  const char *name; /* "MulBackward" */
  ct_backward_fn backward;
  ct_backward_into_fn backward_into; /* or NULL */
} ct_op;

typedef struct ct_edge {
  ct_node *fn; /* the input's grad_fn (owned), or NULL */
  ct_tensor *leaf; /* the input when it is a leaf that requires grad (owned), or NULL */
  bool needs;
  int ndim;
  ct_dtype dtype;
  int64_t shape[CT_MAXDIM];
} ct_edge;

/* A view's place in its storage (offset, shape, strides in elements): what as_strided
 * needs to take the view again. */
typedef struct ct_geometry {
  int64_t offset;
  int ndim;
  int64_t shape[CT_MAXDIM], stride[CT_MAXDIM];
} ct_geometry;

/* What a node keeps for its backward besides saved tensors: one member per op family. */
typedef union ct_node_args {
  struct {
    int op;
    double a, b;
  } elementwise; /* the unary or binary op; a unary op's scalars */
  struct {
    int op, dim;
    bool keepdim;
  } reduce; /* reductions (dim -1: all); max/min; softmax (op: log) */
  struct {
    int dim;
    int64_t index;
  } dim; /* narrow and select (index: start), gather & co */
  struct {
    int d1, d2;
  } transpose;
  struct {
    int perm[CT_MAXDIM];
  } permute;
  ct_geometry view; /* as_strided and CopySlices: the region */
  struct {
    int64_t kh, kw, sh, sw, ph, pw, h, w;
  } window; /* im2col/col2im: window, image size */
  struct {
    int64_t n0, n1, l;
  } conv; /* the conv output's (B, C, L) swap */
} ct_node_args;

struct ct_node {
  const ct_op *op;
  int refs, nin, nsaved;
  bool freed; /* saved tensors released by a backward without retain_graph */
  ct_tensor *saved[CT_MAXSAVE];
  uint64_t saved_version[CT_MAXSAVE];
  bool saved_is_out[CT_MAXSAVE];
  ct_node_args arg; /* the op's scalars and indices (nd->arg.<family>) */
  ct_node *inner; /* CopySlices: the node of the in-place op it wraps (owned) */
  ct_tensor *retain_out; /* the output whose .grad keeps this node's gradient (retain_grad; not owned) */
  /* frees what the node keeps outside C (a Lua backward): its saved state, or all when gone */
  void (*release)(ct_node *nd, bool gone);
  int64_t hook; /* binding's id of the hook list of the (non-leaf) output */
  int64_t lua_state; /* binding's id of a Lua backward (crater.autograd.Function) */
  int edges; /* graph edges holding it (they keep its Lua values alive) */
  /* engine scratch */
  ct_tensor *gacc;
  int deps;
  bool needed; /* crater.grad: on a path to one of the inputs */
  bool busy; /* in the graph of a backward running now */
  ct_node *link;
  ct_edge edge[]; /* nin of them */
};

/* grad mode */
extern bool ct_grad_enabled;
extern bool ct_anomaly_enabled;

/* True when a result computed from these inputs must be recorded. */
bool ct_needs_grad(int n, ct_tensor *const *in);

/* A view whose base's history changed in place after it was taken (its grad_fn describes
 * the old base) gets a new grad_fn, a view of the base's current one, as PyTorch
 * regenerates them; 0 and err when the base is gone or the node cannot be made. */
static inline bool ct_view_stale(const ct_tensor *x) {
  return x->view && x->storage->history != x->view_history;
}
int ct_view_refresh(ct_tensor *x, ct_err *err);
/* The base of the views of x's storage, when one can be rewritten: the tensor the storage
 * was made for, alive and laid out from the storage's start (the geometries that views
 * keep are positions in the storage, read as positions in that tensor); else NULL. */
static inline ct_tensor *ct_view_base(const ct_tensor *x) {
  ct_tensor *b = x->storage->base;
  return b && b->offset == 0 && ct_is_contiguous(b) ? b : NULL;
}

/* x->grad_fn = nd (taking nd's reference, releasing the old one); a retain_grad mark moves
 * along, so x keeps the gradient of its latest version. */
void ct_set_grad_fn(ct_tensor *x, ct_node *nd);

/* Makes an empty node of op with nin edges (refs 1), or NULL with err. */
ct_node *ct_node_new(const ct_op *op, int nin, ct_err *err);
/* Points e at x's history: its grad_fn, or x itself when it is a leaf that requires grad. */
void ct_edge_set(ct_edge *e, ct_tensor *x);
/* e = a copy of src with its own references. */
void ct_edge_copy(ct_edge *e, const ct_edge *src);
/* Stores a view's geometry (offset within its storage, ndim, shape, strides) in nd->arg.view. */
void ct_geometry_put(ct_node *nd, const ct_tensor *v);

/* True when t is a gradient nobody else can see: held once, on its own contiguous
 * storage, outside any graph, while no graph is recorded.  A backward may then write its
 * result into t instead of making a new tensor, and a sum may grow in place. */
static inline bool ct_grad_private(const ct_tensor *t) {
  return !ct_grad_enabled && t->refs == 1 && t->storage->refs == 1 && t->grad_fn == NULL &&
      !t->requires_grad && ct_is_contiguous(t);
}

/* Makes out's grad_fn a new node of op over the inputs; returns the node (borrowed, out
 * owns it) or NULL with err on failure (then out is left without grad_fn). */
ct_node *ct_record(const ct_op *op, ct_tensor *out, int nin, ct_tensor *const *in, ct_err *err);
/* Saves t (retained) for backward; is_out marks the op's own result (kept as a detached
 * alias, re-attached to the node when unpacked, to avoid a reference cycle). */
int ct_save(ct_node *nd, ct_tensor *t, bool is_out, ct_err *err);
/* The k-th saved tensor as a new reference, or NULL with err if it was freed or
 * modified in place since it was saved. */
ct_tensor *ct_saved(ct_node *nd, int k, ct_err *err);

void ct_node_release(ct_node *nd);
/* A tensor's grad_fn and hook released (installed as the core's ct_autograd_release). */
void ct_autograd_release_tensor(ct_tensor *t);

/* Hooks: the binding installs this; the engine calls it for a hooked leaf tensor or
 * node, with the gradient; *out receives a replacement (new reference) or NULL. */
typedef int (*ct_hook_call_fn)(int64_t hook, ct_tensor *grad, ct_tensor **out, ct_err *err);
extern ct_hook_call_fn ct_hook_call;
/* The binding drops a hook list when its tensor or node goes (installed with ct_hook_call). */
typedef void (*ct_hook_drop_fn)(int64_t hook);
extern ct_hook_drop_fn ct_hook_drop;
/* ...and keeps the Lua values of a tensor or node (hooks, a Lua backward) alive while a
 * graph edge holds it (on), even when no Lua value holds it any more. */
typedef void (*ct_hook_pin_fn)(int64_t id, bool on);
extern ct_hook_pin_fn ct_hook_pin;

/* Runs backward from roots (each with its gradient, or NULL for a 0-d root -> 1).
 * Without 'inputs' it accumulates into leaves' .grad; with them (crater.grad) it fills
 * results[i] (new references, NULL where unreachable) and leaves .grad alone. */
int ct_backward(int nroots, ct_tensor **roots, ct_tensor **grads, bool retain_graph, bool create_graph,
                int ninputs, ct_tensor **inputs, ct_tensor **results, ct_err *err);

/* Checks a freshly computed value for NaN/Inf (anomaly mode). */
int ct_check_finite(const ct_tensor *t, const char *what, const char *opname, ct_err *err);

#endif
