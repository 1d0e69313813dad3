"""`Executor`: evaluates nodes for a feed_dict, and the pure-Python reference VM.

The reference VM is the specification: it calls each node's numpy `compute` in
topological order.  The native VM (`fastad.vm`) must give the same results.
"""
import numpy as np

from .graph import PlaceholderOp, find_topo_sort

BACKENDS = ("native", "python")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class Executor:
    """Evaluates `eval_node_list` for the values in a feed_dict.

    backend "native" lowers the graph to a program run by the C kernel;
    "python" is the reference VM.  An Executor may be shared by several threads.
    """

    def __init__(self, eval_node_list, backend="native"):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
        self.eval_node_list = list(eval_node_list)
        self.backend = backend
        self.topo_order = find_topo_sort(self.eval_node_list)
        self._schedules = {}  # frozenset of fed nodes -> Schedule
        if backend == "native":
            from .vm import NativeVM
            self._vm = NativeVM(self)
        else:
            self._vm = PythonVM(self)

    def run(self, feed_dict):
        """The values of `eval_node_list`, as a list of new numpy arrays."""
        return self._vm.run(feed_dict)

    def disassemble(self, feed_dict):
        """The native program this executor runs for feeds like these, as text."""
        if self.backend != "native":
            raise ValueError("only the native backend lowers the graph to a program")
        self.run(feed_dict)
        return self._vm.last.disassemble()

    def schedule(self, feed_dict):
        key = frozenset(feed_dict)
        sched = self._schedules.get(key)
        if sched is None:
            sched = self._schedules[key] = Schedule(self.topo_order, self.eval_node_list, key)
        return sched


class Schedule:
    """What a run computes when the nodes in `fed` are given: `feeds` are read from the
    feed_dict, `steps` computed in this order.  Fed nodes cut their subgraph off."""

    def __init__(self, topo_order, eval_nodes, fed):
        needed, feeds, steps = set(eval_nodes), [], []
        for node in reversed(topo_order):
            if node not in needed:
                continue
            if node in fed:
                feeds.append(node)
            elif isinstance(node.op, PlaceholderOp):
                raise ValueError(f"missing feed for placeholder '{node.name}'")
            else:
                steps.append(node)
                needed.update(node.inputs)
        self.feeds, self.steps = feeds[::-1], steps[::-1]
        # nodes of user-defined ops: their results get the feeds' dtype rules
        self.foreign = frozenset(n for n in steps if type(n.op).__module__ != "fastad.ops")
        self.checked = set()  # feed signatures whose shapes were inferred without error

    def infer(self, feed_specs):
        """(shape, dtype) of every node for feeds of these (shape, dtype); raises a
        ValueError naming the op, the node and the shapes when they don't fit."""
        specs = dict(zip(self.feeds, feed_specs))
        for node in self.steps:
            shapes = [specs[i][0] for i in node.inputs]
            shape, dtype = node.op.infer(node, shapes, [specs[i][1] for i in node.inputs])
            if node in self.foreign:
                dtype = real_dtype(node, np.dtype(dtype))
            specs[node] = (tuple(shape), np.dtype(dtype))
        return specs


def real_dtype(node, dtype):
    """The dtype fastad computes a value of `dtype` in: float32 for float16 and float32,
    float64 for other reals (ints, bools, longdouble)."""
    if dtype in _FLOATS:
        return dtype
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return _FLOATS[0]
    if dtype.kind in "biuf":
        return _FLOATS[1]
    raise TypeError(f"value for '{node.name}' has dtype {dtype}: "
                    "fastad computes with real numbers (float32 or float64)")


def as_feed(node, value):
    """A fed value as a float32 or float64 array."""
    if type(value) is np.ndarray and value.dtype in _FLOATS:
        return value
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"feed for '{node.name}' is not a rectangular array: {err}") from None
    return arr.astype(real_dtype(node, arr.dtype), copy=False)


def owned_outputs(eval_nodes, vals, feed_vals):
    """The values of `eval_nodes` as arrays the caller owns: never a feed, a view or
    an array returned twice."""
    taken, out = {id(v) for v in feed_vals}, []
    for node in eval_nodes:
        v = vals[node]
        if type(v) is not np.ndarray or v.base is not None or id(v) in taken:
            v = np.array(v)
        taken.add(id(v))
        out.append(v)
    return out


class PythonVM:
    """The reference: numpy `compute` of every scheduled node, in topological order."""

    def __init__(self, executor):
        self.executor = executor

    def run(self, feed_dict):
        sched = self.executor.schedule(feed_dict)
        vals = {node: as_feed(node, feed_dict[node]) for node in sched.feeds}
        signature = tuple((v.shape, v.dtype) for v in vals.values())
        if signature not in sched.checked:
            sched.infer(signature)
            sched.checked.add(signature)
        feed_vals = list(vals.values())
        with np.errstate(all="ignore"):
            for node in sched.steps:
                vals[node] = node.op.compute(node, [vals[i] for i in node.inputs])
                if node in sched.foreign:
                    vals[node] = as_feed(node, vals[node])
        return owned_outputs(self.executor.eval_node_list, vals, feed_vals)
