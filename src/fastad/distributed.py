"""Synchronous data parallelism on a Dask cluster (`pip install "fastad[distributed]"`).

Every worker computes the loss and the gradients of its shard of the data with the same
program; the shard sums are added up by a tree of tasks, and the client applies one
update.  What goes where:

- the shard program (loss and gradient nodes, the placeholders, the backend) is
  scattered to every worker once per fit and stays there; each worker builds its
  Executor at the first step and keeps it;
- numpy data are split by rows into one shard per worker and scattered once; dask
  arrays chunked along the sample axis are persisted, and each chunk is used where it
  lives;
- a step scatters the parameters (never put into the task graph), runs one task per
  worker's shard and a tree of additions, and gathers one (rows, loss, gradients) sum.

Exactness: whether the loss is a mean over the rows it is fed (plus terms that do not
depend on the rows) or a sum over them is proved from the graph (fastad.rows, as
fastad.parallel does; a loss that is neither is refused, naming the node), or vouched
for with reduction="mean"/"sum".  A mean's shard results are weighted by their rows, so
a step computes the whole batch's mean loss and gradients; a sum's are added.  Either way the
figures equal the single-process ones up to the order of the additions (relative error
near 1e-15 in float64).  Losses that couple rows (batch statistics) are not split
exactly.

Worker loss: a task that was running on a lost worker is rerun by Dask elsewhere, lost
dask chunks are recomputed from their graph, and numpy shards that were lost are
scattered again from the client's arrays, after which the step runs again with the same
parameters: its result is unchanged.  fit warns and lists the steps in
`History.workers_lost`.
"""
import concurrent.futures
import functools
import itertools
import time
import uuid
import warnings

import numpy as np

from .executor import Executor
from .graph import PlaceholderOp, find_topo_sort
from .parallel import DataParallel
from .reverse import gradients as gradient_nodes
from .rows import MEAN
from .schedule import as_feed, packed, real_dtype

ATTEMPTS = 5  # runs of one step before a lost worker is an error


def _dask():
    try:
        import dask.array
        import distributed
    except ImportError:
        raise ImportError('fastad.distributed needs Dask: pip install "fastad[distributed]"') from None
    return dask.array, distributed


class ShardProgram:
    """What a worker runs: `nodes` ([loss, *gradients]) for the rows of its shard it is
    told, fed `params` and `data_nodes`.  Its Executor is built on the worker at first
    use and kept; it is not pickled."""

    def __init__(self, nodes, params, data_nodes, backend, mean):
        self.nodes, self.params, self.data_nodes = list(nodes), list(params), list(data_nodes)
        self.backend, self.mean = backend, mean
        self._executor = None

    def __getstate__(self):
        return {**self.__dict__, "_executor": None}

    def executor(self):
        if self._executor is None:
            self._executor = Executor(self.nodes, backend=self.backend)
        return self._executor


def shard_sums(program, params, blocks, selections):
    """On a worker: (rows, [loss sum, *gradient sums]) over the selected rows of its
    blocks (each a tuple of arrays, one per data node); a mean's sum is rows × mean."""
    feed, total, sums = dict(zip(program.params, params)), 0, None
    for block, sel in zip(blocks, selections):
        part = [a if sel is None else a[sel] for a in block]
        rows = len(part[0])
        if not rows:
            continue
        feed.update(zip(program.data_nodes, part))
        values = program.executor().run(feed)
        if program.mean:
            values = [v * rows for v in values]
        sums = values if sums is None else [s + v for s, v in zip(sums, values)]
        total += rows
    return total, sums


def packed_shard(arrays):
    return tuple(map(packed, arrays))


def add_sums(a, b):
    """One node of the tree reduction."""
    if a[1] is None or b[1] is None:
        return a if b[1] is None else b
    return a[0] + b[0], [x + y for x, y in zip(a[1], b[1])]


