"""Lowering: a schedule whose shapes and dtypes are known becomes a VM program.

Each node is lowered as its op's `native` says: an opcode of csrc/opcodes.h (emitted by
the rule for the opcode's kind), a rule of `RULES` (several instructions, or an alias of
an input's buffer for reshapes and no-op broadcasts), or — for an op without one, or
whose opcode this kernel lacks — a Python step that calls the op's `compute` between
native segments.  `memplan` then places buffers.
"""
import math

import numpy as np

from . import ops
from .memplan import Storage, plan_memory
from .simplify import Simplified, simplify

DTYPE_CODE = {np.dtype(np.float32): 0, np.dtype(np.float64): 1}
LARGE_OUTPUT = 1 << 16  # bytes; larger outputs are written straight into a fresh array
HOISTED = 1 << 16       # bytes; smaller constants are written once per arena, not per run
BLAS_MAX = (1 << 31) - 1  # BLAS takes 32-bit sizes: a matmul past them is a Python step


class Value:
    """A node's value in the program: shape, dtype and the storage holding it."""
    __slots__ = ("shape", "dtype", "storage")

    def __init__(self, shape, dtype, storage):
        self.shape, self.dtype, self.storage = shape, dtype, storage


class Values(dict):
    """node -> its Value; a node simplification replaced has its replacement's."""

    def __init__(self, simple):
        super().__init__()
        self.resolve = simple.resolve

    def __missing__(self, node):
        by = self.resolve(node)
        if by is node:
            raise KeyError(node)
        return self[by]


class Instr:
    """One VM instruction before it becomes a `fa_instr`."""
    __slots__ = ("node", "opcode", "dtype", "out", "a", "b", "x", "reads", "inplace", "fields")

    def __init__(self, node, opcode, dtype, out, a, b, inplace, x, fields, reads=None):
        self.node, self.opcode, self.dtype = node, opcode, dtype
        self.out, self.a, self.b, self.x = out, a, b, x
        # the storages of a, b and x that are not None
        self.reads = [s for s in (a, b, x) if s is not None] if reads is None else reads
        self.inplace = inplace
        self.fields = fields  # ndim/shape/sa/sb/sx/so, oa/ob/ox/oo, n, m, k, trans_*, c, c2


class PythonStep:
    """A node computed by its op's numpy `compute` (ops the VM doesn't know)."""
    __slots__ = ("node", "inputs", "value", "out", "reads", "inplace")

    def __init__(self, node, inputs, out):
        self.node, self.inputs, self.value = node, inputs, out
        self.out = out.storage
        self.reads = [v.storage for v in inputs]
        self.inplace = ()


def contiguous_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return strides[::-1]


def broadcast_strides(shape, out_shape):
    """Element strides reading a contiguous `shape` array as if broadcast to `out_shape`."""
    padded = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    return [0 if n == 1 else s for n, s in zip(padded, contiguous_strides(padded))]


def collapse(shape, *strides):
    """Drop unit axes and merge axes every operand walks contiguously: fewer, longer rows."""
    if 0 in shape:
        return [0], *([0] for _ in strides)
    dims = [d for d, n in enumerate(shape) if n != 1]
    out_shape, out_strides = [], [[] for _ in strides]
    for d in dims:
        if out_shape and all(st[-1] == s[d] * shape[d] for st, s in zip(out_strides, strides)):
            out_shape[-1] *= shape[d]
            for st, s in zip(out_strides, strides):
                st[-1] = s[d]
        else:
            out_shape.append(shape[d])
            for st, s in zip(out_strides, strides):
                st.append(s[d])
    return out_shape, *out_strides


