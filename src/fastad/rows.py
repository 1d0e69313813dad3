"""Which losses split by rows: a loss that is a mean or a sum over the rows of its data
(the samples, along the first axis) is the weighted sum of the same loss on row shards,
which is what fastad.parallel computes.  `reduction_of` proves which, op by op."""
from . import ops
from .graph import find_topo_sort
from .schedule import Schedule

MEAN, SUM = "mean", "sum"
_CONST, _ROWS = "const", "rows"  # kinds of nodes besides MEAN and SUM (see reduction_of)

# ops computing each element from the elements at the same (broadcast) index
_ELEMENTWISE = (ops.UnaryOp, ops.ConstOp, ops.BinaryOp, ops.ReluGradOp, ops.ClipOp,
                ops.WhereOp, ops.FillLikeOp, ops.BroadcastToOp, ops.SumToOp)
_PER_SAMPLE = (ops.conv2d_op, ops.max_pool2d_op, ops.avg_pool2d_op)  # (N, C, H, W) in and out
_LINEAR = (ops.reshape_op, ops.transpose_op, ops.getitem_op)  # linear in their one input


def reduction_of(loss, data_nodes, specs):
    """MEAN or SUM: how `loss` combines the rows of the data (`data_nodes`, samples along
    the first axis) for inputs of these {node: (shape, dtype)}; a ValueError naming the
    node that stops the proof otherwise.

    Every node gets a kind: "const" (no data below it), "rows" (its first axis is the
    samples' and its row i depends on the data's row i alone), MEAN (an affine function
    of a mean over the rows: it combines as the rows_s / n weighted sum of the shards'),
    SUM (a linear function of a sum over the rows: the shards' sum).  The rules cover
    the built-in ops: elementwise ops, matmul by a constant, reductions, softmax family,
    convolution and pooling, reshapes, and the losses."""
    topo = find_topo_sort([loss])
    sched = Schedule(topo, [loss], set(specs))
    shapes = {node: s for node, (s, _) in sched.infer([specs[f] for f in sched.feeds]).items()}
    data = set(data_nodes)
    n = shapes[data_nodes[0]][0]
    kinds = {}
    for node in topo:
        if node in data:
            kinds[node] = _ROWS
        elif all(kinds.get(i, _CONST) == _CONST for i in node.inputs):
            kinds[node] = _CONST
        else:
            kind, why = _kind(node, [kinds[i] for i in node.inputs], shapes, n)
            if kind is None:
                raise ValueError(f"fastad.parallel: the loss '{loss}' can't be split by rows: "
                                 f"{node.op.name} node '{node}' {why}")
            kinds[node] = kind
    if kinds[loss] not in (MEAN, SUM):  # "rows": data are placeholders of the loss
        raise ValueError(f"fastad.parallel: the loss '{loss}' can't be split by rows: it "
                         "keeps one value per row; reduce it over the rows (reduce_mean_op)")
    return kinds[loss]


def _kind(node, kinds, shapes, n):
    """(kind, None) of a node below which there are data, or (None, why not)."""
    op, inputs = node.op, node.inputs
    if not op.builtin:
        return None, "is a user op: fastad can't tell how it treats rows"
    varying = set(kinds) - {_CONST}
    if varying == {_ROWS}:
        if _keeps_rows(node, kinds, shapes, n):
            return _ROWS, None
        if isinstance(op, ops.ReduceOp) and 0 in _axes(node, shapes):
            return (MEAN if op.mean else SUM), None
        if kinds == [_ROWS, _ROWS] and (op is ops.sigmoid_cross_entropy_op or (
                op is ops.softmax_cross_entropy_op and len(shapes[inputs[0]]) >= 2)):
            return MEAN, None  # means over all rows of logits and labels
        return None, "mixes rows of the data (or its rule is not one that keeps them apart)"
    if len(varying) > 1:
        return None, f"combines values of different kinds ({' and '.join(sorted(varying))}), " \
                     "e.g. rows with a statistic of the batch"
    kind = varying.pop()  # MEAN or SUM, with constants beside it
    lone = kinds.count(kind) == 1
    first = kinds[0] == kind and all(k == _CONST for k in kinds[1:])
    if op in (ops.add_op, ops.sub_op) or op in (ops.add_byconst_op, ops.sub_byconst_op,
                                                 ops.rsub_byconst_op):
        if all(k == kind for k in kinds) or kind == MEAN:
            return kind, None
        return None, "adds a term that doesn't depend on the data to a sum over the rows " \
                     "(every shard would add it): make the loss a mean, or scale that term"
    if op in (ops.neg_op, ops.mul_byconst_op, ops.div_byconst_op) or isinstance(op, ops.ReduceOp) \
            or (op in (ops.mul_op, ops.matmul_op) and lone) or (op is ops.div_op and first) \
            or ((op in _LINEAR or isinstance(op, ops.ShapedOp)) and first):
        return kind, None
    return None, f"is not linear in the {kind} over the rows below it"


def _keeps_rows(node, kinds, shapes, n):
    """Whether `node` (its inputs "rows" or "const") is "rows" too."""
    op, inputs, out = node.op, node.inputs, shapes[node]
    if not out or out[0] != n:
        return False
    ins = [shapes[i] for i in inputs]
    if isinstance(op, _ELEMENTWISE):  # a constant must not have the samples' axis
        return all(len(s) == len(out) if k == _ROWS else len(s) < len(out) or s[0] == 1
                   for s, k in zip(ins, kinds))
    if isinstance(op, ops.AxisOp):  # sums, means, max, min, logsumexp
        return 0 not in _axes(node, shapes)
    if op in (ops.softmax_op, ops.log_softmax_op):
        return len(out) >= 2
    if op is ops.matmul_op:  # rows of A times a constant B
        return (kinds == [_ROWS, _CONST] and len(ins[0]) >= 2 and len(ins[1]) <= 2
                and not node.attrs["trans_A"])
    if op in _PER_SAMPLE:
        return kinds[0] == _ROWS and all(k == _CONST for k in kinds[1:])
    if op is ops.reshape_op:  # C order keeps row i whole when the first axis stays
        return ins[0][0] == n
    if op is ops.transpose_op:
        axes = node.attrs["axes"]
        return len(out) == 1 or (axes is not None and axes[0] % len(out) == 0)
    return False


def _axes(node, shapes):
    return ops.reduce_axes(node.op, node, shapes[node.inputs[0]], node.attrs["axis"])
