/* crater autograd: tape nodes, their input edges and saved tensors.  A result owns
 * its grad_fn node; a node owns its inputs' nodes (edges), leaves and saved tensors. */
#include <math.h>
#include <string.h>

#include "autograd.h"

bool ct_grad_enabled = true;
bool ct_anomaly_enabled = false;
ct_hook_call_fn ct_hook_call = NULL;
ct_hook_drop_fn ct_hook_drop = NULL;
ct_hook_pin_fn ct_hook_pin = NULL;

bool ct_needs_grad(int n, ct_tensor *const *in) {
  if (!ct_grad_enabled) return false;
  for (int i = 0; i < n; i++) {
    if (in[i] == NULL) continue;
    if (in[i]->requires_grad) return true;
    if (ct_view_stale(in[i])) { /* its base may need grad since */
      const ct_tensor *base = ct_view_base(in[i]);
      if (base && base->requires_grad) return true;
    }
  }
  return false;
}

int ct_check_finite(const ct_tensor *t, const char *what, const char *opname, ct_err *err) {
  int64_t n = ct_numel(t);
  if (t->dtype == CT_I64) return 1;
  for (int64_t i = 0; i < n; i++) {
    double v = ct_get_flat(t, i);
    if (!isfinite(v))
      return ct_fail(err, "anomaly: %s of %s produced %s", what, opname, isnan(v) ? "NaN" : "Inf");
  }
  return 1;
}

ct_node *ct_node_new(const ct_op *op, int nin, ct_err *err) {
  size_t size = sizeof(ct_node) + (size_t)nin * sizeof(ct_edge);
  ct_node *nd = ct_malloc(size, err);
  if (nd == NULL) return NULL;
  /* the edges' shapes (most of the bytes) are written by ct_edge_set, not zeroed here */
  memset(nd, 0, sizeof *nd);
  nd->op = op;
  nd->refs = 1;
  nd->nin = nin;
  for (int k = 0; k < nin; k++) {
    ct_edge *e = &nd->edge[k];
    e->fn = NULL, e->leaf = NULL, e->needs = false, e->ndim = 0, e->dtype = CT_F32;
  }
  return nd;
}

/* What ct_tensor_release runs for a tensor with a grad_fn or a hook (the core's
 * ct_autograd_release). */
void ct_autograd_release_tensor(ct_tensor *t) {
  if (t->hook && ct_hook_drop) ct_hook_drop(t->hook);
  if (t->grad_fn && t->grad_fn->retain_out == t) t->grad_fn->retain_out = NULL;
  ct_node_release(t->grad_fn);
  t->grad_fn = NULL;
}

void ct_set_grad_fn(ct_tensor *x, ct_node *nd) {
  ct_autograd_release = ct_autograd_release_tensor;
  ct_node *old = x->grad_fn;
  if (old && old->retain_out == x) {
    old->retain_out = NULL;
    if (nd) nd->retain_out = x;
  }
  ct_node_release(old);
  x->grad_fn = nd;
}

/* An edge starts (on) or stops holding a tensor or node with Lua values: see ct_hook_pin. */
static void pin_tensor(ct_tensor *x, bool on) {
  if (x->hook && ct_hook_pin) ct_hook_pin(x->hook, on);
}
static void pin_node(ct_node *n, bool on) {
  if (n->hook && ct_hook_pin) ct_hook_pin(n->hook, on);
  if (n->lua_state && ct_hook_pin) ct_hook_pin(n->lua_state, on);
}

/* Takes e's references (and counts e among the edges holding its target). */
static void edge_hold(ct_edge *e) {
  if (e->fn) {
    e->fn->refs++;
    if (e->fn->edges++ == 0) pin_node(e->fn, true);
  }
  if (e->leaf) {
    ct_tensor_retain(e->leaf);
    if (e->leaf->edges++ == 0) pin_tensor(e->leaf, true);
  }
}

void ct_edge_set(ct_edge *e, ct_tensor *x) {
  e->ndim = x->ndim;
  e->dtype = x->dtype;
  memcpy(e->shape, x->shape, sizeof e->shape);
  if (!x->requires_grad) return;
  e->needs = true;
  if (x->grad_fn) e->fn = x->grad_fn;
  else e->leaf = x;
  edge_hold(e);
}

void ct_edge_copy(ct_edge *e, const ct_edge *src) {
  *e = *src;
  edge_hold(e);
}

void ct_geometry_put(ct_node *nd, const ct_tensor *v) {
  ct_geometry *g = &nd->arg.view;
  g->offset = v->offset;
  g->ndim = v->ndim;
  for (int k = 0; k < v->ndim; k++) {
    g->shape[k] = v->shape[k];
    g->stride[k] = v->stride[k];
  }
}

/* AsStridedBackward, recorded for a regenerated view; its backward is in src/ops/shape.c. */
extern const ct_op ct_op_as_strided;

