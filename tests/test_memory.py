"""Issue 18 memory: validation holds no copy of the rows it accepts, GX keeps no frame, freed pages go back.

The outputs are the same as before the change: the accepted frames equal the row selection
the old code copied (``frame[keep]``), and the load gives the same core.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salesbi.ingest import read_step, validate_step
from salesbi.memory import frame_bytes
from tests.census import live_objects
from tests.conftest import need


@pytest.fixture(scope="module")
def validated(sample_company: Path) -> tuple[object, object]:
    """Return (source data, validation outcome) of the session's generated company."""
    data = read_step(sample_company, "canonical")
    return data, validate_step(data, run_id="memory")


def test_accepted_rows_equal_the_old_selection_and_share_the_staged_data(
    validated: tuple[object, object],
) -> None:
    data, outcome = validated
    for name, staged in data.tables.items():  # type: ignore[attr-defined]
        accepted = outcome.accepted[name]  # type: ignore[attr-defined]
        rejected = outcome.counts[name].rejected  # type: ignore[attr-defined]
        keep = staged.frame.index.isin(accepted.index)
        # the reference: the boolean selection the old code always copied
        pd.testing.assert_frame_equal(accepted, staged.frame[keep])
        assert len(accepted) + rejected == len(staged.frame)
        if rejected == 0:
            assert accepted is not staged.frame
            column = staged.frame.columns[0]
            assert np.shares_memory(  # no row copied
                np.asarray(accepted[column].array._pa_array.chunks[0].buffers()[-1]),
                np.asarray(staged.frame[column].array._pa_array.chunks[0].buffers()[-1]),
            )


def test_changing_an_accepted_frame_leaves_the_staged_frame_alone(
    sample_company: Path,
) -> None:
    data = read_step(sample_company, "canonical")
    outcome = validate_step(data, run_id="cow")
    name = next(n for n, c in outcome.counts.items() if c.rejected == 0 and c.read > 0)
    staged = data.tables[name].frame
    before = staged.copy()
    accepted = outcome.accepted[name]
    accepted[accepted.columns[0]] = pd.Series(["changed"] * len(accepted), dtype="string")
    accepted["extra"] = 1
    pd.testing.assert_frame_equal(staged, before)


def test_great_expectations_keeps_no_validated_frame(sample_company: Path) -> None:
    data = read_step(sample_company, "canonical")
    validate_step(data, run_id="gx")
    from great_expectations.execution_engine.pandas_batch_data import PandasBatchData

    kept = [o for o in live_objects() if isinstance(o, PandasBatchData)]
    rows = [len(o.dataframe) for o in kept]
    assert rows == [], f"GX still holds frames of {rows} rows"


def test_frame_bytes_counts_every_string() -> None:
    frame = pd.DataFrame({"s": pd.Series(["abcdefghij"] * 10_000, dtype="string"), "i": np.arange(10_000)})
    sizes = frame_bytes({"f": frame})
    # 10 bytes of text per row at least, plus 8 bytes per int64
    assert sizes["f"] >= 10_000 * 10 + 10_000 * 8
    assert sizes["f"] == int(frame.memory_usage(deep=True).sum())


#: run in a fresh interpreter: in the test session other threads and earlier tests' heap would blur RSS
HEAP_SCENARIO = """
import json
from salesbi.memory import release_freed_memory, resident_bytes

release_freed_memory()
base = resident_bytes()
# many blocks below glibc's mmap threshold, each followed by a small block that stays: once the
# big ones are freed, the heap cannot shrink from its top and free() alone keeps them resident
blocks, kept = [], []
for _ in range(3_000):  # ~190 MB
    block = bytearray(64 * 1024)
    block[0] = 1  # touch: resident
    blocks.append(block)
    kept.append(bytearray(1024))  # over pymalloc's 512 bytes: from the same glibc heap
grown = resident_bytes()
del blocks, block
freed = release_freed_memory()
after = resident_bytes()
print(json.dumps({"base": base, "grown": grown, "freed": freed, "after": after, "kept": len(kept)}))
"""


def test_release_gives_freed_heap_pages_back() -> None:
    import json
    import subprocess

    need(sys.platform.startswith("linux"), "resident size and malloc_trim are read on Linux")
    done = subprocess.run(
        [sys.executable, "-c", HEAP_SCENARIO], capture_output=True, text=True, check=True, timeout=300
    )
    m = json.loads(done.stdout.strip().splitlines()[-1])
    assert m["base"] > 0 and m["grown"] - m["base"] > 150 * 2**20
    assert m["after"] - m["base"] < 60 * 2**20, f"{(m['after'] - m['base']) / 2**20:.0f} MB still resident"
    assert m["freed"] > 100 * 2**20
    assert m["kept"] == 3_000


