"""Graph simplification before lowering, once shapes and dtypes are known.

Every rewrite keeps the exact result the reference executor computes on the graph as
written (the same bits):
- common subexpressions: built-in nodes with the same op, the same (simplified) inputs,
  constant and attributes are computed once;
- identities from the ops' own facts: `x * 1`, `x / 1`, `x - 0`, `x + (-0.0)` (not
  `x + 0`, which turns -0.0 into 0.0), `-(-x)`, a broadcast, sum or reshape to the
  shape it already has;
- a binary op with a constant operand becomes its by-constant op (`x * fill(c)` is
  `x * c`), one instruction instead of a fill and a broadcast;
- constant folding: a node whose value depends on no fed value (fills such as
  `oneslike_op`, and built-in ops of constants) is computed once, here, by `evaluate`
  (the native VM runs it on arrays of the constants); such values are uniform arrays,
  so each becomes one FILL;
- dead nodes: nodes no output needs any more are dropped.
"""
import math
from dataclasses import dataclass, field

import numpy as np

from .ops import BinaryOp, ConstOp, FillLikeOp, ShapedOp, UnaryOp

FOLD_LIMIT = 1 << 22  # elements: bigger constant nodes are computed at run time instead


@dataclass
class Simplified:
    """`steps`: the nodes to lower, in order; `same[n]`: the node whose value n has;
    `const[n]`: the uniform value of a constant node; counts of what was done."""
    steps: list
    same: dict
    const: dict
    counts: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)  # one line per rewrite, for disassemble

    def resolve(self, node):
        while node in self.same:
            node = self.same[node]
        return node


def is_value(x, v):
    """x is the number v, with v's sign if it is a zero."""
    return v is not None and x == v and math.copysign(1.0, x) == math.copysign(1.0, v)


def uniform_value(arr):
    """The value every element of `arr` has, or None (an empty array has any value)."""
    flat = np.asarray(arr).reshape(-1)
    if flat.size == 0:
        return 0.0
    first = flat[0]
    if np.isnan(first):
        return float(first) if np.isnan(flat).all() else None
    same = flat == first
    if not same.all() or np.any(np.signbit(flat) != np.signbit(first)):
        return None
    return float(first)


