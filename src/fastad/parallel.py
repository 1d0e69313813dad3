"""Data parallelism on one machine: a batch's rows split into shards that threads run the
same program on, with the GIL released, and the shards' losses and gradients combined.

`gradients(loss, params, data, workers)` does it once; `DataParallel` keeps its programs
for repeated calls; `Trainer.fit(..., workers=N)` trains so (`TrainerSteps`).

- `params` are {Variable: value}, the point the gradients are taken at; `data` are
  {placeholder: array} with the samples along the first axis, the same number n in all.
  They are all the loss's placeholders.
- The shards are rows [n*s//k, n*(s+1)//k) for s < k = min(workers, n).  One C call runs
  them, one shard per thread of the kernel's pool, each on its own workspace and result
  buffers (no cache line shared between shards), on one thread inside a shard, BLAS too.
- Which losses split (fastad.rows proves it): a mean over the rows (`reduce_mean_op` over the
  sample axis, `softmax_cross_entropy_op`, `sigmoid_cross_entropy_op`), plus terms that
  don't depend on the data (a regulariser), or a sum over the rows times constants.  A
  shard computes the same graph on its rows; the shards' results are added in shard
  order, weighted rows_s / n for a mean and 1 for a sum.  Anything else (a batch
  statistic, a product or log of reductions, a data-free term added to a sum, a user op)
  is refused with the node that stops the proof; `reduction=` vouches for a loss.
- Exactness: the same n, workers and inputs give the same bits every time.  Against one
  thread the sums are added in another order, so results agree to rounding: about 1e-16
  times the sum of the terms' magnitudes.  workers=1 is one shard: the unsplit result.
"""
import math

import numpy as np

from .executor import PICKLE_FORMAT, Executor, unpickled
from .graph import PlaceholderOp, Variable, find_topo_sort
from .reverse import gradients as gradient_nodes
from .rows import MEAN, SUM, reduction_of
from .schedule import Schedule, as_feed, packed, real_dtype
from . import vm

LINE = 64  # bytes of a cache line: shards write to no line another shard writes
# Elements of work (as fa_work counts them) a shard needs to be worth waking a thread
# for (some tens of microseconds); smaller shards run one after another on the caller.
SHARD_WORK = 1 << 15
ONE_THREAD = vm.RunOptions(1)  # shards that run one after another (Python steps)


def gradients(loss, params, data, workers=2, backend="native", reduction=None):
    """(loss, [gradient of each parameter]) of `loss` at `params` ({Variable: value}) for
    `data` ({placeholder: array}, samples first), the rows split across `workers` threads.
    The loss is a float and a mean or a sum as the graph says (see the module's doc)."""
    dp = DataParallel(loss, list(params), backend, reduction)
    return dp.gradients(params, data, workers)


