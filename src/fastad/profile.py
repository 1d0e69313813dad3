"""`Executor.profile`: where a native run's time goes, grouped by op.

Each instruction's time is measured inside the C call (a group of elementwise
instructions run block by block counts as one entry, named after its ops); Python steps
(user ops) are timed around their `compute`; what remains of the run is the overhead
of binding feeds, the C call and copying outputs.
"""
import time
from dataclasses import dataclass


@dataclass
class Row:
    """One op's share of a run: `calls` instructions per run taking `us` µs per run;
    `bytes` the memory of the buffers they read and write per run; `gflops` the
    GFLOP/s of matmuls (None for other ops)."""
    op: str
    calls: int
    us: float
    share: float
    bytes: int
    gflops: float = None


@dataclass
class Profile:
    runs: int
    run_us: float  # wall time per run, Python included
    rows: list     # Rows, dearest first, the overhead last

    def __str__(self):
        head = (f"{self.runs} runs, {self.run_us:.1f} µs per run\n"
                f"{'op':<34} {'calls':>5} {'µs/run':>9} {'share':>6} {'bytes/run':>11} {'GFLOP/s':>8}")
        lines = [head, "-" * len(head.splitlines()[1])]
        for r in self.rows:
            flops = f"{r.gflops:8.1f}" if r.gflops is not None else " " * 8
            size = f"{r.bytes:11,d}" if r.bytes else " " * 11
            calls = f"{r.calls:5d}" if r.calls else " " * 5
            lines.append(f"{r.op:<34.34} {calls} {r.us:9.2f} {r.share:6.1%} {size} {flops}")
        return "\n".join(lines)


def touched(storages):
    """Bytes of memory these buffers cover: buffers the memory plan put in the same
    place (in-place reuse) count once."""
    places = {("arena", s.offset) if s.in_arena else ("slot", s.index): s.nbytes
              for s in storages}
    return sum(places.values())


def group_name(instrs):
    names = []
    for ins in instrs:
        if ins.node.op.name not in names:
            names.append(ins.node.op.name)
    return f"group of {len(instrs)}: {'+'.join(names)}"


def profile(plan, run, runs, ns):
    """Profiles `runs` calls of `run(ns, step_ns)` — one run of `plan` that adds each
    instruction's ns to `ns` (zeroed, one per instruction) and each Python step's to the
    dict `step_ns` — and returns the Profile."""
    step_ns = {}
    start = time.perf_counter()
    for _ in range(runs):
        run(ns, step_ns)
    wall_us = (time.perf_counter() - start) * 1e6 / runs
    by_op = {}

    def add(name, calls, us, nbytes, flops=0):
        row = by_op.setdefault(name, [0, 0.0, 0, 0])
        row[0] += calls
        row[1] += us
        row[2] += nbytes
        row[3] += flops

    i, instrs = 0, plan.instructions()
    while i < len(instrs):
        ins = instrs[i]
        members = instrs[i:i + max(1, ins.fields.get("group", 0))]
        us = ns[i] / 1e3 / runs
        nbytes = touched(s for m in members for s in (*m.reads, m.out))
        name = group_name(members) if len(members) > 1 else ins.node.op.name
        flops = 2 * ins.fields["m"] * ins.fields["n"] * ins.fields["k"] if "k" in ins.fields else 0
        add(name, len(members), us, nbytes, flops)
        i += len(members)
    for step, t in step_ns.items():
        add(f"{step.node.op.name} (Python step)", 1, t / 1e3 / runs,
            touched([*step.reads, step.out]))
    measured = sum(r[1] for r in by_op.values())
    rows = [Row(name, calls, us, us / wall_us if wall_us else 0.0, nbytes,
                flops / (us * 1e3) if flops and us else None)
            for name, (calls, us, nbytes, flops) in by_op.items()]
    rows.sort(key=lambda r: -r.us)
    overhead = max(0.0, wall_us - measured)
    rows.append(Row("(feeds, C call, outputs)", 0, overhead,
                    overhead / wall_us if wall_us else 0.0, 0))
    return Profile(runs, wall_us, rows)
