"""The native VM: runs lowered programs in the C kernel (fastad._kernel, built by cffi).

A `Plan` is one lowered program, cached per schedule and feed signature (shapes and
dtypes) in a bounded LRU cache (fastad.cache).  A run binds the feeds, makes one C call
(which releases the GIL) and copies the outputs out.

Threads: an Executor may be used by several threads at once.  Plans are immutable
once built; the mutable memory (arena and slot table) lives in a `Workspace`, and each
run takes a workspace of its own from the plan's pool (list pop/append are atomic),
creating one when all are busy.
"""
import _signal  # signal.getsignal without its enum conversion (a hot path)
import contextlib
import ctypes
import gc
import os
import signal
import sys
import threading
import time
import weakref

import numpy as np
import scipy_openblas32

from .cache import DEFAULT_LIMITS, LRUCache
from .lowering import Instr, Lowering
from .memplan import ALIGN, ARENA_KINDS
from .profile import profile
from .schedule import Schedule, as_feed, check_result

# Our OpenBLAS must be loaded before the kernel that links it (editable installs have
# no rpath to it).
ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(),
                         scipy_openblas32.get_library(fullname=True)), mode=ctypes.RTLD_GLOBAL)
from ._kernel import ffi, lib  # noqa: E402
from . import loops  # noqa: E402

loops.bind(ffi, lib)  # numpy's own inner loops for exp, log, ... (see fastad.loops)

OPCODES = {ffi.string(lib.fa_opcode_names[i]).decode(): i for i in range(lib.fa_num_opcodes)}
OPCODE_NAMES = {i: name for name, i in OPCODES.items()}
OPCODE_KINDS = {name: ffi.string(lib.fa_opcode_kinds[i]).decode() for name, i in OPCODES.items()}


def _instr_dtype():
    """fa_instr as a numpy structured dtype, its layout read from cffi: programs are
    assembled in arrays of it."""
    scalar = {"int32_t": "i4", "int64_t": "i8", "double": "f8"}
    names, formats, offsets = [], [], []
    for name, field in ffi.typeof("fa_instr").fields:
        t = field.type
        names.append(name)
        offsets.append(field.offset)
        formats.append((scalar[t.item.cname], (t.length,)) if t.kind == "array" else scalar[t.cname])
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": ffi.sizeof("fa_instr")})


INSTR = _instr_dtype()


def set_blas_threads(n):
    """Threads of fastad's OpenBLAS (matmul).  The default is 1 (or $FASTAD_BLAS_THREADS):
    numpy's own OpenBLAS pool and ours both spinning on the same cores collapses
    throughput, so ours stays single-threaded unless asked."""
    lib.fa_set_blas_threads(int(n))


set_blas_threads(os.environ.get("FASTAD_BLAS_THREADS", "1"))

# fastad's SIMD kernels (csrc/simd.h) at most at this instruction set, e.g. to run as an
# AVX2 machine would: FASTAD_SIMD=avx2 (or portable); unset, the CPU's best
SIMD_ISAS = {"portable": 0, "avx2": 1, "avx512": 2}
if os.environ.get("FASTAD_SIMD"):
    if os.environ["FASTAD_SIMD"] not in SIMD_ISAS:
        raise ImportError(f"fastad: FASTAD_SIMD={os.environ['FASTAD_SIMD']!r} is none of "
                          f"{', '.join(SIMD_ISAS)}")
    lib.fa_simd_isa(SIMD_ISAS[os.environ["FASTAD_SIMD"]])


class RunOptions:
    """The fa_opts of runs on `threads` threads (the caller's included), and their
    interruptible twin for long runs in the main thread, which Ctrl-C stops."""

    def __init__(self, threads):
        self.plain = ffi.new("fa_opts *")
        self.catching = ffi.new("fa_opts *")
        self.catching.interruptible = 1
        self.set_threads(threads)

    def set_threads(self, n):
        if int(n) < 1:
            raise ValueError(f"threads must be at least 1, not {n}")
        self.plain.threads = self.catching.threads = int(n)

    @property
    def threads(self):
        return self.plain.threads


# the options of executors made with threads=None: fastad.set_threads changes them
DEFAULT_OPTIONS = RunOptions(int(os.environ.get("FASTAD_THREADS", "1")))

# A run is long (worth catching Ctrl-C for, at two system calls a run) from this many
# elements processed (fa_work: matmuls and convolutions count multiply-adds / 8).
LONG_RUN = 1 << 20