int ct_view_refresh(ct_tensor *x, ct_err *err) {
  ct_tensor *base = ct_view_base(x);
  if (base == NULL)
    return ct_fail(err,
                   "a view whose base was changed in place and then freed has no history "
                   "left (keep the base, or take the view again)");
  if (ct_is_expanded(x))
    return ct_fail(err,
                   "an expanded view taken before its base changed in place cannot follow "
                   "the base's new history (expand it again)");
  ct_node *nd = NULL;
  if (base->requires_grad) {
    if ((nd = ct_node_new(&ct_op_as_strided, 1, err)) == NULL) return 0;
    ct_edge_set(&nd->edge[0], base);
    ct_geometry_put(nd, x);
  }
  ct_set_grad_fn(x, nd);
  x->requires_grad = base->requires_grad;
  x->view_history = x->storage->history;
  return 1;
}

ct_node *ct_record(const ct_op *op, ct_tensor *out, int nin, ct_tensor *const *in, ct_err *err) {
  if (ct_anomaly_enabled && !ct_check_finite(out, "the forward", op->name, err)) return NULL;
  for (int k = 0; k < nin; k++)
    if (in[k] && ct_view_stale(in[k]) && !ct_view_refresh(in[k], err)) return NULL;
  ct_node *nd = ct_node_new(op, nin, err);
  if (nd == NULL) return NULL;
  for (int k = 0; k < nin; k++)
    if (in[k]) ct_edge_set(&nd->edge[k], in[k]);
  ct_set_grad_fn(out, nd);
  out->requires_grad = true;
  return nd;
}

int ct_save(ct_node *nd, ct_tensor *t, bool is_out, ct_err *err) {
  int k = nd->nsaved;
  if (is_out) { /* a detached alias: the result owns the node, the node must not own it */
    ct_tensor *a = ct_tensor_alias(t, err);
    if (a == NULL) return 0;
    nd->saved[k] = a;
  } else {
    ct_tensor_retain(t);
    nd->saved[k] = t;
  }
  nd->saved_version[k] = t->storage->version;
  nd->saved_is_out[k] = is_out;
  nd->nsaved++;
  return 1;
}

ct_tensor *ct_saved(ct_node *nd, int k, ct_err *err) {
  if (nd->freed)
    return ct_fail(err,
                   "trying to backward through the graph a second time (or to read %s's "
                   "saved tensors after they were freed); pass retain_graph=true to the first "
                   "backward",
                   nd->op->name),
           NULL;
  ct_tensor *t = nd->saved[k];
  if (t->storage->version != nd->saved_version[k])
    return ct_fail(err,
                   "one of the tensors needed by %s for the gradient was modified by an "
                   "in-place operation (version %llu, saved at %llu)",
                   nd->op->name, (unsigned long long)t->storage->version,
                   (unsigned long long)nd->saved_version[k]),
           NULL;
  if (!nd->saved_is_out[k]) {
    ct_tensor_retain(t);
    return t;
  }
  /* the op's own result: re-attach it to this node so a double backward can see it */
  ct_tensor *a = ct_tensor_alias(t, err);
  if (a == NULL) return NULL;
  if (ct_grad_enabled) {
    ct_autograd_release = ct_autograd_release_tensor;
    a->grad_fn = nd;
    nd->refs++;
    a->requires_grad = true;
  }
  return a;
}

static void free_saved(ct_node *nd, bool gone) {
  for (int k = 0; k < nd->nsaved; k++) {
    ct_tensor_release(nd->saved[k]);
    nd->saved[k] = NULL;
  }
  nd->nsaved = 0;
  if (nd->inner) {
    free_saved(nd->inner, false);
    nd->inner->freed = true;
  }
  if (nd->release) nd->release(nd, gone);
}

/* Iterative, so that dropping a chain of a million nodes does not overflow the C stack. */
void ct_node_release(ct_node *nd) {
  ct_node *stack = NULL;
  if (nd == NULL || --nd->refs > 0) return;
  nd->link = NULL;
  stack = nd;
  while (stack) {
    ct_node *cur = stack;
    stack = cur->link;
    free_saved(cur, true);
    if (cur->hook && ct_hook_drop) ct_hook_drop(cur->hook);
    ct_tensor_release(cur->gacc);
    if (cur->inner && --cur->inner->refs == 0) {
      cur->inner->link = stack;
      stack = cur->inner;
    }
    for (int k = 0; k < cur->nin; k++) {
      ct_tensor *leaf = cur->edge[k].leaf;
      if (leaf && --leaf->edges == 0) pin_tensor(leaf, false);
      ct_tensor_release(leaf);
      ct_node *next = cur->edge[k].fn;
      if (next && --next->edges == 0) pin_node(next, false);
      if (next && --next->refs == 0) {
        next->link = stack;
        stack = next;
      }
    }
    ct_free(cur, sizeof(ct_node) + (size_t)cur->nin * sizeof(ct_edge));
  }
}

void ct_node_free_saved(ct_node *nd);
void ct_node_free_saved(ct_node *nd) {
  free_saved(nd, false);
  nd->freed = true;
}
