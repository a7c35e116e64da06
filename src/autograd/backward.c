/* crater autograd: the backward walk.  Nodes are visited in reverse topological order
 * (a node runs once all its consumers have handed it their gradient); gradients are
 * summed per node, reduced back to each input's shape, and accumulated into leaves. */
#include <string.h>

#include "../ops/ops.h"

void ct_node_free_saved(ct_node *nd);

/* True when g can be added into the sum s in place: a tensor per accumulation fewer. */
static bool private_sum(const ct_tensor *s, const ct_tensor *g) {
  return ct_grad_private(s) && s->dtype == g->dtype && ct_same_shape(s, g);
}

/* Adds g into *slot (a new reference is kept; g is borrowed). */
static int accumulate(ct_tensor **slot, ct_tensor *g, ct_err *err) {
  if (*slot == NULL) {
    ct_tensor_retain(g);
    *slot = g;
    return 1;
  }
  if (private_sum(*slot, g)) return ct_add_(*slot, g, 1.0, err);
  ct_tensor *s = ct_add(*slot, g, err);
  if (s == NULL) return 0;
  ct_tensor_release(*slot);
  *slot = s;
  return 1;
}

/* True when t has the shape of the edge's input. */
static bool input_shaped(const ct_tensor *t, const ct_edge *e) {
  bool same = t->ndim == e->ndim; /* a loop, not memcmp: a call costs more than 1 or 2 dims */
  for (int k = 0; same && k < e->ndim; k++) same = t->shape[k] == e->shape[k];
  return same;
}

/* Brings a gradient to the input's shape and dtype (sum over broadcast dims). */
static ct_tensor *fit_to_input(ct_tensor *g, const ct_edge *e, ct_err *err) {
  ct_tensor *r = g;
  ct_tensor_retain(r);
  if (!input_shaped(r, e)) {
    ct_tensor *s = ct_sum_to(r, e->ndim, e->shape, err);
    ct_tensor_release(r);
    if (s == NULL) return NULL;
    r = s;
  }
  if (r->dtype != e->dtype && e->dtype != CT_I64) {
    ct_tensor *c = ct_to(r, e->dtype, err);
    ct_tensor_release(r);
    r = c;
  }
  return r;
}

/* Runs the hooks of a tensor or node on *g; a replacement must keep g's shape and dtype
 * (the engine sums and accumulates it as g), as PyTorch's does. */
static int run_hook(int64_t hook, ct_tensor **g, ct_err *err) {
  if (!hook || !ct_hook_call) return 1;
  ct_tensor *repl = NULL;
  if (!ct_hook_call(hook, *g, &repl, err)) return 0;
  if (repl == NULL) return 1;
  if (!ct_same_shape(repl, *g) || repl->dtype != (*g)->dtype) {
    char a[96], b[96];
    ct_fail(err,
            "register_hook: a hook returned a gradient of shape %s (%s) for a gradient of shape %s "
            "(%s); a hook may not change the shape or dtype",
            ct_shape_str(a, repl->ndim, repl->shape), ct_dtype_name(repl->dtype),
            ct_shape_str(b, (*g)->ndim, (*g)->shape), ct_dtype_name((*g)->dtype));
    ct_tensor_release(repl);
    return 0;
  }
  ct_tensor_release(*g);
  *g = repl;
  return 1;
}

/* Leaf gradients of one backward are gathered here and written into .grad only once the
 * whole walk (and every allocation it needs) has succeeded, so a failed backward leaves
 * every .grad as it was. */
typedef struct {
  ct_tensor *leaf, *g;
  bool add;
} pending_leaf; /* add: .grad += g at commit */
/* 'small' holds the first entries: most backwards reach a few leaves, and a small graph's
 * backward is short enough that two allocations showed. */
typedef struct {
  pending_leaf *v;
  size_t n, cap;
  pending_leaf small[8];
} pending_list;

/* leaf's entry (the sum of its gradients so far), or NULL */
static pending_leaf *pending_find(pending_list *pl, const ct_tensor *leaf) {
  for (size_t i = 0; i < pl->n; i++)
    if (pl->v[i].leaf == leaf) return &pl->v[i];
  return NULL;
}

static int pending_add(pending_list *pl, ct_tensor *leaf, ct_tensor *g, ct_err *err) {
  pending_leaf *known = pending_find(pl, leaf);
  if (known) return accumulate(&known->g, g, err);
  if (pl->n == pl->cap) {
    size_t cap = 2 * pl->cap;
    pending_leaf *v = ct_malloc(cap * sizeof *v, err);
    if (v == NULL) return 0;
    memcpy(v, pl->v, pl->n * sizeof *v);
    if (pl->v != pl->small) ct_free(pl->v, pl->cap * sizeof *v);
    pl->v = v;
    pl->cap = cap;
  }
  ct_tensor_retain(g);
  pl->v[pl->n].leaf = leaf;
  pl->v[pl->n].add = false;
  pl->v[pl->n++].g = g;
  return 1;
}

