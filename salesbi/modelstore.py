"""Model store: versioned model folders on disk, the newest N kept.

Layout: ``<models_dir>/<model_name>/<version>/`` holding the model's files (LightGBM text models,
JSON) and ``card.json`` (kind, version, created_at, training window, features, parameters,
metrics). Versions are ``YYYYMMDDTHHMMSSZ-<8 hex>``: the creation time in UTC, then the start
of the SHA-256 of the model files and of the card without its time stamps, so versions sort by
time and the same inputs give the same files and the same hash. A version folder is written
aside and renamed into place, so a reader never sees half a model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from salesbi.errors import ConfigurationError

if TYPE_CHECKING:
    from salesbi.incremental_forecast import ForecastModel
    from salesbi.prediction.model import StoredModel
    from salesbi.segmentation.model import SegmentationModel

CARD = "card.json"
KEEP = 5
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"


class Storable(Protocol):
    """What the store needs from a model: its name, version, card and files."""

    model_name: str
    version: str

    def card(self) -> dict[str, Any]:
        """Return the model card (JSON-able)."""
        ...

    def files(self) -> dict[str, bytes]:
        """Return the model's files by name."""
        ...


def utc_now() -> datetime:
    """Return the current UTC time, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def dumps(data: Any) -> bytes:
    """Return ``data`` as deterministic JSON bytes (sorted keys, indented)."""
    return (json.dumps(data, sort_keys=True, indent=2, default=str) + "\n").encode("utf-8")


def content_hash(files: Mapping[str, bytes], card: Mapping[str, Any]) -> str:
    """Return the hex SHA-256 of the files and of the card without created_at/version."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode("utf-8"))
        digest.update(files[name])
    stable = {k: v for k, v in card.items() if k not in ("created_at", "version")}
    digest.update(dumps(stable))
    return digest.hexdigest()


def make_version(created_at: datetime, files: Mapping[str, bytes], card: Mapping[str, Any]) -> str:
    """Return the version string ``YYYYMMDDTHHMMSSZ-<8 hex of content_hash>``."""
    stamp = created_at.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
    return f"{stamp}-{content_hash(files, card)[:8]}"


def versions(models_dir: Path, model_name: str) -> list[str]:
    """Return the stored versions of ``model_name``, oldest first (empty when none)."""
    folder = Path(models_dir) / model_name
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / CARD).is_file())


def save(model: Storable, models_dir: Path, *, keep: int = KEEP) -> Path:
    """Write ``model`` to ``<models_dir>/<name>/<version>/``, keep the newest ``keep``; return the folder.

    Saving a version that already exists leaves it as it is (same version, same content).
    """
    if keep < 1:
        raise ConfigurationError(f"keep must be at least 1, got {keep}")
    root = Path(models_dir) / model.model_name
    target = root / model.version
    if not (target / CARD).is_file():
        root.mkdir(parents=True, exist_ok=True)
        aside = root / f".{model.version}.tmp"
        shutil.rmtree(aside, ignore_errors=True)
        aside.mkdir()
        for name, data in model.files().items():
            (aside / name).write_bytes(data)
        (aside / CARD).write_bytes(dumps(model.card()))
        shutil.rmtree(target, ignore_errors=True)
        aside.rename(target)
    for old in versions(models_dir, model.model_name)[:-keep]:
        shutil.rmtree(root / old)
    return target


def read_card(folder: Path) -> dict[str, Any]:
    """Return the card of a stored model version folder."""
    card: dict[str, Any] = json.loads((Path(folder) / CARD).read_text(encoding="utf-8"))
    return card


def latest_folder(models_dir: Path, model_name: str) -> Path:
    """Return the folder of the newest version of ``model_name``; ConfigurationError when none is stored."""
    found = versions(models_dir, model_name)
    if not found:
        raise ConfigurationError(
            f"no stored model {model_name!r} under {models_dir}",
            file=models_dir,
            hint="run the segments/predictions steps (salesbi run) to train and store one",
        )
    return Path(models_dir) / model_name / found[-1]


def load_folder(folder: Path) -> StoredModel | SegmentationModel | ForecastModel:
    """Return the model stored in ``folder``, as the class named by its card's ``kind``."""
    card = read_card(folder)
    kind = card.get("kind")
    if kind == "customer_sales":
        from salesbi.prediction.model import StoredModel

        return StoredModel.from_folder(Path(folder))
    if kind == "segmentation":
        from salesbi.segmentation.model import SegmentationModel

        return SegmentationModel.from_folder(Path(folder))
    if kind == "forecast":
        from salesbi.incremental_forecast import ForecastModel

        return ForecastModel.from_folder(Path(folder))
    raise ConfigurationError(f"unknown model kind {kind!r}", file=Path(folder) / CARD)


def load_latest(models_dir: Path, model_name: str) -> StoredModel | SegmentationModel | ForecastModel:
    """Return the newest stored version of ``model_name`` (its class per the card kind)."""
    return load_folder(latest_folder(models_dir, model_name))


def save_all(models: Mapping[str, Storable], models_dir: Path, *, keep: int = KEEP) -> dict[str, Path]:
    """Save every model of a result's ``.models`` mapping; return name → version folder."""
    return {name: save(model, models_dir, keep=keep) for name, model in models.items()}
