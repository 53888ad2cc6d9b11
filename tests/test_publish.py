"""Publish is all or nothing: a process killed at any publish step leaves the old or the new state.

The kill tests run the publish in a real subprocess that SIGKILLs itself at one of
``salesbi.publish.CHECKPOINTS``; the test then runs the recovery the next run would
run and checks that the rpt tables, the Parquet folder, the models and insights.md
are all the old generation or all the new one, with nothing left over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from salesbi import publish
from salesbi.modelstore import versions
from salesbi.schema import Column, Table
from salesbi.warehouse.ddl import warehouse_metadata
from salesbi.warehouse.engine import SCHEMAS, create_engine, ensure_schemas
from salesbi.warehouse.load import read_table

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _table(name: str) -> Table:
    return Table(
        name=name,
        schema="rpt",
        key=("k",),
        columns=(Column("k", "id", required=True), Column("v", "float")),
    )


#: two report tables rebuilt by every run, and one ("model") table only the first run builds
REPORT_A, REPORT_B, MODEL_T = _table("test_pub_a"), _table("test_pub_b"), _table("test_pub_model")
TABLES = (REPORT_A, REPORT_B, MODEL_T)


def _frame(generation: int, rows: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"k": [f"k{i}" for i in range(rows)], "v": [float(generation)] * rows})


@dataclass
class FakeModel:
    """A stored model whose files name its generation."""

    generation: int
    model_name: str = "fake"

    @property
    def version(self) -> str:
        """Return a version that sorts by generation."""
        return f"2026010{self.generation}T000000Z-0000000{self.generation}"

    def card(self) -> dict[str, Any]:
        """Return the model card."""
        return {"kind": "fake", "version": self.version}

    def files(self) -> dict[str, bytes]:
        """Return the model files."""
        return {"gen.txt": str(self.generation).encode()}


@dataclass
class Place:
    """Where one test publishes."""

    url: str
    out: Path

    @property
    def folder(self) -> Path:
        """Return the Parquet folder."""
        return self.out / "powerbi" / "data"

    @property
    def models_dir(self) -> Path:
        """Return the models folder."""
        return self.out / "models"

    @property
    def insights(self) -> Path:
        """Return the insights file."""
        return self.out / "insights.md"


def _publish(place: Place, run_id: str, generation: int, tables: tuple[Table, ...]) -> publish.Published:
    engine = create_engine(place.url)
    try:
        return publish.publish(
            engine,
            warehouse_metadata(extra=TABLES),
            run_id=run_id,
            frames={t.name: _frame(generation) for t in tables},
            definitions=TABLES,
            folder=place.folder,
            models={"fake": FakeModel(generation)},  # type: ignore[dict-item]
            models_dir=place.models_dir,
            files={place.insights: f"generation {generation}\n"},
        )
    finally:
        engine.dispose()


def _child() -> None:
    """Subprocess entry: publish generation 2, killing this process at the named checkpoint."""
    args = json.loads(sys.argv[1])

    def hook(name: str) -> None:
        if name == args["kill_at"]:
            os.kill(os.getpid(), signal.SIGKILL)

    publish.set_checkpoint_hook(hook)
    _publish(Place(args["url"], Path(args["out"])), args["run_id"], 2, (REPORT_A, REPORT_B))
    sys.exit(0)


def _state(place: Place) -> dict[str, Any]:
    """Return the generation seen in every published place (a set per table: one value if consistent)."""
    engine = create_engine(place.url)
    md = warehouse_metadata(extra=TABLES)
    state: dict[str, Any] = {}
    with engine.connect() as conn:
        for t in TABLES:
            stored = read_table(conn, md.tables[t.qualified_name])
            state[f"rpt.{t.name}"] = (len(stored), set(stored["v"].astype(float)))
    engine.dispose()
    for t in TABLES:
        frame = pd.read_parquet(place.folder / f"{t.name}.parquet")
        state[f"parquet.{t.name}"] = (len(frame), set(frame["v"].astype(float)))
    latest = versions(place.models_dir, "fake")[-1]
    state["model"] = (place.models_dir / "fake" / latest / "gen.txt").read_text()
    state["insights"] = place.insights.read_text()
    return state


def _expected(report_generation: int) -> dict[str, Any]:
    g = float(report_generation)
    return {
        "rpt.test_pub_a": (3, {g}),
        "rpt.test_pub_b": (3, {g}),
        "rpt.test_pub_model": (3, {1.0}),  # not rebuilt by generation 2: kept as it was
        "parquet.test_pub_a": (3, {g}),
        "parquet.test_pub_b": (3, {g}),
        "parquet.test_pub_model": (3, {1.0}),
        "model": str(report_generation),
        "insights": f"generation {report_generation}\n",
    }


def _leftovers(place: Place) -> list[str]:
    names = ["data.new", "data.old", "data.publish.json", "data.publish.json.tmp"]
    found = [n for n in names if (place.folder.parent / n).exists()]
    found += [p.name for p in (place.models_dir / ".publish-staging",) if p.exists()]
    found += [p.name for p in (place.out / "insights.md.new",) if p.exists()]
    return found


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.integration])])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    """A warehouse and output folder holding generation 1, published normally."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'var' / 'wh.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for schema in SCHEMAS:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()
    engine = create_engine(url)
    ensure_schemas(engine)
    warehouse_metadata(extra=TABLES).create_all(engine)
    engine.dispose()
    here = Place(url, tmp_path / "out")
    _publish(here, "run-1", 1, TABLES)
    assert _state(here) == _expected(1)
    yield here


