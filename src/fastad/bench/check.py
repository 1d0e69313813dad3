"""The agreement check: every executor's first step against the reference executor's;
for a training workload, every runner's training run against the pure-Python loop's."""
import numpy as np

from .peers import PEERS

RTOL, ATOL = 1e-6, 1e-9  # ATOL is relative to the largest magnitude of the compared arrays


def mismatches(outs, ref, names, strict_shapes):
    """What differs between `outs` and the reference outputs `ref`, one line each."""
    found = []
    for name, out, want in zip(names, outs, ref):
        if out.shape != want.shape and (strict_shapes or out.size != want.size):
            found.append(f"{name}: shape {out.shape}, expected {want.shape}")
            continue
        out = out.reshape(want.shape)
        scale = max(np.abs(want).max(initial=0), np.abs(out).max(initial=0))
        if not np.allclose(out, want, rtol=RTOL, atol=ATOL * scale):
            found.append(f"{name}: max |difference| {np.max(np.abs(out - want)):.3g} "
                         f"(values up to {scale:.3g})")
    if len(outs) != len(ref):
        found.append(f"{len(outs)} outputs, expected {len(ref)}")
    return found


def check(runners, case):
    """The executors that disagree with the reference, each with what differs."""
    results = {}
    for name, r in runners.items():
        with np.errstate(all="ignore"):
            results[name] = [np.asarray(r.to_numpy(o)) for o in r.run(r.inputs[0])]
    ref = results["python"]
    bad = {}
    for name, outs in results.items():
        found = mismatches(outs, ref, case.outputs(), strict_shapes=name not in PEERS)
        if found:
            bad[name] = found
    return bad


def check_training(runners, case):
    """The training runners that disagree, each with what differs.  Each trains twice:
    both runs must give the same bits (a timed run repeats the same training from the
    same start); the first must match the python loop's (losses and final parameters),
    and the runners in case.bitwise must match each other exactly."""
    results, bad = {}, {}
    for name, r in runners.items():
        with np.errstate(all="ignore"):
            first, again = ([np.asarray(o) for o in r.run(r.inputs[0])] for _ in range(2))
        results[name] = first
        if not all(np.array_equal(a, b) for a, b in zip(first, again)):
            bad[name] = ["gives other results when run again from the same start"]
    ref = results["python"]
    for name, outs in results.items():
        for line in mismatches(outs, ref, case.outputs(), strict_shapes=True):
            bad.setdefault(name, []).append(f"differs from the python loop: {line}")
    first, *others = case.bitwise or [None]
    for name in others:
        differ = [out for out, a, b in zip(case.outputs(), results[name], results[first])
                  if not np.array_equal(a, b)]
        if differ:
            bad.setdefault(name, []).append(f"differs from {first} bit for bit: "
                                            f"{', '.join(differ)}")
    return bad
