"""Bounded caches: what an executor builds per feed signature (native plans, the
reference's shape checks) is kept in a least-recently-used cache bounded by count and
by bytes, so that feeds of ever new shapes (variable batch or sequence lengths) keep
memory bounded.  The newest entry is always kept, even when it alone is over the byte
limit: the run that made it needs it.
"""
import threading
from collections import OrderedDict, namedtuple

CacheInfo = namedtuple("CacheInfo", "entries nbytes evictions max_entries max_bytes")


class Limits:
    """The bounds of a cache: at most `max_entries` entries and `max_bytes` bytes."""

    def __init__(self, max_entries, max_bytes):
        self.set(max_entries, max_bytes)

    def set(self, max_entries=None, max_bytes=None):
        """Changes the given bounds (None keeps one as it is)."""
        for name, value in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if value is None:
                continue
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
            setattr(self, name, int(value))


# the bounds of executors made without their own (fastad.set_plan_cache changes them)
DEFAULT_LIMITS = Limits(64, 256 << 20)


class LRUCache:
    """key -> value, least recently used first out; `size(value)` is a value's bytes
    (read when entries are added: a value may grow, as a plan's workspace pool does).
    Safe to share between threads."""

    def __init__(self, limits=DEFAULT_LIMITS, size=lambda value: 0):
        self.limits, self.size = limits, size
        self.entries = OrderedDict()
        self.evictions = 0
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            value = self.entries.get(key)
            if value is not None:
                self.entries.move_to_end(key)
            return value

    def put(self, key, value):
        with self.lock:
            self.entries[key] = value
            self.entries.move_to_end(key)
            limits, total = self.limits, self.nbytes()
            while len(self.entries) > 1 and (len(self.entries) > limits.max_entries
                                             or total > limits.max_bytes):
                _, old = self.entries.popitem(last=False)
                total -= self.size(old)
                self.evictions += 1

    def nbytes(self):
        return sum(map(self.size, self.entries.values()))

    def __len__(self):
        return len(self.entries)

    def info(self):
        with self.lock:
            return CacheInfo(len(self.entries), self.nbytes(), self.evictions,
                             self.limits.max_entries, self.limits.max_bytes)
