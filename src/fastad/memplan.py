"""Memory planning: place every temporary of a lowered program in one arena.

A buffer is reused once its last reader ran; an elementwise instruction may write
over a same-shaped input that dies at it (in place).  Feeds live in the caller's
arrays and large outputs in fresh arrays, so neither takes arena space; outputs are
never reused.
"""
ALIGN = 64
ARENA_KINDS = frozenset(("temp", "output", "scalar", "const"))


class Storage:
    """One buffer of a lowered program; it becomes one slot of the VM.

    kind: "feed" (the caller's array), "scalar" (a 0-d feed, whose value is stored in
    the arena), "const" (arena, a constant written once when the arena is made), "temp"
    (arena, reusable), "output" (arena, copied out after the run), "fresh" (a new
    array per run, for large outputs) or "unused" (no instruction touches it)."""
    __slots__ = ("index", "nbytes", "kind", "offset", "capacity", "last_use")

    def __init__(self, index, nbytes, kind):
        self.index, self.nbytes, self.kind = index, nbytes, kind
        self.offset = None  # plan_memory's: where it lives, how many bytes it holds there,
        self.capacity = 0   # and the step that touches it last
        self.last_use = -1

    @property
    def in_arena(self):
        return self.kind in ARENA_KINDS


def plan_memory(storages, steps, groups=()):
    """Give every arena storage an offset; returns the arena size in bytes.

    `steps` is the program in order; each has `.out` (the storage it writes),
    `.reads` (storages it reads) and `.inplace` (reads it may overwrite).  0-d feeds
    are written before the run starts and constants before the first run, so both get
    their cells first, for good.

    `groups` are (start, end, whole) step ranges the VM runs block by block.  There a
    buffer of `whole` bytes is read and written at the same positions by every member,
    so reusing its memory stays safe; any other buffer a member reads (a broadcast
    element) is kept until the group ends, so that no member writes over it while a
    later block still needs it."""
    for i, step in enumerate(steps):
        for s in step.reads:
            s.last_use = i
        step.out.last_use = i
    for start, end, whole in groups:
        for step in steps[start:end]:
            for s in step.reads:
                if s.nbytes != whole and s.last_use < end - 1:
                    s.last_use = end - 1
    free, top = [], 0  # free: [capacity, offset] blocks, reusable

    def allocate(s):
        nonlocal top
        fits = [b for b in free if b[0] >= s.nbytes]
        if s.nbytes == 0:
            s.offset = 0
        elif fits:
            block = min(fits)
            free.remove(block)
            s.capacity, s.offset = block
        else:
            s.capacity = -(-s.nbytes // ALIGN) * ALIGN
            s.offset, top = top, top + s.capacity

    for s in storages:
        if s.kind in ("scalar", "const"):
            allocate(s)
    for i, step in enumerate(steps):
        out, reads = step.out, step.reads
        if out.offset is None and out.kind in ARENA_KINDS:
            for s in step.inplace:
                if (s.kind == "temp" and s.last_use == i and s.capacity >= out.nbytes
                        and s.offset is not None):
                    # write over the dying input; it no longer owns the block
                    out.offset, out.capacity, s.capacity = s.offset, s.capacity, 0
                    break
        for s in reads:  # scratch buffers are read before anything writes them
            if s.offset is None and s.kind in ARENA_KINDS:
                allocate(s)
        if out.offset is None and out.kind in ARENA_KINDS:
            allocate(out)
        for s in (*reads, out):  # a storage met twice is freed once: its capacity is 0
            if s.capacity and s.kind == "temp" and s.last_use == i:
                free.append([s.capacity, s.offset])
                s.capacity = 0
    return top