class DataParallel:
    """The loss and gradients of `loss` for `params` (Variables), each call's rows split
    into shards that run side by side.  backend "python": the shards run one after
    another on the reference VM (the same split and combination).  reduction: None
    proves "mean" or "sum" from the graph (fastad.rows); give one to vouch for a loss
    the proof can't see through (a user op).  It may be shared by threads, and pickles
    (its programs are built again where it is unpickled)."""

    def __init__(self, loss, params, backend="native", reduction=None):
        if backend not in ("native", "python"):
            raise ValueError(f"unknown backend {backend!r}; choose 'native' or 'python'")
        if reduction not in (None, MEAN, SUM):
            raise ValueError(f"reduction must be None, 'mean' or 'sum', not {reduction!r}")
        self.loss, self.params = loss, list(params)
        self.backend, self.reduction = backend, reduction
        graph = find_topo_sort([loss])
        for p in self.params:
            if not (hasattr(p, "op") and isinstance(p.op, PlaceholderOp)) or p not in graph:
                raise ValueError(f"params: {p!r} is not a placeholder of the loss")
        if not self.params:
            raise ValueError("params: give at least one parameter")
        self.grads = gradient_nodes(loss, self.params)
        fixed = set(self.params)
        self.data_nodes = [n for n in find_topo_sort([loss, *self.grads])
                           if isinstance(n.op, PlaceholderOp) and n not in fixed]
        if not self.data_nodes:
            raise ValueError(f"fastad.parallel: the loss '{loss}' can't be split by rows: it "
                             "does not depend on the data (all its placeholders are parameters)")
        # where a shard's program writes its loss and gradients: result buffers of its own
        self._results = [Variable("loss of a shard"),
                         *(Variable(f"gradient of {p.name} on a shard") for p in self.params)]
        self._executor = (Executor([loss, *self.grads], backend="python")
                          if backend == "python" else None)
        self._programs = {}  # a shard's feed signature -> _Program
        self._splits = {}    # the batch's feed signature -> MEAN or SUM

    def __getstate__(self):
        return {"format": PICKLE_FORMAT, "loss": self.loss, "params": self.params,
                "backend": self.backend, "reduction": self.reduction}

    def __setstate__(self, state):
        state = unpickled(state, "DataParallel")
        self.__init__(state["loss"], state["params"], state["backend"], state["reduction"])

    # -- the API ---------------------------------------------------------------------

    def gradients(self, values, data, workers=2):
        """(loss, [gradient of each parameter]) at `values` ({parameter: array}) for
        `data` ({placeholder: array}, samples first), on `workers` threads."""
        if int(workers) != workers or workers < 1:
            raise ValueError(f"workers must be a positive integer, not {workers!r}")
        values, data = self._values(values), self._data(data)
        return self.run(values, data, int(workers))

    def reduction_for(self, values, data):
        """MEAN or SUM: how this loss combines its rows for parameters and data of these
        shapes (anything with .shape and .dtype, e.g. dask arrays, serves)."""
        def spec(node, v):
            v = v if hasattr(v, "shape") and hasattr(v, "dtype") else np.asarray(v)
            return tuple(v.shape), real_dtype(node, np.dtype(v.dtype))
        specs = {**{p: spec(p, values[p]) for p in self.params},
                 **{n: spec(n, data[n]) for n in self.data_nodes}}
        return self.reduction or reduction_of(self.loss, self.data_nodes, specs)

    # -- checks ----------------------------------------------------------------------

    def _values(self, values):
        missing = [p.name for p in self.params if p not in values]
        if missing:
            raise ValueError(f"no value for parameter(s) {', '.join(map(repr, missing))}")
        return {p: packed(as_feed(p, values[p])) for p in self.params}

    def _data(self, data):
        missing = [n.name for n in self.data_nodes if n not in data]
        if missing:
            raise ValueError(f"no data for placeholder(s) {', '.join(map(repr, missing))}")
        unknown = [getattr(k, "name", repr(k)) for k in data if k not in self.data_nodes]
        if unknown:
            raise ValueError(f"data: {', '.join(map(repr, unknown))} is not a data placeholder "
                             "of the loss")
        arrays = {n: packed(as_feed(n, data[n])) for n in self.data_nodes}
        rows = {n.name: (v.shape[0] if v.ndim else None) for n, v in arrays.items()}
        if None in rows.values() or len(set(rows.values())) > 1 or not next(iter(rows.values())):
            raise ValueError("data: every data array needs the samples along its first axis, "
                             f"the same number (at least 1) in all; rows per array: {rows}")
        return arrays

    # -- running ---------------------------------------------------------------------

    def run(self, values, data, workers):
        """`gradients` for checked, C-contiguous, aligned float arrays."""
        n = len(next(iter(data.values())))
        k = min(workers, n)
        bounds = [n * s // k for s in range(k + 1)]
        rows = [b - a for a, b in zip(bounds, bounds[1:])]
        # the feeds' signature, but for the number of rows
        key = (tuple((v.shape, v.dtype) for v in values.values())
               + tuple((v.shape[1:], v.dtype) for v in data.values()))
        split = MEAN  # one shard: weight 1 either way
        if k > 1:
            split = self._splits.get((key, n))
            if split is None:
                split = self._splits[key, n] = self.reduction_for(values, data)
        shards = [{node: arr[a:b] for node, arr in data.items()}
                  for a, b in zip(bounds, bounds[1:])]
        if self.backend == "python":
            parts = [self._executor.run({**values, **shard}) for shard in shards]
            return combine(parts, rows, split)
        programs = [self._program(key, r, values, shard) for r, shard in zip(rows, shards)]
        taken = [prog.take() for prog in programs]
        try:
            if all(prog.plan.segments is None for prog in programs):
                for slot, shard in zip(taken, shards):
                    slot.bind({**values, **shard})
                run_shards(programs, taken)
            else:  # Python steps (user ops) need the GIL: one shard after another
                for prog, slot, shard in zip(programs, taken, shards):
                    if prog.plan.run({**values, **shard, **slot.outputs}, ONE_THREAD) is None:
                        raise RuntimeError("fastad internal error: a shard's feeds don't fit "
                                           "its program")
            return combine([slot.results for slot in taken], rows, split)
        finally:
            for prog, slot in zip(programs, taken):
                prog.pool.append(slot)

    def _program(self, key, rows, values, shard):
        prog = self._programs.get((key, rows))
        if prog is None:
            prog = self._programs[key, rows] = _Program(self, {**values, **shard})
        return prog


class _Program:
    """A shard's program for feeds of one signature: it ends by writing its loss (as
    float64) and gradients into the shard's result buffers; and the (workspace, result
    buffers) of the shards that ran it, for reuse."""

    def __init__(self, dp, feeds):
        nodes = [dp.loss, *dp.grads]
        first = Schedule(find_topo_sort(nodes), nodes, set(feeds))
        specs = first.infer([(feeds[n].shape, feeds[n].dtype) for n in first.feeds])
        shape = specs[dp.loss][0]
        if math.prod(shape) != 1:
            raise ValueError(f"fastad.parallel: the loss must be a single number; '{dp.loss}' "
                             f"has shape {shape} for these data")
        self.result_specs = [(shape, np.dtype(np.float64))] + [specs[g] for g in dp.grads]
        fed = {**{n: (feeds[n].shape, feeds[n].dtype) for n in first.feeds},
               **dict(zip(dp._results, self.result_specs))}
        sched = Schedule(find_topo_sort(nodes + dp._results), nodes + dp._results, set(fed))
        self.plan = vm.Plan(sched, sched.infer([fed[n] for n in sched.feeds]), [],
                            assign=list(zip(dp._results, nodes)))
        self.work = self.plan.work
        self.result_nodes = dp._results
        self.pool = []

    def take(self):
        return self.pool.pop() if self.pool else _Slot(self)


class _Slot:
    """A shard's memory: a workspace for its program and its result buffers, each
    starting on a cache line of its own, in a block no other shard writes to."""

    def __init__(self, prog):
        self.plan = prog.plan
        self.ws = vm.Workspace(prog.plan)
        sizes = [-(-max(1, int(np.prod(shape)) * dtype.itemsize) // LINE) * LINE
                 for shape, dtype in prog.result_specs]
        self.block = np.zeros(sum(sizes) + LINE, np.uint8)
        at = -self.block.ctypes.data % LINE
        self.results = []
        for (shape, dtype), size in zip(prog.result_specs, sizes):
            nbytes = int(np.prod(shape)) * dtype.itemsize
            self.results.append(self.block[at:at + nbytes].view(dtype).reshape(shape))
            at += size
        self.outputs = dict(zip(prog.result_nodes, self.results))

    def bind(self, feeds):
        if not self.ws.bind({**feeds, **self.outputs}, self.plan.feed_specs):
            raise RuntimeError("fastad internal error: a shard's feeds don't fit its program")


def run_shards(programs, slots):
    """Every shard's program in one C call, the shards side by side on the kernel's
    pool (when they are worth it); a long one in the main thread stops for Ctrl-C
    (KeyboardInterrupt)."""
    ffi, lib = vm.ffi, vm.lib
    shards = ffi.new("fa_shard[]", len(slots))
    for shard, prog, slot in zip(shards, programs, slots):
        shard.prog, shard.n_instr = prog.plan.prog, prog.plan.n_instrs
        shard.slots = slot.ws.slots
    catching = (any(prog.plan.long for prog in programs) and vm.catches_ctrl_c()
                and lib.fa_sigint_begin() == 0)
    threads = len(slots) if min(prog.work for prog in programs) >= SHARD_WORK else 1
    try:
        stopped = lib.fa_run_shards(shards, len(slots), threads, catching)
    finally:
        if catching:
            lib.fa_sigint_end()
    if stopped:
        raise KeyboardInterrupt


def combine(parts, rows, reduction):
    """The batch's (loss, gradients) from its shards' [(loss, gradients)], in shard
    order: weighted by rows_s / n for MEAN, 1 for SUM, added in float64 in that order;
    the gradients come back in their own dtypes."""
    n = sum(rows)
    weights = [r / n for r in rows] if reduction == MEAN else [1.0] * len(rows)
    loss = 0.0
    for w, part in zip(weights, parts):
        loss += w * float(part[0])
    grads = []
    for i in range(1, len(parts[0])):
        dtype = parts[0][i].dtype
        total = parts[0][i].astype(np.float64)  # a copy
        if weights[0] != 1.0:
            total *= weights[0]
        for w, part in zip(weights[1:], parts[1:]):
            g = part[i] if dtype == np.float64 else part[i].astype(np.float64)
            total += g if w == 1.0 else g * w
        grads.append(total if dtype == np.float64 else total.astype(dtype))
    return loss, grads


class TrainerSteps:
    """A Trainer's steps with each batch split across threads (`Trainer.fit(...,
    workers=N)`): the loss and gradients of the shards (a DataParallel), combined, then
    the optimizer's update alone, fed the combined gradients: one more native run.  It
    keeps no reference to the trainer (which keeps it)."""

    def __init__(self, trainer):
        params = list(trainer.params)
        self.dp = DataParallel(trainer.loss, params, trainer.backend)
        self.grad_nodes = [trainer._grads[p] for p in params]  # fed: they cut the loss off
        self.program = None  # the update's Plan (or reference Executor), made at first use

    def gradients(self, trainer, data, workers):
        """(loss, gradients) of a step on `data` (C-contiguous, aligned float arrays):
        it changes nothing, so a Ctrl-C in it leaves the trainer as it was."""
        return self.dp.run({p: trainer._values[p] for p in self.dp.params}, data, workers)

    def update(self, trainer, grads):
        """The step's update for these gradients, written into the trainer's buffers."""
        lr = {node: rates[0] for node, rates in trainer._lr_values(trainer.t + 1, 1).items()}
        feed = {**trainer._values, **lr, **dict(zip(self.grad_nodes, grads))}
        if self.program is None:
            self.program = self._program(trainer, feed)
        if trainer.backend == "python":
            for (node, _), value in zip(trainer._assign, self.program.run(feed)):
                np.copyto(trainer._values[node], value, casting="unsafe")
        elif self.program.run(feed, trainer._options_now()) is None:
            raise RuntimeError("fastad internal error: an update's feeds don't fit its plan")

    @staticmethod
    def _program(trainer, feed):
        nodes = [node for _, node in trainer._assign]
        if trainer.backend == "python":
            return Executor(nodes, backend="python")
        sched = Schedule(find_topo_sort(nodes), nodes, set(feed))
        specs = sched.infer([(feed[n].shape, feed[n].dtype) for n in sched.feeds])
        return vm.Plan(sched, specs, [], assign=trainer._assign)
