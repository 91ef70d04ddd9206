"""An existing Brightway project as the park's background, exported once and solved with it.

A material the park buys can be linked to an activity of a Brightway project by its key
(``BackgroundKey(database, code)``). ``export_background`` copies the technosphere and
biosphere matrices bw2data keeps for those databases (and every database they depend on) into
memory, with the integer ids bw2data gives their nodes; later solves never touch bw2data.

How a park solve combines them (bw2calc conventions, as in ``lca.model``):

* **Ids.** bw2calc joins datapackages by integer id: the same id in two packages is the same
  node. bw2data numbers nodes with snowflake ids (about 10¹⁷, or 1…N in projects migrated from
  bw2data 3), so the park numbers its own activities, and elementary flows the project lacks,
  from ``park_ids(background, count)`` (10⁹ upwards unless that range is taken).
* **Technosphere.** The park package holds A[j, j] = 1 for its activities j and
  A[i, j] = −a_ij (stored positive with ``flip``) for what they consume. A purchase of material
  m linked to ``key`` is such an entry with row i = ``activity_id(background, key)``: the
  background column i then supplies it, with its whole supply chain.
* **Biosphere.** The park's emission of elementary flow u (biosphere3 UUID) is
  B[g, j] = b_gj with row g = ``background.biosphere_ids[u]``, so the park's and the
  background's emissions of u add up in one row; a flow the project lacks (the aggregated
  CO2-equivalent pseudo-flow) takes a park id.
* **Characterisation.** One package with C[g, g] = GWP100 of u (kg CO2-eq per kg) for every
  ``(u, g)`` in ``biosphere_ids`` that the method lists, plus the park-only flows: background
  emissions must be characterised too, not only the park's own.
* **Solve.** ``bw2calc.LCA({park_id: units}, data_objs=[park_package, *background.datapackages,
  characterisation_package])``; supply s = A⁻¹ d over the park's and the background's columns,
  score h = 1ᵀ C B s in kg CO2-eq. ``tests/lca/test_linking.py`` builds exactly this and checks
  it against a dense NumPy solve.

bw2data's packages store amounts as float32 (bw_processing's choice), so background figures
carry about 7 significant digits, as in any bw2calc calculation of the project; the park's own
package stays float64.

The export is cached in the process per (project, databases) and reused while the databases'
``modified`` and ``processed`` timestamps in bw2data's metadata are unchanged; a write to the
project (a new activity, an edited exchange) makes the next call export again.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

import bw_processing as bwp
import numpy as np
from fsspec.implementations.zip import ZipFileSystem  # type: ignore[import-untyped]

import lca  # noqa: F401  (the package init points BRIGHTWAY2_DIR away from $HOME first)
from lca.errors import LcaError

PARK_ID_OFFSET: Final = 10**9
"""First id the park's own nodes take when the background leaves [10⁹, 10⁹ + count) free."""

Fingerprint = tuple[tuple[str, str, str], ...]
"""(database, bw2data ``modified``, bw2data ``processed``) for every exported database."""


class BackgroundError(LcaError):
    """A Brightway background that cannot be exported or linked as asked."""

    code = "INVALID_BACKGROUND"


class UnknownProjectError(BackgroundError):
    """No Brightway project of that name in ``BRIGHTWAY2_DIR``."""

    code = "UNKNOWN_BACKGROUND_PROJECT"


class UnknownDatabaseError(BackgroundError):
    """No database of that name in the project."""

    code = "UNKNOWN_BACKGROUND_DATABASE"


class UnknownActivityError(BackgroundError):
    """A ``BackgroundKey`` naming no activity of the exported databases."""

    code = "UNKNOWN_BACKGROUND_ACTIVITY"


@dataclass(frozen=True, slots=True)
class BackgroundKey:
    """A node of a Brightway project, as bw2data keys it: ``(database, code)``."""

    database: str
    code: str


