"""`Trainer`: parameters that live in fastad, an optimizer, and a training loop in C.

A training step is one program: the loss, its gradients, and the optimizer's update
rules (fastad.optim), ending by writing the new parameters and optimizer state into
buffers the Trainer owns.  `step` runs it once; `fit` runs whole epochs in the kernel
(`fa_train`), feeding each step its samples straight from the data arrays, with the GIL
released, and comes back to Python only between chunks of steps: for the progress bar,
Ctrl-C and callbacks.
"""
import _signal  # signal.signal without its enum conversion (once per step)
import contextlib
import math
import signal
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from . import optim, parallel, vm
from .cache import DEFAULT_LIMITS, LRUCache
from .executor import PICKLE_FORMAT, Executor, unpickled
from .graph import PlaceholderOp, Variable, find_topo_sort
from .reverse import gradients
from .schedule import Schedule, as_feed, packed

CHUNK_S = 0.05  # a fit comes back to Python about this often (progress, Ctrl-C)


@dataclass
class History:
    """What a fit did: `losses` per step (float64), `epoch_means` per epoch, and the
    steps of each epoch; `interrupted` when Ctrl-C stopped it (the history then ends
    at the last step that ran); `workers_lost`, in a fit on a Dask cluster, (step,
    worker address) for each worker lost (the step ran again, with the same result)."""
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    epoch_means: np.ndarray = field(default_factory=lambda: np.zeros(0))
    steps_per_epoch: list = field(default_factory=list)
    interrupted: bool = False
    workers_lost: list = field(default_factory=list)


def plot_history(history, path, title="training loss"):
    """Per-step losses and per-epoch means of a History, to an image (matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plot_history needs matplotlib: pip install fastad[examples]") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(history.losses) + 1), history.losses, lw=0.6, alpha=0.6,
            label="per step")
    ends = np.cumsum(history.steps_per_epoch)
    ax.plot(ends[:len(history.epoch_means)], history.epoch_means, "o-", label="epoch mean")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log" if np.all(history.losses > 0) else "linear")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


class ParameterView:
    """`trainer.params[w]`: a copy of a parameter's current value."""

    def __init__(self, values):
        self._values = values

    def __getitem__(self, node):
        return self._values[node].copy()

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def items(self):
        return [(n, v.copy()) for n, v in self._values.items()]


