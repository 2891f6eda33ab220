"""The backward pass: an iterative topological sort of the graph, then one sweep in reverse.

Every non-leaf Tensor is the output of exactly one :class:`~deepgrad.autograd.function.Function`
node (its ``grad_fn``), so the gradient flowing into a node is the gradient of its output.
The sort is iterative, so graphs thousands of ops deep never touch Python's recursion limit.
"""

from __future__ import annotations

from deepgrad.autograd import grad_mode


def _topological_order(roots):
    """Return the graph's nodes reachable from ``roots`` (Functions), inputs before consumers."""
    order = []
    visited = set()
    stack = [(node, False) for node in roots]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        if node.released:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (node {node.name}); its "
                "saved values were freed after the first backward. Pass retain_graph=True to "
                "the first backward() or grad() call if you need to go through it again."
            )
        visited.add(id(node))
        stack.append((node, True))
        for inp in node.inputs:
            fn = getattr(inp, "grad_fn", None)
            if fn is not None and id(fn) not in visited:
                stack.append((fn, False))
    return order


def run_backward(outputs, grad_outputs, retain_graph: bool, create_graph: bool, inputs=None):
    """Propagate ``grad_outputs`` from ``outputs`` back through the graph.

    Args:
        outputs: Tensors to differentiate.
        grad_outputs: one gradient Tensor per output (same shape as the output).
        retain_graph: keep the graph so that it can be traversed again.
        create_graph: record the backward computation itself (higher-order derivatives).
        inputs: when given (``autograd.grad``), return the gradients of these Tensors instead
            of accumulating into the ``.grad`` of leaves.

    Returns:
        With ``inputs``: a list of gradient Tensors (None where an input was not reached).
        Otherwise None.
    """
    from deepgrad.tensor import Tensor

    node_grads = {}  # id(node) -> gradient of that node's output
    leaf_grads = {}  # id(leaf) -> [leaf, gradient]
    # Arrays that came from the caller: never adopted as a leaf's .grad (see below).
    foreign = {id(g.data) for g in grad_outputs}
    hooks_ran = False
    roots = []
    for out, g in zip(outputs, grad_outputs):
        if out.grad_fn is None:
            if out.requires_grad:
                _accumulate_leaf(leaf_grads, out, g)
            continue
        roots.append(out.grad_fn)
        _accumulate(node_grads, id(out.grad_fn), g)

    wanted_nodes = None
    if inputs is not None:
        wanted_nodes = {id(t.grad_fn): None for t in inputs if t.grad_fn is not None}

    prev_mode = grad_mode.set_grad_enabled_flag(create_graph)
    try:
        order = _topological_order(roots)
        for node in reversed(order):
            g = node_grads.pop(id(node), None)
            if g is None:
                continue
            if node.hooks:
                hooks_ran = True
                for hook in node.hooks:
                    new = hook(g)
                    if new is not None:
                        g = new
            if wanted_nodes is not None and id(node) in wanted_nodes:
                wanted_nodes[id(node)] = g
            if create_graph and node.once_differentiable:
                grads = _once_differentiable_backward(node, g)
            else:
                grads = node.backward(g)
            for inp, needs, gi in zip(node.inputs, node.needs_input_grad, grads):
                if not needs or gi is None:
                    continue
                if gi.shape != inp.shape:
                    raise RuntimeError(
                        f"internal error: {node.name}.backward returned a gradient of shape "
                        f"{gi.shape} for an input of shape {inp.shape}"
                    )
                if inp.grad_fn is not None:
                    _accumulate(node_grads, id(inp.grad_fn), gi)
                else:
                    _accumulate_leaf(leaf_grads, inp, gi)
            if not retain_graph:
                node.released = True
                node.inputs = (None,) * len(node.inputs)
                node.out_data = None
                node.saved = None
    finally:
        grad_mode.set_grad_enabled_flag(prev_mode)

    if inputs is not None:
        result = []
        for t in inputs:
            if t.grad_fn is not None:
                result.append(wanted_nodes.get(id(t.grad_fn)))
            else:
                entry = leaf_grads.get(id(t))
                g = entry[1] if entry is not None else None
                # PARITY: a leaf's hooks see (and may replace) its gradient in grad() too.
                for hook in (t._hooks or ()) if g is not None else ():
                    new = hook(g)
                    if new is not None:
                        g = new
                result.append(g)
        return result

    # NOTE: a leaf's new .grad must never alias an array that anyone else can see, because later
    # accumulation happens in place. A gradient array that the backward rules allocated in this
    # pass, owns its memory and went to no other leaf is seen by nobody else and is adopted
    # as-is (PyTorch's AccumulateGrad "steals" such gradients too); anything else is copied.
    # Adoption is off when the graph is kept (saved arrays live on) or when a hook saw a
    # gradient (it may have kept it).
    may_adopt = not create_graph and not retain_graph and not hooks_ran
    adopted = set()
    for leaf, g in leaf_grads.values():
        if leaf._hooks:
            for hook in leaf._hooks:
                new = hook(g)
                if new is not None:
                    g = new
        if leaf.grad is None:
            if create_graph:
                leaf.grad = g
            elif (may_adopt and not leaf._hooks and _owned(g.data, leaf.data.dtype)
                  and id(g.data) not in foreign and id(g.data) not in adopted):
                adopted.add(id(g.data))
                leaf.grad = Tensor._wrap(g.data)
            else:
                leaf.grad = Tensor._wrap(g.data.astype(leaf.data.dtype, copy=True))
        elif create_graph or leaf.grad.requires_grad:
            leaf.grad = leaf.grad + g
        else:
            leaf.grad.data += g.data
    return None


def _owned(arr, dtype) -> bool:
    """True for a writeable array of ``dtype`` that owns its memory (not a view of another)."""
    return arr.base is None and arr.flags.writeable and arr.dtype == dtype


def _accumulate(store, key, g):
    prev = store.get(key)
    store[key] = g if prev is None else prev + g


def _accumulate_leaf(store, leaf, g):
    entry = store.get(id(leaf))
    if entry is None:
        store[id(leaf)] = [leaf, g]
    else:
        entry[1] = entry[1] + g


def _once_differentiable_backward(node, g):
    """Run a once-differentiable node's backward, guarding its result against a second pass."""
    from deepgrad.ops.shape import once_differentiable_guard

    with grad_mode.no_grad():
        grads = node.backward(g.detach())
    return tuple(
        None if gi is None else once_differentiable_guard(gi, node.name, g, *node.inputs)
        for gi in grads
    )