class Lowering:
    """Builds the program for one schedule and one feed signature."""

    def __init__(self, schedule, specs, eval_nodes, opcodes, kinds, maxdim, block,
                 evaluate=None, assign=()):
        self.opcodes, self.maxdim, self.block = opcodes, maxdim, block
        self.kind_of = {opcodes[name]: kind for name, kind in kinds.items()}
        self.kind_of_name = kinds
        self.const_opcodes = {name for name, kind in kinds.items() if kind == "CONST"}
        self.rule_of = {}  # an op's `native` -> its rule (None: a Python step)
        self.storages, self.steps = [], []
        self.constants = []  # (storage, value): written once, when a workspace is made
        self.specs = specs
        targets = {t for t, _ in assign}  # fed buffers the program writes: never arena cells
        # evaluate: how simplification computes constant nodes; None: don't simplify
        needed = [*eval_nodes, *(node for _, node in assign)]
        self.simple = (simplify(schedule.steps, specs, needed, evaluate) if evaluate
                       else Simplified(schedule.steps, {}, {}))
        self.values = Values(self.simple)
        for node in schedule.feeds:
            shape, dtype = specs[node]
            kind = "scalar" if shape == () and node not in targets else "feed"
            self.values[node] = Value(shape, dtype, self.storage(shape, dtype, kind))
        self.lower({self.simple.resolve(n) for n in eval_nodes})
        self.outputs = self.claim_outputs(eval_nodes)
        self.assign(assign)
        self.arena_bytes = plan_memory(self.storages, self.steps, self.form_groups())

    # -- buffers ---------------------------------------------------------------------

    def storage(self, shape, dtype, kind="temp"):
        s = Storage(len(self.storages), math.prod(shape) * dtype.itemsize, kind)
        self.storages.append(s)
        return s

    def new_value(self, node):
        shape, dtype = self.specs[node]
        value = self.values[node] = Value(shape, dtype, self.storage(shape, dtype))
        return value

    def alias(self, node, source):
        shape, dtype = self.specs[node]
        self.values[node] = Value(shape, dtype, source.storage)

    def claim_outputs(self, eval_nodes):
        """Every distinct output gets a storage of its own that no one reuses: never a
        feed, never shared with another output.  Returns the output values in order."""
        claimed, outputs = {}, []
        for node in map(self.simple.resolve, eval_nodes):
            if node in claimed:
                outputs.append(claimed[node])
                continue
            value = self.values[node]
            st = value.storage
            if st.kind != "temp":  # a feed, or already another output's buffer
                copy = Value(value.shape, value.dtype, self.storage(value.shape, value.dtype))
                self.emit_copy(node, value, copy)
                value = copy
                st = value.storage
            st.kind = "fresh" if st.nbytes >= LARGE_OUTPUT else "output"
            claimed[node] = value
            outputs.append(value)
        return outputs

    def assign(self, pairs):
        """Ends the program by copying each value into its fed target buffer (a training
        step's new parameters and optimizer state).  A value that is itself a fed buffer
        is copied aside first, so that no target is written before it has been read."""
        sources = []
        for target, node in pairs:
            value = self.values[self.simple.resolve(node)]
            value = self.cast(node, value, self.values[target].dtype)  # as `p -= ...` keeps p's
            if self.retarget(value, self.values[target]):
                continue
            if value.storage.kind in ("feed", "scalar", "const"):
                aside = Value(value.shape, value.dtype, self.storage(value.shape, value.dtype))
                self.emit_copy(node, value, aside)
                value = aside
            sources.append((target, node, value))
        for target, node, value in sources:
            self.emit_copy(node, value, self.values[target])

    def retarget(self, value, target):
        """Has the instruction computing `value` write it straight into `target` (saving
        the copy), when that is safe: an elementwise instruction whose output has the
        target's layout, nothing else reads the value, and nothing after it touches the
        target."""
        st, dst = value.storage, target.storage
        if st.kind != "temp" or value.shape != target.shape or value.dtype != target.dtype:
            return False
        writer = next((i for i in range(len(self.steps) - 1, -1, -1)
                       if self.steps[i].out is st), None)
        if writer is None or not isinstance(self.steps[writer], Instr):
            return False
        ins = self.steps[writer]
        if self.kind_of[ins.opcode] not in ("UNARY", "CONST", "BINARY", "COPY"):
            return False
        # nothing else may touch the value's buffer, which loses its memory; nor may the
        # writer read it (an instruction that works in place on an earlier result)
        if any(st in step.reads or (step.out is st and step is not ins) for step in self.steps):
            return False
        if any(dst in step.reads or step.out is dst for step in self.steps[writer + 1:]):
            return False
        ins.out, ins.inplace = dst, []
        st.kind = "unused"  # no instruction touches it now: it gets no memory
        return True

    def form_groups(self):
        """Marks runs of elementwise instructions over the same n > block elements and
        dtype, whose operands are whole arrays or single broadcast elements, and a sum of
        all n that may end one: the VM runs such a group block by block, so its
        intermediates stay in cache.  Returns the groups as (first step, end step, bytes
        of a whole operand) for the memory plan."""
        groups, run = [], []

        def close():
            if len(run) > 1:
                first, step, (whole, _) = run[0]
                step.fields["group"] = len(run)
                groups.append((first, run[-1][0] + 1, whole))
            run.clear()

        for i, step in enumerate(self.steps):
            if run and self.sums_run(step, run[0][2]):  # fused: the group's last member
                run.append((i, step, run[0][2]))
                close()
                continue
            key = self.group_key(step)
            if run and (key is None or key != run[0][2]):
                close()
            if key is not None:
                run.append((i, step, key))
        close()
        return groups

    def sums_run(self, step, key):
        """Whether `step` is a SUM of a whole operand of a group of this key into one
        element: the VM then sums each block as the group makes it (csrc/run.c)."""
        if type(step) is not Instr or step.opcode != self.opcodes["SUM"]:
            return False
        f, (whole, dtype) = step.fields, key
        item = 8 if dtype else 4
        return (step.dtype == dtype and f["ndim"] == 1 and f["sa"] == [1] and f["so"] == [0]
                and f["n"] == 1 and f["shape"][0] * item == whole
                and not f.get("oa") and not f.get("oo"))

    def group_key(self, step):
        """(bytes of a whole operand, dtype) when `step` may join a group, else None."""
        if type(step) is not Instr:
            return None
        kind, f = self.kind_of[step.opcode], step.fields
        if kind == "UNARY" or kind == "CONST":
            n = f["n"]
        elif (kind == "BINARY" and f["ndim"] == 1 and f["so"] == [1]
              and f["sa"][0] in (0, 1) and f["sb"][0] in (0, 1)):
            n = f["shape"][0]
        else:
            return None
        item = 8 if step.dtype else 4
        return (n * item, step.dtype) if n > self.block else None

    # -- instructions ----------------------------------------------------------------

    def emit(self, node, opname, dtype, out, a=None, b=None, inplace=(), x=None, **fields):
        self.steps.append(Instr(node, self.opcodes[opname], DTYPE_CODE[dtype], out.storage,
                                a and a.storage, b and b.storage,
                                [v.storage for v in inplace] if inplace else (),
                                x and x.storage, fields))

    def loop(self, shape, **strides):
        """Loop fields (ndim, shape, sa/sb/so) for a strided instruction, or None when
        even the collapsed loop has more axes than the VM takes."""
        shape, *columns = collapse(shape, *strides.values())
        if len(shape) > self.maxdim:
            return None
        return dict(ndim=len(shape), shape=shape, **dict(zip(strides, columns)))

    def emit_copy(self, node, src, dst):
        dense = contiguous_strides(src.shape)
        self.emit(node, "COPY", dst.dtype, dst, src, **self.loop(src.shape, sa=dense, so=dense))

    def cast(self, node, value, dtype):
        """`value` in `dtype` (a converted copy when it differs)."""
        if value.dtype == dtype:
            return value
        out = Value(value.shape, dtype, self.storage(value.shape, dtype))
        name = "CAST_F32_F64" if dtype == np.float64 else "CAST_F64_F32"
        dense = contiguous_strides(value.shape)
        self.emit(node, name, dtype, out, value, **self.loop(value.shape, sa=dense, so=dense))
        return out

    def steering(self, node, value, dtype):
        """`value`, which only steers (by its sign, or being 0 or not), in `dtype`: cast,
        except float64 to float32, which may round a tiny value to 0: its SIGN (exact,
        and keeping nan) is cast instead."""
        if value.dtype == dtype or dtype == np.float64:
            return self.cast(node, value, dtype)
        sign = self.temp(value.shape, value.dtype)
        self.unary_into(node, "SIGN", sign, value)
        return self.cast(node, sign, dtype)

    def lower(self, outputs):
        """Lowers the simplified steps in order: each by its op's rule, or as a Python
        step; a folded node as a constant."""
        const, rule_of, values = self.simple.const, self.rule_of, self.values
        for node in self.simple.steps:
            if node in const:
                self.constant(node, const[node], node in outputs)
                continue
            native = node.op.native
            rule = rule_of.get(native, False)
            if rule is False:
                kind = self.kind_of_name.get(native)
                rule = rule_of[native] = KIND_RULES.get(kind) or RULES.get(native)
            inputs = node.inputs  # one input, the commonest, without a comprehension's cost
            ins = [values[inputs[0]]] if len(inputs) == 1 else [values[i] for i in inputs]
            if rule is None or rule(self, node, ins) is False:
                self.steps.append(PythonStep(node, ins, self.new_value(node)))

    # -- the rules; returning False falls back to a Python step --------------------------

    def unary(self, node, ins, opcode=None):
        """UNARY and CONST opcodes (the constant is the node's): one instruction over the
        contiguous elements."""
        opcode = opcode or node.op.native
        # new_value's and emit's work, written out: the commonest instruction of long chains
        shape, dtype = self.specs[node]
        n = math.prod(shape)
        out = Storage(len(self.storages), n * dtype.itemsize, "temp")
        self.storages.append(out)
        self.values[node] = Value(shape, dtype, out)
        fields = {"n": n, "c": node.const_attr} if opcode in self.const_opcodes else {"n": n}
        a = [ins[0].storage]  # read, and may be written over
        self.steps.append(Instr(node, self.opcodes[opcode], DTYPE_CODE[dtype], out, a[0], None, a,
                                None, fields, a))

    def pow_byconst(self, node, ins):
        """`x ** c`: a square root for 0.5 (as in ops.power), else POW_BYCONST."""
        self.unary(node, ins, "SQRT" if node.const_attr == 0.5 else "POW_BYCONST")

    def binary(self, node, ins):
        shape, dtype = self.specs[node]
        fields = self.loop(shape, sa=broadcast_strides(ins[0].shape, shape),
                           sb=broadcast_strides(ins[1].shape, shape), so=contiguous_strides(shape))
        if fields is None:
            return False
        if node.op.native == "RELU_GRAD":  # x only steers: x > 0
            a, b = self.steering(node, ins[0], dtype), self.cast(node, ins[1], dtype)
        else:
            a, b = (self.cast(node, v, dtype) for v in ins)
        out = self.new_value(node)
        self.emit(node, node.op.native, dtype, out, a, b,
                  inplace=[v for v in (a, b) if v.shape == shape], **fields)

    def constant(self, node, value, output):
        """A folded node (fastad.simplify): a buffer written once with its uniform value
        when a workspace is made; an output or a big one, a FILL in every run."""
        out = self.new_value(node)
        if output or out.storage.nbytes >= HOISTED:
            self.emit(node, "FILL", out.dtype, out, n=math.prod(out.shape), c=value)
        else:
            out.storage.kind = "const"
            self.constants.append((out, value))

    # -- helpers of the rules below --------------------------------------------------------

    def temp(self, shape, dtype):
        return Value(tuple(shape), np.dtype(dtype), self.storage(shape, np.dtype(dtype)))

    def constant_value(self, value, dtype):
        """A buffer holding `value` (an array or a number), written once per workspace."""
        value = np.asarray(value, dtype)
        v = self.temp(value.shape, dtype)
        v.storage.kind = "const"
        self.constants.append((v, value))
        return v

    def copy_strided(self, node, src, dst, shape, sa, so, oa=0, oo=0):
        """COPY over a loop of `shape`: dst[oo + i.so] = src[oa + i.sa]."""
        fields = self.loop(shape, sa=sa, so=so)
        if fields is None:
            return False
        self.emit(node, "COPY", dst.dtype, dst, src, oa=oa, oo=oo, **fields)
        return True

    def elementwise(self, node, opcode, dtype, out, a, b, x=None):
        """A BINARY (or, with x, TERNARY) opcode over out's shape, a and b (and x)
        broadcast to it."""
        shape = out.shape
        strides = dict(sa=broadcast_strides(a.shape, shape), sb=broadcast_strides(b.shape, shape))
        if x is not None:
            strides["sx"] = broadcast_strides(x.shape, shape)
        fields = self.loop(shape, **strides, so=contiguous_strides(shape))
        if fields is None:
            return False
        self.emit(node, opcode, dtype, out, a, b, x=x, **fields)
        return True

    def unary_into(self, node, opcode, out, a, c=None):
        const = {} if c is None else {"c": c}
        self.emit(node, opcode, out.dtype, out, a, n=math.prod(out.shape), **const)

    # -- shapes and indexing ---------------------------------------------------------------

    def permute(self, node, x, perm):
        """x's axes permuted into the node's value: a strided COPY."""
        shape, dtype = self.specs[node]
        strides = contiguous_strides(x.shape)
        out = self.new_value(node)
        if not self.copy_strided(node, x, out, shape, [strides[p] for p in perm],
                                 contiguous_strides(shape)):
            return False

    def transpose(self, node, ins):
        return self.permute(node, ins[0], node.op.perm(node, ins[0].shape))

    def untranspose(self, node, ins):
        perm = node.op.perm(node, len(ins[0].shape))
        return self.permute(node, ins[0], list(np.argsort(perm)))

    def getitem(self, node, ins):
        """Basic indexing: one strided COPY; with an integer array, the basic part (the
        array's axis whole) first when it is not all of x, then a GATHER along the axis."""
        x = ins[0]
        plan = ops.IndexPlan(node.op, node, x.shape, node.attrs["key"])
        if plan.at is None:
            out = self.new_value(node)
            return None if self.copy_strided(node, x, out, plan.dims, plan.strides,
                                             contiguous_strides(plan.dims), oa=plan.offset) else False
        basic = x
        if plan.offset or list(plan.strides) != contiguous_strides(plan.dims):
            basic = self.temp(plan.dims, x.dtype)
            if not self.copy_strided(node, x, basic, plan.dims, plan.strides,
                                     contiguous_strides(plan.dims), oa=plan.offset):
                return False
        idx = self.constant_value(plan.index.reshape(-1), np.int64)
        out = self.new_value(node)
        self.emit(node, "GATHER", out.dtype, out, basic, x=idx, ndim=1, shape=[plan.index.size],
                  m=math.prod(plan.dims[:plan.at]), k=plan.dims[plan.at],
                  n=math.prod(plan.dims[plan.at + 1:]))

    def index_add(self, node, ins):
        """Zeros, then the gradient copied into the indexed view of them; with an integer
        array, SCATTER_ADD along the axis first (into the view's own buffer when the view
        is not all of x)."""
        g, x = ins
        plan = ops.IndexPlan(node.op, node, x.shape, node.attrs["key"])
        shape, dtype = self.specs[node]
        out = self.new_value(node)
        whole = not plan.offset and list(plan.strides) == contiguous_strides(plan.dims)
        if plan.at is not None:
            target = out if whole else self.temp(plan.dims, dtype)
            idx = self.constant_value(plan.index.reshape(-1), np.int64)
            self.emit(node, "SCATTER_ADD", dtype, target, g, x=idx, ndim=1,
                      shape=[plan.index.size], m=math.prod(plan.dims[:plan.at]),
                      k=plan.dims[plan.at], n=math.prod(plan.dims[plan.at + 1:]))
            if whole:
                return
            g = target
        self.emit(node, "FILL", dtype, out, n=math.prod(shape), c=0.0)
        if not self.copy_strided(node, g, out, plan.dims, contiguous_strides(plan.dims),
                                 plan.strides, oo=plan.offset):
            return False

    def join(self, node, ins):
        """concat and stack: each input COPYed into its part of the output."""
        shape, dtype = self.specs[node]
        _, axis = ops._join_shapes(node.op, node, [v.shape for v in ins], node.attrs["axis"],
                                   node.op.stack)
        out, strides = self.new_value(node), contiguous_strides(shape)
        at = 0
        for v in ins:
            v = self.cast(node, v, dtype)
            if node.op.stack:
                so = strides[:axis] + strides[axis + 1:]
                step = 1
            else:
                so, step = strides, v.shape[axis]
            if not self.copy_strided(node, v, out, v.shape, contiguous_strides(v.shape), so,
                                     oo=at * strides[axis]):
                return False
            at += step

    def join_part(self, node, ins):
        """Input i's part of a join's gradient: a strided COPY out of it."""
        g = ins[0]
        key = node.op.part(node, [v.shape for v in ins])
        plan = ops.IndexPlan(node.op, node, g.shape, key)
        out = self.new_value(node)
        if not self.copy_strided(node, g, out, plan.dims, plan.strides,
                                 contiguous_strides(plan.dims), oa=plan.offset):
            return False

    def pad(self, node, ins):
        x = ins[0]
        shape, dtype = self.specs[node]
        pw = ops.pad_widths(node.op, node, x.shape, node.attrs["pad_width"])
        out, strides = self.new_value(node), contiguous_strides(shape)
        self.emit(node, "FILL", dtype, out, n=math.prod(shape), c=0.0)
        if not self.copy_strided(node, x, out, x.shape, contiguous_strides(x.shape), strides,
                                 oo=sum(b * st for (b, _), st in zip(pw, strides))):
            return False

    def unpad(self, node, ins):
        g, x = ins
        pw = ops.pad_widths(node.op, node, x.shape, node.attrs["pad_width"])
        strides = contiguous_strides(g.shape)
        out = self.new_value(node)
        if not self.copy_strided(node, g, out, x.shape, strides, contiguous_strides(x.shape),
                                 oa=sum(b * st for (b, _), st in zip(pw, strides))):
            return False

    # -- reductions and losses made of several instructions --------------------------------

    def logsumexp(self, node, ins):
        """m = max (0 where not finite, as m - m == 0 tells); log(sum(exp(x - m))) + m:
        the reference's formula, instruction by instruction."""
        x = ins[0]
        shape, dtype = self.specs[node]
        axes = set(ops.reduce_axes(node.op, node, x.shape, node.attrs["axis"]))
        kept = tuple(1 if d in axes else n for d, n in enumerate(x.shape))
        zero = self.constant_value(0.0, dtype)
        m, t = self.temp(kept, dtype), self.temp(kept, dtype)
        if self.total(node, x, axes, opcode="REDUCE_MAX", out=m) is False:
            return False
        self.elementwise(node, "SUB", dtype, t, m, m)
        self.elementwise(node, "EQUAL", dtype, t, t, zero)
        self.elementwise(node, "SELECT", dtype, m, m, zero, x=t)
        e = self.temp(x.shape, dtype)
        if not self.elementwise(node, "SUB", dtype, e, x, m):
            return False
        self.unary_into(node, "EXP", e, e)
        self.total(node, e, axes, out=t)
        self.unary_into(node, "LN", t, t)
        out = self.new_value(node)
        self.elementwise(node, "ADD", dtype, Value(kept, dtype, out.storage), t, m)

    def sigmoid_cross_entropy(self, node, ins):
        """mean(max(z, 0) - z t + log1p(exp(-|z|))), as ops.sigmoid_cross_entropy."""
        shape, dtype = self.specs[node]
        z, t = (self.cast(node, v, dtype) for v in ins)
        zero = self.constant_value(0.0, dtype)
        a, b = self.temp(z.shape, dtype), self.temp(z.shape, dtype)
        if not self.elementwise(node, "MAXIMUM", dtype, a, z, zero):
            return False
        self.elementwise(node, "MUL", dtype, b, z, t)
        self.elementwise(node, "SUB", dtype, a, a, b)
        for opcode, src in (("ABS", z), ("NEG", b), ("EXP", b), ("LOG1P", b)):
            self.unary_into(node, opcode, b, src)
        self.elementwise(node, "ADD", dtype, a, a, b)
        out = self.new_value(node)
        flat = [math.prod(z.shape)]
        self.emit(node, "SUM", dtype, out, a, n=1, **self.loop(flat, sa=[1], so=[0]))
        self.emit(node, "DIV_BYCONST", dtype, out, out, n=1, c=math.prod(z.shape))

    # -- convolution and pooling -----------------------------------------------------------

    def conv(self, node, ins):
        shape, dtype = self.specs[node]
        a, b = (self.cast(node, v, dtype) for v in ins[:2])
        xs, ws, gs = node.op.geometry(node, [v.shape for v in ins])
        n, c, h, w = xs
        o, _, kh, kw = ws
        oh, ow = gs[2:]
        scratch = self.temp(((c * kh * kw + o) * n * oh * ow,), dtype)
        out = self.new_value(node)
        opcode = {"conv": "CONV2D", "input": "CONV2D_GRAD_INPUT", "filter": "CONV2D_GRAD_FILTER"}
        self.emit(node, opcode[node.op.role], dtype, out, a, b, x=scratch,
                  geom=[n, c, h, w, o, kh, kw, node.attrs["stride"], node.attrs["padding"]])

    def pool(self, node, ins):
        shape, dtype = self.specs[node]
        role = node.op.role
        x = self.cast(node, ins[-1], dtype)
        a = self.cast(node, ins[0], dtype)
        out = self.new_value(node)
        opcode = {"max": "POOL_MAX", "avg": "POOL_AVG", "max_scatter": "POOL_MAX_SCATTER",
                  "max_gather": "POOL_MAX_GATHER", "avg_grad": "POOL_AVG_GRAD"}[role]
        b = x if role in ("max_scatter", "max_gather") else None
        self.emit(node, opcode, dtype, out, a, b,
                  geom=list(x.shape) + [node.attrs["kernel"], node.attrs["stride"]])

    def clip(self, node, ins):
        out = self.new_value(node)
        self.emit(node, "CLIP", out.dtype, out, ins[0], inplace=ins, n=math.prod(out.shape),
                  c=node.attrs["lo"], c2=node.attrs["hi"])

    def where(self, node, ins):
        """SELECT: a where the condition is not 0, else b, all three broadcast."""
        shape, dtype = self.specs[node]
        cond = self.steering(node, ins[0], dtype)
        a, b = (self.cast(node, v, dtype) for v in ins[1:])
        fields = self.loop(shape, sa=broadcast_strides(a.shape, shape),
                           sb=broadcast_strides(b.shape, shape),
                           sx=broadcast_strides(cond.shape, shape), so=contiguous_strides(shape))
        if fields is None:
            return False
        out = self.new_value(node)
        self.emit(node, "SELECT", dtype, out, a, b, x=cond,
                  inplace=[v for v in (a, b) if v.shape == shape], **fields)

    def fill(self, node, ins):
        out = self.new_value(node)
        self.emit(node, node.op.native, out.dtype, out, n=math.prod(out.shape),
                  c=node.op.fill_value(node))

    def spread(self, node, src, keep_shape, divide_by=None):
        """`src` (of `keep_shape`, unit axes where it is spread) broadcast to the node's
        shape, then divided by `divide_by`; an alias when nothing changes."""
        shape, dtype = self.specs[node]
        if math.prod(keep_shape) == math.prod(shape) and divide_by in (None, 1):
            return self.alias(node, src)  # only unit axes appear: a reshape
        fields = self.loop(shape, sa=broadcast_strides(keep_shape, shape),
                           so=contiguous_strides(shape))
        if fields is None:
            return False
        out = self.new_value(node)
        self.emit(node, "COPY", dtype, out, src, **fields)
        if divide_by is not None:
            self.emit(node, "DIV_BYCONST", dtype, out, out, n=math.prod(shape), c=divide_by)

    def total(self, node, src, summed, divide_by=None, opcode="SUM", out=None):
        """`src` summed (or its REDUCE_MAX/MIN) over the axes in `summed`, divided by
        `divide_by`, into `out` (default: the node's value)."""
        shape, dtype = (out.shape, out.dtype) if out is not None else self.specs[node]
        if math.prod(src.shape[d] for d in summed) == 1 and divide_by in (None, 1) and out is None:
            return self.alias(node, src)  # only unit axes are summed: a reshape
        kept = [1 if d in summed else n for d, n in enumerate(src.shape)]
        so = [0 if d in summed else s for d, s in enumerate(contiguous_strides(kept))]
        fields = self.loop(src.shape, sa=contiguous_strides(src.shape), so=so)
        if fields is None:
            return False
        out = out or self.new_value(node)
        self.emit(node, opcode, dtype, out, src, n=math.prod(shape), **fields)
        if divide_by is not None:
            self.emit(node, "DIV_BYCONST", dtype, out, out, n=math.prod(shape), c=divide_by)

    def reduce(self, node, ins):
        """reduce_sum and reduce_mean."""
        x = ins[0]
        axes = ops.reduce_axes(node.op, node, x.shape, node.attrs["axis"])
        count = math.prod(x.shape[d] for d in axes) if node.op.mean else None
        return self.total(node, x, set(axes), count)

    def extreme(self, node, ins):
        """reduce_max and reduce_min."""
        x = ins[0]
        axes = ops.reduce_axes(node.op, node, x.shape, node.attrs["axis"])
        opcode = "REDUCE_MAX" if node.op.fn is np.max else "REDUCE_MIN"
        return self.total(node, x, set(axes), opcode=opcode)

    def sum_to(self, node, ins):
        x, target = ins[0], self.specs[node][0]
        lead = len(x.shape) - len(target)
        summed = set(range(lead)) | {lead + d for d, n in enumerate(target)
                                     if n == 1 and x.shape[lead + d] != 1}
        return self.total(node, x, summed)

    def unreduce(self, node, ins):
        g, x = ins
        axes = ops.reduce_axes(node.op, node, x.shape, node.attrs["axis"])
        keep = [1 if d in axes else n for d, n in enumerate(x.shape)]
        count = math.prod(x.shape[d] for d in axes) if node.attrs["mean"] else None
        return self.spread(node, g, keep, count)

    def broadcast_to(self, node, ins):
        return self.spread(node, ins[0], ins[0].shape)

    def reshape(self, node, ins):
        self.alias(node, ins[0])

    def matmul(self, node, ins):
        """One MATMUL: a gemm (gemv, dot) per matrix of the broadcast batch axes; a FILL
        of zeros when a dimension is 0 (numpy's result, whatever the other sizes)."""
        shape, dtype = self.specs[node]
        ta = node.attrs["trans_A"] and len(ins[0].shape) >= 2
        tb = node.attrs["trans_B"] and len(ins[1].shape) >= 2
        sa, sb = ins[0].shape, ins[1].shape
        m = 1 if len(sa) == 1 else sa[-1 if ta else -2]
        k = sa[-1] if len(sa) == 1 else sa[-2 if ta else -1]
        n = 1 if len(sb) == 1 else sb[-2 if tb else -1]
        if 0 in (m, n, k) or 0 in shape:
            out = self.new_value(node)
            self.emit(node, "FILL", dtype, out, n=math.prod(shape), c=0.0)
            return
        if max(m, n, k) > BLAS_MAX:
            return False
        a, b = (self.cast(node, v, dtype) for v in ins)
        batch = np.broadcast_shapes(sa[:-2], sb[:-2])
        fields = self.loop(batch, sa=[s * m * k for s in broadcast_strides(sa[:-2], batch)],
                           sb=[s * k * n for s in broadcast_strides(sb[:-2], batch)],
                           so=[s * m * n for s in contiguous_strides(batch)]) if batch else {}
        if fields is None:
            return False
        out = self.new_value(node)
        self.emit(node, "MATMUL", dtype, out, a, b, m=m, n=n, k=k, trans_a=int(ta),
                  trans_b=int(tb), **fields)

    def rows(self, node, ins):
        """ROWS opcodes (softmax, log-softmax) over the last axis; LOG_SOFTMAX takes a
        scratch buffer of the input's size."""
        shape, dtype = self.specs[node]
        x = self.cast(node, ins[0], dtype)
        n = x.shape[-1]
        scratch = (Value(x.shape, dtype, self.storage(x.shape, dtype))
                   if node.op.native == "LOG_SOFTMAX" else None)
        out = self.new_value(node)
        self.emit(node, node.op.native, dtype, out, x, scratch, m=ops.rows(x.shape), n=n)

    def softmax_cross_entropy(self, node, ins):
        """-sum(labels * log_softmax(logits)) / rows."""
        shape, dtype = self.specs[node]
        x, labels = (self.cast(node, v, dtype) for v in ins)
        n = x.shape[-1]
        scratch = Value(x.shape, dtype, self.storage(x.shape, dtype))
        ls = Value(x.shape, dtype, self.storage(x.shape, dtype))
        self.emit(node, "LOG_SOFTMAX", dtype, ls, x, scratch, m=ops.rows(x.shape), n=n)
        flat = [math.prod(x.shape)]
        self.emit(node, "MUL", dtype, ls, ls, labels, inplace=[ls],
                  **self.loop(flat, sa=[1], sb=[1], so=[1]))
        out = self.new_value(node)
        self.emit(node, "SUM", dtype, out, ls, n=1, **self.loop(flat, sa=[1], so=[0]))
        self.emit(node, "NEG", dtype, out, out, n=1)
        self.emit(node, "DIV_BYCONST", dtype, out, out, n=1, c=ops.rows(x.shape))

    def per_row(self, node, ins):
        out = self.new_value(node)
        self.emit(node, "DIV_BYCONST", out.dtype, out, ins[0], inplace=ins[:1],
                  n=math.prod(out.shape), c=ops.rows(ins[1].shape))