class Trainer:
    """Trains `params` ({Variable: initial array}) to lower `loss` with `optimizer`.

    fastad owns the parameters and the optimizer's state and updates them in place;
    `trainer.params[w]` reads one (a copy).  The other placeholders of the loss are the
    data, fed by `step(feed_dict)` or `fit(data, ...)`.  backend "python" runs the same
    steps on the reference VM.  A Trainer is used by one thread at a time (another
    thread gets a RuntimeError, not a race).  It pickles (also with cloudpickle) with
    its graph, parameters, optimizer state, step count and history, and an unpickled
    one trains on as the original would, bit for bit.
    """

    def __init__(self, loss, params, optimizer, backend="native", threads=None):
        if backend not in ("native", "python"):
            raise ValueError(f"unknown backend {backend!r}; choose 'native' or 'python'")
        if not isinstance(optimizer, optim.Optimizer):
            raise TypeError(f"optimizer must be a fastad.optim.Optimizer, not {type(optimizer).__name__}")
        graph = set(find_topo_sort([loss]))
        self.loss, self.optimizer, self.backend = loss, optimizer, backend
        self.t = 0  # steps taken
        self._values = {}  # every buffer fastad owns: parameters, then optimizer state
        for p, value in dict(params).items():
            if not (hasattr(p, "op") and isinstance(p.op, PlaceholderOp)):
                raise TypeError(f"params: keys must be Variables, not {p!r}")
            if p not in graph:
                raise ValueError(f"params: '{p.name}' is not a placeholder of the loss")
            arr = np.array(as_feed(p, value), order="C", copy=True)
            self._values[p] = arr
        if not self._values:
            raise ValueError("params: give at least one parameter to train")
        self.params = ParameterView({p: self._values[p] for p in params})
        self._build()
        self._threads = threads
        self.history = History()
        self._start()

    def _start(self):
        """What a Trainer makes for itself, and does not pickle: its lock and what runs."""
        self._lock = threading.Lock()
        self._owner = None  # the thread holding the lock
        self._executor = Executor([self.loss, *(v for _, v in self._assign)], backend="python",
                                  threads=self._threads) if self.backend == "python" else None
        # bounded as an Executor's plans are (fastad.set_plan_cache): data of ever new
        # shapes keep memory bounded
        self._plans = LRUCache(DEFAULT_LIMITS, vm.Plan.held_bytes)  # data signature -> plan
        self._loops = LRUCache(DEFAULT_LIMITS, lambda loop: loop.plan.arena_bytes)
        # ^ (plan, per sample, gathered) -> NativeLoop (its own workspace)
        self._parallel = None  # fastad.parallel's steps, once fit has used workers
        self._workers = None   # while a fit splits its steps across workers: how many

    # -- pickling --------------------------------------------------------------------

    # what a pickled Trainer holds: the graphs, every buffer, the step count and history
    _PICKLED = ("loss", "optimizer", "backend", "t", "_values", "_lr", "_grads", "_assign",
                "data_nodes", "_threads", "history")

    def __getstate__(self):
        """Between fits, or from a callback of this thread's fit (at an epoch's end):
        never while another thread trains it."""
        if self._lock.acquire(blocking=False):
            self._lock.release()
        elif self._owner != threading.get_ident():
            raise RuntimeError("this Trainer is training in another thread; pickle it "
                               "between fits or from a callback")
        state = {name: getattr(self, name) for name in self._PICKLED}
        return {"format": PICKLE_FORMAT, "params": list(self.params), **state}

    def __setstate__(self, state):
        state = dict(unpickled(state, "Trainer"))
        params = state.pop("params")
        state.pop("format")
        self.__dict__.update(state)
        self.params = ParameterView({p: self._values[p] for p in params})
        self._start()

    # -- the step program ------------------------------------------------------------

    def _build(self):
        """The update nodes and what they are written to (self._assign)."""
        opt, params = self.optimizer, list(self.params)
        grads = gradients(self.loss, params)
        self._grads = dict(zip(params, grads))  # fed by a split step's update (parallel, Dask)
        constant = isinstance(opt.schedule, optim.Constant)
        self._lr = {}      # dtype -> the learning rate's 0-d Variable (a varying schedule)
        shared = {}        # dtype -> {name: node of this step's value}
        self._assign = []  # (buffer's Variable, its new value's node)
        for p, g in zip(params, grads):
            dtype = self._values[p].dtype
            if dtype not in shared:
                old = {name: self._own(Variable(f"{name}[{dtype.name}]"), np.array(v, dtype))
                       for name, v in opt.shared().items()}
                shared[dtype] = opt.advance(old)
                self._assign += [(old[name], node) for name, node in shared[dtype].items()]
                if not constant:
                    self._lr[dtype] = Variable(f"lr[{dtype.name}]")
            lr = opt.schedule.lr if constant else self._lr[dtype]
            state = {name: self._own(Variable(f"{p.name}.{name}"), np.asarray(v, dtype))
                     for name, v in opt.state(self._values[p]).items()}
            new_p, new_state = opt.update(p, g, state, shared[dtype], lr)
            self._assign.append((p, new_p))
            self._assign += [(state[name], node) for name, node in new_state.items()]
        owned = set(self._values) | set(self._lr.values())
        nodes = find_topo_sort([self.loss, *(v for _, v in self._assign)])
        self.data_nodes = [n for n in nodes if isinstance(n.op, PlaceholderOp) and n not in owned]

    def _own(self, node, value):
        self._values[node] = np.array(value, order="C", copy=True)
        return node

    def _lr_values(self, first, count):
        """{lr Variable: the rates of steps first .. first + count - 1 in its dtype}."""
        if not self._lr:
            return {}
        rates = self.optimizer.schedule.values(first, count)
        return {node: rates.astype(dtype) for dtype, node in self._lr.items()}

    # -- checks ----------------------------------------------------------------------

    def _data(self, data, what):
        """The data feeds as float32/float64 arrays, checked: one per data placeholder."""
        missing = [n.name for n in self.data_nodes if n not in data]
        if missing:
            raise ValueError(f"{what}: no data for placeholder(s) {', '.join(map(repr, missing))}")
        unknown = [getattr(k, "name", repr(k)) for k in data
                   if k not in self.data_nodes and k not in self._values]
        if unknown:
            raise ValueError(f"{what}: {', '.join(map(repr, unknown))} is not a data placeholder "
                             f"of the loss")
        owned = [k.name for k in data if k in self._values]
        if owned:
            raise ValueError(f"{what}: {', '.join(map(repr, owned))} is trained by fastad; "
                             "read it with trainer.params")
        return {n: as_feed(n, data[n]) for n in self.data_nodes}

    def _acquire(self):
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this Trainer is in use by another thread; a Trainer is used "
                               "by one thread at a time")
        self._owner = threading.get_ident()

    def _release(self):
        self._owner = None
        self._lock.release()

    # -- one step --------------------------------------------------------------------

    def step(self, feed_dict):
        """One step (loss, gradients, update) on these data; returns the loss."""
        self._acquire()
        try:
            losses = []
            self._run_step(self._data(feed_dict, "step"), losses)
            return losses[0]
        finally:
            self._release()

    def _run_step(self, data, losses):
        """One step on these data; appends its loss to `losses`.  The new parameters and
        optimizer state, self.t and the loss are all written or none: a Ctrl-C while
        they are is held back until they are (the native program ends by writing them,
        so it runs whole)."""
        if self._workers:  # the batch split across threads (fastad.parallel)
            loss, grads = self._parallel.gradients(self, data, self._workers)
            with _holding_ctrl_c():
                self._parallel.update(self, grads)
                self.t += 1
                losses.append(loss)
            return
        lr = {node: rates[0] for node, rates in self._lr_values(self.t + 1, 1).items()}
        feed = {**self._values, **lr, **data}
        if self.backend == "python":
            loss, *new = self._executor.run(feed)  # a Ctrl-C here changes nothing
            with _holding_ctrl_c():
                for (node, _), value in zip(self._assign, new):
                    np.copyto(self._values[node], value, casting="unsafe")
                self.t += 1
                losses.append(float(loss.reshape(-1)[0]))
            return
        plan = self._plan(data)
        with _holding_ctrl_c():
            out = plan.run(feed, self._options_now())
            if out is None:  # a feed's layout differs from the plan's: run converted copies
                out = plan.run({**feed, **{n: packed(v) for n, v in data.items()}},
                               self._options_now())
            self.t += 1
            losses.append(float(out[0].reshape(-1)[0]))

    def _options_now(self):
        return vm.DEFAULT_OPTIONS if self._threads is None else self._options

    @property
    def _options(self):
        if not hasattr(self, "_own_options"):
            self._own_options = vm.RunOptions(self._threads)
        return self._own_options

    def _plan(self, data):
        """The native step program for data of these shapes and dtypes."""
        signature = tuple((n, v.shape, v.dtype) for n, v in data.items())
        plan = self._plans.get(signature)
        if plan is None:
            fed = [*self._values, *self._lr.values(), *self.data_nodes]
            eval_nodes = [self.loss, *(v for _, v in self._assign)]
            sched = Schedule(find_topo_sort(eval_nodes), eval_nodes, set(fed))
            arrays = {**self._values, **{n: np.zeros((), d) for d, n in self._lr.items()}, **data}
            specs = sched.infer([(arrays[n].shape, arrays[n].dtype) for n in sched.feeds])
            if math.prod(specs[self.loss][0]) != 1:
                raise ValueError(f"the loss must be a single number; '{self.loss}' has shape "
                                 f"{specs[self.loss][0]} for these data")
            plan = vm.Plan(sched, specs, [self.loss], assign=self._assign)
            self._plans.put(signature, plan)
        return plan

    # -- whole epochs ----------------------------------------------------------------

    def fit(self, data, epochs=1, batch_size=None, shuffle=False, seed=None, drop_last=False,
            callbacks=(), progress=None, workers=None, client=None):
        """Trains for `epochs` passes over `data` ({placeholder: array}, the first axis
        the samples).  batch_size None: one sample a step, fed without a batch axis (the
        seed's loop); an int B: steps of B samples (a last partial batch runs too, with a
        program of its own, unless drop_last).  shuffle: a permutation of the samples
        per epoch, drawn from `seed`.  callbacks: functions called as f(epoch, history)
        after each epoch.  progress: a tqdm bar per epoch (None: when tqdm is installed).
        Returns the History (also `trainer.history`); Ctrl-C stops at a step boundary
        with consistent parameters and raises KeyboardInterrupt.  workers N > 1: each
        batch's rows split across N threads (fastad.parallel: the loss must be a mean or
        sum over the rows).  client: a dask.distributed.Client; the steps' batches are
        split over its workers (fastad.distributed.fit).  Both need batch_size."""
        self._acquire()
        try:
            if client is not None and workers not in (None, 1):
                raise ValueError("fit: give workers (threads here) or client (a Dask "
                                 "cluster), not both")
            if client is not None:
                from .distributed import fit as fit_on
                self.history = History()
                return fit_on(self, data, client, self.history, epochs, batch_size, shuffle,
                              seed, drop_last, callbacks, progress)
            arrays = self._data(data, "fit")
            n = self._samples(arrays)
            if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
                raise ValueError(f"fit: batch_size must be None or a positive integer, not {batch_size!r}")
            if int(epochs) != epochs or epochs < 0:
                raise ValueError(f"fit: epochs must be a non-negative integer, not {epochs!r}")
            if workers is not None and (int(workers) != workers or workers < 1):
                raise ValueError(f"fit: workers must be None or a positive integer, not {workers!r}")
            if workers is not None and workers > 1:
                if batch_size is None:
                    raise ValueError("fit: workers split a batch's rows; give batch_size (the "
                                     "number of samples, for full-batch steps)")
                if self._parallel is None:
                    self._parallel = parallel.TrainerSteps(self)
                self._workers = int(workers)
                arrays = {k: packed(v) for k, v in arrays.items()}
            rng = np.random.default_rng(seed) if shuffle else None
            self.history = history = History()
            chunks, means = [], []
            loop = None
            try:
                together = self._epochs_together(n, batch_size, shuffle, drop_last, callbacks,
                                                 progress)
                for epoch in range(int(epochs)):
                    order = rng.permutation(n) if shuffle else None
                    if loop is None:
                        loop = self._loop(arrays, batch_size, order is not None)
                    if together and isinstance(loop, NativeLoop):
                        # every epoch in one run of the kernel's loop, then split
                        steps = n if batch_size is None else n // batch_size
                        losses = loop.run(arrays, batch_size, None, steps * int(epochs),
                                          _NoBar(), epoch_steps=steps)
                        done = len(losses)
                        for e in range(0, done, steps):
                            chunks.append(losses[e:e + steps])
                            history.steps_per_epoch.append(len(chunks[-1]))
                            if len(chunks[-1]) == steps:
                                means.append(chunks[-1].sum() / steps)
                        if history.interrupted:
                            raise KeyboardInterrupt
                        break
                    losses = self._epoch(loop, arrays, n, batch_size, order, drop_last, epoch,
                                         progress)
                    chunks.append(losses)
                    history.steps_per_epoch.append(len(losses))
                    if history.interrupted:
                        raise KeyboardInterrupt
                    means.append(losses.sum() / len(losses) if len(losses) else math.nan)
                    if callbacks:
                        history.losses, history.epoch_means = np.concatenate(chunks), np.array(means)
                        for callback in callbacks:
                            callback(epoch, history)
            finally:
                history.losses = np.concatenate(chunks) if chunks else np.zeros(0)
                history.epoch_means = np.array(means)
            return history
        finally:
            self._workers = None
            self._release()

    def _samples(self, arrays):
        lengths = {n.name: (v.shape[0] if v.ndim else None) for n, v in arrays.items()}
        if any(v is None for v in lengths.values()):
            raise ValueError(f"fit: data arrays need a sample axis; got 0-d data for "
                             f"{[k for k, v in lengths.items() if v is None]}")
        if len(set(lengths.values())) > 1:
            raise ValueError(f"fit: data arrays have different numbers of samples: {lengths}")
        n = next(iter(lengths.values()), 0)
        if not n:
            raise ValueError("fit: the data have no samples")
        return n

    @staticmethod
    def _epochs_together(n, batch, shuffle, drop_last, callbacks, progress):
        """Whether all epochs can run in one loop of the kernel: nothing to do between
        epochs (no shuffle, callbacks, progress bar or partial batch)."""
        partial = batch is not None and n % batch and not drop_last
        return not (shuffle or callbacks or partial or _wants_bar(progress))

    def _loop(self, arrays, batch, shuffled):
        """What runs an epoch's full steps: the kernel's loop (a NativeLoop, kept for the
        next fit), or a PythonLoop (the python backend, a program with Python steps, or
        steps split across workers)."""
        if self._workers:
            return PythonLoop(self)
        first = {k: (v[0] if batch is None else v[:batch]) for k, v in arrays.items()}
        plan = self._plan(first) if self.backend == "native" else None
        if plan is None or plan.segments is not None:
            return PythonLoop(self)
        key = (plan, batch is None, shuffled and batch is not None)
        loop = self._loops.get(key)
        if loop is None:
            loop = NativeLoop(self, plan, batch, shuffled, first)
            self._loops.put(key, loop)
        loop.use(arrays)
        return loop

    def _epoch(self, loop, arrays, n, batch, order, drop_last, epoch, progress):
        """One epoch's losses (fewer when interrupted)."""
        full = n if batch is None else n // batch
        partial = 0 if batch is None or drop_last else n % batch
        bar = _progress(progress, full + (partial > 0), f"epoch {epoch + 1}")
        losses = []
        try:
            if full:
                losses.append(loop.run(arrays, batch, order, full, bar))
            if partial and not self.history.interrupted:
                rows = (order[-partial:] if order is not None else np.arange(n - partial, n))
                last = []
                try:
                    self._run_step({k: v[rows] for k, v in arrays.items()}, last)
                    bar.update(1)
                except KeyboardInterrupt:  # as the loops: stop here, keep what was done
                    self.history.interrupted = True
                losses.append(np.array(last))
        finally:
            bar.close()
        return np.concatenate(losses) if losses else np.zeros(0)


