"""Schedules and the feed policy, shared by both VMs.

A `Schedule` says what a run computes when a given set of nodes is fed; `Schedules`
caches them per executor.  `as_feed` and `real_dtype` are the dtype policy: fastad
computes in float32 or float64.
"""
import numpy as np

from .graph import PlaceholderOp

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


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
        self.eval_nodes = list(eval_nodes)
        # nodes of user-defined ops: their results get the feeds' dtype rules
        self.foreign = frozenset(n for n in self.steps if not n.op.builtin)
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


class Schedules:
    """The schedules of one graph, one per set of fed graph nodes (keys of a feed_dict
    outside the graph play no part)."""

    def __init__(self, eval_nodes, topo_order):
        self.eval_nodes, self.topo_order = list(eval_nodes), topo_order
        self.nodes = frozenset(topo_order)
        self.cache = {}

    def get(self, feed_dict):
        key = self.nodes.intersection(feed_dict)
        sched = self.cache.get(key)
        if sched is None:
            sched = self.cache[key] = Schedule(self.topo_order, self.eval_nodes, key)
        return sched


def real_dtype(node, dtype):
    """The dtype fastad computes a value of `dtype` in: float32 for float16 and float32,
    float64 for other reals (ints, bools, longdouble)."""
    if dtype in FLOATS:
        return dtype
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return FLOATS[0]
    if dtype.kind in "biuf":
        return FLOATS[1]
    raise TypeError(f"value for '{node.name}' has dtype {dtype}: "
                    "fastad computes with real numbers (float32 or float64)")


def as_feed(node, value):
    """A fed value as a float32 or float64 array."""
    if type(value) is np.ndarray and value.dtype in FLOATS:
        return value
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"feed for '{node.name}' is not a rectangular array: {err}") from None
    return arr.astype(real_dtype(node, arr.dtype), copy=False)


def packed(value):
    """`value` as a C-contiguous, aligned array: the layout the kernel reads (data
    unpickled from a byte stream, e.g. by Dask, may be unaligned)."""
    return np.require(value, requirements="CA")
