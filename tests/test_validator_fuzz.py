"""The C program validator (csrc/vm.c, fa_validate) under fuzzing: programs lowered from
the catalogue's graphs with fields flipped, and programs made from scratch, every
fa_instr field, the slot table and group headers included, with extents near 2**31
and 2**63.  Each must be rejected with a known error, or else be safe:

  - its accesses, worked out here with exact integers from what the kernels do, stay
    inside the declared slots, and the kernel's int64 index arithmetic cannot overflow;
  - run over real buffers of exactly the declared sizes (see Buffers), on one thread
    or several and split at a random instruction as Plan segments split programs, it
    touches nothing else (under the sanitizer build any stray access aborts; without
    it, reads past a buffer's end fault and writes around it are found).

FASTAD_EXAMPLES_SCALE multiplies the examples (.ci/run runs a long search under the
sanitizer build)."""
import ctypes
import functools
import math
import mmap
import os
import subprocess
import sys

import numpy as np
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

import fastad as ad
from catalogue import cases
from fastad.vm import OPCODE_KINDS, OPCODE_NAMES, OPCODES, ffi, lib
from helpers import SANITIZED, rands

SCALE = float(os.environ.get("FASTAD_EXAMPLES_SCALE", "1"))
SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck))


def examples(n):
    return max(1, int(n * SCALE))


INT64_MAX, INT64_MIN, INT32_MAX, INT32_MIN = 2**63 - 1, -2**63, 2**31 - 1, -2**31
FIELDS = {name: f.type for name, f in ffi.typeof("fa_instr").fields}
ARRAYS = [name for name, t in FIELDS.items() if t.kind == "array"]
INT32 = [name for name, t in FIELDS.items() if t.cname == "int32_t"]
DOUBLES = [name for name, t in FIELDS.items() if t.cname == "double"]
N_ERRORS = next(code for code in range(1, 100)
                if ffi.string(lib.fa_error_message(code)) == b"unknown error")


# --- programs as Python data ----------------------------------------------------------------

class Program:
    """Instructions (dicts of fa_instr fields), the slot table (bytes per slot) and how
    many instructions fa_validate is told of; printed with the fields that are not 0."""

    def __init__(self, instrs, slot_bytes, n_instr=None):
        self.instrs, self.slot_bytes = instrs, slot_bytes
        self.n_instr = len(instrs) if n_instr is None else n_instr

    def copy(self):
        return Program([{k: list(v) if k in ARRAYS else v for k, v in ins.items()}
                        for ins in self.instrs], list(self.slot_bytes), self.n_instr)

    def __repr__(self):
        lines = [f"Program(n_instr={self.n_instr}, slot_bytes={self.slot_bytes})"]
        for ins in self.instrs:
            shown = {k: v[:ins["ndim"] if k in ("shape", "sa", "sb", "so", "sx") else 10]
                     if k in ARRAYS else v for k, v in ins.items()
                     if k != "op" and (v != 0 if k not in ARRAYS else any(v))}
            lines.append(f"  {OPCODE_NAMES.get(ins['op'], ins['op'])} {shown}")
        return "\n".join(lines)


def instr_dict(ins):
    return {name: list(getattr(ins, name)) if name in ARRAYS else getattr(ins, name)
            for name in FIELDS}


def to_c(instrs):
    prog = ffi.new("fa_instr[]", max(1, len(instrs)))
    for p, ins in zip(prog, instrs):
        for name, value in ins.items():
            if name in ARRAYS:
                getattr(p, name)[0:len(value)] = value
            else:
                setattr(p, name, value)
    return prog


def blank(op):
    ins = {name: [0] * FIELDS[name].length if name in ARRAYS else 0 for name in FIELDS}
    ins.update(op=OPCODES[op], out=0, a=-1, b=-1, x=-1)
    return ins