class PythonLoop:
    """An epoch's steps one by one from Python: the python backend, or a step program
    with Python steps (user ops)."""

    def __init__(self, trainer):
        self.trainer = trainer

    def run(self, arrays, batch, order, steps, bar, epoch_steps=0):
        """The losses of `steps` steps; Ctrl-C stops it at a step boundary
        (history.interrupted), as in the kernel's loop."""
        trainer, losses = self.trainer, []
        try:
            for k in range(steps):
                rows = _rows(k, batch, order)
                trainer._run_step({name: v[rows] for name, v in arrays.items()}, losses)
                bar.update(1)
        except KeyboardInterrupt:
            trainer.history.interrupted = True
        return np.array(losses, dtype=np.float64)


@contextlib.contextmanager
def _holding_ctrl_c():
    """The block runs with Ctrl-C held back: a SIGINT meanwhile is delivered, to the
    handler there was, when it ends.  Only the main thread gets SIGINT; elsewhere, or
    when the handler is not Python's, this does nothing."""
    held = []
    previous = (_signal.getsignal(signal.SIGINT)
                if threading.current_thread() is threading.main_thread() else None)
    if previous is None:
        yield
        return
    _signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        _signal.signal(signal.SIGINT, previous)
        if held:
            signal.raise_signal(signal.SIGINT)


