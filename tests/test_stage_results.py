"""Typed stage results: immutable hand-over between stages, and release after their last use."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from salesbi.pipeline import STAGES, plan, release
from salesbi.stage_results import (
    CoreFrames,
    Frames,
    Ingested,
    MissingStageResult,
    ModelOutput,
    Results,
    SourceRead,
)


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": range(n)})


def test_results_are_immutable_and_later_stages_win() -> None:
    empty = Results()
    one = empty.add("reports", Frames({"a": _frame(1), "b": _frame(1)}))
    two = one.add("segments", ModelOutput("segments", {"b": _frame(2)}, (), {"m": object()}))
    assert empty.by_stage == {} and list(one.by_stage) == ["reports"]
    assert len(two.frames()["b"]) == 2 and len(two.frames()["a"]) == 1
    assert list(two.models()) == ["m"] and two.model_runs() == []
    assert one.add("insights", None) is one
    with pytest.raises(TypeError):
        two.by_stage["x"] = Frames({})  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.by_stage["reports"].frames = {}  # type: ignore[attr-defined]


def test_a_missing_result_names_the_stage_that_needed_it() -> None:
    with pytest.raises(MissingStageResult, match="stage 'reports' needs a CoreFrames result"):
        Results().need(CoreFrames, "reports")


def test_large_results_are_released_after_their_last_use() -> None:
    core = {"orders": _frame(3)}
    done = (
        Results()
        .add("read", SourceRead(data=object()))  # type: ignore[arg-type]
        .add("ingest", Ingested({}, _frame(0), None, "# summary", core))
    )
    stages = plan(("ingest", "reports", "forecast"))
    names = [s.name for s in stages]
    after_ingest = release(done, stages[names.index("ingest") + 1 :])
    assert "read" not in after_ingest.by_stage  # no later stage reads the source
    ingested = after_ingest.find(Ingested)
    assert ingested is not None and ingested.core is core  # the core stage still needs the rows
    after_core = release(
        after_ingest.add("core", CoreFrames(core, "this run")), stages[names.index("core") + 1 :]
    )
    ingested = after_core.find(Ingested)
    assert ingested is not None and ingested.core is None and ingested.validation_summary == "# summary"
    assert after_core.need(CoreFrames, "reports").tables is core
    after_models = release(after_core, stages[names.index("forecast") + 1 :])
    assert after_models.find(CoreFrames) is None  # insights and publish need frames, not core
    assert [s.name for s in STAGES][-2:] == ["publish", "powerbi"]


def test_the_order_lines_of_core_go_once_the_fact_holds_them() -> None:
    core = {"orders": _frame(3), "order_items": _frame(5), "customers": _frame(2), "offices": _frame(1)}
    stages = plan(("ingest", "reports", "segments", "predictions", "forecast"))
    names = [s.name for s in stages]
    done = Results().add("core", CoreFrames(core, "this run"))
    # before the reports stage: the fact is built from the order lines, they stay
    assert release(done, stages[names.index("core") + 1 :]).need(CoreFrames, "reports").tables is core
    after_reports = release(
        done.add("reports", Frames({"fact_order_lines": _frame(5)})), stages[names.index("reports") + 1 :]
    )
    kept = after_reports.need(CoreFrames, "segments")
    assert sorted(kept.tables) == ["customers", "offices"] and kept.origin == "this run"
    assert kept.tables["customers"] is core["customers"]  # the other tables are not copied
    # a report stage that built no fact (e.g. push-down without it): the model stages build it from core
    no_fact = release(
        done.add("reports", Frames({"sales_monthly": _frame(1)})), stages[names.index("reports") + 1 :]
    )
    assert no_fact.need(CoreFrames, "segments").tables is core
