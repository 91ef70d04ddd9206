"""Large park LCAs: building the matrices, one footprint, and every product's footprint.

    python -m bench.lca_solve [--quick] [--sizes 1000,10000] [--structures local,random]
                              [--default-timeout 180] [--try-default] [--no-sweep]

``--quick`` (under a minute): sizes 1,000 and 10,000, a sweep of 100–1,000, and no default
at 10,000 random, which alone takes about 2 minutes.

Synthetic supply networks, seeded: N activities, each producing 0.5–2 units of its product
(the diagonal of A) and taking 5–10 inputs from other activities, scaled so that the inputs
per unit of output sum to 0.3–0.7 for every activity (‖T‖₁ ≤ 0.7, so the network is
productive and A = D(I − T) is invertible). Two structures:

* ``local``: 98% of the inputs come from the neighbours i ± 1..16 (both directions, wrapping
  around), 2% from anywhere: short loops everywhere, and long links now and then;
* ``random``: inputs drawn uniformly from all activities.

Five gases (CO2, CH4, N2O, SF6, HFC-134a) are emitted by every activity, each with
probability 0.6 (at least one), lognormal amounts; the factors are IPCC AR6 GWP100.

For each size and structure, in a fresh subprocess (so the peak resident memory is that
size's own), against one datapackage:

* build: ``lca.solver.build_datapackage`` plus bw2calc loading A, B and C from it;
* ours: ``lca.solver.solve`` (method ``auto``) for one unit of the middle activity's product;
* default: the same demand with bw2calc's ``LCA`` calculation as shipped (its
  ``solve_linear_system``: SuperLU through ``scipy.sparse.linalg.spsolve``, as no pypardiso
  is installed), skipped at 100,000 and above, where it takes far longer than 3 minutes
  (``--try-default`` runs it anyway), and killed after ``--default-timeout`` seconds;
* all products: ``lca.solver.solve_many``, one transposed solve Aᵀ y = Bᵀ c, whose yᵀ d is
  checked against our score for d.

Peak memory is ``ru_maxrss`` of the subprocess after our solves (before the default runs)
and at its end. Before the sizes, a sweep over small systems times the direct and the
iterative solve, which is where ``SolverOptions.direct_below`` comes from.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from scipy.sparse.csgraph import connected_components  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_000, 10_000, 100_000, 300_000)
QUICK_SIZES = (1_000, 10_000)
STRUCTURES = ("local", "random")
SWEEP_SIZES = (100, 200, 500, 1_000, 2_000, 5_000)
QUICK_SWEEP_SIZES = (100, 500, 1_000)
GASES = ("CO2", "CH4", "N2O", "SF6", "HFC-134a")
GWP100_AR6 = np.array([1.0, 29.8, 273.0, 25_200.0, 1_530.0])  # IPCC AR6 WG1 Table 7.15
LOCAL_WINDOW = 16
LONG_LINKS = 0.02
DEFAULT_TIMEOUT = 180.0


def default_skip_reason(size: int, structure: str, *, quick: bool) -> str | None:
    """Why bw2calc's default is not run at this size: SuperLU's fill-in makes it take far
    more than 3 minutes (measured with ``--try-default``: killed after 900 s at 100,000
    local, 1.6 GB and growing; 152 s already at 10,000 random)."""
    if size >= 100_000:
        return "skipped: > 15 min (SuperLU fill-in)"
    if quick and size >= 10_000 and structure == "random":
        return "skipped in --quick (about 2 min)"
    return None


# --- the synthetic network ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Network:
    technosphere: sp.csr_matrix
    biosphere: sp.csr_matrix
    factors: np.ndarray
    activity_ids: np.ndarray
    flow_ids: np.ndarray


def generate_network(size: int, structure: str, *, seed: int = 42) -> Network:
    """A productive supply network with loops; see the module docstring for its shape."""
    rng = np.random.default_rng(seed)
    inputs_per_activity = rng.integers(5, 11, size=size)
    consumers = np.repeat(np.arange(size), inputs_per_activity)
    count = len(consumers)
    if structure == "local":
        offsets = rng.integers(1, LOCAL_WINDOW + 1, size=count) * rng.choice([-1, 1], size=count)
        suppliers = (consumers + offsets) % size
        far = rng.random(count) < LONG_LINKS
        suppliers[far] = rng.integers(0, size, size=int(far.sum()))
    elif structure == "random":
        suppliers = rng.integers(0, size, size=count)
    else:
        raise ValueError(f"unknown structure {structure!r}")
    suppliers = np.where(suppliers == consumers, (suppliers + 1) % size, suppliers)
    amounts = rng.random(count) + 0.05
    production = rng.uniform(0.5, 2.0, size=size)
    totals = np.bincount(consumers, weights=amounts, minlength=size)
    share = rng.uniform(0.3, 0.7, size=size)  # inputs per unit of output, Σ_i T[i, j]
    amounts *= (share * production / totals)[consumers]
    diagonal = np.arange(size)
    technosphere = sp.csr_matrix(
        (
            np.concatenate([production, -amounts]),
            (np.concatenate([diagonal, suppliers]), np.concatenate([diagonal, consumers])),
        ),
        shape=(size, size),
    )
    emits = rng.random((len(GASES), size)) < 0.6
    emits[rng.integers(0, len(GASES), size=size), diagonal] = True
    scale = np.array([1.0, 3e-3, 1e-4, 1e-7, 1e-6])[:, None]  # kg per unit, typical ratios
    emissions = np.where(emits, rng.lognormal(0.0, 1.0, size=emits.shape) * scale, 0.0)
    return Network(
        technosphere=technosphere,
        biosphere=sp.csr_matrix(emissions),
        factors=GWP100_AR6.copy(),
        activity_ids=np.arange(size, dtype=np.int64) + 1_000_000,
        flow_ids=np.arange(len(GASES), dtype=np.int64) + 1,
    )


def largest_loop(network: Network) -> int:
    """Activities in the largest strongly connected component of the supply graph."""
    graph = network.technosphere.copy()
    graph.setdiag(0)
    graph.eliminate_zeros()
    _, labels = connected_components(graph, directed=True, connection="strong")
    return int(np.bincount(labels).max())


# --- one size, in a subprocess ---------------------------------------------------------------


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def warm_up() -> None:
    """Solve a 200-activity system both ways once, so that one-time costs (lazy imports,
    finding the BLAS library to limit its threads) are not charged to the first size, as
    they would not be in the running service."""
    from lca.solver import build_datapackage, solve, solve_many

    network = generate_network(200, "local", seed=1)
    package = build_datapackage(
        technosphere=network.technosphere,
        biosphere=network.biosphere,
        characterization=network.factors,
        activity_ids=network.activity_ids,
        flow_ids=network.flow_ids,
    )
    demand = {int(network.activity_ids[0]): 1.0}
    for method in ("direct", "iterative"):
        solve(package, demand, method=method)
        solve_many(package, method=method)


def run_size(size: int, structure: str, run_default: bool) -> None:
    """Measure one size; prints one JSON record per phase on stdout."""
    import warnings

    from lca.solver import build_datapackage, solve, solve_many

    warm_up()
    emit({"phase": "imports", "peak_mb": peak_mb()})
    started = time.perf_counter()
    network = generate_network(size, structure)
    generated = time.perf_counter() - started
    middle = int(network.activity_ids[size // 2])
    emit(
        {
            "phase": "network",
            "seconds": generated,
            "nonzeros": int(network.technosphere.nnz),
            "largest_loop": largest_loop(network),
        }
    )
    started = time.perf_counter()
    package = build_datapackage(
        technosphere=network.technosphere,
        biosphere=network.biosphere,
        characterization=network.factors,
        activity_ids=network.activity_ids,
        flow_ids=network.flow_ids,
    )
    packaged = time.perf_counter() - started
    del network
    ours = solve(package, {middle: 1.0})
    emit(
        {
            "phase": "ours",
            "build_seconds": packaged + ours.report.load_seconds,
            "datapackage_seconds": packaged,
            "load_seconds": ours.report.load_seconds,
            "solve_seconds": ours.report.solve_seconds,
            "solver": ours.report.solver,
            "iterations": ours.report.iterations,
            "residual": ours.report.relative_residual,
            "score": ours.score,
        }
    )
    everything = solve_many(package)
    emit(
        {
            "phase": "all",
            "load_seconds": everything.report.load_seconds,
            "solve_seconds": everything.report.solve_seconds,
            "solver": everything.report.solver,
            "iterations": everything.report.iterations,
            "residual": everything.report.relative_residual,
            "score_of_demand": everything.score_of({middle: 1.0}),
            "peak_mb": peak_mb(),
        }
    )
    if not run_default:
        return
    emit({"phase": "default-start"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy's SparseEfficiencyWarning, if any
        default = solve(package, {middle: 1.0}, method="direct")
    scale = float(np.abs(default.supply).max())
    emit(
        {
            "phase": "default",
            "solve_seconds": default.report.solve_seconds,
            "score": default.score,
            "supply_difference": float(np.abs(ours.supply - default.supply).max() / scale),
            "peak_mb": peak_mb(),
        }
    )


def run_sweep(sizes: Sequence[int]) -> None:
    """Direct against iterative on small systems (median of 5 solves, or of those in 3 s)."""
    from lca.solver import FootprintResult, build_datapackage, solve

    warm_up()
    for structure in STRUCTURES:
        for size in sizes:
            network = generate_network(size, structure, seed=7)
            package = build_datapackage(
                technosphere=network.technosphere,
                biosphere=network.biosphere,
                characterization=network.factors,
                activity_ids=network.activity_ids,
                flow_ids=network.flow_ids,
            )
            middle = {int(network.activity_ids[size // 2]): 1.0}
            record: dict[str, Any] = {"phase": "sweep", "structure": structure, "size": size}
            for method in ("direct", "iterative"):
                runs: list[FootprintResult] = []
                while len(runs) < 5 and sum(r.report.solve_seconds for r in runs) < 3.0:
                    runs.append(solve(package, middle, method=method))
                record[method] = statistics.median(r.report.solve_seconds for r in runs)
                record[f"{method}_score"] = runs[0].score
            emit(record)


# --- the parent: subprocesses, timeouts, tables ----------------------------------------------


def child(arguments: Sequence[str], timeout: float | None) -> Iterator[dict[str, Any]]:
    """Run this module with ``arguments`` and yield its records. ``timeout`` bounds the phase
    after a ``default-start`` record: past it the subprocess is killed, and a ``timeout``
    record is yielded."""
    env = {**os.environ, "BRIGHTWAY2_DIR": os.environ["BRIGHTWAY2_DIR"]}
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.lca_solve", *arguments],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    deadline: float | None = None
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                line = lines.get(timeout=wait)
            except queue.Empty:
                process.kill()
                yield {"phase": "timeout"}
                return
            if line is None:
                break
            if not line.startswith("{"):
                continue  # bw2data's log line on import
            record = json.loads(line)
            if record["phase"] == "default-start" and timeout is not None:
                deadline = time.monotonic() + timeout
            yield record
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    if process.returncode != 0:
        raise SystemExit(f"bench.lca_solve {' '.join(arguments)} exited with {process.returncode}")


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def measure(
    size: int, structure: str, *, timeout: float, try_default: bool, quick: bool
) -> dict[str, Any]:
    skip = None if try_default else default_skip_reason(size, structure, quick=quick)
    arguments = ["--child", str(size), structure, "--default", "no" if skip else "yes"]
    result: dict[str, Any] = {"size": size, "structure": structure, "default_note": skip}
    for record in child(arguments, timeout):
        phase = record.pop("phase")
        if phase == "timeout":
            result["default_note"] = f"killed after {timeout:.0f} s"
        else:
            result[phase] = record
    return result


def print_results(results: Sequence[dict[str, Any]]) -> None:
    from bench.common import fmt_ratio, print_table

    rows = []
    for r in results:
        ours, everything = r["ours"], r["all"]
        default = r.get("default")
        if default is not None:
            speedup = fmt_ratio(default["solve_seconds"] / ours["solve_seconds"])
            difference = f"{abs(ours['score'] - default['score']) / abs(default['score']):.1e}"
            default_cell = fmt_s(default["solve_seconds"])
            peak_default = f"{default['peak_mb']:.0f}"
        else:
            speedup = difference = peak_default = "–"
            default_cell = r["default_note"] or "–"
        rows.append(
            [
                f"{r['size']:,}",
                r["structure"],
                fmt_s(ours["build_seconds"]),
                fmt_s(ours["solve_seconds"]),
                fmt_s(ours["build_seconds"] + ours["solve_seconds"]),
                default_cell,
                speedup,
                fmt_s(everything["solve_seconds"]),
                difference,
                f"{everything['peak_mb']:.0f}",
                peak_default,
            ]
        )
    print_table(
        "LCA solve: seconds, speed-up over bw2calc's default, peak memory",
        [
            "N",
            "structure",
            "build s",
            "solve s (ours)",
            "build+solve s",
            "solve s (default)",
            "speed-up",
            "all-products s",
            "max rel diff",
            "peak MB (ours)",
            "peak MB (+default)",
        ],
        rows,
    )
    details = []
    for r in results:
        ours, everything = r["ours"], r["all"]
        consistency = abs(everything["score_of_demand"] - ours["score"]) / abs(ours["score"])
        details.append(
            [
                f"{r['size']:,}",
                r["structure"],
                f"{r['network']['nonzeros']:,}",
                f"{r['network']['largest_loop']:,}",
                fmt_s(ours["datapackage_seconds"]),
                fmt_s(ours["load_seconds"]),
                f"{ours['solver']} ({ours['iterations']})",
                f"{ours['residual']:.1e}",
                f"{everything['solver']} ({everything['iterations']})",
                f"{everything['residual']:.1e}",
                f"{consistency:.1e}",
                f"{r['default']['supply_difference']:.1e}" if r.get("default") else "–",
                f"{r['imports']['peak_mb']:.0f}",
            ]
        )
    print_table(
        "LCA solve: details",
        [
            "N",
            "structure",
            "nonzeros in A",
            "largest loop",
            "datapackage s",
            "bw2calc load s",
            "solver (iterations)",
            "residual",
            "all-products solver (iterations)",
            "residual",
            "|yᵀd − h|/h",
            "supply diff",
            "MB after imports",
        ],
        details,
    )


def print_sweep(records: Sequence[dict[str, Any]]) -> None:
    from bench.common import fmt_ratio, print_table

    rows = [
        [
            f"{r['size']:,}",
            r["structure"],
            f"{r['direct'] * 1000:.2f}",
            f"{r['iterative'] * 1000:.2f}",
            fmt_ratio(r["direct"] / r["iterative"]),
            f"{abs(r['iterative_score'] - r['direct_score']) / abs(r['direct_score']):.1e}",
        ]
        for r in records
    ]
    print_table(
        "LCA solve: direct or iterative for small systems (median ms of up to 5)",
        ["N", "structure", "direct ms", "iterative ms", "direct/iterative", "rel diff"],
        rows,
    )


def describe_machine() -> str:
    import platform

    import scipy

    return (
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {sys.version.split()[0]}, NumPy {np.__version__}, SciPy {scipy.__version__}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="sizes 1,000 and 10,000, a short sweep, no default at 10,000 random (under 1 min)",
    )
    parser.add_argument("--sizes", help="comma-separated sizes, e.g. 1000,100000")
    parser.add_argument("--structures", default=",".join(STRUCTURES), help="local,random")
    parser.add_argument(
        "--default-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="kill bw2calc's default solve after this many seconds (default: 180)",
    )
    parser.add_argument(
        "--try-default",
        action="store_true",
        help="run bw2calc's default at every size, up to --default-timeout",
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip the small-system sweep")
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "STRUCTURE"), help=argparse.SUPPRESS)
    parser.add_argument("--default", choices=("yes", "no"), default="yes", help=argparse.SUPPRESS)
    parser.add_argument("--sweep-child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    arguments = parse_args()
    if arguments.sweep_child:
        run_sweep(QUICK_SWEEP_SIZES if arguments.quick else SWEEP_SIZES)
        return
    if arguments.child:
        size, structure = arguments.child
        run_size(int(size), structure, arguments.default == "yes")
        return

    started = time.perf_counter()
    if arguments.sizes:
        sizes = tuple(int(s.replace("_", "")) for s in arguments.sizes.split(","))
    else:
        sizes = QUICK_SIZES if arguments.quick else SIZES
    structures = [s for s in arguments.structures.split(",") if s]
    print(f"machine: {describe_machine()}", flush=True)
    print(f"load average at start (1, 5, 15 min): {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mfa-bench-brightway-") as brightway:
        # Children import bw2calc, which imports bw2data, which writes to BRIGHTWAY2_DIR.
        os.environ["BRIGHTWAY2_DIR"] = brightway
        if not arguments.no_sweep:
            flags = ["--sweep-child", *(["--quick"] if arguments.quick else [])]
            sweep = [r for r in child(flags, None) if r.pop("phase") == "sweep"]
            print_sweep(sweep)
        results = []
        for size in sizes:
            for structure in structures:
                clock = time.perf_counter()
                result = measure(
                    size,
                    structure,
                    timeout=arguments.default_timeout,
                    try_default=arguments.try_default,
                    quick=arguments.quick,
                )
                results.append(result)
                print(
                    f"measured N={size:,} {structure} in {time.perf_counter() - clock:.1f} s",
                    flush=True,
                )
    print_results(results)
    print(f"\nload average at end (1, 5, 15 min): {os.getloadavg()}")
    print(f"elapsed: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