@functools.cache
def seed_programs():
    """Real programs: for every opcode, the two smallest of the catalogue's graphs (with
    their gradients; the first input in float32, so that casts appear) that use it; a
    program of long elementwise groups; one of arrays big enough to be cut into chunks."""
    by_opcode = {}
    for case in cases():
        xs = [ad.Variable(f"x{i}") for i in range(len(case.shapes))]
        out = case.build(*xs)
        loss = ad.reduce_sum_op(out)
        feeds = rands(np.random.default_rng(0), case.shapes, case.domains)
        if len(feeds) > 1:
            feeds[0] = feeds[0].astype(np.float32)
        plan = lowered([out, loss, *(ad.gradients(loss, xs) if case.entry.grad else [])],
                       dict(zip(xs, feeds)))
        for op in {ins.opcode for ins in plan.instructions()}:
            by_opcode.setdefault(op, []).append(plan)
    assert set(by_opcode) == set(OPCODE_NAMES), "an opcode no catalogue graph uses"
    plans = {id(p): p for ps in by_opcode.values()
             for p in sorted(ps, key=lambda p: p.n_instrs)[:2]}
    x, a = ad.Variable("x"), ad.Variable("a")
    chain = ad.exp_op(ad.sigmoid_op(x * a + 0.5)) * x - a
    loss = ad.reduce_sum_op(chain)
    long = np.linspace(-1, 1, 5000)
    big = np.random.default_rng(1).standard_normal((40, 1000))
    extra = [lowered([loss, *ad.gradients(loss, [x, a])], {x: long, a: np.float64(0.7)}),
             lowered([loss, ad.softmax_op(x), *ad.gradients(loss, [x, a])],
                     {x: big, a: np.float64(0.7)})]
    assert max(ins.fields.get("group", 0) for ins in extra[0].instructions()) > 2
    programs = []
    for plan in [*plans.values(), *extra]:
        programs.append(Program([instr_dict(p) for p in plan.prog[0:plan.n_instrs]],
                                list(plan.slot_bytes)))
    return programs


def lowered(nodes, feed):
    ex = ad.Executor(nodes)
    ex.run(feed)
    return ex._vm.last


# --- what an instruction touches, from the kernels (csrc/kernels.h, run.c) --------------------

def item_of(ins):
    return 8 if ins["dtype"] == 1 else 4


def strided(shape, strides, offset):
    """(lowest, highest) element a loop over `shape` at `strides` from `offset` touches;
    None for an empty loop."""
    if 0 in shape:
        return None
    return (offset + sum(min(0, (d - 1) * s) for d, s in zip(shape, strides)),
            offset + sum(max(0, (d - 1) * s) for d, s in zip(shape, strides)))


def dense(offset, count):
    return (offset, offset + count - 1) if count > 0 else None


def extend(span, count):
    """A loop's span where each position starts `count` contiguous elements."""
    return None if span is None or count <= 0 else (span[0], span[1] + count - 1)


def conv_sizes(g):
    n, c, h, w, o, kh, kw, s, p = g[:9]
    oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    cols = (c * kh * kw + o) * n * oh * ow
    return n * c * h * w, o * c * kh * kw, n * o * oh * ow, cols