def catches_ctrl_c():
    """Whether a run here may turn Ctrl-C into KeyboardInterrupt itself: in the main
    thread, while SIGINT has Python's default handler."""
    return (threading.current_thread() is threading.main_thread()
            and _signal.getsignal(signal.SIGINT) is signal.default_int_handler)


class NativeVM:
    def __init__(self, schedules, threads=None, simplified=True, limits=DEFAULT_LIMITS):
        self.schedules = schedules
        self.simplified = simplified
        self.graph = schedules.nodes
        self.plans = LRUCache(limits, Plan.held_bytes)  # (schedule, feed signature) -> Plan
        self.last = None  # the plan of the previous run: tried first
        self.options = DEFAULT_OPTIONS if threads is None else RunOptions(threads)

    def run(self, feed_dict):
        plan = self.last
        if plan is not None and (len(feed_dict) == len(plan.feed_specs)
                                 or self.same_schedule(feed_dict, plan)):
            out = plan.run(feed_dict, self.options)
            if out is not None:
                return out
        return self.run_slow(feed_dict)

    def same_schedule(self, feed_dict, plan):
        """Whether `plan`'s schedule fits this feed_dict (given its feeds are all in it):
        keys beyond them must be nodes outside the graph (`run` tests the commonest
        case, no keys beyond them, itself)."""
        extra = len(feed_dict) - len(plan.feed_specs)
        return extra == 0 or (extra > 0 and not any(
            node in self.graph and node not in plan.fed for node in feed_dict))

    def profile(self, feed_dict, runs):
        """The Profile of `runs` runs for these feeds (fastad.profile)."""
        self.run(feed_dict)  # builds the plan; self.last is it
        plan = self.last

        def run(ns, step_ns):
            if plan.run(feed_dict, self.options, ns, step_ns) is None:
                plan.run(self.converted(plan.fed, feed_dict), self.options, ns, step_ns)

        return profile(plan, run, runs, ffi.new("int64_t[]", max(1, plan.n_instrs)))

    def converted(self, fed, feed_dict):
        vals = {}
        for node in fed:
            v = as_feed(node, feed_dict[node])
            vals[node] = v if v.flags.c_contiguous and v.flags.aligned else v.copy()
        return vals

    def run_slow(self, feed_dict):
        """Converts the feeds, finds or builds the plan for their signature, runs it."""
        sched = self.schedules.get(feed_dict)
        vals = self.converted(sched.feeds, feed_dict)
        signature = tuple((v.shape, v.dtype) for v in vals.values())
        plan = self.plans.get((sched, signature))
        if plan is None:
            specs = sched.infer(signature)
            plan = Plan(sched, specs, sched.eval_nodes, self.simplified)
            self.plans.put((sched, signature), plan)
        self.last = plan
        out = plan.run(vals, self.options)
        if out is None:  # converted feeds always fit their own plan
            raise RuntimeError("fastad internal error: feeds don't fit the plan made for them")
        return out