@dataclass(frozen=True, slots=True, eq=False)
class LinkedBackground:
    """Databases of a Brightway project, exported to memory with the ids bw2data gives them.

    ``databases`` are the requested databases and every one they depend on (the biosphere),
    sorted; ``datapackages`` are bw2data's processed packages of them, one each, loaded into
    memory. ``activity_ids`` maps every technosphere node (process, product) to its id, the
    column (and, for a process with its reference product, the row) of A; ``biosphere_ids`` maps
    each biosphere node's code (the biosphere3 UUID in ecoinvent projects) to its row of B.
    ``fingerprint`` is what the export was made from; equal fingerprints, equal matrices.
    """

    project: str
    databases: tuple[str, ...]
    datapackages: tuple[bwp.Datapackage, ...]
    activity_ids: Mapping[BackgroundKey, int]
    biosphere_ids: Mapping[str, int]
    fingerprint: Fingerprint
    exported_at: datetime


_LOCK = threading.RLock()
"""bw2data's current project is one global: one export at a time in this process."""

_CACHE: dict[tuple[str, tuple[str, ...]], LinkedBackground] = {}
"""(project, requested databases) → the latest export; a changed project replaces its entry."""


def _bw2data() -> Any:
    """bw2data, imported on first use: importing it takes a second and logs to stdout."""
    import bw2data

    return bw2data


def _check_project(bd: Any, project: str) -> None:
    if project not in bd.projects:  # before set_current, which would create it
        known = sorted(p.name for p in bd.projects)
        raise UnknownProjectError(
            f"no Brightway project {project!r} in {bd.projects.dir.parent}: "
            f"choose one of {known} or create it first",
            field=("project",),
        )


def _metadata(bd: Any, project: str) -> Mapping[str, Mapping[str, Any]]:
    """The project's database metadata (``databases.json``), read without switching to it."""
    from bw2data.meta import Databases
    from bw2data.project import ProjectDataset

    _check_project(bd, project)
    dataset = ProjectDataset.get(ProjectDataset.name == project)
    return Databases(dirpath=dataset.dir)  # type: ignore[no-any-return]


@contextmanager
def _project(bd: Any, project: str) -> Iterator[None]:
    """``project`` as bw2data's current project, and the previous one back afterwards."""
    _check_project(bd, project)
    previous = bd.projects.current
    if previous == project:
        # Switching re-reads the metadata other processes may have changed, but costs two
        # ``gc.collect()`` in bw2data (0.2-0.4 s each): re-read the metadata alone instead.
        bd.databases.load()
        yield
        return
    bd.projects.set_current(project)
    try:
        yield
    finally:
        bd.projects.set_current(previous, update=False)


def _processed(bd: Any, project: str, requested: Sequence[str]) -> list[str]:
    """The requested databases and their dependencies, sorted, each processed if stale."""
    done: set[str] = set()
    pending = list(requested)
    while pending:
        name = pending.pop()
        if name in done:
            continue
        if name not in bd.databases:
            needed = "" if name in requested else " (a dependency of the requested databases)"
            raise UnknownDatabaseError(
                f"no database {name!r}{needed} in Brightway project {project!r}: "
                f"choose among {sorted(bd.databases)} or import it first",
                field=("databases",),
            )
        database = bd.Database(name)
        if not database.filepath_processed().is_file():  # written with process=False
            database.process()
        done.add(name)
        pending.extend(database.metadata.get("depends", ()))
    return sorted(done)


