"""`python -m fastad.bench`: fastad's native executor against its pure-Python reference
executor and a hand-written numpy forward+backward, on seven workloads of one step each;
and two training workloads, Trainer.fit against loops of Executor.run and numpy.

This module is the command line: parse_args; make_runners, every executor's runner for a
case; and main, which checks and times the workloads and prints the results."""
import argparse
import importlib.util
import json
import sys

from .check import check, check_training
from .machine import machine_info, pin_threads
from .peers import PEERS, available_peers, jax_runner, torch_runner
from .report import TRAINING_RATIOS, plot, progress, table
from .runners import (EXECUTORS, TRAINING_EXECUTORS, fastad_runners, numpy_runner,
                      training_runners)
from .timing import measure, step_function, summary
from .workloads import FULL, QUICK, WORKLOADS, Training


def make_runners(case, peers, threads):
    runners = {**fastad_runners(case, threads), "numpy": numpy_runner(case)}
    for peer in peers:
        runners[peer] = (torch_runner if peer == "torch" else jax_runner)(case, threads)
    return runners


def run_workload(w, settings, peers, threads, on_repeat):
    """Checks and times one workload: its entry of the results."""
    case = w.build(settings)
    training = isinstance(case, Training)
    if training:
        runners, names = training_runners(case, threads), TRAINING_EXECUTORS
        bad, steps = check_training(runners, case), case.steps
    else:
        runners, names = make_runners(case, peers, threads), list(EXECUTORS) + peers
        bad, steps = check(runners, case), 1
    timings = measure({n: step_function(r) for n, r in runners.items()}, settings, on_repeat)
    stats = {n: summary(*timings[n], steps) for n in names}
    median = {n: s["median_us"] for n, s in stats.items()}
    result = {
        "title": w.title.format(**vars(settings)), "training": training,
        "parameters": list(case.params) if training or case.grad else [],
        "agree": not bad, "mismatches": bad, "executors": stats,
        "python_over_native": median["python"] / median["native"],
        "native_over_numpy": median["native"] / median["numpy"],
    }
    if training:
        result["steps_per_run"] = steps
        result["executor_over_native"] = median["executor"] / median["native"]
    return result


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m fastad.bench", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads:\n" + "\n".join(f"  {w.name:4} {w.title.format(**vars(FULL))}"
                                          for w in WORKLOADS))
    p.add_argument("--quick", action="store_true",
                   help="a smoke run of a few seconds: fewer repeats and steps, W5 on "
                        f"{QUICK.w5_size:,} elements, shorter training runs (W6, W7); "
                        "not for reporting")
    p.add_argument("--workload", action="append", metavar="NAME",
                   help="run only these workloads (repeatable, or a comma list)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="threads of fastad's runs and of fastad's and numpy's BLAS (default 1)")
    p.add_argument("--peers", default="", metavar="LIST",
                   help=f"extra columns from installed frameworks: {','.join(PEERS)}")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG bar chart (needs matplotlib)")
    args = p.parse_args(argv)

    known = {w.name.lower(): w for w in WORKLOADS}
    wanted = [n.strip().lower() for item in args.workload or [] for n in item.split(",")]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        p.error(f"unknown workload {', '.join(unknown)}; choose from "
                f"{', '.join(w.name for w in WORKLOADS)}")
    args.workloads = [w for w in WORKLOADS if not wanted or w.name.lower() in wanted]
    args.peers = [n.strip().lower() for n in args.peers.split(",") if n.strip()]
    bad = [n for n in args.peers if n not in PEERS]
    if bad:
        p.error(f"unknown peer {', '.join(bad)}; choose from {', '.join(PEERS)}")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib: pip install fastad[bench]")
    return args


def main(argv=None):
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    pinned, blas_libs, thread_note = pin_threads(args.threads)
    peers, skipped = available_peers(args.peers)
    executors = list(EXECUTORS) + peers

    machine = machine_info()
    print(f"fastad.bench: {machine['cpu']} ({machine['simd']}), {machine['logical_cpus']} "
          f"logical CPUs, numpy {machine['numpy']}, float64")
    print(f"threads: {args.threads} for fastad's runs and its BLAS"
          + (", and numpy's BLAS" if pinned["numpy_blas"] == args.threads else ""))
    print("math loops: " + "; ".join(f"{name} {', '.join(sorted(set(d.values())))}"
                                     for name, d in machine["loops"].items()))
    if thread_note:
        print(f"note: {thread_note}")
    if "jax" in peers:
        print("note: jax's threads are not pinned (XLA chooses them)")
    for peer, why in skipped.items():
        print(f"note: peer {peer} skipped: {why}")
    if args.quick:
        print(f"QUICK mode: {settings.repeats} repeats of ~{settings.target_s * 1e3:g} ms, "
              f"W5 on {settings.w5_size:,} elements instead of {FULL.w5_size:,}, "
              f"W6 {settings.w6_epochs} epochs instead of {FULL.w6_epochs}, W7 on "
              f"{settings.w7_samples:,} digits instead of {FULL.w7_samples:,}; "
              "a smoke test, not numbers to report")
    print()

    results = {}
    bar = progress(len(args.workloads) * settings.repeats)
    try:
        for w in args.workloads:
            bar.set_description(w.name)
            results[w.name] = run_workload(w, settings, peers, args.threads, bar.update)
    finally:
        bar.close()

    steps = {name: res for name, res in results.items() if not res["training"]}
    training = {name: res for name, res in results.items() if res["training"]}
    if steps:
        print(table(steps, executors))
        print("python/native: the native executor's speedup over the pure-Python one; "
              "native/numpy: its time over hand-written numpy's (below 1: faster)\n")
    if training:
        print(table(training, TRAINING_EXECUTORS, TRAINING_RATIOS))
        print("µs per training step. native: Trainer.fit; executor, python: Python loops of "
              "Executor.run (native, pure-Python) and numpy updates; numpy: forward, backward "
              "and update by hand.\nexecutor/native: fit's speedup over the executor loop"
              + (f"; peers are not timed on {', '.join(training)}" if peers else "") + "\n")
    for name, res in results.items():
        print(f"{name:4} {res['title']}")

    failed = {name: res["mismatches"] for name, res in results.items() if not res["agree"]}
    for name, bad in failed.items():
        for executor, found in bad.items():
            for line in found:  # a training workload's lines say what they compare
                what = line if results[name]["training"] else \
                    f"disagrees with the python executor: {line}"
                print(f"FAILED {name}: {executor} {what}", file=sys.stderr)

    if args.json:
        report = {"quick": args.quick, "settings": vars(settings), "machine": machine,
                  "threads": {**pinned, "blas_libraries": blas_libs},
                  "peers_skipped": skipped, "workloads": results}
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"\nwrote {args.json}")
    if args.plot:
        subtitle = (f"{machine['cpu']} ({machine['simd']}), threads {args.threads}"
                    + (", QUICK mode" if args.quick else ""))
        columns = executors + [e for e in TRAINING_EXECUTORS if training and e not in executors]
        plot(results, columns, args.plot, subtitle)
        print(f"wrote {args.plot}")
    return 1 if failed else 0