class Plan:
    """One lowered, validated program and what a run needs to bind and unpack it."""

    def __init__(self, sched, specs, eval_nodes, simplified=True, assign=()):
        # what the program is lowered from: instructions() lowers it again
        self.source = (sched, [specs[n] for n in sched.feeds], list(eval_nodes), simplified,
                       list(assign))
        with gc_paused():
            self.build(sched, specs, eval_nodes, simplified, assign)

    @staticmethod
    def lower(sched, specs, eval_nodes, simplified, assign):
        return Lowering(sched, specs, eval_nodes, OPCODES, OPCODE_KINDS, lib.fa_maxdim,
                        lib.fa_block, evaluate_one if simplified else None, assign)

    def build(self, sched, specs, eval_nodes, simplified, assign):
        """The plan keeps the assembled program, not the Python objects it was assembled
        from: they die here (a long graph's would cost the cycle collector's passes
        and ~650 bytes per instruction)."""
        low = self.lower(sched, specs, eval_nodes, simplified, assign)
        self.rewrites = low.simple  # what simplification did
        self.feed_specs = [  # np.dtype(str): the plain dtype, should the feed's carry metadata
            (node, specs[node][0], np.dtype(specs[node][1].str), low.values[node].storage.index)
            for node in sched.feeds]
        self.fed = frozenset(sched.feeds)
        self.slot_bytes = [s.nbytes for s in low.storages]
        self.arena_bytes = low.arena_bytes
        arena = [s for s in low.storages if s.kind in ARENA_KINDS]
        self.arena_slots = np.array([s.index for s in arena], np.intp)  # and their offsets:
        self.arena_offsets = np.array([s.offset for s in arena], np.uintp)
        self.scalar_slots = {s.index for s in arena if s.kind == "scalar"}
        self.constants = low.constants
        instrs = [s for s in low.steps if isinstance(s, Instr)]
        self.n_instrs = len(instrs)
        self.prog = self.assemble(instrs, self.slot_bytes)
        # native ranges and Python steps in program order; None when all is native
        self.segments = self.split(low.steps) if len(instrs) < len(low.steps) else None
        self.outputs = []  # per eval node: ("copy", k) | ("fresh", k) | ("dup", i)
        self.copied, self.fresh, first = [], [], {}
        for i, value in enumerate(low.outputs):
            if id(value) in first:
                self.outputs.append(("dup", first[id(value)]))
                continue
            first[id(value)] = i
            group = self.copied if value.storage.kind == "output" else self.fresh
            self.outputs.append(("copy" if group is self.copied else "fresh", len(group)))
            group.append(value)
        self.fresh_bytes = sum(v.storage.nbytes for v in self.fresh)
        self.work = lib.fa_work(self.prog, self.n_instrs)  # elements processed, roughly
        self.long = self.work >= LONG_RUN
        # one C call, never stopped by Ctrl-C
        self.quick = self.segments is None and not self.long
        # the outputs as they come: all copied out in order, or one large output alone
        self.only_copies = self.outputs == [("copy", k) for k in range(len(self.copied))]
        self.only_fresh = self.outputs == [("fresh", 0)]
        self.pool = []
        self.workspaces = 0  # made so far (each has an arena)

    def held_bytes(self):
        """The memory this plan holds, roughly: its workspaces' arenas and kept outputs
        (two runs' worth; one workspace at least), the program
        and slot tables, and the Python objects kept per instruction and slot."""
        return ((self.arena_bytes + ALIGN + 2 * self.fresh_bytes) * max(1, self.workspaces)
                + self.n_instrs * (ffi.sizeof("fa_instr") + PY_BYTES_PER_STEP)
                + len(self.slot_bytes) * 8 * (1 + max(1, self.workspaces)))

    def instructions(self):
        """The program's instructions as `lowering.Instr` objects (for disassemble and
        profile): lowered again from the plan's source, which gives the same program."""
        sched, signature, eval_nodes, simplified, assign = self.source
        low = self.lower(sched, sched.infer(signature), eval_nodes, simplified, assign)
        instrs = [s for s in low.steps if isinstance(s, Instr)]
        again = self.assemble(instrs, [s.nbytes for s in low.storages])
        if ffi.buffer(again)[:] != ffi.buffer(self.prog)[:]:
            raise RuntimeError("fastad internal error: lowering the plan again gave another program")
        return instrs

    def disassemble(self):
        """The program as text: one line per instruction or Python step."""
        lines = [f"# {self.n_instrs} instructions, {len(self.slot_bytes)} slots, "
                 f"arena {self.arena_bytes} bytes"]
        if self.constants:
            lines.append("# constants, written once: " + ", ".join(
                f"s{v.storage.index} = {c!r}" for v, c in self.constants))
        done = [f"{k} {v}" for k, v in self.rewrites.counts.items() if v]
        if done:
            lines.append(f"# simplified: {', '.join(done)}")
            lines += [f"#   {note}" for note in self.rewrites.notes]
        instrs = self.instructions()
        for start, end, step in self.segments or [(0, self.n_instrs, None)]:
            for i in range(start, end):
                ins = instrs[i]
                operands = ", ".join(f"s{s.index}" for s in (ins.a, ins.b, ins.x) if s is not None)
                extra = " ".join(f"{k}={v}" for k, v in ins.fields.items()
                                 if k != "ndim" and (k, v) != ("group", 0))
                lines.append(f"{i:4d} {OPCODE_NAMES[ins.opcode]:<12} {('f32', 'f64')[ins.dtype]}"
                             f" s{ins.out.index} <- {operands:<10} {extra:<40} # {ins.node}")
            if step is not None:
                lines.append(f"     PYTHON       s{step.out.index} <- "
                             f"{', '.join(f's{v.storage.index}' for v in step.inputs)}  # {step.node}")
        return "\n".join(lines)

    @staticmethod
    def assemble(instrs, slot_bytes):
        """The program: an array of fa_instr filled a column at a time, then validated."""
        table = np.zeros(max(1, len(instrs)), INSTR)
        rows = table[:len(instrs)]
        for name, column in (("op", [i.opcode for i in instrs]), ("dtype", [i.dtype for i in instrs]),
                             ("out", [i.out.index for i in instrs]),
                             ("a", [-1 if i.a is None else i.a.index for i in instrs]),
                             ("b", [-1 if i.b is None else i.b.index for i in instrs]),
                             ("x", [-1 if i.x is None else i.x.index for i in instrs])):
            rows[name] = np.array(column, np.int32)
        columns = {}  # field -> (instruction indices, values)
        for k, ins in enumerate(instrs):
            for key, val in ins.fields.items():
                column = columns.get(key)
                if column is None:
                    column = columns[key] = ([], [])
                column[0].append(k)
                column[1].append(val)
        for key, (where, vals) in columns.items():
            width = INSTR[key].shape[:1]
            if width:  # an array field: its leading entries
                vals = [list(v) + [0] * (width[0] - len(v)) for v in vals]
            table[key][where] = vals
        prog = ffi.from_buffer("fa_instr[]", table)  # keeps `table` alive
        bad = ffi.new("int64_t *")
        err = lib.fa_validate(prog, len(instrs), ffi.new("int64_t[]", slot_bytes or [0]),
                              len(slot_bytes), bad)
        if err:  # a lowering bug, never a user error: say exactly where
            ins = instrs[bad[0]] if bad[0] >= 0 else None
            where = (f"instruction {bad[0]} ({OPCODE_NAMES.get(ins.opcode, ins.opcode)}) for "
                     f"{ins.node.op.name} node '{ins.node.name}'" if ins else "slot table")
            raise RuntimeError(f"fastad internal error: the VM rejected {where}: "
                               f"{ffi.string(lib.fa_error_message(err)).decode()}")
        return prog

    @staticmethod
    def split(steps):
        segments, start, count = [], 0, 0
        for step in steps:
            if isinstance(step, Instr):
                count += 1
            else:
                segments.append((start, count, step))
                start = count
        segments.append((start, count, None))
        return segments

    def run(self, feed_dict, options, ns=None, step_ns=None):
        """The outputs, or None when the feeds don't match this plan's signature.
        Profiling: each instruction's ns are added to `ns` (an int64_t[]), each Python
        step's to the dict `step_ns`."""
        pool = self.pool
        ws = pool.pop() if pool else Workspace(self)
        try:
            if not ws.bind(feed_dict, self.feed_specs):
                return None
            if self.fresh:
                ws.take_fresh(self.fresh)
            if self.quick and ns is None:  # the common case: one C call
                lib.fa_run(self.prog, 0, self.n_instrs, ws.slots, options.plain)
            else:
                self.run_steps(ws, options, ns, step_ns)
            return self.collect(ws)
        finally:
            pool.append(ws)

    def collect(self, ws):
        """The run's outputs: small ones copied out of the arena, large ones the arrays
        they were written to (the caller's now), an output asked for twice copied."""
        if self.only_copies:
            return [view.copy() for view in ws.out_views]
        if self.only_fresh:
            return [ws.kept[0]]
        copied = [view.copy() for view in ws.out_views]
        out = []
        for kind, k in self.outputs:
            out.append(copied[k] if kind == "copy" else ws.kept[k] if kind == "fresh"
                       else out[k].copy())
        return out

    def execute(self, start, end, slots, options, ns=None):
        """Instructions [start, end) in one C call; a long run in the main thread stops
        for Ctrl-C (KeyboardInterrupt) at the next instruction or chunk."""
        if ns is not None:  # profiling: a private fa_opts
            opts = ffi.new("fa_opts *", {"threads": options.threads, "ns": ns})
            lib.fa_run(self.prog, start, end, slots, opts)
        elif self.long and catches_ctrl_c() and lib.fa_sigint_begin() == 0:
            try:
                lib.fa_run(self.prog, start, end, slots, options.catching)
            finally:
                caught = lib.fa_sigint_end()
            if caught:
                raise KeyboardInterrupt
        else:
            lib.fa_run(self.prog, start, end, slots, options.plain)

    def run_steps(self, ws, options, ns=None, step_ns=None):
        """The program's native ranges and Python steps in order."""
        by_slot = {value.storage.index: arr for value, arr in zip(self.fresh, ws.kept)}
        for start, end, step in self.segments or [(0, self.n_instrs, None)]:
            if end > start:
                self.execute(start, end, ws.slots, options, ns)
            if step is not None:
                t0 = time.perf_counter_ns()
                run_python_step(step, ws, by_slot)
                if step_ns is not None:
                    step_ns[step] = step_ns.get(step, 0) + time.perf_counter_ns() - t0


