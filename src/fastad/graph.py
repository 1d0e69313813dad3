"""The computation graph: nodes, the Op base class, placeholders and topological order.

A `Node` is one value in the graph; its `op` says how to compute it from its
`inputs`.  Reverse mode (`gradients`) lives in `fastad.reverse`, forward mode (`jvp`)
in `fastad.forward`; both build more nodes out of the ops of `fastad.ops`.
"""
import importlib
import numbers
import threading

import numpy as np

# Node's operators build nodes of ops that fastad.ops defines and registers here when it
# is imported: {"add": (add_op, add_byconst_op), "neg": neg_op, ...}.  graph.py itself
# never imports ops (ops builds on Node and Op).
OPERATORS = {}


class Node:
    """A value in the computation graph."""

    # Makes numpy hand `np.float64(2) * node` to us and refuse `np.ones(3) * node`.
    __array_ufunc__ = None

    def __init__(self, op, inputs, name, const_attr=None, attrs=None):
        self.op = op
        self.inputs = list(inputs)
        for i in self.inputs:
            if not isinstance(i, Node):
                raise TypeError(f"fastad: {getattr(op, 'name', op)} takes Nodes as inputs, not "
                                f"{type(i).__name__}; feed arrays through a Variable")
        self.name = name
        self.const_attr = const_attr  # the scalar of *_byconst ops
        self.attrs = attrs or {}      # axis, keepdims, trans_A, ...

    def __add__(self, other):
        return _binary("add", self, other)

    def __sub__(self, other):
        return _binary("sub", self, other)

    def __rsub__(self, other):
        return OPERATORS["rsub"](self, _const(other, "-"))

    def __mul__(self, other):
        return _binary("mul", self, other)

    def __truediv__(self, other):
        return _binary("div", self, other)

    def __rtruediv__(self, other):
        return OPERATORS["rdiv"](self, _const(other, "/"))

    def __neg__(self):
        return OPERATORS["neg"](self)

    def __pow__(self, exponent):
        node_op, const_op = OPERATORS["pow"]
        if isinstance(exponent, Node):
            return node_op(self, exponent)
        return const_op(self, _const(exponent, "**"))

    # comparisons give 0/1 masks in the floating dtype (== stays identity: nodes are
    # dict keys; use fastad.equal_op)
    def __lt__(self, other):
        return _compare("lt", self, other)

    def __le__(self, other):
        return _compare("le", self, other)

    def __gt__(self, other):
        return _compare("gt", self, other)

    def __ge__(self, other):
        return _compare("ge", self, other)

    def __matmul__(self, other):
        return OPERATORS["matmul"](self, other)

    def __getitem__(self, key):
        return OPERATORS["getitem"](self, key)

    def __rmatmul__(self, other):
        return OPERATORS["matmul"](other, self)

    __radd__ = __add__
    __rmul__ = __mul__

    def __reduce_ex__(self, protocol):
        """Pickling (and copy.deepcopy) at any depth.  Saved naively, each node would save
        its inputs before itself, one nested call per level: a chain of a few hundred nodes
        exceeds the recursion limit.  So the first node saved lists its ancestors in
        topological order ahead of itself; each of them is then saved after its inputs,
        which are already in the pickler's memo, with nothing nested."""
        fields = (self.op, self.name, self.const_attr, self.attrs, self.inputs)
        listed = _listing.__dict__.setdefault("nodes", set())
        if self in listed or not self.inputs:
            return _node, fields
        ancestors = find_topo_sort(self.inputs)
        listed.update(ancestors)
        return _node_after, (ancestors, _EndListing(ancestors)) + fields

    def __str__(self):
        """The name, with the middle of a long one elided.  Op nodes are named after
        their inputs' str(), so names stay short in deep graphs."""
        name = self.name
        return name if len(name) <= 60 else f"{name[:28]}..{name[-28:]}"

    __repr__ = __str__


_listing = threading.local()  # .nodes: ancestors being saved in order (see Node.__reduce_ex__)


class _EndListing:
    """Saved after a listing of ancestors: takes them off the list again."""

    def __init__(self, nodes):
        self.nodes = nodes

    def __reduce_ex__(self, protocol):
        _listing.nodes.difference_update(self.nodes)
        return type(None), ()


def _node(op, name, const_attr, attrs, inputs):
    return Node(op, inputs, name, const_attr, attrs)


def _node_after(ancestors, end, *fields):
    return _node(*fields)


def _binary(name, node, other):
    node_op, const_op = OPERATORS[name]
    if isinstance(other, Node):
        return node_op(node, other)
    return const_op(node, _const(other, node_op.symbol))


def _compare(name, node, other):
    if not isinstance(other, Node):
        other = OPERATORS["full_like"](node, _const(other, OPERATORS[name].symbol))
    return OPERATORS[name](node, other)


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
    computing).  The native executor runs a user op's `compute` as a Python step.

    Facts the rest of fastad reads off an op (fastad.ops sets them on its own ops):
    `native` says how the native VM computes it (an opcode of csrc/opcodes.h, a rule
    of fastad.lowering, or None: a Python step); `builtin` ops are trusted to return
    float32/float64 results of the shape `infer` gives; `commutative` ops don't care
    about their inputs' order.
    """
    name = "op"
    symbol = "?"
    native = None
    builtin = False
    commutative = False
    key = None  # "module:name" of a built-in op, which pickles and copies as a reference

    def __init__(self, native=None):
        self.native = native

    def __reduce_ex__(self, protocol):
        if self.key is None:
            return super().__reduce_ex__(protocol)
        return builtin_op, (self.key,)

    def __call__(self, *inputs, **attrs):
        name = f"{self.name.capitalize()}({','.join(str(i) for i in inputs)})"
        return Node(self, inputs, name, attrs=attrs)

    def compute(self, node, input_vals):
        """The value of `node` given its inputs' values (numpy arrays)."""
        raise NotImplementedError(f"{type(self).__name__}.compute")

    def gradient(self, node, output_grad):
        """One gradient node per input (None where it is zero), given the gradient node
        of `node`'s output."""
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


def builtin_op(key):
    """The built-in op registered as `key` ("fastad.ops:exp_op")."""
    module, name = key.split(":")
    return getattr(importlib.import_module(module), name)


class PlaceholderOp(Op):
    """A value fed at run time (`Variable`)."""
    name = "placeholder"
    builtin = True
    key = "fastad.graph:placeholder_op"

    def __call__(self):
        return Node(self, [], "placeholder")

    def compute(self, node, input_vals):
        raise ValueError(f"placeholder '{node.name}' has no value: feed it")

    def gradient(self, node, output_grad):
        return []


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