def _rows(k, batch, order):
    if batch is None:
        return order[k] if order is not None else k
    if order is None:
        return slice(k * batch, (k + 1) * batch)  # a view of the batch, not a copy
    return order[k * batch:(k + 1) * batch]


def _wants_bar(progress):
    """progress True, or None with tqdm installed and stderr a terminal."""
    if progress is None:
        import importlib.util
        import sys
        return importlib.util.find_spec("tqdm") is not None and sys.stderr.isatty()
    return bool(progress)


def _progress(progress, total, desc):
    if _wants_bar(progress):
        try:
            from tqdm import tqdm
        except ImportError:
            raise ImportError("progress=True needs tqdm: pip install tqdm") from None
        return _Bar(tqdm(total=total, desc=desc, unit="step", leave=False))
    return _NoBar()


class _Bar:
    """A tqdm bar."""

    def __init__(self, bar):
        self.bar = bar

    def update(self, n=1):
        self.bar.update(n)

    def close(self):
        self.bar.close()


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


class NativeLoop:
    """Full steps in the kernel: the job for fa_train, made once per step program and
    batching mode (and kept), given the data of each fit, and run in chunks."""

    def __init__(self, trainer, plan, batch, shuffled, first):
        lib, ffi = vm.lib, vm.ffi
        self.trainer, self.plan = weakref.proxy(trainer), plan  # the trainer keeps this loop
        self.batch, self.shuffled = batch, shuffled
        self.ws = vm.Workspace(plan)  # this loop's own, for good
        lr_tables = trainer._lr_values(trainer.t + 1, 1)
        feeds = {**trainer._values, **{node: t[0] for node, t in lr_tables.items()}}
        self.batches = {}  # shuffled mini-batches are gathered into buffers of their own
        for node, value in first.items():
            if batch is not None and shuffled:
                feeds[node] = self.batches[node] = np.empty_like(value)
            else:
                feeds[node] = value if np.ndim(value) == 0 else packed(value)
        if not self.ws.bind(feeds, plan.feed_specs):
            raise RuntimeError("fastad internal error: a training step's feeds don't fit its plan")
        specs = {node: (slot, dtype) for node, _, dtype, slot in plan.feed_specs}
        self.data_nodes = list(first)
        self.lr_nodes = list(trainer._lr.values())
        self.streams = ffi.new("fa_stream[]", max(1, len(self.data_nodes) + len(self.lr_nodes)))
        for s, node in zip(self.streams, self.data_nodes):
            s.slot = specs[node][0]
            if batch is not None and shuffled:
                s.kind = lib.FA_STREAM_GATHER
            elif batch is None and np.ndim(first[node]) == 0:
                s.kind = lib.FA_STREAM_CELL  # one number a sample: a 0-d feed
            else:
                s.kind = lib.FA_STREAM_POINT
        n_data = len(self.data_nodes)
        for k, node in enumerate(self.lr_nodes):
            s, (slot, dtype) = self.streams[n_data + k], specs[node]
            s.slot, s.kind, s.by_step = slot, lib.FA_STREAM_CELL, 1
            s.stride = s.bytes = dtype.itemsize
        loss_value = plan.copied[0]
        job = self.job = ffi.new("fa_train_job *")
        job.prog, job.n_instr, job.slots = plan.prog, plan.n_instrs, self.ws.slots
        job.n_streams, job.streams = len(self.data_nodes) + len(self.lr_nodes), self.streams
        job.batch = 1 if batch is None else batch
        job.loss_slot = loss_value.storage.index
        job.loss_f64 = loss_value.dtype == np.float64
        self.chunk = 1 << 10

    def use(self, arrays):
        """Points the streams at this fit's data (kept alive until the next)."""
        ffi = vm.ffi
        self.arrays = {node: packed(arrays[node]) for node in self.data_nodes}
        for s, node in zip(self.streams, self.data_nodes):
            arr = self.arrays[node]
            s.stride = s.bytes = arr.strides[0]
            s.base = ffi.cast("char *", ffi.from_buffer(arr))

    def run(self, arrays, batch, order, steps, bar, epoch_steps=0):
        """`steps` steps; in one call without a progress bar, else in chunks of about
        CHUNK_S seconds.  Ctrl-C stops it at a step boundary (history.interrupted)."""
        lib, ffi, trainer, job = vm.lib, vm.ffi, self.trainer, self.job
        job.epoch_steps = epoch_steps
        job.run_opts.threads = trainer._options_now().threads
        out = np.empty(steps)
        history = ffi.cast("double *", ffi.from_buffer(out))
        done, chunk = 0, (self.chunk if isinstance(bar, _Bar) else 1 << 20)
        catching = vm.catches_ctrl_c()
        order = None if order is None else np.ascontiguousarray(order, dtype=np.int64)
        job.order = ffi.NULL if order is None else ffi.cast("int64_t *", ffi.from_buffer(order))
        try:
            while done < steps:
                count = min(chunk, steps - done)
                tables = trainer._lr_values(trainer.t + 1, count)
                for k, node in enumerate(self.lr_nodes):
                    self.streams[len(self.data_nodes) + k].base = ffi.cast(
                        "char *", ffi.from_buffer(tables[node]))
                job.interruptible = catching and lib.fa_sigint_begin() == 0
                start = time.perf_counter()
                try:
                    ran = lib.fa_train(job, done, count, history + done)
                finally:
                    if job.interruptible:
                        lib.fa_sigint_end()
                elapsed = time.perf_counter() - start
                done += ran
                trainer.t += ran
                bar.update(ran)
                if ran < count:  # Ctrl-C: stop at this step boundary
                    trainer.history.interrupted = True
                    return out[:done]
                if isinstance(bar, _Bar):  # aim the next chunk at CHUNK_S
                    chunk = self.chunk = max(1, min(1 << 20, int(count * CHUNK_S / max(elapsed, 1e-6))))
            return out
        finally:
            job.order = ffi.NULL  # `order` dies here
