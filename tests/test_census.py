"""The tests' memory census refuses to run beside the model threads (tests/census.py says why)."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from tests.census import MODEL_THREAD_PREFIX, frames_of_length, live_objects


def test_a_census_beside_a_model_thread_is_refused() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name=f"{MODEL_THREAD_PREFIX}_0")
    thread.start()
    try:
        with pytest.raises(RuntimeError, match="model_workers=1"):
            live_objects()
    finally:
        release.set()
        thread.join()


def test_the_census_finds_a_live_frame_by_its_length() -> None:
    frame = pd.DataFrame({"odd_length_column": range(7_919)})
    assert ["odd_length_column"] in frames_of_length(7_919)
    assert ["odd_length_column"] not in frames_of_length((7_918, 7_920))
    del frame
