"""Where things live: project root, params/, outputs/, data dir, caches (all overridable by env)."""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout holding params/ and notebooks/ (LOWRES_ROOT overrides; default: beside the package)."""
    return Path(os.environ.get("LOWRES_ROOT") or Path(__file__).resolve().parent.parent)


def params_dir() -> Path:
    return project_root() / "params"


def outputs_dir() -> Path:
    return Path(os.environ.get("LOWRES_OUTPUTS") or project_root() / "outputs").resolve()


def cache_dir() -> Path:
    path = Path(os.environ.get("LOWRES_CACHE") or Path.home() / ".cache" / "lowres")
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path | None:
    """LOWRES_DATA_DIR: local copies of real datasets in their original formats (None when unset)."""
    raw = os.environ.get("LOWRES_DATA_DIR")
    return Path(raw).expanduser().resolve() if raw else None


def run_dir(study: str, run_id: str) -> Path:
    """outputs/<study>/<run_id>, refusing anything that would escape outputs/."""
    from lowres.config import check_run_id, ParamsError

    check_run_id(run_id)
    base = outputs_dir()
    path = (base / study / run_id).resolve()
    if base not in path.parents:
        raise ParamsError(f"run directory {path} escapes {base}")
    return path
