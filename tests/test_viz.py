"""`ad.to_dot` checked structurally (DOT lines parsed into nodes and edges) and
`ad.draw` rendering through Graphviz when it is installed."""
import re
import shutil
import sys

import numpy as np
import pytest

import fastad as ad

NODE = re.compile(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$')
EDGE = re.compile(r"^\s*(n\d+) -> (n\d+)(?: \[(.*)\])?;$")


def parse(dot):
    """{id: (label lines, attribute text, in the gradient cluster)}, [(tail, head, attrs)]."""
    nodes, edges, in_cluster = {}, [], False
    for line in dot.splitlines():
        if line.strip().startswith("subgraph cluster_gradient"):
            in_cluster = True
        elif line.strip() == "}":
            in_cluster = False
        elif m := NODE.match(line):
            label = re.sub(r"\\(.)", lambda c: "\n" if c[1] == "n" else c[1], m[2])
            nodes[m[1]] = (label.split("\n"), m[3], in_cluster)
        elif m := EDGE.match(line):
            edges.append((m[1], m[2], m[3] or ""))
    return nodes, edges


def by_first_line(nodes):
    out = {}
    for nid, (label, _, _) in nodes.items():
        out.setdefault(label[0], []).append(nid)
    return out


def seed_graph():
    x1, x2 = ad.Variable("x1"), ad.Variable("x2")
    return x1, x2, ad.ln_op(x1) + x1 * x2 - ad.sin_op(x2)


def test_forward_graph():
    x1, x2, f = seed_graph()
    dot = ad.to_dot([f], gradients=False)
    assert dot.startswith("digraph fastad {") and dot.rstrip().endswith("}")
    assert "cluster_gradient" not in dot
    nodes, edges = parse(dot)
    names = by_first_line(nodes)
    assert sorted(names) == ["add", "ln", "mul", "sin", "sub", "x1", "x2"]
    assert len(nodes) == 7 and len(edges) == 8
    for v in ("x1", "x2"):
        _, attrs, _ = nodes[names[v][0]]
        assert "shape=ellipse" in attrs and "style=filled" in attrs
    for op in ("add", "ln", "mul", "sin", "sub"):
        _, attrs, grad = nodes[names[op][0]]
        assert "shape=box" in attrs and "dashed" not in attrs and not grad
    # ln(x1) + x1 * x2 - sin(x2), edges by op name; only sub's input order is shown
    label = {nid: nodes[nid][0][0] for nid in nodes}
    assert sorted((label[a], label[b], attrs) for a, b, attrs in edges) == [
        ("add", "sub", 'headlabel="0"'), ("ln", "add", ""), ("mul", "add", ""),
        ("sin", "sub", 'headlabel="1"'), ("x1", "ln", ""), ("x1", "mul", ""), ("x2", "mul", ""),
        ("x2", "sin", "")]
    # the output is bold, nothing else is
    assert [label[n] for n in nodes if "penwidth=2" in nodes[n][1]] == ["sub"]


def test_gradient_graph():
    x1, x2, f = seed_graph()
    nodes, edges = parse(ad.to_dot([f]))
    forward = set(ad.find_topo_sort([f]))
    grads = ad.gradients(f, [x1, x2])
    everything = ad.find_topo_sort([f] + grads)
    assert len(nodes) == len(everything)  # gradients() builds the same graph each time
    assert len(edges) == sum(len(n.inputs) for n in everything)
    in_cluster = [nid for nid, (_, _, grad) in nodes.items() if grad]
    assert len(in_cluster) == len(everything) - len(forward)
    for nid, (label, attrs, grad) in nodes.items():
        assert ("dashed" in attrs) == grad, label
        assert ('fontcolor="#b03a2e"' in attrs) == grad, label
    ids = {nid for nid in nodes}
    assert all(a in ids and b in ids for a, b, _ in edges)
    assert all(("style=dashed" in attrs) == nodes[b][2] for _, b, attrs in edges)
    # the two gradients are marked and bold, with the op that gradients() returns
    marked = {label[-1]: (label[0], attrs) for label, attrs, _ in nodes.values()
              if label[-1].startswith("∂")}
    assert sorted(marked) == ["∂f/∂x1", "∂f/∂x2"]
    assert marked["∂f/∂x1"][0] == grads[0].op.name
    assert marked["∂f/∂x2"][0] == grads[1].op.name
    assert all("penwidth=2" in attrs for _, attrs in marked.values())


def test_gradients_wrt_chosen_nodes_and_several_outputs():
    w, x, b = ad.Variable("w"), ad.Variable("x"), ad.Variable("b")
    loss = ad.reduce_sum_op(w * x) + b
    loss.name = "loss"
    nodes, _ = parse(ad.to_dot([loss], gradients=[w, b]))
    marks = sorted(label[-1] for label, _, _ in nodes.values() if label[-1].startswith("∂"))
    assert marks == ["∂loss/∂b", "∂loss/∂w"]

    u, v = ad.exp_op(x), ad.sin_op(w) * x
    nodes, _ = parse(ad.to_dot([u, v]))
    marks = sorted(label[-1] for label, _, _ in nodes.values() if label[-1].startswith("∂"))
    assert marks == ["∂f0/∂x", "∂f1/∂w", "∂f1/∂x"]  # each output: its own placeholders


def test_constants_attributes_and_shapes():
    x, y = ad.Variable("x"), ad.Variable("y")
    out = ad.reduce_sum_op(ad.matmul_op(1 - x, y ** 2, trans_A=True), axis=0, keepdims=True)
    feed = {x: np.ones((4, 3)), y: np.ones((4, 2))}
    nodes, _ = parse(ad.to_dot([out], feed_dict=feed))
    labels = {tuple(label) for label, _, grad in nodes.values() if not grad}
    assert ("rsub_byconst", "1-x", "(4, 3)") in labels
    assert ("pow_byconst", "x**2", "(4, 2)") in labels
    assert ("matmul", "trans_A", "(3, 2)") in labels
    assert ("reduce_sum", "axis=0, keepdims", "(1, 2)") in labels
    assert ("x", "(4, 3)") in labels and ("y", "(4, 2)") in labels
    # every node, gradient nodes too, shows the shape its value has
    everything = ad.find_topo_sort([out] + ad.gradients(out, [x, y]))
    shown = [next(line for line in label if line.startswith("(")) for label, _, _ in nodes.values()]
    values = ad.Executor(everything, backend="python").run(feed)
    assert sorted(shown) == sorted(str(v.shape) for v in values)


def test_labels_are_quoted():
    x = ad.Variable('say "hi" \\ bye')
    nodes, _ = parse(ad.to_dot([ad.exp_op(x)], gradients=False))
    assert sorted(label[0] for label, _, _ in nodes.values()) == ['exp', 'say "hi" \\ bye']


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
@pytest.mark.parametrize("suffix,magic", [(".svg", b"<svg"), (".png", b"\x89PNG")])
def test_draw_renders(tmp_path, suffix, magic):
    pytest.importorskip("graphviz", reason="the graphviz package is not installed (fastad[viz])")
    x1, x2, f = seed_graph()
    path = str(tmp_path / f"graph{suffix}")
    assert ad.draw([f], path, feed_dict={x1: 2.0, x2: 5.0}) == path
    with open(path, "rb") as fh:
        data = fh.read()
    assert magic in data[:400]
    if suffix == ".svg":
        text = data.decode()
        assert "∂f/∂x1" in text and "x1" in text and "gradient graph" in text


def test_draw_names_the_missing_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz fails
    x1, x2, f = seed_graph()
    with pytest.raises(ImportError, match=r"pip install fastad\[viz\]"):
        ad.draw([f], str(tmp_path / "g.svg"))


def test_draw_names_the_missing_program(tmp_path, monkeypatch):
    pytest.importorskip("graphviz", reason="the graphviz package is not installed (fastad[viz])")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on the PATH
    x1, x2, f = seed_graph()
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        ad.draw([f], str(tmp_path / "g.svg"))


def test_draw_needs_a_known_suffix(tmp_path):
    x1, x2, f = seed_graph()
    with pytest.raises(ValueError, match=r"\.svg, \.png or \.pdf"):
        ad.draw([f], str(tmp_path / "g.dot"))