/* .grad += g in place (it keeps its identity and strides, as PyTorch's): no allocation, so
 * the commit below cannot fail half-way.  An expanded .grad, or one sharing memory with g,
 * gets the sum as a new tensor instead: an in-place add would refuse it. */
static bool adds_in_place(const ct_tensor *leaf, const ct_tensor *g, bool create_graph) {
  const ct_tensor *lg = leaf->grad;
  return !create_graph && lg->grad_fn == NULL && !lg->requires_grad && lg->dtype == g->dtype &&
      ct_same_shape(lg, g) && !ct_is_expanded(lg) && lg->storage != g->storage;
}

/* Runs the leaves' hooks (on each leaf's summed gradient), then turns each pending
 * gradient into the tensor its leaf's .grad becomes (steal a private contiguous gradient,
 * else copy; or the sum with the old .grad), allocating everything; no Lua code runs
 * between this and the commit. */
static int pending_prepare(pending_list *pl, bool create_graph, ct_err *err) {
  for (size_t i = 0; i < pl->n; i++)
    if (!run_hook(pl->v[i].leaf->hook, &pl->v[i].g, err)) return 0;
  for (size_t i = 0; i < pl->n; i++) {
    ct_tensor *leaf = pl->v[i].leaf, *g = pl->v[i].g, *r;
    if (leaf->grad == NULL) {
      if (!create_graph && g->refs == 1 && g->storage->refs == 1 && ct_is_contiguous(g) && g->grad_fn == NULL)
        continue;
      r = create_graph ? ct_clone(g, err) : ct_contig(g, true, err);
      if (r && !create_graph) {
        ct_node_release(r->grad_fn);
        r->grad_fn = NULL;
        r->requires_grad = false;
      }
    } else if (adds_in_place(leaf, g, create_graph)) {
      pl->v[i].add = true;
      continue;
    } else {
      r = ct_add(leaf->grad, g, err);
    }
    if (r == NULL) return 0;
    ct_tensor_release(g);
    pl->v[i].g = r;
  }
  return 1;
}

/* Fails only if an in-place add refuses what adds_in_place let through (a bug): then the
 * error is reported, with the .grads before it already summed. */
static int pending_commit(pending_list *pl, ct_err *err) {
  for (size_t i = 0; i < pl->n; i++) {
    ct_tensor *leaf = pl->v[i].leaf, *g = pl->v[i].g;
    if (pl->v[i].add) {
      if (!ct_add_(leaf->grad, g, 1.0, err)) return 0;
      ct_tensor_release(g);
    } else {
      ct_tensor_release(leaf->grad);
      leaf->grad = g;
    }
    pl->v[i].g = NULL;
  }
  return 1;
}

/* crater.grad runs only the nodes on a path to one of its inputs, as PyTorch does: the
 * rest of the graph may have been freed by an earlier backward, and is work for nothing.
 * A node is needed when an edge leads to an input (a leaf, or a non-leaf's grad_fn) or to
 * a needed node; the list is in discovery order, so a few passes from its end settle it. */
static void mark_needed(ct_node **list, size_t nlist, int ninputs, ct_tensor **inputs) {
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = nlist; i-- > 0;) {
      ct_node *n = list[i];
      for (int k = 0; k < n->nin && !n->needed; k++) {
        const ct_edge *e = &n->edge[k];
        if (!e->needs) continue;
        if (e->fn && e->fn->needed) n->needed = true;
        for (int q = 0; q < ninputs && !n->needed; q++)
          if ((e->leaf && inputs[q] == e->leaf) || (e->fn && inputs[q]->grad_fn == e->fn)) n->needed = true;
        if (n->needed) changed = true;
      }
    }
  }
}

static void pending_free(pending_list *pl) {
  for (size_t i = 0; i < pl->n; i++) ct_tensor_release(pl->v[i].g);
  if (pl->v != pl->small) ct_free(pl->v, pl->cap * sizeof *pl->v);
}