def test_reading_without_keeping_raw_text_gives_the_same_tables(
    sample_company: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salesbi.reading import reader as reader_module
    from salesbi.reading.reader import read_source

    left: list[int] = []
    forget = reader_module._SourceReader.forget

    def counting(self: reader_module._SourceReader, files: tuple[Path, ...]) -> None:
        forget(self, files)
        left.append(len(self.raw_cache))

    monkeypatch.setattr(reader_module._SourceReader, "forget", counting)
    lean = read_source(sample_company, "canonical")
    assert left[-1] == 0 and max(left) <= 1  # at most the file being typed is held as text
    monkeypatch.setattr(reader_module._SourceReader, "forget", lambda self, files: None)
    kept = read_source(sample_company, "canonical")  # the reference: every raw file kept to the end
    for name, table in kept.tables.items():
        pd.testing.assert_frame_equal(lean.tables[name].frame, table.frame)
        pd.testing.assert_frame_equal(lean.tables[name].faults, table.faults)


def test_faults_name_their_file_and_line(tmp_path: Path) -> None:
    from salesbi.generate import generate_company
    from salesbi.reading.reader import read_source

    generate_company(tmp_path, order_lines=2_000, seed=3)
    path = tmp_path / "order_items.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    head = lines[0].split(",")
    cells = lines[5].split(",")
    cells[head.index("quantity")] = "many"
    lines[5] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    faults = read_source(tmp_path, "canonical").tables["order_items"].faults
    assert faults[["file", "line", "column", "rule", "value"]].values.tolist() == [
        ["order_items.csv", 6, "quantity", "invalid_integer", "many"]
    ]


def test_storable_nulls_refused_cells_in_its_own_frame_only() -> None:
    from salesbi import contract
    from salesbi.validation.limits import storable

    spec = contract.table("product_lines")
    frame = pd.DataFrame(
        {
            "product_line_id": pd.Series(["L1", "L2", "L3"], dtype="string"),
            "name": pd.Series(["ok", "bad\x00name", "fine"], dtype="string"),
        }
    )
    before = frame.copy()
    out = storable(frame, spec, np.array([False, True, True]))
    assert out["name"].isna().tolist() == [False, True, False]
    assert out["product_line_id"].tolist() == ["L1", "L2", "L3"]
    pd.testing.assert_frame_equal(frame, before)


def test_raw_text_is_kept_while_another_table_reads_the_same_file() -> None:
    from salesbi.reading.profile import load_profile
    from salesbi.reading.reader import _SourceReader

    for name in ("canonical", "classicmodels"):  # one file per table
        assert not _SourceReader(Path("."), load_profile(name)).shares_files()
    for name in ("northwind", "online_retail"):  # a lookup file, tables built from another's file
        assert _SourceReader(Path("."), load_profile(name)).shares_files()


MMAP_SCENARIO = r"""
import ctypes, json, sys
import numpy as np
from salesbi.memory import _libc, map_large_allocations

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = _libc()
libc.mallinfo2.restype = MallInfo2
for _ in range(3):  # a 4 MiB block, freed: glibc's own rule then raises its threshold above 4 MiB
    a = np.ones(1 << 19)
    del a
mapped = map_large_allocations() if sys.argv[1] == "fixed" else False
before = libc.mallinfo2().hblks
blocks = [np.ones(1 << 19) for _ in range(8)]
print(json.dumps({"mapped": mapped, "new_maps": libc.mallinfo2().hblks - before}))
"""


def test_large_blocks_get_their_own_map_once_the_threshold_is_fixed() -> None:
    """After freed 4 MiB blocks glibc would serve 4 MiB from its heap; the fixed threshold maps them."""
    import json
    import os
    import subprocess

    need(sys.platform.startswith("linux"), "glibc's mallopt/mallinfo2 are read on Linux")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    done = subprocess.run(
        [sys.executable, "-c", MMAP_SCENARIO, "fixed"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    m = json.loads(done.stdout.strip().splitlines()[-1])
    # each new 4 MiB block mapped (so given back on free); the first may reuse what the heap kept
    assert m["mapped"] is True and m["new_maps"] >= 7


def test_a_user_threshold_in_glibc_tunables_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    from salesbi.memory import map_large_allocations

    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536")
    assert map_large_allocations() is False


def test_only_the_first_freeze_of_a_process_freezes_and_later_garbage_is_collected() -> None:
    code = (
        "import gc, weakref\n"
        "from salesbi.memory import freeze_long_lived_objects\n"
        "kept = [object() for _ in range(10)]\n"
        "first = freeze_long_lived_objects()\n"
        "frozen = gc.get_freeze_count()\n"
        "second = freeze_long_lived_objects()\n"
        "class Node: pass\n"
        "a, b = Node(), Node(); a.other, b.other = b, a\n"  # a cycle made after the freeze
        "gone = weakref.ref(a); del a, b\n"
        "gc.collect()\n"
        "print(first, second, frozen > 0, gc.get_freeze_count() == frozen, gone() is None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "False", "True", "True", "True"], out.stderr
