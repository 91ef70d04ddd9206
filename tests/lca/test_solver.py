"""lca.solver against an independent dense solve: footprints, all products at once, refusals."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp  # type: ignore[import-untyped]

from lca.solver import (
    IterativeSolveWarning,
    NotConvergedError,
    SingularSystemError,
    SolverMethod,
    SolverOptions,
    SystemDataError,
    build_datapackage,
    solve,
    solve_many,
)

GWP = np.array([1.0, 29.8, 273.0])
RTOL = 1e-9


@dataclass(frozen=True)
class System:
    """A dense system with loops: A = (I − T) diag(p), B, c, and the ids in matrix order."""

    A: np.ndarray
    B: np.ndarray
    c: np.ndarray
    activity_ids: np.ndarray
    flow_ids: np.ndarray

    def package(self) -> object:
        return build_datapackage(
            technosphere=sp.csr_matrix(self.A),
            biosphere=sp.csr_matrix(self.B),
            characterization=self.c,
            activity_ids=self.activity_ids,
            flow_ids=self.flow_ids,
        )

    def supply(self, demand: dict[int, float]) -> np.ndarray:
        d = np.zeros(len(self.activity_ids))
        for key, amount in demand.items():
            d[list(self.activity_ids).index(key)] = amount
        return np.linalg.solve(self.A, d)

    def score(self, demand: dict[int, float]) -> float:
        return float(self.c @ self.B @ self.supply(demand))


def make_system(n: int, *, seed: int = 0, density: float = 0.3, share: float = 0.6) -> System:
    """Every activity takes inputs (summing to ``share`` per unit of output) from others; at
    this density the supply graph is one big loop. Ids are sorted, so matrix order is ours."""
    rng = np.random.default_rng(seed)
    inputs = rng.random((n, n)) * (rng.random((n, n)) < density)
    np.fill_diagonal(inputs, 0.0)
    inputs[(np.arange(n) + 1) % n, np.arange(n)] += 0.1  # a ring, so no column is empty
    inputs *= share / inputs.sum(axis=0)
    production = rng.uniform(0.5, 2.0, n)
    return System(
        A=(np.eye(n) - inputs) * production,
        B=rng.random((3, n)) * (rng.random((3, n)) < 0.7),
        c=GWP,
        activity_ids=np.arange(n, dtype=np.int64) * 7 + 100,
        flow_ids=np.array([1, 2, 3]),
    )


@pytest.mark.parametrize("method", ["direct", "iterative"])
def test_footprint_equals_a_dense_solve(method: str) -> None:
    system = make_system(60, seed=1)
    demand = {int(system.activity_ids[5]): 2.0, int(system.activity_ids[40]): 0.5}

    result = solve(system.package(), demand, method=method)

    expected = system.supply(demand)
    np.testing.assert_allclose(result.supply, expected, rtol=RTOL)
    np.testing.assert_allclose(result.inventory, system.B @ expected, rtol=RTOL)
    assert result.score == pytest.approx(system.score(demand), rel=RTOL)
    assert result.report.method is SolverMethod(method)
    np.testing.assert_array_equal(result.activity_ids, system.activity_ids)
    np.testing.assert_array_equal(result.flow_ids, system.flow_ids)


def test_forced_iterative_solve_matches_the_direct_one_and_says_how_it_was_solved() -> None:
    system = make_system(80, seed=2)
    demand = {int(system.activity_ids[0]): 1.0}

    direct = solve(system.package(), demand, method="direct")
    iterative = solve(system.package(), demand, method=SolverMethod.ITERATIVE)

    assert iterative.score == pytest.approx(direct.score, rel=RTOL)
    np.testing.assert_allclose(iterative.supply, direct.supply, rtol=RTOL)
    assert (direct.report.solver, direct.report.iterations) == ("superlu", 0)
    assert iterative.report.solver == "gmres+jacobi"
    assert 0 < iterative.report.iterations < 100
    assert iterative.report.relative_residual <= SolverOptions().max_residual
    assert not iterative.report.fell_back


def test_auto_solves_directly_below_the_threshold_and_iteratively_above() -> None:
    system = make_system(30, seed=3)
    demand = {int(system.activity_ids[3]): 1.0}

    small = solve(system.package(), demand, options=SolverOptions(direct_below=31))
    large = solve(system.package(), demand, options=SolverOptions(direct_below=30))

    assert small.report.method is SolverMethod.DIRECT
    assert large.report.method is SolverMethod.ITERATIVE
    assert large.score == pytest.approx(small.score, rel=RTOL)


def test_ids_given_in_any_order_come_back_sorted_with_their_values() -> None:
    system = make_system(20, seed=4)
    order = np.random.default_rng(0).permutation(20)
    package = build_datapackage(
        technosphere=sp.csr_matrix(system.A[np.ix_(order, order)]),
        biosphere=sp.csr_matrix(system.B[::-1][:, order]),
        characterization=system.c[::-1],
        activity_ids=system.activity_ids[order],
        flow_ids=system.flow_ids[::-1],
    )
    demand = {int(system.activity_ids[7]): 1.0}

    result = solve(package, demand)

    np.testing.assert_array_equal(result.activity_ids, system.activity_ids)
    np.testing.assert_allclose(result.supply, system.supply(demand), rtol=RTOL)
    np.testing.assert_allclose(result.inventory, system.B @ system.supply(demand), rtol=RTOL)


@pytest.mark.parametrize("method", ["direct", "iterative"])
def test_all_products_footprints_equal_one_solve_per_product(method: str) -> None:
    system = make_system(25, seed=5)
    package = system.package()

    everything = solve_many(package, method=method)

    per_product = [
        solve(package, {int(product): 1.0}, method="direct").score
        for product in system.activity_ids
    ]
    np.testing.assert_array_equal(everything.product_ids, system.activity_ids)
    np.testing.assert_allclose(everything.scores, per_product, rtol=RTOL)
    dense = np.linalg.solve(system.A.T, system.B.T @ system.c)  # y = A⁻ᵀ Bᵀ c
    np.testing.assert_allclose(everything.scores, dense, rtol=RTOL)


def test_all_products_footprints_of_a_subset_and_of_a_mixed_demand() -> None:
    system = make_system(40, seed=6)
    chosen = [int(system.activity_ids[9]), int(system.activity_ids[2])]
    demand = {chosen[0]: 3.0, chosen[1]: 0.25}

    subset = solve_many(system.package(), products=chosen, method="iterative")

    np.testing.assert_array_equal(subset.product_ids, chosen)
    assert subset.score_of(demand) == pytest.approx(system.score(demand), rel=RTOL)
    with pytest.raises(SystemDataError, match="not among these footprints"):
        subset.score_of({int(system.activity_ids[0]): 1.0})
    with pytest.raises(SystemDataError, match=r"products \[5, -1\] are not in the system"):
        solve_many(system.package(), products=[5, chosen[0], -1])


def test_results_are_frozen() -> None:
    system = make_system(10)
    result = solve(system.package(), {int(system.activity_ids[0]): 1.0})
    everything = solve_many(system.package())

    for array in (result.supply, result.inventory, result.activity_ids, everything.scores):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1.0
    with pytest.raises(AttributeError):
        result.score = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.demand[100] = 2.0  # type: ignore[index]


def test_matrices_triplets_equal_sparse_input() -> None:
    system = make_system(15, seed=7)
    tech = sp.coo_matrix(system.A)
    bio = sp.coo_matrix(system.B)
    package = build_datapackage(
        technosphere=(tech.row, tech.col, tech.data),
        biosphere=(bio.row, bio.col, bio.data),
        characterization=sp.diags(system.c),
        activity_ids=system.activity_ids,
        flow_ids=system.flow_ids,
    )
    demand = {int(system.activity_ids[1]): 1.0}

    assert solve(package, demand).score == pytest.approx(system.score(demand), rel=RTOL)


def test_shape_problems_are_all_reported_with_what_to_fix() -> None:
    system = make_system(6)
    with pytest.raises(SystemDataError) as caught:
        build_datapackage(
            technosphere=sp.csr_matrix(system.A[:5, :5]),
            biosphere=(np.array([0, 3]), np.array([0, 1]), np.array([1.0, 2.0])),
            characterization=np.ones(4),
            activity_ids=system.activity_ids,
            flow_ids=system.flow_ids,
        )
    message = str(caught.value)
    assert "technosphere: shape (5, 5) does not match the ids, which need (6, 6)" in message
    assert "biosphere: 1 entries fall outside its 3 × 6 shape (first: row 3, col 1)" in message
    assert "characterization: expected 3 factors (one per flow id), got shape (4,)" in message
    assert caught.value.code == "INVALID_LCA_SYSTEM"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"activity_ids": np.array([1, 1, 2])}, "activity_ids: ids must be unique"),
        ({"flow_ids": np.array([-1, 2, 3])}, "flow_ids: ids must be non-negative"),
        ({"activity_ids": np.array([[1, 2, 3]])}, "expected a 1-d array of integers"),
        ({"characterization": np.zeros(3)}, "every factor is zero"),
        ({"technosphere": np.eye(3)}, "expected a scipy sparse matrix or (rows, cols, values)"),
        (
            {"technosphere": (np.array([0, 1]), np.array([0]), np.array([1.0, 1.0]))},
            "must be 1-d and of one length",
        ),
        ({"technosphere": sp.csr_matrix(np.diag([1.0, 0.0, 1.0]))}, "1 activities have no"),
        ({"biosphere": sp.csr_matrix(np.full((3, 3), np.nan))}, "9 values are not finite"),
    ],
)
def test_bad_inputs_are_refused(change: dict[str, object], expected: str) -> None:
    arguments: dict[str, object] = {
        "technosphere": sp.csr_matrix(np.eye(3)),
        "biosphere": sp.csr_matrix(np.ones((3, 3))),
        "characterization": GWP,
        "activity_ids": np.array([1, 2, 3]),
        "flow_ids": np.array([1, 2, 3]),
        **change,
    }
    with pytest.raises(SystemDataError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        build_datapackage(**arguments)  # type: ignore[arg-type]


def test_demand_and_method_outside_the_system_are_refused() -> None:
    system = make_system(5)
    with pytest.raises(SystemDataError, match=r"demand names products \[3\]"):
        solve(system.package(), {3: 1.0})
    with pytest.raises(SystemDataError, match="demand is empty"):
        solve(system.package(), {})
    with pytest.raises(SystemDataError, match="unknown method 'lu'; choose one of 'auto'"):
        solve(system.package(), {int(system.activity_ids[0]): 1.0}, method="lu")


def test_iterative_solve_that_misses_its_tolerance_falls_back_to_direct_with_a_warning() -> None:
    system = make_system(50, seed=8, share=0.95)
    demand = {int(system.activity_ids[0]): 1.0}
    starved = SolverOptions(restart=2, max_restarts=1)

    with pytest.warns(IterativeSolveWarning, match="solving the 50 × 50 system directly"):
        result = solve(system.package(), demand, method="iterative", options=starved)

    assert result.report.fell_back
    assert result.report.solver == "gmres+jacobi→superlu"
    assert result.report.iterations == 2
    assert result.score == pytest.approx(system.score(demand), rel=RTOL)
    with pytest.raises(NotConvergedError, match="allow the direct fallback"):
        solve(
            system.package(),
            demand,
            method="iterative",
            options=SolverOptions(restart=2, max_restarts=1, fallback_to_direct=False),
        )


# A loop that consumes all it produces: activity 1 and 2 each need one unit of the other.
SINGULAR = sp.csr_matrix(np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, -0.5, 1.0]]))


@pytest.mark.filterwarnings("ignore::scipy.sparse.linalg.MatrixRankWarning")
@pytest.mark.parametrize("method", ["direct", "iterative"])
def test_singular_system_is_reported_not_solved(method: str) -> None:
    package = build_datapackage(
        technosphere=SINGULAR,
        biosphere=sp.csr_matrix(np.ones((3, 3))),
        characterization=GWP,
        activity_ids=np.array([1, 2, 3]),
        flow_ids=np.array([1, 2, 3]),
    )
    # Demand for product 1 is outside the range of A, so no supply meets it.
    expected = pytest.warns(IterativeSolveWarning) if method == "iterative" else nullcontext()
    with expected, pytest.raises(SingularSystemError, match="singular"):
        solve(package, {1: 1.0}, method=method)
    with pytest.raises(SingularSystemError):
        solve_many(package, method="direct")