int ct_backward(int nroots, ct_tensor **roots, ct_tensor **grads, bool retain_graph, bool create_graph,
                int ninputs, ct_tensor **inputs, ct_tensor **results, ct_err *err) {
  bool saved_mode = ct_grad_enabled;
  ct_node *order = NULL, *stack = NULL; /* 'link' threads the DFS stack, then the ready list */
  int ok = 0;
  ct_node *small[64]; /* the reachable nodes; from the heap only for bigger graphs */
  size_t nlist = 0, cap = sizeof small / sizeof small[0];
  ct_node **list = small;
  pending_list leaves;
  leaves.v = leaves.small;
  leaves.n = 0;
  leaves.cap = sizeof leaves.small / sizeof leaves.small[0];

  for (int r = 0; r < nroots; r++) {
    if (ct_view_stale(roots[r]) && !ct_view_refresh(roots[r], err)) return 0;
    if (!roots[r]->requires_grad)
      return ct_fail(err, "element %d of tensors does not require grad and does not have a grad_fn", r + 1);
    if (grads[r] == NULL && ct_numel(roots[r]) != 1)
      return ct_fail(err,
                     "grad can be implicitly created only for scalar outputs (got shape of %lld elements)",
                     (long long)ct_numel(roots[r]));
    if (grads[r] && ct_numel(grads[r]) != ct_numel(roots[r])) {
      char a[96], b[96];
      return ct_fail(err, "gradient of shape %s does not match the output's shape %s",
                     ct_shape_str(a, grads[r]->ndim, grads[r]->shape),
                     ct_shape_str(b, roots[r]->ndim, roots[r]->shape));
    }
  }
  if (ninputs > 0)
    for (int k = 0; k < ninputs; k++) {
      results[k] = NULL;
      if (!inputs[k]->requires_grad) return ct_fail(err, "input %d does not require grad", k + 1);
    }

  /* collect reachable nodes and count, for each, how many consumers will feed it (while
   * walking, a visited node's deps is -1 - its count).  A backward started from a hook or
   * a Lua backward may not walk the graph of the one running: both keep their scratch
   * (deps, link, gacc) in the nodes. */
  for (int r = 0; r < nroots; r++) {
    ct_node *n = roots[r]->grad_fn;
    if (n && n->busy) goto reentrant;
    if (n && n->deps == 0 && n->link == NULL && n != stack) {
      n->deps = -1; /* visited, no consumer counted yet */
      n->link = stack;
      stack = n;
    }
  }
  while (stack) {
    ct_node *n = stack;
    stack = n->link;
    n->link = NULL;
    if (nlist == cap) {
      ct_node **bigger = ct_malloc(2 * cap * sizeof *list, err);
      if (bigger == NULL) {
        n->link = stack;
        stack = n;
        goto done;
      }
      memcpy(bigger, list, cap * sizeof *list);
      if (list != small) ct_free(list, cap * sizeof *list);
      list = bigger;
      cap *= 2;
    }
    list[nlist++] = n;
    for (int k = 0; k < n->nin; k++) {
      ct_node *m = n->edge[k].fn;
      if (m && m->busy) {
        n->link = stack;
        stack = n;
        nlist--;
        goto reentrant;
      }
      if (m && m->deps == 0) {
        m->deps = -1;
        m->link = stack;
        stack = m;
      }
      if (m) m->deps--; /* one consumer more */
    }
  }
  for (size_t i = 0; i < nlist; i++) {
    list[i]->deps = -1 - list[i]->deps;
    list[i]->busy = true;
  }
  if (ninputs > 0) mark_needed(list, nlist, ninputs, inputs);

  ct_grad_enabled = create_graph;

  /* seed the roots */
  for (int r = 0; r < nroots; r++) {
    ct_tensor *g = grads[r];
    ct_tensor *own = NULL;
    if (g == NULL) {
      own = ct_tensor_full(roots[r]->dtype, roots[r]->ndim, roots[r]->shape, 1.0, err);
      if (own == NULL) goto done;
      g = own;
    } else if (!ct_same_shape(g, roots[r])) {
      own = ct_reshape(g, roots[r]->ndim, roots[r]->shape, err);
      if (own == NULL) goto done;
      g = own;
    }
    int good;
    if (roots[r]->grad_fn) good = accumulate(&roots[r]->grad_fn->gacc, g, err);
    else { /* a leaf root: its gradient is the seed itself */ good = 1;
      for (int k = 0; k < ninputs; k++)
        if (inputs[k] == roots[r]) good = accumulate(&results[k], g, err);
      if (ninputs == 0) good = pending_add(&leaves, roots[r], g, err);
    }
    ct_tensor_release(own);
    if (!good) goto done;
  }

  /* ready list: nodes whose consumers are all done */
  for (size_t i = 0; i < nlist; i++)
    if (list[i]->deps == 0) {
      list[i]->link = order;
      order = list[i];
    }

  while (order) {
    ct_node *n = order;
    order = n->link;
    n->link = NULL;
    ct_tensor *gout = n->gacc;
    n->gacc = NULL;
    ct_tensor *gin[8]; /* zeroed below for nin entries only: most nodes have one or two */
    ct_tensor **gins = n->nin <= 8 ? gin : NULL;
    for (int k = 0; gins && k < n->nin; k++) gins[k] = NULL;
    int good = 1;
    bool run = ninputs == 0 || n->needed;
    if (gout && !run_hook(n->hook, &gout, err)) good = 0;
    if (good && gout && n->retain_out) /* retain_grad: .grad like a leaf's (crater.grad too, as PyTorch) */
      good = pending_add(&leaves, n->retain_out, gout, err);
    if (good && gout)
      for (int k = 0; k < ninputs; k++) /* crater.grad of a non-leaf input */
        if (inputs[k]->grad_fn == n && !accumulate(&results[k], gout, err)) good = 0;
    if (!run && gins != NULL) gins = NULL; /* nothing below leads to an input */
    bool into = false; /* the gradient went into the input's sum so far (op->backward_into) */
    if (good && gout && run && n->op->backward_into && n->nin == 1 && n->edge[0].needs && !create_graph &&
        ninputs == 0 && !ct_anomaly_enabled && !n->freed) {
      const ct_edge *e = &n->edge[0];
      pending_leaf *sum = e->leaf ? pending_find(&leaves, e->leaf) : NULL;
      ct_tensor *acc = e->fn ? e->fn->gacc : sum ? sum->g : NULL;
      if (acc && ct_grad_private(acc) && acc->dtype == gout->dtype && input_shaped(acc, e) &&
          n->op->backward_into(n, gout, acc)) {
        into = true;
        gins = NULL; /* no gradient to hand on */
      }
    }
    if (good && gout && run && !into && gins == NULL) {
      gins = ct_malloc((size_t)n->nin * sizeof *gins, err);
      if (gins) memset(gins, 0, (size_t)n->nin * sizeof *gins);
      else good = 0;
    }
    if (good && gout && run && !into) {
      if (n->freed) {
        good = ct_fail(err,
                       "trying to backward through the graph a second time (%s's saved "
                       "tensors were freed); pass retain_graph=true to the first backward",
                       n->op->name);
      } else {
        good = n->op->backward(n, gout, gins, err);
        if (!good && strstr(err->msg, n->op->name) == NULL) {
          ct_err e2 = *err;
          ct_fail(err, "%s: %s", n->op->name, e2.msg);
        }
      }
    }
    for (int k = 0; good && gins && k < n->nin; k++) { /* gins is NULL when no gradient came */
      ct_edge *e = &n->edge[k];
      if (!e->needs || gins[k] == NULL) continue;
      ct_tensor *g = fit_to_input(gins[k], e, err);
      if (g == NULL) { /* a Lua backward's gradient of a shape that does not fit */
        ct_err e2 = *err;
        ct_fail(err, "%s: the gradient of input %d: %s", n->op->name, k + 1, e2.msg);
        good = 0;
        break;
      }
      if (ct_anomaly_enabled && !ct_check_finite(g, "the backward", n->op->name, err)) good = 0;
      else if (e->fn) good = accumulate(&e->fn->gacc, g, err);
      else if (e->leaf) {
        if (ninputs > 0) {
          good = run_hook(e->leaf->hook, &g, err);
          for (int q = 0; q < ninputs && good; q++)
            if (inputs[q] == e->leaf) good = accumulate(&results[q], g, err);
        } else good = pending_add(&leaves, e->leaf, g, err); /* its hook runs once, on the sum */
      }
      ct_tensor_release(g);
    }
    if (gins)
      for (int k = 0; k < n->nin; k++) ct_tensor_release(gins[k]);
    if (gins && gins != gin) ct_free(gins, (size_t)n->nin * sizeof *gins);
    ct_tensor_release(gout);
    if (!good) goto done;
    if (!retain_graph && run) ct_node_free_saved(n);
    for (int k = 0; k < n->nin; k++) {
      ct_node *m = n->edge[k].fn;
      if (m && --m->deps == 0) {
        m->link = order;
        order = m;
      }
    }
  }
  if (!pending_prepare(&leaves, create_graph, err) || !pending_commit(&leaves, err)) goto done;
  ok = 1;
  goto done;
reentrant:
  ct_fail(err,
          "a backward from a hook or a Function's backward reaches the graph of the backward "
          "running (reentrant backward is not supported): run it after that one");
done:
  while (stack) { /* the nodes still on the DFS stack of a failed walk */
    ct_node *n = stack;
    stack = n->link;
    n->link = NULL;
    n->deps = 0;
  }
  pending_free(&leaves);
  ct_grad_enabled = saved_mode;
  for (size_t i = 0; i < nlist; i++) { /* leave no scratch behind, even on failure */
    list[i]->deps = 0;
    list[i]->needed = false;
    list[i]->busy = false;
    list[i]->link = NULL;
    ct_tensor_release(list[i]->gacc);
    list[i]->gacc = NULL;
  }
  if (list != small) ct_free(list, cap * sizeof *list);
  if (!ok)
    for (int k = 0; k < ninputs; k++) {
      ct_tensor_release(results[k]);
      results[k] = NULL;
    }
  return ok;
}
