"""`Executor`: evaluates nodes for a feed_dict on the native VM or the reference VM."""
import pickle

from .cache import DEFAULT_LIMITS, Limits
from .graph import find_topo_sort
from .reference import PythonVM
from .schedule import Schedules, feed_mapping
from .vm import NativeVM

BACKENDS = ("native", "python")

# The format of pickled Executors and Trainers: what their state holds.  Change it
# whenever that changes; a pickle of another format is refused (`unpickled`).
PICKLE_FORMAT = 1


def unpickled(state, what):
    """The state of a pickled Executor or Trainer, if this fastad reads its format."""
    found = state.get("format") if isinstance(state, dict) else None
    if found != PICKLE_FORMAT:
        raise pickle.UnpicklingError(
            f"cannot unpickle this fastad {what}: it was pickled in format {found!r} (by "
            f"another version of fastad, or not by fastad), and this fastad reads format "
            f"{PICKLE_FORMAT}; build it again from its graph here")
    return state


class Executor:
    """Evaluates `eval_node_list` for the values in a feed_dict.

    backend "native" lowers the graph to a program run by the C kernel;
    "python" is the reference VM.  An Executor may be shared by several threads.
    `threads` (native only): how many threads a run may use, the caller's included;
    None follows `fastad.set_threads` (default 1).  Results are the same bits for every
    thread count.  `simplify` (native only): simplify the graph before lowering it
    (fastad.simplify; the results stay the same bits).  `max_plans`, `max_plan_bytes`:
    the bounds of the cache of what is built per feed signature (native programs and
    their arenas; the reference's shape checks), least recently used out first; None
    follows `fastad.set_plan_cache` (default 64 plans, 256 MiB).  `cache_info()` counts
    its entries, bytes and evictions.

    Pickling (also cloudpickle) saves the graph and these options, never a lowered
    program: the unpickled Executor lowers its own on its first run for each feed
    signature, so the results are the same.  Its nodes are new ones; pickle the
    placeholders you feed in the same `dumps` call (e.g. a tuple) to get the ones it
    reads.  User ops pickle when their class can be imported where they are unpickled.
    """

    def __init__(self, eval_node_list, backend="native", threads=None, simplify=True,
                 max_plans=None, max_plan_bytes=None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
        self.eval_node_list = list(eval_node_list)
        self.backend = backend
        self._options = (threads, simplify, max_plans, max_plan_bytes)  # for pickling
        limits = DEFAULT_LIMITS
        if max_plans is not None or max_plan_bytes is not None:
            limits = Limits(max_plans or DEFAULT_LIMITS.max_entries,
                            max_plan_bytes or DEFAULT_LIMITS.max_bytes)
        self.topo_order = find_topo_sort(self.eval_node_list)
        self.schedules = Schedules(self.eval_node_list, self.topo_order, limits)
        if backend == "native":
            self._vm = NativeVM(self.schedules, threads, simplify, limits)
        elif threads not in (None, 1):
            raise ValueError("threads: only the native backend runs on several threads")
        else:
            self._vm = PythonVM(self.schedules, limits)

    def __getstate__(self):
        threads, simplify, max_plans, max_plan_bytes = self._options
        return {"format": PICKLE_FORMAT, "nodes": self.eval_node_list, "backend": self.backend,
                "threads": threads, "simplify": simplify, "max_plans": max_plans,
                "max_plan_bytes": max_plan_bytes}

    def __setstate__(self, state):
        state = unpickled(state, "Executor")
        self.__init__(state["nodes"], state["backend"], state["threads"], state["simplify"],
                      state.get("max_plans"), state.get("max_plan_bytes"))

    def run(self, feed_dict):
        """The values of `eval_node_list`, as a list of new numpy arrays."""
        # feed_mapping's first test, inlined: a plain dict is used as it is
        return self._vm.run(feed_dict if type(feed_dict) is dict else feed_mapping(feed_dict))

    def cache_info(self):
        """(entries, nbytes, evictions, max_entries, max_bytes) of the per-signature
        cache: native plans, or the python backend's shape checks."""
        vm = self._vm
        return (vm.plans if self.backend == "native" else vm.checked).info()

    def profile(self, feed_dict, runs=100, show=True):
        """Where a native run's time goes: `runs` runs for these feeds, timed per
        instruction in C and grouped by op (calls, µs per run, share of the run, bytes
        of the buffers touched, GFLOP/s of matmuls).  Prints the table unless `show` is
        False, and returns it as a `fastad.profile.Profile`."""
        if self.backend != "native":
            raise ValueError("only the native backend runs a program to profile")
        result = self._vm.profile(feed_mapping(feed_dict), runs)
        if show:
            print(result)
        return result

    def disassemble(self, feed_dict):
        """The native program this executor runs for feeds like these, as text."""
        if self.backend != "native":
            raise ValueError("only the native backend lowers the graph to a program")
        self.run(feed_dict)
        return self._vm.last.disassemble()