@contextlib.contextmanager
def gc_paused():
    """Lowering makes a few small objects per node, which live as long as the plan: the
    cyclic GC's passes over them and the graph (it starts one every 700 objects) would
    cost about as much as lowering a long chain itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def evaluate_one(node, vals):
    """`node` computed natively for its inputs' values (arrays): how simplification
    folds constants."""
    inputs = list(dict.fromkeys(node.inputs))
    sched = Schedule(inputs + [node], [node], set(inputs))
    vals = dict(zip(node.inputs, vals))
    specs = sched.infer([(vals[i].shape, vals[i].dtype) for i in sched.feeds])
    return Plan(sched, specs, [node], simplified=False).run(vals, DEFAULT_OPTIONS)[0]


# Python objects of a plan per instruction, roughly (its slot's size, the simplified
# steps; tracemalloc measured ~35 bytes for a long chain): the plan cache's byte count
# includes them
PY_BYTES_PER_STEP = 64

# Python types whose values a 0-d feed slot of each dtype takes as they are
_SCALAR_TYPES = {np.dtype(np.float64): (float, np.float64), np.dtype(np.float32): (np.float32,)}


# a fed array is bound by reading numpy's array struct in C (csrc/feeds.c): its address
# is its id() on CPython; elsewhere each run binds it anew through the buffer protocol
BIND_BY_ID = sys.implementation.name == "cpython"
UNBOUND = object()  # in Workspace.bound where no array is bound


def _refs(arr):
    """sys.getrefcount of an array passed as `dropped` passes it (the same code shape, so
    that the interpreter's own temporaries count alike in both)."""
    return sys.getrefcount(arr)


def _unshared_refcount():
    """_refs of a list's item that only the list holds: a kept output array counted so
    by `dropped` is one the caller has dropped.  None where references aren't counted
    exactly (not CPython, or CPython without the GIL): outputs are then always new."""
    if sys.implementation.name != "cpython" or not getattr(sys, "_is_gil_enabled", lambda: True)():
        return None
    held = [object()]
    return _refs(held[0])


UNSHARED = _unshared_refcount()


def dropped(arr):
    """Whether `arr`, an item of a workspace's list, is held by nothing else."""
    return (UNSHARED is not None and arr is not None
            and sys.getrefcount(arr) == UNSHARED and not weakref.getweakrefcount(arr))


def run_python_step(step, ws, fresh):
    """A user op's `compute` on read-only arrays that keep their memory alive (a view of
    the arena, a fed array or a fresh output), its result checked and stored."""
    node = step.node
    inputs = [ws.pinned(value, fresh) for value in step.inputs]
    with np.errstate(all="ignore"):
        result = as_feed(node, node.op.compute(node, inputs))
    out = step.value
    check_result(node, result, out.shape, [v.shape for v in step.inputs])
    ws.array_of(out, fresh)[...] = result


class Workspace:
    """The mutable memory of one run: the arena, the slot table and output views."""

    def __init__(self, plan):
        plan.workspaces += 1
        n = len(plan.feed_specs)
        self.owners = [None] * n  # the arrays the slots point into
        self.bound = [UNBOUND] * n  # those of them whose layouts are recorded
        self.layouts = ffi.new("fa_feed[]", max(1, n))  # theirs when bound (csrc/feeds.h)
        self.layout_of = [self.layouts + i for i in range(n)]
        self.feed_of_slot = {slot: i for i, (_, _, _, slot) in enumerate(plan.feed_specs)}
        self.arena = np.empty(plan.arena_bytes + ALIGN, np.uint8)
        base = int(ffi.cast("uintptr_t", ffi.from_buffer(self.arena)))
        self.pad = pad = -base % ALIGN
        self.slots = ffi.new("char *[]", max(1, len(plan.slot_bytes)))
        self.slot_ptrs = [self.slots + slot for _, _, _, slot in plan.feed_specs]
        # the arena's slots point at their offsets: the table written as addresses
        np.frombuffer(ffi.buffer(self.slots), np.uintp)[plan.arena_slots] = (
            plan.arena_offsets + np.uintp(base + pad))
        self.scalar_ptrs = [  # typed pointers to the 0-d feeds' arena cells
            ffi.cast("double *" if dtype == np.float64 else "float *", self.slots[slot])
            if slot in plan.scalar_slots else None for _, shape, dtype, slot in plan.feed_specs]
        self.out_views = [self.view(v, pad) for v in plan.copied]
        self.kept = [None] * len(plan.fresh)  # the large outputs' arrays of the last run
        self.spare = [None] * len(plan.fresh)  # and of the run before
        for value, c in plan.constants:
            self.view(value, pad)[...] = c

    def take_fresh(self, fresh):
        """Points the large outputs' slots at arrays for this run: of the arrays of the
        last two runs, one that nothing but this workspace holds any more (no reference,
        view, buffer or weak reference of the caller's: what the caller can see is never
        written again), else a new one.  A loop that keeps one step's outputs until the
        next step's arrive (`y = ex.run(...)`) so allocates none."""
        kept, spare = self.kept, self.spare
        for k, value in enumerate(fresh):
            if dropped(kept[k]):  # last run's
                continue
            if dropped(spare[k]):  # the run before's
                kept[k], spare[k] = spare[k], kept[k]
            else:
                spare[k], kept[k] = kept[k], np.empty(value.shape, value.dtype)
            self.slots[value.storage.index] = ffi.from_buffer(kept[k])

    def view(self, value, pad):
        """`value`'s place in the arena, as an array."""
        at = pad + value.storage.offset
        return self.arena[at:at + value.storage.nbytes].view(value.dtype).reshape(value.shape)

    def array_of(self, value, fresh):
        """`value` as an array whose base owns its memory: the arena, the fed array its
        slot points into, or (`fresh`: {slot: array}) this run's new output array."""
        st = value.storage
        if st.in_arena:
            return self.view(value, self.pad)
        owner = fresh[st.index] if st.kind == "fresh" else self.owners[self.feed_of_slot[st.index]]
        return owner.reshape(-1).view(np.uint8).view(value.dtype).reshape(value.shape)

    def pinned(self, value, fresh):
        """`value` for a user op's `compute`: read-only, and keeping its memory alive
        (the memory of a temporary is reused by the next run: copy what you keep)."""
        arr = self.array_of(value, fresh)
        arr.flags.writeable = False
        return arr

    def bind(self, feed_dict, feed_specs):
        """Puts the feeds in place; False when a feed is missing or its shape, dtype or
        layout differs from the plan's.  A 0-d feed's value is stored in the arena
        (cheaper than any pointer); an array's slot is pointed at its data.  An array fed
        again (the same live object: `bound` keeps it) is left as it is, after one C
        call checks that none changed its data, dtype, shape or strides in place."""
        slots, bound, scalar_ptrs = self.slots, self.bound, self.scalar_ptrs
        try:
            for i, (node, shape, dtype, slot) in enumerate(feed_specs):
                v = feed_dict[node]
                if v is bound[i]:
                    continue
                ptr = scalar_ptrs[i]
                if ptr is not None:
                    if type(v) in _SCALAR_TYPES[dtype]:
                        ptr[0] = v
                    elif type(v) is np.ndarray and v.dtype == dtype and v.shape == ():
                        ptr[0] = float(v)
                    else:
                        return False
                elif type(v) is np.ndarray:
                    # `is` first: a dtype equal but not identical carries metadata
                    if (v.dtype is not dtype and v.dtype != dtype) or v.shape != shape:
                        return False
                    if BIND_BY_ID:
                        if lib.fa_feed_bind(self.layout_of[i], id(v), self.slot_ptrs[i]):
                            return False  # not C-contiguous and aligned
                        bound[i] = v
                    elif v.flags.aligned:
                        slots[slot] = ffi.from_buffer(v)  # ValueError when not contiguous
                    else:
                        return False
                    self.owners[i] = v
                else:
                    return False
        except (KeyError, ValueError):  # another feed set, or a non-contiguous array
            return False
        changed = lib.fa_feeds_changed(self.layouts, len(feed_specs)) if BIND_BY_ID else -1
        if changed >= 0:  # changed in place since it was bound: bound anew
            bound[changed] = UNBOUND
            self.layouts[changed].array = 0
            return self.bind(feed_dict, feed_specs)
        return True
