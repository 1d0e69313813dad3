"""The structure promised in the README: no import cycles in the package, every opcode
an op row names is in the kernel (and every kernel opcode is used), ops carry their own
native lowering, and reverse mode builds no zero nodes."""
import ast
import pathlib

import numpy as np

import fastad as ad
from fastad import lowering, ops
from fastad.vm import OPCODES

PACKAGE = pathlib.Path(ad.__file__).resolve().parent


def module_imports():
    """{module: modules of the package it imports}, from the source with `ast`, counting
    imports inside functions too."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # `from . import x` imports the submodule x; `from .m import x`, module m
                candidates = ([f"{target}.{a.name}" for a in node.names] if node.module is None
                              else [target] + [f"{target}.{a.name}" for a in node.names])
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            for c in candidates:
                if c.startswith("fastad") and c != name:
                    deps.add(c)
        graph[name] = deps
    known = set(graph)
    return {m: {d for d in deps if d in known} for m, deps in graph.items()}


def find_cycle(graph):
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycles():
    graph = module_imports()
    assert "fastad.graph" in graph and "fastad.ops" in graph["fastad.lowering"]
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def table_ops():
    return {name: obj for name, obj in vars(ops).items()
            if isinstance(obj, ad.Op) and name.endswith("_op")}


def test_opcodes_of_the_op_table_and_the_kernel_match_both_ways():
    named = {op.native for op in table_ops().values() if op.native and op.native.isupper()}
    rules = {op.native for op in table_ops().values() if op.native and not op.native.isupper()}
    assert named <= set(OPCODES), named - set(OPCODES)
    assert rules <= set(lowering.RULES), rules - set(lowering.RULES)
    used = named | lowering.RULE_OPCODES
    assert used == set(OPCODES), (set(OPCODES) - used, used - set(OPCODES))


def test_every_op_of_the_table_has_a_native_lowering():
    missing = [name for name, op in table_ops().items() if op.native is None]
    assert missing == []


def run_both(nodes, feed):
    native = ad.Executor(nodes).run(feed)
    ref = ad.Executor(nodes, backend="python").run(feed)
    return native, ref


def python_steps(nodes, feed):
    return ad.Executor(nodes).disassemble(feed).count("PYTHON")


def test_user_unary_op_named_like_a_builtin_runs_its_own_function():
    x = ad.Variable("x")
    fake_exp = ops.UnaryOp("exp", np.sin, lambda x, y, g: g * ad.cos_op(x))
    y = fake_exp(x)
    g, = ad.gradients(ad.reduce_sum_op(y), [x])
    v = np.linspace(-2, 2, 7)
    (native_y, native_g), (ref_y, ref_g) = run_both([y, g], {x: v})
    np.testing.assert_array_equal(native_y, np.sin(v))
    np.testing.assert_array_equal(ref_y, np.sin(v))
    np.testing.assert_allclose(native_g, np.cos(v), rtol=1e-15)
    assert python_steps([y], {x: v}) == 1


def test_user_ops_with_unknown_names_or_opcodes_become_python_steps():
    x, w = ad.Variable("x"), ad.Variable("w")
    square = ops.UnaryOp("square", np.square, lambda x, y, g: g * (x * 2.0))
    cube = ops.UnaryOp("cube", lambda v: v ** 3, lambda x, y, g: g * (x * x * 3.0), native="CUBE")
    hypot = ops.BinaryOp("hypot", "#", np.hypot, vjp=lambda a, b, y, g: (g * a / y, g * b / y),
                         jvp=(lambda a, b, y, t: t * a / y, lambda a, b, y, t: t * b / y))
    sq = square(x)
    nodes = [sq, cube(x), hypot(x, w), sq + cube(x) * 2.0]
    feed = {x: np.array([1.5, -2.0, 3.0]), w: np.array([4.0])}
    native, ref = run_both(nodes, feed)
    want = [feed[x] ** 2, feed[x] ** 3, np.hypot(feed[x], feed[w]),
            feed[x] ** 2 + feed[x] ** 3 * 2.0]
    for a, b, c in zip(native, ref, want):
        np.testing.assert_allclose(a, c, rtol=1e-15)
        np.testing.assert_array_equal(a, b)
    assert python_steps(nodes, feed) == 4  # sq, two cubes, hypot


def test_new_last_axis_op_and_subclass_of_a_builtin_class_run_their_compute():
    x = ad.Variable("x")
    normalise = ops.LastAxisOp("normalise", lambda v: v / v.sum(axis=-1, keepdims=True),
                               vjp=None, jvp=None)

    class Doubled(ops.UnaryOp):  # new behaviour in a subclass of a built-in class
        def compute(self, node, vals):
            return 2 * super().compute(node, vals)

    doubled_exp = Doubled("exp", np.exp, lambda x, y, g: g * y)
    nodes = [normalise(x), doubled_exp(x)]
    v = np.array([[1.0, 3.0], [2.0, 2.0]])
    native, ref = run_both(nodes, {x: v})
    for a, b in zip(native, ref):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(native[0], v / v.sum(axis=-1, keepdims=True))
    np.testing.assert_array_equal(native[1], 2 * np.exp(v))


def test_second_order_graph_has_no_instruction_that_only_adds_zeros():
    x, W = ad.Variable("x"), ad.Variable("W")
    y = ad.reduce_sum_op(ad.tanh_op(ad.matmul_op(x, W)))
    gW, = ad.gradients(y, [W])
    hx, hW = ad.gradients(ad.reduce_sum_op(gW * gW), [x, W])
    text = ad.Executor([hx, hW]).disassemble({x: np.ones((3, 4)), W: np.ones((4, 5))})
    assert "c=0.0" not in text and "Zeroslike" not in text, text
    # and the values: against finite differences of the first gradient's squared norm
    rng = np.random.default_rng(0)
    xv, Wv = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    native, ref = run_both([hx, hW], {x: xv, W: Wv})
    for a, b in zip(native, ref):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_zero_gradient_only_for_nodes_without_a_path():
    x, z = ad.Variable("x"), ad.Variable("z")
    y = ad.relu_op(x) * 3.0
    gx, gz = ad.gradients(y, [x, z])
    assert gz.op is ad.zeroslike_op and gz.inputs == [z]
    # relu_grad's x only places the kink: no zero node reaches x's gradient graph
    assert all(n.op is not ad.zeroslike_op for n in ad.find_topo_sort([gx]))


def test_softmax_family_survives_deepcopy_and_pickle():
    import copy
    import pickle

    x, t = ad.Variable("x"), ad.Variable("t")
    nodes = [ad.softmax_op(x), ad.log_softmax_op(x), ad.softmax_cross_entropy_op(x, t)]
    rng = np.random.default_rng(0)
    xv, tv = rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4))
    want = ad.Executor(nodes, backend="python").run({x: xv, t: tv})
    for x2, t2, *nodes2 in (copy.deepcopy([x, t, *nodes]),
                            pickle.loads(pickle.dumps([x, t, *nodes]))):
        for backend in ("native", "python"):
            got = ad.Executor(nodes2, backend=backend).run({x2: xv, t2: tv})
            for a, b in zip(got, want):
                assert a.shape == b.shape
                np.testing.assert_array_equal(a, b)
