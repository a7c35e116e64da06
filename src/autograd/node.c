/* crater autograd: tape nodes, their input edges and saved tensors.  A result owns
 * its grad_fn node; a node owns its inputs' nodes (edges), leaves and saved tensors. */
#include <math.h>
#include <string.h>

#include "autograd.h"

bool ct_grad_enabled = true;
bool ct_anomaly_enabled = false;
ct_hook_call_fn ct_hook_call = NULL;

bool ct_needs_grad(int n, ct_tensor *const *in) {
  if (!ct_grad_enabled) return false;
  for (int i = 0; i < n; i++)
    if (in[i] && in[i]->requires_grad) return true;
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

int ct_check_view(const ct_tensor *x, int k, ct_err *err) {
  if (!x->view || x->storage->history == x->view_history) return 1;
  return ct_fail(err, "tensor %d is a view taken before an in-place operation changed its base's "
                      "history, so its own history is stale (take the view again after the "
                      "in-place operation)", k + 1);
}

ct_node *ct_record(const ct_op *op, ct_tensor *out, int nin, ct_tensor *const *in, ct_err *err) {
  size_t size = sizeof(ct_node) + (size_t)nin * sizeof(ct_edge);
  if (ct_anomaly_enabled && !ct_check_finite(out, "the forward", op->name, err)) return NULL;
  for (int k = 0; k < nin; k++)
    if (in[k] && !ct_check_view(in[k], k, err)) return NULL;
  ct_node *nd = ct_malloc(size, err);
  if (nd == NULL) return NULL;
  memset(nd, 0, size);
  nd->op = op;
  nd->refs = 1;
  nd->nin = nin;
  for (int k = 0; k < nin; k++) {
    ct_edge *e = &nd->edge[k];
    ct_tensor *x = in[k];
    if (x == NULL) continue;
    e->ndim = x->ndim;
    e->dtype = x->dtype;
    memcpy(e->shape, x->shape, sizeof e->shape);
    if (!x->requires_grad) continue;
    e->needs = true;
    if (x->grad_fn) { e->fn = x->grad_fn; e->fn->refs++; }
    else { e->leaf = x; ct_tensor_retain(x); }
  }
  ct_node_release(out->grad_fn);
  out->grad_fn = nd;
  out->requires_grad = true;
  return nd;
}

int ct_save(ct_node *nd, ct_tensor *t, bool is_out, ct_err *err) {
  int k = nd->nsaved;
  if (is_out) {   /* a detached alias: the result owns the node, the node must not own it */
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
    return ct_fail(err, "trying to backward through the graph a second time (or to read %s's "
                        "saved tensors after they were freed); pass retain_graph=true to the first "
                        "backward", nd->op->name), NULL;
  ct_tensor *t = nd->saved[k];
  if (t->storage->version != nd->saved_version[k])
    return ct_fail(err, "one of the tensors needed by %s for the gradient was modified by an "
                        "in-place operation (version %llu, saved at %llu)", nd->op->name,
                   (unsigned long long)t->storage->version,
                   (unsigned long long)nd->saved_version[k]), NULL;
  if (!nd->saved_is_out[k]) { ct_tensor_retain(t); return t; }
  /* the op's own result: re-attach it to this node so a double backward can see it */
  ct_tensor *a = ct_tensor_alias(t, err);
  if (a == NULL) return NULL;
  if (ct_grad_enabled) {
    a->grad_fn = nd;
    nd->refs++;
    a->requires_grad = true;
  }
  return a;
}

static void free_saved(ct_node *nd) {
  for (int k = 0; k < nd->nsaved; k++) {
    ct_tensor_release(nd->saved[k]);
    nd->saved[k] = NULL;
  }
  nd->nsaved = 0;
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
    free_saved(cur);
    ct_tensor_release(cur->gacc);
    for (int k = 0; k < cur->nin; k++) {
      ct_tensor_release(cur->edge[k].leaf);
      ct_node *next = cur->edge[k].fn;
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
  free_saved(nd);
  nd->freed = true;
}
