"""Daily model steps with the stored models (salesbi.incremental_models): the refit rule and scoring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from salesbi import contract, modelstore
from salesbi.errors import ConfigurationError
from salesbi.incremental_models import (
    decide_refit,
    freshness_frame,
    prediction_drift,
    run_model_step,
    score_predictions,
    score_segments,
)

NOW = datetime(2026, 1, 10, 6, 0, tzinfo=UTC)


def _card(days_old: float) -> dict[str, Any]:
    created = (NOW - timedelta(days=days_old)).isoformat()
    return {"model_name": "customer_sales", "version": "v1", "created_at": created}


@pytest.mark.parametrize(
    ("refit", "card", "drift", "action", "reason"),
    [
        ("always", _card(1), None, "refit", "refit=always"),
        ("always", None, None, "refit", "no stored model"),
        ("never", None, None, "refit", "no stored model"),
        ("never", _card(400), 5.0, "reuse", "refit=never"),
        ("auto", None, None, "refit", "no stored model"),
        ("auto", _card(8), None, "refit", "older than 7 days"),
        ("auto", _card(6.9), None, "reuse", "refit=auto"),
        ("auto", _card(1), 0.30, "refit", "past the 25% threshold"),
        ("auto", _card(1), 0.25, "reuse", "refit=auto"),  # at the threshold: not past it
        ("auto", _card(1), -0.5, "reuse", "refit=auto"),
        ("auto", {"model_name": "m", "version": "v"}, None, "refit", "older than"),  # no created_at
    ],
)
def test_refit_decision_table(
    refit: str, card: dict[str, Any] | None, drift: float | None, action: str, reason: str
) -> None:
    decision = decide_refit(
        "predictions", refit=refit, card=card, now=NOW, max_age_days=7, drift_threshold=0.25, drift=drift
    )
    assert decision.action == action
    assert reason in decision.reason
    if card is not None and card.get("created_at"):
        age = (NOW - datetime.fromisoformat(card["created_at"])).total_seconds() / 86_400
        assert decision.age_days == pytest.approx(age, abs=0.01)


def test_refit_choice_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="refit must be one of"):
        decide_refit("segments", refit="weekly", card=None, now=NOW, max_age_days=7, drift_threshold=0.25)


@pytest.fixture(scope="module")
def core_frames(sample_company: Path) -> dict[str, pd.DataFrame]:
    from salesbi.ingest import read_step
    from salesbi.types import conform

    data = read_step(sample_company, "canonical")
    return {t.name: conform(data.tables[t.name].frame, t) for t in contract.TABLES}


@pytest.fixture(scope="module")
def fact(core_frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    from salesbi.reports.fact import build_fact_order_lines

    return build_fact_order_lines(core_frames)


def test_scoring_with_the_stored_segmentation_reproduces_the_fit(
    fact: pd.DataFrame, core_frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    from salesbi.segmentation import segment_customers

    fitted = segment_customers(fact, core_frames["customers"], core_frames["employees"])
    modelstore.save_all(fitted.models, tmp_path)
    stored = modelstore.load_latest(tmp_path, "customer_segments")
    scored = score_segments(stored, fact, core_frames["customers"], core_frames["employees"])
    pd.testing.assert_frame_equal(scored.customer_segments, fitted.customer_segments)
    pd.testing.assert_frame_equal(scored.segment_summary, fitted.segment_summary)
    assert scored.model_runs == [] and scored.models == {}
    assert fitted.customer_segments["segment"].nunique() > 3  # a real segmentation, not one bucket


def test_scoring_with_the_stored_prediction_model_reproduces_the_fit(tmp_path: Path) -> None:
    from salesbi.prediction import predict_customer_sales
    from salesbi.prediction.synthetic import synthetic_fact

    fact, customers, employees, _ = synthetic_fact(1000, seed=3)
    core_frames = {"customers": customers, "employees": employees}
    fitted = predict_customer_sales(fact, customers, employees=employees, boost_rounds=40)
    assert fitted.model.sales_method == "lightgbm"  # the boosters are what is reloaded and scored
    modelstore.save_all(fitted.models, tmp_path)
    stored = modelstore.load_latest(tmp_path, "customer_sales")
    scored = score_predictions(stored, fact, core_frames["customers"], employees=core_frames["employees"])
    pd.testing.assert_frame_equal(scored.customer_predictions, fitted.customer_predictions)
    assert (scored.customer_predictions["model_version"] == fitted.model.version).all()
    # the monitored error of a model on the window it was trained up to: close to its training error
    drift = prediction_drift(stored, fact)
    assert drift is not None and -1.0 < drift < 0.25


def test_run_model_step_scores_or_fits(
    fact: pd.DataFrame, core_frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    from salesbi.segmentation import segment_customers

    calls: list[str] = []

    def fit() -> Any:
        calls.append("fit")
        return segment_customers(fact, core_frames["customers"], core_frames["employees"])

    first = run_model_step("segments", fit, fact, core_frames, models_dir=tmp_path, refit="auto", now=NOW)
    assert (first.decision.action, first.decision.reason, calls) == ("refit", "no stored model", ["fit"])
    modelstore.save_all(first.result.models, tmp_path)
    created = datetime.fromisoformat(first.result.model.created_at)
    soon = created + timedelta(days=2)
    second = run_model_step("segments", fit, fact, core_frames, models_dir=tmp_path, refit="auto", now=soon)
    assert second.decision.action == "reuse" and calls == ["fit"]
    assert second.decision.version == first.result.model.version
    assert second.decision.age_days == pytest.approx(2.0)
    pd.testing.assert_frame_equal(second.result.customer_segments, first.result.customer_segments)
    late = created + timedelta(days=8)
    third = run_model_step("segments", fit, fact, core_frames, models_dir=tmp_path, refit="auto", now=late)
    assert third.decision.action == "refit" and calls == ["fit", "fit"]
    weekly = run_model_step("segments", fit, fact, core_frames, models_dir=tmp_path, refit="always", now=soon)
    assert weekly.decision.reason.startswith("refit=always") and weekly.decision.version is not None
    forecast = run_model_step(
        "forecast", lambda: "fitted", fact, core_frames, models_dir=tmp_path, refit="never"
    )
    assert (forecast.result, forecast.decision.action) == ("fitted", "refit")
    frame = freshness_frame({"segments": second.decision, "forecast": forecast.decision})
    assert frame["action"].tolist() == ["reuse", "refit"]


def test_insights_say_which_models_were_reused() -> None:
    from salesbi.reports.insights import model_freshness_findings

    frame = pd.DataFrame(
        [
            {"step": "segments", "action": "reuse", "version": "20260101T000000Z-ab", "age_days": 2.5},
            {"step": "forecast", "action": "refit", "version": None, "age_days": None},
        ]
    )
    (finding,) = model_freshness_findings({"run_model_freshness": frame}, None)  # type: ignore[arg-type]
    assert "segments with model 20260101T000000Z-ab (2.5 days old)" in finding.finding
    assert "refitted: forecast" in finding.finding
    assert finding.metric_value == 2.5