class Job:
    """A shard program and the data, on a cluster, for the steps of one fit (or one
    gradients() call)."""

    def __init__(self, client, program, data):
        da, distributed = _dask()
        from dask import delayed
        self.client, self.program, self.delayed = client, program, delayed
        # what a lost worker raises: a cancelled or killed task, a closed connection
        self.lost = (concurrent.futures.CancelledError, distributed.KilledWorker, OSError)
        self.tag = uuid.uuid4().hex[:8]
        self.workers = self._workers()
        self.program_future = self._scatter(program)
        arrays = [data[n] for n in program.data_nodes]
        if any(isinstance(a, da.Array) for a in arrays):
            self.blocks, self.offsets, self.shards = self._dask_blocks(arrays, da)
            self.arrays = None  # chunks are recomputed from their graph when lost
        else:
            self.blocks, self.offsets, self.shards = self._numpy_blocks(arrays)
            self.arrays = arrays  # lost shards are scattered again from these
        self.n = self.offsets[-1]
        self.workers_lost = []  # (step, worker address)
        self.times = []  # [start, end, step] of each step, to place a loss between steps

    def _scatter(self, value, **where):
        """One scattered copy; the workers that need it fetch it from each other once and
        keep it.  (Not broadcast=True, whose event makes the scheduler's event log
        unserializable in distributed 2026.8.)"""
        future, = self.client.scatter([value], hash=False, **where)
        return future

    def _workers(self):
        workers = sorted(self.client.nthreads())
        if not workers:
            raise RuntimeError("fastad.distributed: the cluster has no workers")
        return workers

    def _numpy_blocks(self, arrays):
        """One shard per worker: contiguous row ranges, scattered to their worker."""
        workers, n = self.workers, len(arrays[0])
        bounds = [n * k // len(workers) for k in range(len(workers) + 1)]
        blocks = [self._shard(arrays, lo, hi, w) for w, lo, hi in zip(workers, bounds, bounds[1:])]
        return blocks, bounds, [[k] for k in range(len(blocks))]

    def _shard(self, arrays, lo, hi, worker=None):
        """Rows lo:hi scattered (to `worker`), then packed where they are."""
        where = {} if worker is None else {"workers": [worker]}
        raw = self._scatter(tuple(a[lo:hi] for a in arrays), **where)
        return self.client.submit(packed_shard, raw, pure=False)

    def _dask_blocks(self, arrays, da):
        """The arrays' row chunks, persisted (lined up with the first one's), grouped by
        the worker holding them: one task per group a step."""
        arrays = [a if isinstance(a, da.Array) else da.from_array(a) for a in arrays]
        rows = arrays[0].chunks[0]
        if any(np.isnan(r) for r in rows):
            raise ValueError("fastad.distributed: dask arrays need known chunk sizes "
                             "(call compute_chunk_sizes() first)")
        arrays = [a.rechunk({0: rows, **{axis: -1 for axis in range(1, a.ndim)}})
                  .map_blocks(packed, dtype=a.dtype) for a in arrays]
        arrays = self.client.persist(arrays)
        _, distributed = _dask()
        futures = {f.key: f for f in distributed.futures_of(arrays)}
        distributed.wait(list(futures.values()))
        # one chunk a block of rows: each array's chunks in order, lined up
        blocks = list(zip(*([futures[d.key] for d in a.to_delayed().ravel()] for a in arrays)))
        where = self.client.who_has([b[0] for b in blocks])
        groups = {}
        for i, b in enumerate(blocks):
            holders = where.get(b[0].key) or ("",)
            groups.setdefault(holders[0], []).append(i)
        offsets = [0, *itertools.accumulate(int(r) for r in rows)]
        return blocks, offsets, list(groups.values())

    def selections(self, rows):
        """Per shard, per block: which of its rows a step with these global rows reads
        (None: all; a slice; an index array)."""
        out = []
        for shard in self.shards:
            sel = []
            for i in shard:
                lo, hi = self.offsets[i], self.offsets[i + 1]
                if rows is None:
                    sel.append(None)
                elif isinstance(rows, slice):
                    a, b = max(rows.start, lo), min(rows.stop, hi)
                    sel.append(None if (a, b) == (lo, hi) else slice(a - lo, max(a, b) - lo))
                else:
                    mine = rows[(rows >= lo) & (rows < hi)]
                    sel.append(mine - lo)
            out.append(sel)
        return out

    def run(self, params, rows=None, step=0):
        """(rows, [loss sum, *gradient sums]) of one step over these global rows (None:
        all), rerun after the loss of a worker."""
        selections = self.selections(rows)
        span = [time.time(), np.inf, step]
        self.times.append(span)
        for attempt in range(ATTEMPTS):
            try:
                if attempt:
                    time.sleep(0.1 * attempt)  # for the scheduler to see the worker gone
                    self._recover()
                result = self._run_once(params, selections, step, attempt)
                span[1] = time.time()
                if attempt:
                    self._note_losses()
                return result
            except self.lost as err:
                error = err
        raise RuntimeError(f"fastad.distributed: step {step} failed {ATTEMPTS} times as "
                           "workers were lost") from error

    def _run_once(self, params, selections, step, attempt):
        """One message to the scheduler a step: the shard tasks and a tree of additions on
        the workers down to two sums, which the client gathers and adds."""
        delayed = self.delayed
        params = self._scatter(tuple(params))
        name = f"fastad-{self.tag}-step{step}.{attempt}"
        sums = [delayed(shard_sums, pure=False)(self.program_future, params,
                                                [self.blocks[i] for i in shard], sel,
                                                dask_key_name=f"{name}-shard{k}")
                for k, (shard, sel) in enumerate(zip(self.shards, selections))]
        level = 0
        while len(sums) > 2:  # pairs of neighbours
            level += 1
            sums = [delayed(add_sums, pure=False)(*sums[j:j + 2], dask_key_name=f"{name}-add{level}.{j}")
                    if j + 1 < len(sums) else sums[j] for j in range(0, len(sums), 2)]
        return functools.reduce(add_sums, self.client.gather(self.client.compute(sums)))

    def _recover(self):
        """Scatters again what a lost worker took with it: the program, numpy shards."""
        if self.program_future.status != "finished":
            self.program_future = self._scatter(self.program)
        if self.arrays is not None:
            for k, future in enumerate(self.blocks):
                if future.status != "finished":
                    self.blocks[k] = self._shard(self.arrays, self.offsets[k], self.offsets[k + 1])

    def _note_losses(self):
        """Records the workers of the job that the cluster lost, against the step whose
        tasks they were running (from the scheduler's log of that worker), else the step
        that ran when, or next after, the worker left."""
        now = set(self._workers())
        for worker in self.workers:
            if worker in now or worker in {w for _, w in self.workers_lost}:
                continue
            removed = [(stamp, e) for stamp, e in self.client.get_events(worker)
                       if isinstance(e, dict) and e.get("action") == "remove-worker"]
            stamp, event = removed[-1] if removed else (time.time(), {})
            steps = sorted({int(k.split("-step")[1].split(".")[0])
                            for k in event.get("processing-tasks", ())
                            if isinstance(k, str) and k.startswith(f"fastad-{self.tag}-step")})
            during = [s for start, end, s in self.times if stamp <= end]
            at = steps[0] if steps else (during[0] if during else self.times[-1][2])
            self.workers_lost.append((at, worker))
            warnings.warn(f"fastad.distributed: worker {worker} was lost during step {at}; the "
                          "step ran again on the remaining workers with the same parameters",
                          RuntimeWarning, stacklevel=4)
        self.workers = sorted(set(self.workers) | now)

    def close(self):
        self.client.cancel([self.program_future, *(f for f in self._futures())])

    def _futures(self):
        for b in self.blocks:
            yield from (b if isinstance(b, tuple) else (b,))


def _check_data(data, data_nodes, what):
    missing = [n.name for n in data_nodes if n not in data]
    if missing:
        raise ValueError(f"{what}: no data for placeholder(s) {', '.join(map(repr, missing))}")
    unknown = [getattr(k, "name", repr(k)) for k in data if k not in data_nodes]
    if unknown:
        raise ValueError(f"{what}: {', '.join(map(repr, unknown))} is not a data placeholder "
                         "of the loss")
    da, _ = _dask()
    out = {}
    for n in data_nodes:
        value = data[n]
        if isinstance(value, da.Array):
            dtype = real_dtype(n, np.dtype(value.dtype))
            value = value if value.dtype == dtype else value.astype(dtype)
        else:
            value = as_feed(n, value)
        if value.ndim == 0:
            raise ValueError(f"{what}: data need a sample axis; '{n.name}' is 0-d")
        out[n] = value
    lengths = {n.name: value.shape[0] for n, value in out.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{what}: data arrays have different numbers of samples: {lengths}")
    if not next(iter(lengths.values())):
        raise ValueError(f"{what}: the data have no samples")
    return out


def _is_mean(loss, params, values, data, reduction):
    """Whether `loss` is a mean over the rows of `data` (else a sum): `reduction`
    vouches, or fastad.rows proves it from the graph for values of these shapes."""
    split = DataParallel(loss, params, reduction=reduction)  # checks `reduction` too
    return split.reduction_for(values, data) == MEAN


def gradients(loss, params, data, client, reduction=None, backend="native"):
    """The loss and its gradients w.r.t. `params` ({Variable: value}) over all rows of
    `data` ({placeholder: numpy or dask array, samples first}), computed shard by shard
    on the workers of `client` (a dask.distributed.Client).  The loss is a mean or a sum
    over the rows as the graph says, or as `reduction` ("mean"/"sum") vouches (see the
    module's doc).  Returns (loss as a float, [gradient arrays in the order of params])."""
    params = {p: as_feed(p, v) for p, v in dict(params).items()}
    graph = find_topo_sort([loss])
    data_nodes = [n for n in graph if isinstance(n.op, PlaceholderOp) and n not in params]
    data = _check_data(data, data_nodes, "gradients")
    mean = _is_mean(loss, list(params), params, data, reduction)
    program = ShardProgram([loss, *gradient_nodes(loss, list(params))], params, data_nodes,
                           backend, mean)
    job = Job(client, program, data)
    try:
        rows, sums = job.run(list(params.values()))
    finally:
        job.close()
    if mean:
        sums = [s / rows for s in sums]
    return float(np.reshape(sums[0], -1)[0]), sums[1:]


def fit(trainer, data, client, history, epochs=1, batch_size=None, shuffle=False, seed=None,
        drop_last=False, callbacks=(), progress=None, reduction=None):
    """`Trainer.fit(..., client=client)`: each step's batch is the one a single-process
    fit takes (rows in order, or shuffled from `seed`), split over the workers by where
    the rows live; the gradients are combined, and the trainer's optimizer update runs
    once on the client, on the trainer's own parameters and state."""
    if batch_size is None or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError("fit(client=...): give batch_size, the samples a step (the number of "
                         f"samples for full-batch steps), not {batch_size!r}")
    if int(epochs) != epochs or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative integer, not {epochs!r}")
    if progress:
        raise ValueError("fit(client=...) shows no progress bar; use callbacks")
    arrays = _check_data(data, trainer.data_nodes, "fit")
    params = list(trainer.params)
    mean = _is_mean(trainer.loss, params, trainer.params, arrays, reduction)
    grads = [trainer._grads[p] for p in params]
    program = ShardProgram([trainer.loss, *grads], params, trainer.data_nodes, trainer.backend,
                           mean)
    updates = [v for _, v in trainer._assign]
    update = Executor(updates, backend=trainer.backend)
    job = Job(client, program, arrays)
    n, batch = job.n, int(batch_size)
    rng = np.random.default_rng(seed) if shuffle else None
    steps = n // batch if drop_last else -(-n // batch)
    losses, means = [], []
    try:
        for epoch in range(int(epochs)):
            order = rng.permutation(n) if shuffle else None
            epoch_losses = []
            for k in range(steps):
                lo, hi = k * batch, min(n, (k + 1) * batch)
                rows = (None if (lo, hi) == (0, n) and order is None else
                        slice(lo, hi) if order is None else order[lo:hi])
                values = [trainer._values[p] for p in params]
                try:
                    count, sums = job.run(values, rows, step=trainer.t + 1)
                except KeyboardInterrupt:
                    history.interrupted = True
                    raise
                scale = 1 / count if mean else 1
                feed = {**trainer._values, **{g: s * scale for g, s in zip(grads, sums[1:])}}
                rates = trainer._lr_values(trainer.t + 1, 1)
                feed.update({node: r[0] for node, r in rates.items()})
                for (node, _), value in zip(trainer._assign, update.run(feed)):
                    np.copyto(trainer._values[node], value, casting="unsafe")
                trainer.t += 1
                epoch_losses.append(float(np.reshape(sums[0], -1)[0]) * scale)
            losses.extend(epoch_losses)
            history.steps_per_epoch.append(len(epoch_losses))
            means.append(np.mean(epoch_losses) if epoch_losses else np.nan)
            history.losses, history.epoch_means = np.array(losses), np.array(means)
            for callback in callbacks:
                callback(epoch, history)
        job._note_losses()
    finally:
        history.losses, history.epoch_means = np.array(losses), np.array(means)
        history.workers_lost = list(job.workers_lost)
        job.close()
    return history
