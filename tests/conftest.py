"""Shared fixtures: isolated outputs/, the real data dir beside the repo, and the `lowres` CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()

if not os.environ.get("LOWRES_DATA_DIR") and SHARED_DATA.is_dir():
    os.environ["LOWRES_DATA_DIR"] = str(SHARED_DATA)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def has_real_data(*files: str) -> bool:
    root = os.environ.get("LOWRES_DATA_DIR")
    return bool(root) and all((Path(root) / f).is_file() for f in files)


requires_real_data = pytest.mark.skipif(not has_real_data("sst2/dev.tsv"),
                                        reason="real datasets absent: set LOWRES_DATA_DIR (../shared/data)")


@pytest.fixture
def outputs(tmp_path, monkeypatch) -> Path:
    """A private outputs/ for the test (the env var reaches runner subprocesses and kernels too)."""
    out = tmp_path / "outputs"
    out.mkdir()
    monkeypatch.setenv("LOWRES_OUTPUTS", str(out))
    return out


@pytest.fixture
def lowres_cli(outputs):
    """Run `lowres ...` in a subprocess; returns CompletedProcess (text)."""

    def run(*args: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "lowres.cli", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=REPO, env=os.environ.copy())
        if check and proc.returncode != 0:
            raise AssertionError(f"lowres {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.fixture
def study_results(outputs):
    """Load every result.json of a study from the private outputs/ as dicts keyed by run id."""

    def load(study: str) -> dict[str, dict]:
        return {p.parent.name: json.loads(p.read_text()) for p in sorted((outputs / study).glob("*/result.json"))}

    return load


@pytest.fixture
def run_study(lowres_cli, study_results):
    """`lowres run STUDY --profile smoke [...]` then its results; fails loudly with the CLI output."""

    def run(study: str, *extra: str, expect_rc: int = 0) -> dict[str, dict]:
        proc = lowres_cli("run", study, "--profile", "smoke", *extra)
        assert proc.returncode == expect_rc, f"rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return study_results(study)

    return run


class SmokeRun:
    """One study's smoke grid, run once per test session: the CLI's output, its results and its outputs dir."""

    def __init__(self, proc: subprocess.CompletedProcess, outputs: Path, study: str):
        self.proc, self.outputs, self.study = proc, outputs, study
        self.results = {p.parent.name: json.loads(p.read_text())
                        for p in sorted((outputs / study).glob("*/result.json"))}

    def assert_ok(self) -> dict[str, dict]:
        assert self.proc.returncode == 0, (f"rc={self.proc.returncode}\n{self.proc.stdout[-3000:]}\n"
                                           f"{self.proc.stderr[-3000:]}")
        bad = {k: (r["status"], (r.get("error") or {}).get("message", "")[:300]) for k, r in self.results.items()
               if r["status"] != "ok"}
        assert not bad, bad
        return self.results


@pytest.fixture(scope="session")
def smoke_outputs(tmp_path_factory, worker_id) -> Path:
    """One outputs/ for the session's smoke grids, shared by the xdist workers of `make test`."""
    base = tmp_path_factory.getbasetemp()
    shared = (base if worker_id == "master" else base.parent) / "smoke_outputs"
    shared.mkdir(exist_ok=True)
    return shared


@pytest.fixture(scope="session")
def smoke_study(smoke_outputs):
    """`lowres run STUDY --profile smoke` once per session, whichever worker asks first (a file lock makes the
    others wait and reuse it: a kernel start costs seconds and the report needs every grid).
    Returns a SmokeRun; tests call `.assert_ok()` for the results."""

    def run(study: str) -> SmokeRun:
        record = smoke_outputs / f"{study}.cli.json"
        with FileLock(str(smoke_outputs / f"{study}.lock")):
            if not record.exists():
                env = {**os.environ, "LOWRES_OUTPUTS": str(smoke_outputs)}
                proc = subprocess.run([sys.executable, "-m", "lowres.cli", "run", study, "--profile", "smoke"],
                                      capture_output=True, text=True, timeout=900, cwd=REPO, env=env)
                record.write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout,
                                              "stderr": proc.stderr}))
        cli = json.loads(record.read_text())
        proc = subprocess.CompletedProcess(["lowres", "run", study], cli["returncode"], cli["stdout"], cli["stderr"])
        return SmokeRun(proc, smoke_outputs, study)

    return run