class Simplifier:
    def __init__(self, steps, specs, eval_nodes, evaluate):
        self.specs, self.evaluate = specs, evaluate
        self.same, self.const, self.seen = {}, {}, {}
        self.rewrites = {}  # op -> its rewrites (rewrites_of)
        self.counts = {"common subexpressions": 0, "identities": 0, "by constants": 0,
                       "folded": 0, "dead": 0}
        self.notes = []
        self.order = []  # the nodes, with rewritten ones in place of theirs
        for node in steps:
            self.visit(node)
        live = self.live(self.order, eval_nodes)
        self.counts["dead"] = sum(1 for n in self.order if n not in live and n not in self.same)
        self.steps = [n for n in self.order if n in live]

    def resolve(self, node):
        while node in self.same:
            node = self.same[node]
        return node

    def visit(self, node):
        self.order.append(node)
        op = node.op
        if not op.builtin:  # a user op may be impure: never merged, folded or skipped
            return
        same, ins = self.same, list(node.inputs)  # the inputs, as simplified so far
        for k, i in enumerate(ins):
            if i in same:
                ins[k] = self.resolve(i)
        rewrites = self.rewrites.get(op)
        if rewrites is None:
            rewrites = self.rewrites[op] = self.rewrites_of(op)
        for rewrite in rewrites:
            if rewrite(self, node, ins):
                return
        attrs = tuple(sorted(node.attrs.items(), key=str)) if node.attrs else ()
        key = (op, tuple(ins), node.const_attr, attrs)
        try:
            first = self.seen.setdefault(key, node)
        except TypeError:  # an unhashable attribute: leave the node alone
            return
        if first is not node:
            self.replace(node, first, "common subexpressions", "same as")

    def rewrites_of(self, op):
        """The rewrites that can apply to nodes of `op`, tried in this order (decided
        once per op: most nodes of a long graph need only the first test of one).
        Functions, not bound methods: a Simplifier holding its own methods would be a
        reference cycle, freed only by the cycle collector."""
        cls = type(self)
        out = [cls.fill] if isinstance(op, FillLikeOp) else [cls.fold]
        if isinstance(op, ConstOp):
            out.append(cls.neutral_constant)
        elif isinstance(op, UnaryOp) and op.involution:
            out.append(cls.involution)
        elif isinstance(op, BinaryOp):
            out += [cls.neutral_operand, cls.by_constant]
        elif isinstance(op, ShapedOp):
            out.append(cls.keeps_shape)
        return out

    def replace(self, node, by, what, how):
        self.same[node] = by
        self.counts[what] += 1
        self.notes.append(f"{how} {by}: {node}")

    def fill(self, node, ins):
        self.const[node] = node.op.fill_value(node)
        return True

    def fold(self, node, ins):
        op, const = node.op, self.const
        if not ins or ins[0] not in const:  # the first input decides for every op
            return False
        for i in ins[:1] if isinstance(op, ShapedOp) else ins:
            if i not in const:
                return False
        if any(math.prod(self.specs[n][0]) > FOLD_LIMIT for n in (node, *ins)):
            return False
        vals = []
        for i in ins:
            shape, dtype = self.specs[i]
            vals.append(np.full(shape, const.get(i, 0.0), dtype))
        value = uniform_value(self.evaluate(node, vals))
        if value is None:
            return False
        const[node] = value
        self.counts["folded"] += 1
        self.notes.append(f"folded to {value!r}: {node}")
        return True

    # identities: the node equals an input bit for bit, by its op's facts

    def neutral_constant(self, node, ins):  # x <op> c with c the op's neutral constant
        return is_value(node.const_attr, node.op.neutral) and self.same_as(node, ins[0])

    def involution(self, node, ins):  # -(-x)
        return ins[0].op is node.op and self.same_as(node, self.resolve(ins[0].inputs[0]))

    def neutral_operand(self, node, ins):  # a <op> fill(r) or fill(l) <op> b
        (left, right), (a, b), const = node.op.neutral, ins, self.const
        return ((b in const and is_value(const[b], right) and self.same_as(node, a))
                or (a in const and is_value(const[a], left) and self.same_as(node, b)))

    def keeps_shape(self, node, ins):  # a broadcast, sum or reshape to the shape it has
        return (node.op.keeps(node, [self.specs[i][0] for i in ins])
                and self.same_as(node, ins[0]))

    def same_as(self, node, c):
        """Replaces `node` by `c` when they have the same shape and dtype (no
        broadcast, no cast)."""
        if self.specs[c] != self.specs[node]:
            return False
        self.replace(node, c, "identities", "is")
        return True

    def by_constant(self, node, ins):
        """`a <op> fill(c)` (or `fill(c) <op> b`) as the op's ConstOp of a (or b)."""
        op = node.op
        for side, (x, c) in enumerate(((ins[1], ins[0]), (ins[0], ins[1]))):
            rewrite = op.byconst[side]
            if (rewrite is not None and c in self.const and x not in self.const
                    and self.specs[x] == self.specs[node]):
                new = rewrite(x, self.const[c])
                self.specs[new] = self.specs[node]
                self.replace(node, new, "by constants", "as")
                self.visit(new)
                return True
        return False

    def live(self, steps, eval_nodes):
        live, same = {self.resolve(n) for n in eval_nodes}, self.same
        for node in reversed(steps):
            if node in live and node not in self.const:
                for i in node.inputs:
                    live.add(self.resolve(i) if i in same else i)
        return live


def simplify(steps, specs, eval_nodes, evaluate):
    """Simplifies `steps` (a schedule's nodes, with `specs` their shapes and dtypes) for
    computing `eval_nodes`; `evaluate(node, input_arrays)` computes one built-in node."""
    s = Simplifier(steps, specs, eval_nodes, evaluate)
    return Simplified(s.steps, s.same, s.const, s.counts, s.notes)
