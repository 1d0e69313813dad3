"""fastad: reverse-mode automatic differentiation with a graph executor in C.

The API is the one of the UW CSE 599W (dlsys) assignment-1 `autodiff.py`:
build a graph of `Node`s from `Variable`s, get gradient nodes from `gradients`,
and evaluate any of them with `Executor(nodes).run(feed_dict)`.
"""
from .graph import Node, Op, PlaceholderOp, Variable, find_topo_sort, placeholder_op
from .ops import *  # noqa: F403  (the op table's rows: every *_op)
from .ops import __all__ as _op_names
from .numpy_names import *  # noqa: F403  (ad.exp, ad.sum, ad.reshape, ...)
from .reverse import gradients
from .executor import Executor
from .forward import jvp
from .gradcheck import GradientCheckError, check_gradients
from .viz import draw, to_dot
from . import distributed, optim, parallel
from .train import History, Trainer, plot_history


def set_blas_threads(n):
    """Threads of fastad's OpenBLAS (matmul); 1 unless $FASTAD_BLAS_THREADS says otherwise."""
    from .vm import set_blas_threads
    set_blas_threads(n)


def set_threads(n):
    """Threads a native run may use (the caller's included) in executors made with
    threads=None; 1 unless $FASTAD_THREADS says otherwise.  Big elementwise instructions,
    blocked groups, reductions and softmax rows are cut into chunks that the threads
    share; results are the same bits for every thread count."""
    from .vm import DEFAULT_OPTIONS
    DEFAULT_OPTIONS.set_threads(n)


def set_plan_cache(max_plans=None, max_bytes=None):
    """Bounds of each executor's cache of plans (one per feed signature: shapes and
    dtypes), for executors made without max_plans/max_plan_bytes: at most `max_plans`
    plans and `max_bytes` bytes of them (arenas, programs), least recently used out
    first; None leaves a bound as it is.  Defaults: 64 plans, 256 MiB."""
    from .cache import DEFAULT_LIMITS
    DEFAULT_LIMITS.set(max_plans, max_bytes)


__version__ = "0.1.0"