def pool_sizes(g):
    n, c, h, w, k, s = g[:6]
    return n * c * h * w, n * c * ((h - k) // s + 1) * ((w - k) // s + 1)


def accesses(ins):
    """[(operand, item bytes, (first, last) element)] of what running `ins` may touch,
    offsets included (a superset only where the kernel's choice depends on data)."""
    name, item = OPCODE_NAMES[ins["op"]], item_of(ins)
    kind = OPCODE_KINDS[name]
    shape = ins["shape"][:ins["ndim"]]
    n, m, k = ins["n"], ins["m"], ins["k"]
    off = {o: ins["o" + o] for o in ("a", "b", "x", "o")}
    got = []
    if kind in ("UNARY", "CONST"):
        got = [("a", item, dense(off["a"], n)), ("out", item, dense(off["o"], n))]
    elif kind == "FILL":
        got = [("out", item, dense(off["o"], n))]
    elif kind in ("BINARY", "TERNARY", "COPY", "SUM"):
        a_item = {"CAST_F32_F64": 4, "CAST_F64_F32": 8}.get(name, item)
        got = [("a", a_item, strided(shape, ins["sa"], off["a"])),
               ("out", item, strided(shape, ins["so"], off["o"]))]
        if kind in ("BINARY", "TERNARY"):
            got.append(("b", item, strided(shape, ins["sb"], off["b"])))
        if kind == "TERNARY":
            got.append(("x", item, strided(shape, ins["sx"], off["x"])))
        if kind == "SUM":  # its n outputs are started first
            got.append(("out", item, dense(off["o"], n)))
    elif kind == "MATMUL":
        if m > 0 and n > 0:
            got = [("out", item, extend(strided(shape, ins["so"], off["o"]), m * n))]
            if k > 0:
                got += [("a", item, extend(strided(shape, ins["sa"], off["a"]), m * k)),
                        ("b", item, extend(strided(shape, ins["sb"], off["b"]), k * n))]
    elif kind == "ROWS":  # each row's max starts from its first element
        if m > 0:
            got = [("a", item, dense(off["a"], max(m * n, 1))),
                   ("out", item, dense(off["o"], m * n))]
            if name == "LOG_SOFTMAX":  # exps, then the m row sums
                got.append(("b", item, dense(off["b"], max(m * n, m))))
    elif kind == "INDEX":
        many, picked = m * k * n, m * ins["shape"][0] * n
        if m > 0 and ins["shape"][0] > 0:
            got.append(("x", 8, dense(off["x"], ins["shape"][0])))
        if name == "GATHER":
            got += [("a", item, dense(off["a"], many if picked else 0)),
                    ("out", item, dense(off["o"], picked))]
        else:
            got += [("a", item, dense(off["a"], picked if many else 0)),
                    ("out", item, dense(off["o"], many))]
    elif kind == "CONV":
        x, w, g, cols = conv_sizes(ins["geom"])
        a, b, out = {"CONV2D": (x, w, g), "CONV2D_GRAD_INPUT": (g, w, x),
                     "CONV2D_GRAD_FILTER": (g, x, w)}[name]
        got = [("a", item, dense(off["a"], a)), ("b", item, dense(off["b"], b)),
               ("x", item, dense(off["x"], cols)), ("out", item, dense(off["o"], out))]
    elif kind == "POOL":
        x, p = pool_sizes(ins["geom"])
        a, b, out = {"POOL_MAX": (x, 0, p), "POOL_AVG": (x, 0, p), "POOL_MAX_SCATTER": (p, x, x),
                     "POOL_MAX_GATHER": (x, x, p), "POOL_AVG_GRAD": (p, 0, x)}[name]
        got = [("a", item, dense(off["a"], a)), ("out", item, dense(off["o"], out))]
        if b:
            got.append(("b", item, dense(off["b"], b)))
    return [(operand, size, span) for operand, size, span in got if span is not None]


def arithmetic_fits(ins):
    """Whether the kernels' int64 index arithmetic over `ins` cannot overflow: the loop
    size (its product is taken as a whole), and the element offsets (and bytes: 8 at
    most an element) the row loop passes through in each stride array, used or not,
    while it steps along every axis and back."""
    kind = OPCODE_KINDS[OPCODE_NAMES[ins["op"]]]
    if kind not in ("BINARY", "TERNARY", "COPY", "SUM", "MATMUL"):
        return True
    shape = ins["shape"][:ins["ndim"]]
    size = 1
    for d in shape:
        if size == 0:
            break
        size *= d
        if not INT64_MIN <= size <= INT64_MAX:
            return False
    if 0 in shape:
        return True
    return all(sum(d * abs(s) for d, s in zip(shape, ins[key])) * 8 <= INT64_MAX
               for key in ("sa", "sb", "sx", "so"))


def work(ins):
    """Roughly the elements a run of `ins` touches: a bound on which programs are run."""
    kind = OPCODE_KINDS[OPCODE_NAMES[ins["op"]]]
    batch = math.prod(ins["shape"][:ins["ndim"]])
    if kind == "MATMUL":
        return batch * max(1, ins["m"]) * max(1, ins["n"]) * max(1, ins["k"])
    if kind == "CONV":
        x, w, g, cols = conv_sizes(ins["geom"])
        return cols * max(1, ins["geom"][4]) + x + w + g
    if kind == "POOL":
        x, p = pool_sizes(ins["geom"])
        return x + p * ins["geom"][4] ** 2
    if kind == "INDEX":
        return ins["m"] * (ins["k"] + ins["shape"][0]) * ins["n"]
    return abs(batch) + abs(ins["n"]) + abs(ins["m"] * ins["n"])


def used_slots(ins):
    """The operands the run loop looks up in the slot table (every one that is not -1)."""
    return [s for s in (ins["out"], ins["a"], ins["b"], ins["x"]) if s != -1]


# --- running programs over real buffers -------------------------------------------------------

LIBC = ctypes.CDLL(None)  # under the sanitizer, malloc is ASan's
LIBC.malloc.restype = LIBC.mmap.restype = ctypes.c_void_p
LIBC.malloc.argtypes = [ctypes.c_size_t]
LIBC.free.argtypes = [ctypes.c_void_p]
LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t] + [ctypes.c_int] * 3 + [ctypes.c_long]
LIBC.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
PAGE = mmap.PAGESIZE
GUARD = 512  # bytes of a known pattern before each slot (and after it, up to the next 8)
MAX_WORK, MAX_BYTES = 1 << 21, 1 << 25
LAST = os.environ.get("FASTAD_FUZZ_LAST")  # a file that holds each program while it runs


