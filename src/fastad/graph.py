"""The computation graph: nodes, the Op base class, placeholders and reverse mode.

A `Node` is one value in the graph; its `op` says how to compute it from its
`inputs`.  `gradients()` walks the graph backwards and builds the gradient
graph out of more nodes, so gradients of gradients work.
"""
import functools
import numbers

import numpy as np


class Node:
    """A value in the computation graph."""

    # Makes numpy hand `np.float64(2) * node` to us and refuse `np.ones(3) * node`.
    __array_ufunc__ = None

    def __init__(self, op, inputs, name, const_attr=None, attrs=None):
        self.op = op
        self.inputs = list(inputs)
        self.name = name
        self.const_attr = const_attr  # the scalar of *_byconst ops
        self.attrs = attrs or {}      # axis, keepdims, trans_A, ...

    def __add__(self, other):
        return _binary(self, other, _ops.add_op, _ops.add_byconst_op)

    def __sub__(self, other):
        return _binary(self, other, _ops.sub_op, _ops.sub_byconst_op)

    def __rsub__(self, other):
        return _ops.rsub_byconst_op(self, _const(other, "-"))

    def __mul__(self, other):
        return _binary(self, other, _ops.mul_op, _ops.mul_byconst_op)

    def __truediv__(self, other):
        return _binary(self, other, _ops.div_op, _ops.div_byconst_op)

    def __rtruediv__(self, other):
        return _ops.rdiv_byconst_op(self, _const(other, "/"))

    def __neg__(self):
        return _ops.neg_op(self)

    def __pow__(self, exponent):
        return _ops.pow_byconst_op(self, _const(exponent, "**"))

    def __matmul__(self, other):
        return _ops.matmul_op(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul_op(other, self)

    __radd__ = __add__
    __rmul__ = __mul__

    def __str__(self):
        """The name, with the middle of a long one elided.  Op nodes are named after
        their inputs' str(), so names stay short in deep graphs."""
        name = self.name
        return name if len(name) <= 60 else f"{name[:28]}..{name[-28:]}"

    __repr__ = __str__


def _binary(node, other, node_op, const_op):
    if isinstance(other, Node):
        return node_op(node, other)
    return const_op(node, _const(other, node_op.symbol))


def _const(value, symbol):
    """Graph constants are real scalars, kept as Python floats: they never change a dtype."""
    if isinstance(value, numbers.Real) or (isinstance(value, np.ndarray) and value.ndim == 0
                                           and value.dtype.kind in "biuf"):
        return float(value)
    what = f"an array of shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
    raise TypeError(f"fastad: '{symbol}' combines a Node with a Node or a real scalar, not {what}; "
                    "feed arrays through a Variable")


class Op:
    """How to compute a node (`compute`) and how to differentiate it (`gradient` in
    reverse mode, `jvp` in forward mode).

    Subclass it to add an op, as in the course: override `compute` and `gradient`,
    optionally `jvp` (for `fastad.jvp`) and `infer` (output shape and dtype without
    computing).
    """
    name = "op"
    symbol = "?"

    def __call__(self, *inputs, **attrs):
        name = f"{self.name.capitalize()}({','.join(str(i) for i in inputs)})"
        return Node(self, inputs, name, attrs=attrs)

    def compute(self, node, input_vals):
        """The value of `node` given its inputs' values (numpy arrays)."""
        raise NotImplementedError(f"{type(self).__name__}.compute")

    def gradient(self, node, output_grad):
        """One gradient node per input, given the gradient node of `node`'s output."""
        raise NotImplementedError(f"{type(self).__name__}.gradient")

    def jvp(self, node, input_tangents):
        """The tangent node of `node` given one tangent node per input, None where an
        input's tangent is zero (at least one is not); returns None for a zero tangent."""
        raise NotImplementedError(f"{type(self).__name__}.jvp: op '{self.name}' has no forward-mode"
                                  " rule; define jvp(node, input_tangents) to use fastad.jvp")

    def infer(self, node, shapes, dtypes):
        """Output (shape, dtype) for inputs of these shapes and dtypes; raises ValueError.

        The default runs `compute` on arrays of ones, which serves any user op."""
        out = np.asarray(self.compute(node, [np.ones(s, d) for s, d in zip(shapes, dtypes)]))
        return out.shape, out.dtype


class PlaceholderOp(Op):
    """A value fed at run time (`Variable`)."""
    name = "placeholder"

    def __call__(self):
        return Node(self, [], "placeholder")

    def compute(self, node, input_vals):
        raise ValueError(f"placeholder '{node.name}' has no value: feed it")

    def gradient(self, node, output_grad):
        return None


placeholder_op = PlaceholderOp()


def Variable(name):
    """A placeholder node: its value comes from `feed_dict` at run time."""
    node = placeholder_op()
    node.name = name
    return node


def find_topo_sort(node_list):
    """All nodes the given ones depend on, each after its inputs (iterative DFS)."""
    visited, order = set(), []
    for root in node_list:
        stack = [(root, iter(root.inputs))]
        if root in visited:
            continue
        visited.add(root)
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def gradients(output_node, node_list):
    """Gradient nodes of `output_node` with respect to each node of `node_list`.

    Reverse topological order: a node's adjoint is the sum of the partial adjoints its
    consumers sent it; its op's `gradient` rule then sends partials to its inputs.
    """
    partials = {output_node: [_ops.oneslike_op(output_node)]}
    adjoint = {}
    for node in reversed(find_topo_sort([output_node])):
        if node not in partials:
            continue
        adjoint[node] = functools.reduce(_ops.add_op, partials[node])
        input_grads = node.op.gradient(node, adjoint[node])
        for inp, grad in zip(node.inputs, input_grads or ()):
            partials.setdefault(inp, []).append(grad)
    return [adjoint[n] if n in adjoint else _ops.zeroslike_op(n) for n in node_list]


from . import ops as _ops  # noqa: E402  (ops builds on Node and Op above)
