"""Rebuild the checked-in ``powerbi/`` folder: ``python -m salesbi.powerbi [OUT_DIR] [PARQUET_FOLDER]``."""

from __future__ import annotations

import sys
from pathlib import Path

from salesbi.powerbi.build import DEFAULT_PARQUET_FOLDER, build_powerbi_project, plan_project


def main(argv: list[str]) -> int:
    """Build the project and print what was written and what was left out; return the exit code."""
    out = Path(argv[0]) if argv else Path("powerbi")
    folder = argv[1] if len(argv) > 1 else DEFAULT_PARQUET_FOLDER
    path = build_powerbi_project(out, parquet_folder=folder)
    model, report = plan_project()
    print(f"wrote {path}")
    for line in model.skipped + report.skipped:
        print(f"left out: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