class Buffers:
    """One buffer per slot, of exactly the slot's bytes and random contents (the index
    operands' included).  Under AddressSanitizer each is its own malloc, so any stray
    access aborts.  Otherwise each ends at an inaccessible page (rounded up to 8 bytes,
    for alignment), so that reading past it or from an empty one faults, and starts
    after GUARD bytes of a pattern that `check` finds intact or reports written."""

    def __init__(self, slot_bytes, rng):
        self.sizes, self.maps, self.mallocs = slot_bytes, [], []
        self.table = ffi.new("char *[]", max(1, len(slot_bytes)))
        for i, size in enumerate(slot_bytes):
            if SANITIZED:
                data = LIBC.malloc(size)
                self.mallocs.append(data)
            else:
                body = GUARD + -(-size // 8) * 8
                length = -(-body // PAGE) * PAGE + PAGE
                base = LIBC.mmap(None, length, mmap.PROT_READ | mmap.PROT_WRITE,
                                 mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
                assert base not in (None, ctypes.c_void_p(-1).value), "mmap failed"
                self.maps.append((base, length))
                end = base + length - PAGE
                assert LIBC.mprotect(end, PAGE, 0) == 0  # PROT_NONE
                data = end - (body - GUARD)
                ctypes.memset(base, 0xA5, length - PAGE)
            assert data or not size, "malloc failed"
            ctypes.memmove(data, rng.bytes(size), size)
            self.table[i] = ffi.cast("char *", data)

    def check(self):
        for i, size in enumerate(self.sizes if self.maps else []):
            base, length = self.maps[i]
            data = int(ffi.cast("uintptr_t", self.table[i]))
            below, above = data - base, base + length - PAGE - data - size
            assert ctypes.string_at(base, below) == b"\xa5" * below, f"slot {i} written below"
            assert ctypes.string_at(data + size, above) == b"\xa5" * above, f"slot {i} written past"

    def free(self):
        for base, length in self.maps:
            LIBC.munmap(base, length)
        for data in self.mallocs:
            LIBC.free(data)


def run_over_buffers(prog, n_instr, slot_bytes, threads, split, profiled, rng):
    """Runs the validated `prog` over fresh Buffers as two fa_run calls split at `split`
    (as Plan segments split programs), `profiled` (timing each instruction: no inline
    paths) or not; asserts nothing outside the buffers was written."""
    buffers = Buffers(slot_bytes, rng)
    ns = ffi.new("int64_t[]", max(1, n_instr)) if profiled else ffi.NULL
    try:
        opts = ffi.new("fa_opts *", {"threads": threads, "ns": ns})
        assert lib.fa_run(prog, 0, split, buffers.table, opts) == 0
        assert lib.fa_run(prog, split, n_instr, buffers.table, opts) == 0
        buffers.check()
    finally:
        buffers.free()


FAST = slice(ffi.offsetof("fa_instr", "fast"), ffi.offsetof("fa_instr", "fast") + 4)


def but_fast(prog):
    """The program's bytes with the `fast` fields zeroed."""
    raw = bytearray(ffi.buffer(prog))
    size = ffi.sizeof("fa_instr")
    for at in range(0, len(raw), size):
        raw[at + FAST.start:at + FAST.stop] = bytes(4)
    return bytes(raw)


def note(what):
    """Counts `what` in hypothesis's statistics (pytest --hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(what)


def check(program, threads=1, split=0, profiled=False, seed=0):
    """Validates `program`; a rejection must name a known error, an acceptance must be
    safe (the module's docstring) and change nothing but the `fast` fields."""
    slot_bytes, n_instr = program.slot_bytes, program.n_instr
    prog = to_c(program.instrs)
    before = but_fast(prog)
    bad = ffi.new("int64_t *")
    err = lib.fa_validate(prog, n_instr, ffi.new("int64_t[]", slot_bytes or [0]),
                          len(slot_bytes), bad)
    assert but_fast(prog) == before, "fa_validate changed more than the fast fields"
    if err:
        assert 0 < err < N_ERRORS and -1 <= bad[0] < n_instr, (err, bad[0])
        note(f"rejected: {ffi.string(lib.fa_error_message(err)).decode()}")
        return False
    for i, ins in enumerate(prog[0:n_instr]):
        ins = instr_dict(ins)
        where = f"instruction {i} ({OPCODE_NAMES[ins['op']]}) accepted, but"
        assert all(0 <= s < len(slot_bytes) for s in used_slots(ins)), f"{where} a slot is missing"
        for operand, item, (first, last) in accesses(ins):
            slot = ins[operand]
            assert 0 <= first and (last + 1) * item <= slot_bytes[slot], (
                f"{where} its {operand} reaches elements {first}..{last} of slot {slot}, "
                f"{slot_bytes[slot]} bytes")
        assert arithmetic_fits(ins), f"{where} its index arithmetic overflows int64"
    if any(abs(v) >= 2**31 for ins in program.instrs[:n_instr] for k, v in ins.items()
           if k not in DOUBLES for v in (v if k in ARRAYS else [v])):
        note("accepted with an extent beyond 2**31")
    if (sum(work(instr_dict(p)) for p in prog[0:n_instr]) > MAX_WORK
            or sum(slot_bytes) > MAX_BYTES):
        note("accepted, too big to run")
        return True
    note("accepted and run")
    if LAST:  # a crash (under the sanitizer, an abort) leaves the culprit there
        with open(LAST, "w") as f:
            f.write(f"{program!r}\n{threads=}, {split=}, {profiled=}, {seed=}\n")
    run_over_buffers(prog, n_instr, slot_bytes, threads, min(split, n_instr), profiled,
                     np.random.default_rng(seed))
    if LAST:
        open(LAST, "w").close()
    return True


# --- mutations ------------------------------------------------------------------------------

EDGES = sorted({0, 1, 2, 3, -1, -2, 2**31 - 2, 2**31 - 1, 2**31, 2**31 + 1, -2**31, -2**31 - 1,
                2**32, 2**32 + 1, 2**61, 2**62, 2**62 + 1, INT64_MAX, INT64_MAX - 1, INT64_MIN,
                INT64_MIN + 1, -2**62, INT64_MAX // 4, INT64_MAX // 8, INT64_MAX // 8 + 1,
                INT64_MAX // 4 + 1, 2**31 // 4, 2**31 // 8})
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e308, -1e308, 3.5e38, 1e-320, float("inf"),
          float("-inf"), float("nan")]


def near(value, low, high):
    """Values near `value` (and the edge values), within [low, high]."""
    return st.one_of(st.sampled_from(EDGES), st.integers(-9, 9).map(lambda d: value + d),
                     st.sampled_from([2 * value, -value, value // 2]),
                     st.integers(low, high)).map(lambda v: min(max(v, low), high))


@st.composite
def mutate_field(draw, instrs, n_slots):
    """One field of one instruction (one axis of an array field) set to a value near
    its own, an edge value or anything."""
    ins = draw(st.sampled_from(instrs))
    name = draw(st.sampled_from(sorted(FIELDS)))
    if name in DOUBLES:
        ins[name] = draw(st.one_of(st.sampled_from(FLOATS), st.floats()))
        return
    if name in ("out", "a", "b", "x"):
        values = st.one_of(st.integers(-2, n_slots + 1), near(ins[name], INT32_MIN, INT32_MAX))
    elif name == "op":
        values = st.integers(-1, len(OPCODES))
    elif name in ("dtype", "ndim", "trans_a", "trans_b", "fast"):
        values = st.one_of(st.integers(-1, 7), near(ins[name], INT32_MIN, INT32_MAX))
    elif name in INT32:  # group
        values = near(ins[name], INT32_MIN, INT32_MAX)
    else:
        values = None
    if name in ARRAYS:
        axis = draw(st.integers(0, len(ins[name]) - 1))
        ins[name][axis] = draw(near(ins[name][axis], INT64_MIN, INT64_MAX))
    else:
        ins[name] = draw(values if values is not None else near(ins[name], INT64_MIN, INT64_MAX))


@st.composite
def mutated(draw, programs):
    """A program with 1-4 mutations: fields, slot sizes, slots dropped or added,
    instructions copied over others, the program cut short."""
    program = draw(programs).copy()
    instrs, slot_bytes, n_instr = program.instrs, program.slot_bytes, program.n_instr
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["field"] * 6 + ["slot", "slots", "copy", "cut"]))
        if how == "field":
            draw(mutate_field(instrs, len(slot_bytes)))
        elif how == "slot" and slot_bytes:
            s = draw(st.integers(0, len(slot_bytes) - 1))
            size = draw(st.one_of(st.integers(-9, 9).map(lambda d: slot_bytes[s] + d),
                                  st.sampled_from([0, -1, slot_bytes[s] // 2, slot_bytes[s] - 8]),
                                  st.sampled_from(EDGES)))
            slot_bytes[s] = clamp(size)
        elif how == "slots":
            if draw(st.booleans()):
                slot_bytes = slot_bytes[:draw(st.integers(0, len(slot_bytes)))]
            else:
                slot_bytes += draw(st.lists(st.integers(0, 64), min_size=1, max_size=3))
        elif how == "copy" and n_instr:
            i, j = draw(st.integers(0, n_instr - 1)), draw(st.integers(0, n_instr - 1))
            instrs[i] = {k: list(v) if k in ARRAYS else v for k, v in instrs[j].items()}
        elif how == "cut":
            n_instr = draw(st.integers(0, n_instr))
    return Program(instrs, slot_bytes, n_instr)


# --- programs from scratch ------------------------------------------------------------------

SMALL = st.integers(0, 4)


def clamp(v):
    return min(max(v, INT64_MIN), INT64_MAX)


def rarely_extreme(values):
    """`values`, or one time in ten an edge value (near 2**31 or 2**63)."""
    return st.integers(0, 9).flatmap(lambda w: st.sampled_from(EDGES) if w == 0 else values)


@st.composite
def fresh_instr(draw, n_slots):
    """One instruction of a random opcode with fields of its kind's shape, mostly
    small and consistent, its operands in random slots (the same slot twice: in place)."""
    name = draw(st.sampled_from(sorted(OPCODES)))
    kind = OPCODE_KINDS[name]
    ins = blank(name)
    ins["dtype"] = draw(st.sampled_from([0, 1]))
    if name == "CAST_F32_F64":
        ins["dtype"] = draw(st.sampled_from([1, 1, 1, 0]))
    if name == "CAST_F64_F32":
        ins["dtype"] = draw(st.sampled_from([0, 0, 0, 1]))
    slot = st.integers(0, n_slots - 1)
    ins["out"], ins["a"] = draw(slot), draw(slot)
    if kind in ("UNARY", "CONST", "FILL"):
        ins["n"] = draw(st.one_of(st.integers(0, 40), st.sampled_from([1, 1024, 40_000])))
        ins["c"], ins["c2"] = draw(st.sampled_from(FLOATS)), draw(st.sampled_from(FLOATS))
        if kind == "FILL":
            ins["a"] = -1
    elif kind in ("BINARY", "TERNARY", "COPY", "SUM"):
        ndim = draw(st.integers(0, 2) | st.integers(0, 6))
        ins["ndim"] = ndim
        ins["shape"][:ndim] = draw(st.lists(rarely_extreme(st.sampled_from([0, 1, 1, 2, 3]) |
                                                           st.integers(0, 300)),
                                            min_size=ndim, max_size=ndim))
        shape = ins["shape"][:ndim]
        operands = ["a", "o"] + (["b"] if kind in ("BINARY", "TERNARY") else []) + (
            ["x"] if kind == "TERNARY" else [])
        for o in operands:
            contiguous = [math.prod(shape[d + 1:]) for d in range(ndim)]
            strides = draw(st.one_of(
                st.just(contiguous), st.just([0] * ndim),
                st.tuples(*[rarely_extreme(st.sampled_from([0, 1, c]) | st.integers(-4, 4))
                            for c in contiguous]).map(list)))
            if kind == "SUM" and o == "o":  # summed axes at stride 0
                strides = [0 if draw(st.booleans()) else s for s in strides]
            ins["s" + o][:ndim] = [clamp(s) for s in strides]
            low = sum(min(0, (d - 1) * s) for d, s in zip(shape, strides)) if 0 not in shape else 0
            ins["o" + o] = clamp(-low + draw(st.sampled_from([0, 0, 0, 1, 3, -1])))
        if kind in ("BINARY", "TERNARY"):
            ins["b"] = draw(slot)
        if kind == "TERNARY":
            ins["x"] = draw(slot)
        if kind == "SUM":
            ins["n"] = draw(st.integers(0, 20))
    elif kind == "MATMUL":
        ins["m"], ins["n"], ins["k"] = draw(SMALL), draw(SMALL), draw(SMALL)
        ins["trans_a"], ins["trans_b"] = draw(st.sampled_from([0, 1, 2, -1])), draw(st.booleans())
        ndim = draw(st.integers(0, 2))
        ins["ndim"] = ndim
        ins["shape"][:ndim] = draw(st.lists(SMALL, min_size=ndim, max_size=ndim))
        for o, size in (("a", ins["m"] * ins["k"]), ("b", ins["k"] * ins["n"]),
                        ("o", ins["m"] * ins["n"])):
            ins["s" + o][:ndim] = draw(st.lists(st.sampled_from([0, size, 2 * size, 1, -size]),
                                                min_size=ndim, max_size=ndim))
        ins["b"] = draw(slot)
    elif kind == "ROWS":
        ins["m"], ins["n"] = draw(SMALL), draw(st.integers(0, 6))
        ins["b"] = draw(slot) if name == "LOG_SOFTMAX" else -1
    elif kind == "INDEX":
        ins["ndim"] = draw(st.sampled_from([1, 1, 1, 0, 2]))
        ins["shape"][0] = draw(SMALL)
        ins["m"], ins["k"], ins["n"] = draw(SMALL), draw(SMALL), draw(SMALL)
        ins["x"] = draw(slot)
    elif kind == "CONV":
        # N, C, H, W, O, KH, KW, stride, padding
        ins["geom"][:9] = [draw(st.integers(0, top)) for top in (2, 3, 6, 6, 3, 4, 4, 3, 2)]
        ins["b"], ins["x"] = draw(slot), draw(slot)
    else:  # POOL
        # N, C, H, W, kernel, stride
        ins["geom"][:6] = [draw(st.integers(0, top)) for top in (2, 2, 6, 6, 3, 3)]
        uses_b = name in ("POOL_MAX_SCATTER", "POOL_MAX_GATHER")
        ins["b"] = draw(slot) if uses_b else -1
    return ins


@st.composite
def fresh_group(draw, n_slots):
    """A run of elementwise instructions over the same n elements under one group header."""
    n = draw(st.sampled_from([1, 5, 1024, 1025, 3000, 40_000]))
    members = []
    for _ in range(draw(st.integers(2, 5))):
        name = draw(st.sampled_from(["NEG", "EXP", "RELU", "MUL_BYCONST", "CLIP", "ADD", "MUL",
                                     "MAXIMUM"]))
        ins = blank(name)
        ins["dtype"] = 1
        ins["out"], ins["a"] = draw(st.integers(0, n_slots - 1)), draw(st.integers(0, n_slots - 1))
        if OPCODE_KINDS[name] == "BINARY":
            ins["b"] = draw(st.integers(0, n_slots - 1))
            ins["ndim"], ins["shape"][0], ins["so"][0] = 1, n, 1
            ins["sa"][0], ins["sb"][0] = draw(st.integers(0, 1)), draw(st.integers(0, 1))
        else:
            ins["n"] = n
        members.append(ins)
    members[0]["group"] = len(members) + draw(st.sampled_from([0, 0, 0, -1, 1]))
    return members


@st.composite
def fresh_programs(draw):
    """A program from scratch, its slots sized to what it touches (a few bytes more or
    less, sometimes), one field sometimes set to an edge value."""
    n_slots = draw(st.integers(1, 6))
    instrs = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 5)) == 0:
            instrs += draw(fresh_group(n_slots))
        else:
            instrs.append(draw(fresh_instr(n_slots)))
    for _ in range(draw(st.integers(0, 2))):  # an extent near 2**31 or 2**63
        ins = draw(st.sampled_from(instrs))
        name = draw(st.sampled_from(ARRAYS + ["n", "m", "k", "oa", "ob", "ox", "oo"]))
        value = draw(st.one_of(st.sampled_from(EDGES), st.integers(INT64_MIN, INT64_MAX)))
        if name in ARRAYS:  # mostly an axis the loop has
            ins[name][draw(st.integers(0, max(ins["ndim"], 1) - 1) | st.integers(0, 5))] = value
        else:
            ins[name] = value
    need = [0] * n_slots
    for ins in instrs:
        try:
            for operand, item, (first, last) in accesses(ins):
                if 0 <= ins[operand] < n_slots:
                    need[ins[operand]] = max(need[ins[operand]], (last + 1) * item)
        except ZeroDivisionError:
            pass  # a window moved by 0: the validator must reject it anyway
    slack = st.sampled_from([0, 0, 0, 0, 0, 1, 4, 8, -1, -4, -8])
    slot_bytes = [clamp(max(b + draw(slack), 0)) for b in need]
    return Program(instrs, slot_bytes)


# --- the tests --------------------------------------------------------------------------------

def test_the_seed_programs_are_valid_and_run():
    programs = seed_programs()
    assert {ins["op"] for p in programs for ins in p.instrs} == set(OPCODE_NAMES)
    for program in programs:
        assert check(program, threads=2, split=program.n_instr // 2)


def test_validation_needs_every_byte_the_kernel_touches():
    """Each real program with one slot a byte short of what its instructions touch is
    rejected."""
    for program in seed_programs():
        need = [0] * len(program.slot_bytes)
        for ins in program.instrs:
            for operand, item, (first, last) in accesses(ins):
                need[ins[operand]] = max(need[ins[operand]], (last + 1) * item)
        for s, size in enumerate(need):
            if size:
                short = program.copy()
                short.slot_bytes[s] = size - 1
                assert not check(short), (s, size, short)


def loop(op, shape, **strides):
    """A one-instruction program: `op` (BINARY or COPY kind) over `shape` at these
    strides, every operand in slot 0 of one element."""
    ins = blank(op)
    ins.update(dtype=1, ndim=len(shape), a=0, b=0 if OPCODE_KINDS[op] == "BINARY" else -1)
    ins["shape"][:len(shape)] = shape
    for key, value in strides.items():
        ins[key][:len(value)] = value
    return Program([ins], [8])


def test_index_arithmetic_that_would_overflow_is_rejected():
    """Loops whose bytes fit their slots, but whose int64 index arithmetic in the kernel
    would overflow: an axis of 1 at a huge stride (used by the op or not), an element
    count beyond int64 at stride 0, and one that overflows before a 0 extent."""
    for program in [loop("MAXIMUM", [1], sa=[2**62]), loop("ADD", [1, 3], sb=[-2**63]),
                    loop("COPY", [2], sb=[2**61]), loop("SUB", [2**32, 2**32]),
                    loop("ADD", [2**40, 2**40, 0]), loop("MAXIMUM", [3, 1], so=[0, 2**61])]:
        assert not check(program), program
    assert check(loop("ADD", [2**31, 2**31]))  # 2**62 elements: fits (too many to run)


EMPTY_LOOPS = """
import sys
sys.path.insert(0, %r)
from test_validator_fuzz import INT64_MAX, check, loop
for op in ["ADD", "DIV", "MAXIMUM", "POWER"]:
    for sa, sb in [(0, 1), (1, 0), (0, 0)]:
        program = loop(op, [0], sa=[sa], sb=[sb], so=[1])
        program.slot_bytes = [0]  # each run: at an inaccessible page, or malloc(0) under ASan
        assert check(program), program
for op in ["MAXIMUM", "COPY", "CAST_F64_F32"]:
    for offset in [2**61, INT64_MAX // 4 + 1, INT64_MAX]:
        program = loop(op, [1, 0], sa=[0, 1], so=[0, 1])
        program.instrs[0].update(oa=offset, ob=offset, oo=offset, dtype=1 - op.endswith("F32"))
        program.slot_bytes = [0]
        assert check(program), program
print("ok")
"""


def test_empty_loops_touch_no_operand():
    """An empty 1-d loop with a broadcast operand read that operand's first element
    (from a slot the validator rightly let be 0 bytes), and empty operands (whose
    offsets may be anything: real programs have them past their empty slots) had
    their offsets multiplied into pointers, overflowing int64: in a subprocess, as the
    read faults (and UBSan aborts)."""
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c",
                           EMPTY_LOOPS % os.path.dirname(__file__)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


RUN = st.tuples(st.sampled_from([1, 1, 2, 3]), st.integers(0, 8), st.booleans(),
                st.integers(0, 2**32 - 1))  # threads, split, profiled, seed


@settings(SETTINGS, max_examples=examples(300))
@given(mutated(st.deferred(lambda: st.integers(0, len(seed_programs()) - 1)
                           .map(lambda i: seed_programs()[i]))), RUN)
def test_mutated_real_programs_are_rejected_or_safe(program, run):
    check(program, *run)


@settings(SETTINGS, max_examples=examples(300))
@given(st.one_of(fresh_programs(), mutated(fresh_programs())), RUN)
def test_programs_from_scratch_are_rejected_or_safe(program, run):
    check(program, *run)