def _fingerprint(metadata: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> Fingerprint:
    stamps = {name: metadata.get(name, {}) for name in names}
    return tuple(
        (name, str(stamp.get("modified")), str(stamp.get("processed")))
        for name, stamp in stamps.items()
    )


def _in_memory(path: Any) -> bwp.Datapackage:
    """bw2data's processed package at ``path``, read whole: no file stays open or is re-read."""
    with open(path, "rb") as stream:
        archive = ZipFileSystem(io.BytesIO(stream.read()))
    package = bwp.load_datapackage(archive, proxy=False)
    for array in package.data:
        if isinstance(array, np.ndarray):
            array.setflags(write=False)  # shared by every solve of the cached export
    return package


def _node_ids(
    bd: Any, project: str, names: Sequence[str]
) -> tuple[dict[BackgroundKey, int], dict[str, int]]:
    from bw2data.backends import ActivityDataset

    technosphere_types = {*bd.labels.lci_node_types, None}
    other_types = set(bd.labels.other_node_types)
    activities: dict[BackgroundKey, int] = {}
    biosphere: dict[str, int] = {}
    rows = (
        ActivityDataset.select(
            ActivityDataset.database, ActivityDataset.code, ActivityDataset.type, ActivityDataset.id
        )
        .where(ActivityDataset.database << list(names))
        .tuples()
    )
    for database, code, kind, node_id in rows:
        if kind in technosphere_types:
            activities[BackgroundKey(database, code)] = int(node_id)
        elif kind not in other_types and biosphere.setdefault(code, int(node_id)) != node_id:
            raise BackgroundError(
                f"biosphere code {code!r} names two nodes in Brightway project "
                f"{project!r} (databases {list(names)}): export one biosphere database",
                field=("databases",),
            )
    return activities, biosphere


def export_background(project: str, databases: Sequence[str]) -> LinkedBackground:
    """Databases of Brightway ``project``, with their dependencies, as in-memory datapackages.

    The result is cached per (project, databases) and returned again, as the same object,
    while the databases' ``modified`` and ``processed`` timestamps in the project's
    ``databases.json`` are unchanged; checking them does not switch projects. Exporting does:
    bw2data's current project is ``project`` for the export and the previous one after it
    (bw2data runs ``gc.collect()`` on every switch, 0.2-0.5 s in a large process, so the export
    of the current project skips the switch). Databases marked dirty, or never processed, are
    processed by bw2data first, which writes their processed package in the project as any
    bw2data calculation would. Raises ``UnknownProjectError`` or ``UnknownDatabaseError``
    naming what is missing. Thread-safe within this process only: other code switching
    bw2data's project meanwhile is not locked out.
    """
    requested = tuple(sorted(set(databases)))
    if not requested:
        raise BackgroundError(
            "no database to export: name at least one database of the project",
            field=("databases",),
        )
    bd = _bw2data()
    with _LOCK:
        cached = _CACHE.get((project, requested))
        if cached is not None and cached.fingerprint == _fingerprint(
            _metadata(bd, project), cached.databases
        ):
            return cached
        return _export(bd, project, requested)


def _export(bd: Any, project: str, requested: tuple[str, ...]) -> LinkedBackground:
    with _project(bd, project):
        names = _processed(bd, project, requested)
        fingerprint = _fingerprint(bd.databases, names)
        packages = tuple(_in_memory(bd.Database(name).filepath_processed()) for name in names)
        activities, biosphere = _node_ids(bd, project, names)
        background = LinkedBackground(
            project=project,
            databases=tuple(names),
            datapackages=packages,
            activity_ids=MappingProxyType(activities),
            biosphere_ids=MappingProxyType(biosphere),
            fingerprint=fingerprint,
            exported_at=datetime.now(UTC),
        )
        _CACHE[(project, requested)] = background
        return background


def activity_id(background: LinkedBackground, key: BackgroundKey) -> int:
    """The integer id of ``key``'s node in the background matrices: the row a park purchase of
    the linked material points to. Raises ``UnknownActivityError`` naming the key."""
    try:
        return background.activity_ids[key]
    except KeyError:
        where = (
            f"database {key.database!r} has no technosphere node {key.code!r}"
            if key.database in background.databases
            else f"database {key.database!r} is not exported (exported: {background.databases})"
        )
        raise UnknownActivityError(
            f"cannot link ({key.database!r}, {key.code!r}) in Brightway project "
            f"{background.project!r}: {where}; check the link's database and code",
            field=("key",),
        ) from None


def park_ids(background: LinkedBackground, count: int) -> range:
    """``count`` consecutive integer ids no node of ``background`` has, for the park's nodes.

    ``range(PARK_ID_OFFSET, PARK_ID_OFFSET + count)`` when no background id falls in it, else
    the ``count`` ids above the largest background id.
    """
    if count < 0:
        raise ValueError(f"count must be ≥ 0, not {count}")
    taken = np.fromiter(
        (*background.activity_ids.values(), *background.biosphere_ids.values()), dtype=np.int64
    )
    start = PARK_ID_OFFSET
    if np.any((taken >= start) & (taken < start + count)):
        start = int(taken.max()) + 1
    return range(start, start + count)