#: checkpoints up to here are before the warehouse commit: the old state must survive
BEFORE_COMMIT = publish.CHECKPOINTS[: publish.CHECKPOINTS.index("committed")]


def test_there_are_at_least_five_kill_points() -> None:
    assert len(publish.CHECKPOINTS) >= 5
    assert len(BEFORE_COMMIT) >= 3 and len(publish.CHECKPOINTS) - len(BEFORE_COMMIT) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", publish.CHECKPOINTS)
def test_a_publish_killed_at_any_step_recovers_to_all_old_or_all_new(place: Place, kill_at: str) -> None:
    _kill_publish_at(place, kill_at)  # it died at that very point
    # the next run (or `salesbi report`) recovers first
    engine = create_engine(place.url)
    outcome = publish.recover(engine, place.folder)
    engine.dispose()
    committed = kill_at not in BEFORE_COMMIT
    if kill_at == "staged":
        assert outcome is None  # no journal yet: the next publish simply re-stages
    else:
        assert outcome == ("completed" if committed else "rolled back")
    assert _state(place) == _expected(2 if committed else 1)
    if kill_at != "staged":
        assert _leftovers(place) == []
    # and the next publish goes through normally
    _publish(place, "run-3", 3, (REPORT_A, REPORT_B))
    assert _state(place) == _expected(3)
    assert _leftovers(place) == []


def _kill_publish_at(place: Place, kill_at: str) -> None:
    args = {"url": place.url, "out": str(place.out), "run_id": "run-2", "kill_at": kill_at}
    child = subprocess.run(
        [sys.executable, "-c", "from tests.test_publish import _child; _child()", json.dumps(args)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize(("kill_at", "generation"), [("before_commit", 1), ("old_folder_moved", 2)])
def test_the_next_run_recovers_an_interrupted_publish_once_connected(
    place: Place, kill_at: str, generation: int
) -> None:
    from salesbi.params import PipelineParams
    from salesbi.pipeline import connect_stage, start_run

    _kill_publish_at(place, kill_at)
    assert publish.journal_path(place.folder).exists()
    if kill_at == "old_folder_moved":
        assert not place.folder.exists()  # what `salesbi report` used to rebuild without model tables
    from salesbi.stage_results import Results

    run = start_run(PipelineParams(out_dir=place.out, warehouse_url=place.url, steps=("reports",)))
    connect_stage(run, Results()).engine.dispose()
    outcome = "completed" if generation == 2 else "rolled back"
    assert f"an interrupted earlier publish was {outcome}" in run.summary.notes
    assert _state(place) == _expected(generation)
    assert _leftovers(place) == []


def test_a_publish_failing_inside_the_transaction_changes_nothing(place: Place) -> None:
    engine = create_engine(place.url)
    bad = pd.DataFrame({"k": ["x", "x"], "v": [9.0, 9.0]})  # duplicate key: the insert fails
    with pytest.raises(sa.exc.IntegrityError):
        publish.publish(
            engine,
            warehouse_metadata(extra=TABLES),
            run_id="run-bad",
            frames={"test_pub_a": _frame(2), "test_pub_b": bad},
            definitions=TABLES,
            folder=place.folder,
            models={"fake": FakeModel(2)},  # type: ignore[dict-item]
            models_dir=place.models_dir,
            files={place.insights: "generation 2\n"},
        )
    with engine.connect() as conn:
        runs = conn.exec_driver_sql("SELECT run_id FROM audit.publishes").scalars().all()
    engine.dispose()
    assert runs == ["run-1"]
    assert _state(place) == _expected(1)
    assert _leftovers(place) == []


def test_recover_repairs_a_swap_killed_between_its_renames_without_a_journal(tmp_path: Path) -> None:
    # what earlier versions left: data.old (the previous set) and data.new (committed), no data/
    folder = tmp_path / "powerbi" / "data"
    old, new = folder.with_name("data.old"), folder.with_name("data.new")
    for where, generation in ((old, 1), (new, 2)):
        where.mkdir(parents=True)
        _frame(generation).to_parquet(where / "test_pub_a.parquet")
    (old / "test_pub_model.parquet").write_bytes(b"model table")
    engine = create_engine(f"sqlite:///{tmp_path / 'wh.db'}")
    assert publish.recover(engine, folder) == "completed"
    engine.dispose()
    assert set(pd.read_parquet(folder / "test_pub_a.parquet")["v"]) == {2.0}
    assert not old.exists() and not new.exists()


def test_recover_refuses_a_journal_of_another_warehouse(place: Place, tmp_path: Path) -> None:
    journal = publish.Journal(
        run_id="elsewhere",
        publish_id="elsewhere:1",
        warehouse="postgresql+psycopg://someone:***@elsewhere/db",
        folder=str(place.folder),
        staged=str(place.folder.with_name("data.new")),
        old=str(place.folder.with_name("data.old")),
    )
    publish.journal_path(place.folder).write_text(json.dumps(journal.__dict__), encoding="utf-8")
    engine = create_engine(place.url)
    with pytest.raises(publish.ConfigurationError, match="interrupted publish of run elsewhere"):
        publish.recover(engine, place.folder)
    engine.dispose()
