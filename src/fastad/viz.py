"""Pictures of graphs: `to_dot` writes Graphviz DOT text, `draw` renders it to a file.

DOT text needs nothing else; rendering needs the `graphviz` Python package
(`pip install fastad[viz]`) and Graphviz's `dot` program.
"""
import os

import numpy as np

from .executor import Executor
from .graph import PlaceholderOp, find_topo_sort
from .ops import ConstOp
from .reverse import gradients as gradient_nodes
from .schedule import as_feed

GRADIENT_COLOR = "#b03a2e"
PLACEHOLDER_FILL = "#d6e6f5"


def to_dot(nodes, gradients=True, feed_dict=None):
    """DOT text of the graph that computes `nodes` and, unless `gradients` is False, of
    the gradient graph of each of them: with respect to every placeholder it depends on
    (True) or to the nodes in the list `gradients`.  Pass the forward outputs (e.g. the
    loss): the gradient nodes are built here, as `fastad.gradients` builds them.

    Placeholders are filled ellipses; ops are boxes labelled with the op's name, the
    constant of *_byconst ops and attributes that are set; nodes of the gradient graph
    that the forward graph doesn't have are dashed, red and grouped in `cluster_gradient`.
    Outputs and gradients are bold; a gradient is labelled ∂f/∂x.  With a `feed_dict`,
    every node also shows its shape.  Edges into an op whose input order matters are
    numbered by input position.
    """
    nodes = list(nodes)
    forward = find_topo_sort(nodes)
    in_forward = set(forward)
    marks = {n: [] for n in nodes}  # output or gradient -> its "∂f/∂x" names
    if gradients is not False:
        placeholders = [n for n in forward if isinstance(n.op, PlaceholderOp)]
        wrt = placeholders if gradients is True else list(gradients)
        for k, out in enumerate(nodes):
            f = _short(out, "f" if len(nodes) == 1 else f"f{k}")
            if gradients is True:
                upstream = set(find_topo_sort([out]))
                xs = [x for x in wrt if x in upstream]
            else:
                xs = wrt
            for x, g in zip(xs, gradient_nodes(out, xs)):
                marks.setdefault(g, []).append(f"∂{f}/∂{_short(x, x.op.name)}")
    order = find_topo_sort(list(marks))
    ids = {n: f"n{i}" for i, n in enumerate(order)}
    shapes = _shapes(order, feed_dict) if feed_dict is not None else {}

    lines = ["digraph fastad {", "  ranksep=0.3; nodesep=0.25;",
             "  node [fontname=Helvetica, fontsize=11, height=0.3];",
             "  edge [arrowsize=0.7, labelfontsize=9, labelfontcolor=gray40];"]
    grad_lines = []
    for n in order:
        attrs = _node_attrs(n, n in in_forward, marks.get(n), shapes)
        (lines if n in in_forward else grad_lines).append(f"  {ids[n]} [{attrs}];")
    if grad_lines:
        lines += ["  subgraph cluster_gradient {",
                  f'    label="gradient graph"; style=dashed; color="{GRADIENT_COLOR}"; '
                  f'fontcolor="{GRADIENT_COLOR}";']
        lines += ["  " + line for line in grad_lines] + ["  }"]
    for n in order:
        ordered = len(n.inputs) > 1 and not n.op.commutative
        for pos, i in enumerate(n.inputs):
            attrs = [f'headlabel="{pos}"'] if ordered else []
            if n not in in_forward:
                attrs += ["style=dashed", f'color="{GRADIENT_COLOR}"']
            lines.append(f"  {ids[i]} -> {ids[n]}" + (f" [{', '.join(attrs)}];" if attrs else ";"))
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw(nodes, path, feed_dict=None, gradients=True):
    """Renders `to_dot(nodes, gradients, feed_dict)` to `path`, in the format its suffix
    names (.svg, .png or .pdf), with the `graphviz` package and the `dot` program."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"draw: can't tell the format from {path!r}; end it in .svg, .png or .pdf")
    try:
        import graphviz
    except ImportError:
        raise ImportError("fastad.draw needs the graphviz Python package: pip install "
                          "fastad[viz] (fastad.to_dot gives the DOT text without it)") from None
    try:
        data = graphviz.Source(to_dot(nodes, gradients, feed_dict)).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise RuntimeError("fastad.draw needs Graphviz's `dot` program on the PATH: "
                           "apt-get install graphviz (or brew install graphviz)") from None
    with open(path, "wb") as f:
        f.write(data)
    return path


def _short(node, fallback):
    """A node's name where it is a plain name (Variables, renamed nodes), else `fallback`."""
    return node.name if node.name.isidentifier() else fallback


def _shapes(order, feed_dict):
    """Every node's shape for these feeds (nodes upstream of a fed node have none)."""
    sched = Executor(order, backend="python").schedules.get(feed_dict)
    specs = sched.infer([(np.shape(feed_dict[n]), as_feed(n, feed_dict[n]).dtype)
                         for n in sched.feeds])
    return {n: shape for n, (shape, _) in specs.items()}


def _node_attrs(node, forward, marks, shapes):
    if isinstance(node.op, PlaceholderOp):
        label = [node.name]
        style = ["shape=ellipse", "style=filled", f'fillcolor="{PLACEHOLDER_FILL}"']
    else:
        label = [node.op.name]
        if isinstance(node.op, ConstOp):  # show the constant in the op's formula
            label.append(node.op.label.format(x="x", c=f"{node.const_attr:g}")[1:-1])
        attrs = [k if v is True else f"{k}={v}" for k, v in node.attrs.items()
                 if v is not None and v is not False]
        if attrs:
            label.append(", ".join(attrs))
        style = ["shape=box", 'style="rounded"' if forward else 'style="rounded,dashed"']
    if node in shapes:
        label.append(str(shapes[node]))
    if marks is not None:  # an output or a gradient
        label += marks
        style.append("penwidth=2")
    if not forward:
        style += [f'color="{GRADIENT_COLOR}"', f'fontcolor="{GRADIENT_COLOR}"']
    text = "\n".join(label)
    return ", ".join([f"label={_quote(text)}"] + style)


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
