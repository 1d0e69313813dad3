"""The reference VM: numpy `compute` of every scheduled node, in topological order.

It is the specification: the native VM (`fastad.vm`) must give the same results.
"""
import numpy as np

from .schedule import as_feed


class PythonVM:
    def __init__(self, schedules):
        self.schedules = schedules

    def run(self, feed_dict):
        sched = self.schedules.get(feed_dict)
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
        return owned_outputs(sched.eval_nodes, vals, feed_vals)


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
