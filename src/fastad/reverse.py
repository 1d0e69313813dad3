"""Reverse mode: `gradients()` builds the gradient graph out of more nodes, so gradients
of gradients work.  The mirror image of `fastad.forward.jvp`.
"""
import functools

from .graph import find_topo_sort
from .ops import add_op, oneslike_op, zeroslike_op


def gradients(output_node, node_list):
    """Gradient nodes of `output_node` with respect to each node of `node_list`.

    Reverse topological order: a node's adjoint is the sum of the partial adjoints its
    consumers sent it; its op's `gradient` rule then sends partials to its inputs.  A rule
    gives None for an input whose partial is zero, and a node no partial reaches has no
    adjoint, so no zero nodes are built; a requested node that the output doesn't depend
    on gets `zeroslike_op(node)`.
    """
    partials = {output_node: [oneslike_op(output_node)]}
    adjoint = {}
    for node in reversed(find_topo_sort([output_node])):
        if node not in partials:
            continue
        adjoint[node] = functools.reduce(add_op, partials[node])
        for inp, grad in zip(node.inputs, node.op.gradient(node, adjoint[node]) or ()):
            if grad is not None:
                partials.setdefault(inp, []).append(grad)
    return [adjoint[n] if n in adjoint else zeroslike_op(n) for n in node_list]
