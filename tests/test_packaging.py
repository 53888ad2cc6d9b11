"""`pip install .` gives a complete package: every module, the shipped profiles and validation rules."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from salesbi.resources import project_dir

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).parent / "uv"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    if not UV.exists():
        pytest.skip("uv is not in the virtualenv (make install puts it there)")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [str(UV), "build", "--wheel", "--quiet", "--out-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (path,) = out.glob("salesbi-*.whl")
    return zipfile.ZipFile(path)


def test_every_package_of_the_checkout_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for top in ("salesbi", "tasks", "flows"):
        for module in (ROOT / top).rglob("*.py"):
            if "bundled" in module.parts:
                continue
            assert module.relative_to(ROOT).as_posix() in names, module


@pytest.mark.parametrize("folder", ["profiles", "expectations"])
def test_the_wheel_carries_the_data_folders_unchanged(wheel: zipfile.ZipFile, folder: str) -> None:
    files = sorted(p for p in (ROOT / folder).iterdir() if p.suffix in (".yaml", ".json"))
    assert files
    for path in files:
        assert wheel.read(f"salesbi/bundled/{folder}/{path.name}") == path.read_bytes(), path.name


def test_a_checkout_reads_its_own_folders() -> None:
    assert project_dir("profiles") == ROOT / "profiles"
    assert project_dir("expectations") == ROOT / "expectations"


def test_public_functions_are_reexported_lazily() -> None:
    import salesbi
    import salesbi.public

    assert salesbi.segment is salesbi.public.segment
    assert salesbi.predict_customer_sales is salesbi.public.predict_customer_sales
    assert salesbi.forecast is salesbi.public.forecast
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = salesbi.nope  # type: ignore[attr-defined]
