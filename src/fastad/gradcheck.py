"""`check_gradients`: the gradient graph against central finite differences."""
import warnings
from dataclasses import dataclass, field

import numpy as np

from .executor import Executor
from .graph import Variable
from .reverse import gradients
from .ops import reduce_sum_op


class GradientCheckError(AssertionError):
    """A gradient disagrees with finite differences; `.report` has the details."""

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report


@dataclass
class InputCheck:
    """How the gradient of one input compares with finite differences."""
    name: str
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple  # the element furthest outside the tolerance
    ok: bool
    analytic: np.ndarray = field(repr=False)
    numeric: np.ndarray = field(repr=False)

    def __str__(self):
        line = (f"{self.name}: {'ok' if self.ok else 'MISMATCH'}, max abs error "
                f"{self.max_abs_error:.3g}, max rel error {self.max_rel_error:.3g}")
        if self.analytic.size:
            i = self.worst_index
            line += (f"; worst at index {i}: analytic {self.analytic[i]:.10g}, "
                     f"numeric {self.numeric[i]:.10g}")
        return line


@dataclass
class GradientReport:
    """The result of `check_gradients`: one `InputCheck` per input, in order."""
    inputs: list
    eps: float
    rtol: float
    atol: float
    backend: str
    upcast: list  # names of float32 feeds, checked in float64
    projected: bool  # the output wasn't 0-d: sum(output * R) was checked

    @property
    def ok(self):
        return all(c.ok for c in self.inputs)

    def __str__(self):
        bad = sum(not c.ok for c in self.inputs)
        verdict = f"failed for {bad} of {len(self.inputs)} inputs" if bad else "passed"
        head = (f"gradient check {verdict} (central differences, eps={self.eps:g}, "
                f"rtol={self.rtol:g}, atol={self.atol:g}, backend {self.backend!r})")
        notes = []
        if self.projected:
            notes.append("output is not 0-d: checked sum(output * R) for a fixed random R")
        if self.upcast:
            notes.append(f"float32 feeds checked in float64: {', '.join(self.upcast)}")
        return "\n".join([head] + [f"  note: {n}" for n in notes] + [f"  {c}" for c in self.inputs])


def check_gradients(output, inputs, feed_dict, eps=1e-6, rtol=1e-5, atol=1e-8, backend="python"):
    """Checks `gradients(output, inputs)` against central differences
    (f(x + eps) - f(x - eps)) / 2 eps, element by element, and returns a `GradientReport`;
    raises `GradientCheckError` when an element fails |analytic - numeric| <= atol + rtol |numeric|.

    Every input must be fed (it is the value that gets perturbed).  All feeds are
    converted to float64: the check is meaningless in float32, so float32 feeds are
    upcast with a warning and named in the report.  If `output` is not 0-d, the scalar
    checked is `reduce_sum_op(output * R)` for a fixed random R (uniform in [-1, 1],
    seed 0), which exercises every element of the output's gradient.
    """
    missing = [str(x) for x in inputs if x not in feed_dict]
    if missing:
        raise ValueError(f"check_gradients: every input must be fed; not in feed_dict: "
                         f"{', '.join(missing)}")
    feeds, upcast = {}, []
    for node, value in feed_dict.items():
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":  # complex would lose its imaginary part
            raise TypeError(f"check_gradients: feed for '{node}' has dtype {value.dtype}: "
                            "fastad computes with real numbers")
        if value.dtype.kind == "f" and value.dtype.itemsize < 8:
            upcast.append(str(node))
        feeds[node] = value.astype(np.float64)
    if upcast:
        warnings.warn(f"check_gradients: float32 feeds checked in float64: {', '.join(upcast)}",
                      stacklevel=2)

    shape = Executor([output], backend=backend).run(feeds)[0].shape
    projected = shape != ()
    if projected:
        r = Variable("gradcheck_R")
        feeds[r] = np.random.default_rng(0).uniform(-1, 1, shape)
        output = reduce_sum_op(output * r)
    analytic = Executor(gradients(output, inputs), backend=backend).run(feeds)
    f = Executor([output], backend=backend)

    checks = []
    for x, grad in zip(inputs, analytic):
        numeric = _central_differences(lambda: float(f.run(feeds)[0]), feeds[x], eps)
        checks.append(_compare(str(x), grad, numeric, rtol, atol))
    report = GradientReport(checks, eps, rtol, atol, backend, upcast, projected)
    if not report.ok:
        raise GradientCheckError(report)
    return report


def _central_differences(f, value, eps):
    """d f() / d value, moving one element of the fed array `value` at a time."""
    numeric = np.zeros(value.shape)
    for i in np.ndindex(value.shape):
        orig = value[i]
        value[i] = orig + eps
        up = f()
        value[i] = orig - eps
        down = f()
        value[i] = orig
        numeric[i] = (up - down) / ((orig + eps) - (orig - eps))  # the step actually taken
    return numeric


def _compare(name, analytic, numeric, rtol, atol):
    if analytic.shape != numeric.shape:
        raise ValueError(f"check_gradients: gradient of {name} has shape {analytic.shape}, "
                         f"the input {numeric.shape}")
    err = np.abs(analytic - numeric)
    tol = atol + rtol * np.abs(numeric)
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    rel = np.divide(err, scale, out=np.zeros(err.shape), where=scale > 0)
    worst = np.unravel_index(np.argmax(err - tol), err.shape) if err.size else ()  # NaN first
    return InputCheck(name, float(np.max(err, initial=0.0)), float(np.max(rel, initial=0.0)),
                      tuple(int(i) for i in worst), bool(np.all(err <= tol)), analytic, numeric)