# An op whose `native` is an opcode is lowered by the rule for the opcode's kind
KIND_RULES = {"UNARY": Lowering.unary, "CONST": Lowering.unary, "BINARY": Lowering.binary,
              "FILL": Lowering.fill, "ROWS": Lowering.rows}
# ... and one whose `native` names a rule by that rule
RULES = {
    "pow_byconst": Lowering.pow_byconst,
    "reduce": Lowering.reduce,
    "sum_to": Lowering.sum_to,
    "unreduce": Lowering.unreduce,
    "broadcast_to": Lowering.broadcast_to,
    "alias": Lowering.reshape,
    "matmul": Lowering.matmul,
    "softmax_cross_entropy": Lowering.softmax_cross_entropy,
    "per_row": Lowering.per_row,
    "clip": Lowering.clip,
    "where": Lowering.where,
    "extreme": Lowering.extreme,
    "transpose": Lowering.transpose,
    "untranspose": Lowering.untranspose,
    "getitem": Lowering.getitem,
    "index_add": Lowering.index_add,
    "join": Lowering.join,
    "join_part": Lowering.join_part,
    "pad": Lowering.pad,
    "unpad": Lowering.unpad,
    "logsumexp": Lowering.logsumexp,
    "sigmoid_cross_entropy": Lowering.sigmoid_cross_entropy,
    "conv": Lowering.conv,
    "pool": Lowering.pool,
}
# opcodes the rules emit themselves (besides those op rows name)
RULE_OPCODES = {"COPY", "CAST_F32_F64", "CAST_F64_F32", "SUM", "SIGN", "DIV_BYCONST", "MATMUL",
                "LOG_SOFTMAX", "MUL", "NEG", "SQRT", "POW_BYCONST", "FILL", "CLIP", "SELECT",
                "REDUCE_MAX", "REDUCE_MIN", "GATHER", "SCATTER_ADD", "SUB", "EQUAL", "EXP",
                "LN", "ADD", "MAXIMUM", "ABS", "LOG1P", "CONV2D", "CONV2D_GRAD_INPUT",
                "CONV2D_GRAD_FILTER", "POOL_MAX", "POOL_AVG", "POOL_MAX_SCATTER",
                "POOL_MAX_GATHER", "POOL_AVG_GRAD"}
