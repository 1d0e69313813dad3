"""Schedules and the feed policy, shared by both VMs.

A `Schedule` says what a run computes when a given set of nodes is fed; `Schedules`
caches them per executor.  `feed_mapping`, `as_feed` and `real_dtype` are the feed
policy: a feed_dict is read, never changed, and fastad computes in float32 or float64.
"""
import math
import operator
from collections.abc import Mapping

import numpy as np

from .cache import DEFAULT_LIMITS, LRUCache
from .graph import PlaceholderOp

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
MAX_BYTES = (1 << 63) - 1  # numpy's limit on an array's size (its intp)


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

    def infer(self, feed_specs):
        """(shape, dtype) of every node for feeds of these (shape, dtype); raises a
        ValueError naming the op, the node and the shapes when they don't fit, or when
        a shape is no array's (a negative dimension, a size that overflows)."""
        specs, foreign = dict(zip(self.feeds, feed_specs)), self.foreign
        for node in self.steps:
            ins = [specs[i] for i in node.inputs]
            shapes = [s for s, _ in ins]
            shape, dtype = node.op.infer(node, shapes, [d for _, d in ins])
            dtype = np.dtype(dtype)
            if node in foreign:
                dtype = real_dtype(node, dtype)
            specs[node] = (checked_shape(node, shape, dtype, shapes), dtype)
        return specs


def checked_shape(node, shape, dtype, input_shapes):
    """`shape` (from `node.op.infer`) as a tuple of ints, or a ValueError naming the
    node when it is no array's shape."""
    try:
        dims = tuple(map(operator.index, shape))
    except TypeError:
        raise shape_error(node, f"shape {shape!r} is not a tuple of integers",
                          input_shapes) from None
    if dims and min(dims) < 0:
        raise shape_error(node, f"shape {dims} has a negative dimension", input_shapes)
    size = math.prod(dims)
    if size * dtype.itemsize > MAX_BYTES or (dims and max(dims) > MAX_BYTES):
        raise shape_error(node, f"shape {dims} is too large: {size} elements of {dtype}, "
                          "whose size in bytes overflows", input_shapes)
    return dims


def shape_error(node, why, input_shapes):
    shown = " and ".join(str(tuple(s)) for s in input_shapes)
    return ValueError(f"{node.op.name} node '{node.name}': {why} (input shapes {shown})")


def check_result(node, result, shape, input_shapes):
    """A ValueError unless a user op's `compute` returned the shape its `infer` gave."""
    if result.shape != shape:
        raise ValueError(f"{node.op.name} node '{node.name}': compute returned shape "
                         f"{result.shape}, but its inputs {list(input_shapes)} give {shape}")


class Schedules:
    """The schedules of one graph, one per set of fed graph nodes (keys of a feed_dict
    outside the graph play no part), in a bounded cache."""

    def __init__(self, eval_nodes, topo_order, limits=DEFAULT_LIMITS):
        self.eval_nodes, self.topo_order = list(eval_nodes), topo_order
        self.nodes = frozenset(topo_order)
        self.cache = LRUCache(limits)

    def get(self, feed_dict):
        key = self.nodes.intersection(feed_dict)
        sched = self.cache.get(key)
        if sched is None:
            sched = Schedule(self.topo_order, self.eval_nodes, key)
            self.cache.put(key, sched)
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


def feed_mapping(feed_dict):
    """The feed_dict as a dict fastad may look keys up in: itself, or a plain copy of
    another mapping (a defaultdict's lookups would add keys to the caller's dict)."""
    if type(feed_dict) is dict:
        return feed_dict
    if isinstance(feed_dict, Mapping):
        return dict(feed_dict)
    hint = (": dict(pairs) makes one from (node, value) pairs"
            if isinstance(feed_dict, (list, tuple)) else "")
    raise TypeError(f"feed_dict must be a dict {{node: value}}, not {type(feed_dict).__name__}"
                    f"{hint}")


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
