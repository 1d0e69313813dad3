"""The reference VM: numpy `compute` of every scheduled node, in topological order.

It is the specification: the native VM (`fastad.vm`) must give the same results.
"""
import numpy as np

from .cache import DEFAULT_LIMITS, LRUCache
from .schedule import as_feed, check_result


class PythonVM:
    def __init__(self, schedules, limits=DEFAULT_LIMITS):
        self.schedules = schedules
        # (schedule, feed signature) -> {user op node: shape}, for signatures whose
        # shapes were inferred without error
        self.checked = LRUCache(limits)

    def run(self, feed_dict):
        sched = self.schedules.get(feed_dict)
        vals = {node: as_feed(node, feed_dict[node]) for node in sched.feeds}
        signature = tuple((v.shape, v.dtype) for v in vals.values())
        shapes = self.checked.get((sched, signature))
        if shapes is None:
            specs = sched.infer(signature)
            shapes = {node: specs[node][0] for node in sched.foreign}
            self.checked.put((sched, signature), shapes)
        feed_vals = list(vals.values())
        with np.errstate(all="ignore"):
            for node in sched.steps:
                if node in sched.foreign:  # checked as the native VM checks a Python step
                    inputs = [read_only(vals[i]) for i in node.inputs]
                    value = as_feed(node, node.op.compute(node, inputs))
                    check_result(node, value, shapes[node], [v.shape for v in inputs])
                    vals[node] = value
                else:
                    vals[node] = node.op.compute(node, [vals[i] for i in node.inputs])
        return owned_outputs(sched.eval_nodes, vals, feed_vals)


def read_only(arr):
    """A read-only view of `arr`: a user op may not write into what it is given (a feed,
    or a value other nodes read)."""
    view = np.asarray(arr).view()
    view.flags.writeable = False
    return view


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
