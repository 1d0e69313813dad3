"""Forward mode: `jvp()` builds tangent nodes, the mirror image of `gradients()`.

A tangent node holds the directional derivative of a node along given tangents of the
inputs.  It is built from ordinary nodes, so any executor runs it and `gradients` can
differentiate it again (forward-over-reverse gives Hessian-vector products).
"""
from .graph import find_topo_sort
from .ops import add_op, zeroslike_op


def jvp(outputs, inputs, tangents):
    """Tangent nodes of `outputs` when `inputs` move along `tangents`: J v, one node per
    output (`zeroslike_op(output)` when it doesn't depend on the inputs).

    `tangents` are nodes of the inputs' shapes, typically Variables fed with direction
    vectors.  The inputs are treated as independent: a tangent given to a node replaces
    what would flow into it from upstream.  Topological order: each node's op turns its
    inputs' tangents into its own (`Op.jvp`); None stands for a zero tangent, so no
    node is built for parts of the graph the inputs don't reach.
    """
    if len(inputs) != len(tangents):
        raise ValueError(f"jvp: {len(inputs)} inputs but {len(tangents)} tangents")
    tangent = {}
    for node, t in zip(inputs, tangents):  # a repeated input moves along the sum
        tangent[node] = add_op(tangent[node], t) if node in tangent else t
    seeded = set(tangent)
    for node in find_topo_sort(outputs):
        if node in seeded:
            continue
        input_tangents = [tangent.get(i) for i in node.inputs]
        if any(t is not None for t in input_tangents):
            t = node.op.jvp(node, input_tangents)
            if t is not None:
                tangent[node] = t
    return [tangent[n] if n in tangent else zeroslike_op(n) for n in outputs]
