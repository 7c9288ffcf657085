"""A run's folders on disk: who is running it (a claim), the attempt in progress, and its atomic commit.

    outputs/<study>/<run_id>/                   the committed attempt: result.json, notebook.ipynb, artifacts
    outputs/<study>/<run_id>/previous/          the last ok attempt that a later attempt replaced
    outputs/<study>/.work/<run_id>.claim        the runner executing it: {"pid", "host", "create_time", ...}
    outputs/<study>/.work/<run_id>.<token>/     an attempt in progress (the kernel's output_dir)

A new attempt never touches the committed one while it runs; when it finishes (ok or not) it replaces it
in two renames, and the previous ok result stays readable in `previous/`. Whoever holds the claim
finishes a commit that a crash interrupted (`recover`) before reading the run's state, so a kill at any
moment loses nothing. A claim is stale once its owner process is gone (same host; checked by pid and
process start time, so a reused pid does not count).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

from lowres import results
from lowres.paths import outputs_dir

WORK = ".work"
PREVIOUS = "previous"
OLD_SUFFIX = ".old"
HEARTBEAT_S = 60.0  # a live claim's file is touched this often by its owner
STALE_AFTER_S = 600.0  # a claim from another host whose file has not been touched for this long is stale


def study_dir(study: str) -> Path:
    return outputs_dir() / study


def work_dir(study: str) -> Path:
    path = study_dir(study) / WORK
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------------------------------- claims
def process_start_time(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def owner_record() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "create_time": process_start_time(os.getpid()),
            "claimed_at": results.utc_now()}


def is_alive(owner: dict, path: Path | None = None) -> bool:
    """A claim's owner still runs: on this host, the pid exists and started when the claim says; on another
    host (a cluster node), its owner has touched the claim within STALE_AFTER_S (a heartbeat)."""
    if owner.get("host") != socket.gethostname():
        if path is None:
            return True
        try:
            return time.time() - path.stat().st_mtime < STALE_AFTER_S
        except FileNotFoundError:
            return False
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False
    started = process_start_time(pid)
    return started is not None and (owner.get("create_time") is None or abs(started - owner["create_time"]) < 1.0)


def describe_owner(owner: dict) -> str:
    return f"pid {owner.get('pid')} on {owner.get('host')} since {owner.get('claimed_at')}"


@dataclasses.dataclass
class Claim:
    """The right to execute one run; `release()` when done (a crash leaves a stale claim, taken over later).
    While held, a thread touches the claim file every HEARTBEAT_S, so runners on other hosts can tell a live
    claim from the leftover of a node that died."""

    path: Path

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lowres-claim-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return

    def release(self) -> None:
        self._stop.set()
        self._thread.join()  # no heartbeat outlives its claim (it would touch a file another runner now owns)
        self.path.unlink(missing_ok=True)


def read_owner(path: Path) -> dict:
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def claim(study: str, run_id: str) -> Claim | str:
    """Claim a run for this process: a Claim, or a sentence saying who holds it."""
    path = work_dir(study) / f"{run_id}.claim"
    for _ in range(2):
        if publish_exclusively(path, json.dumps(owner_record())):
            return Claim(path)
        owner = read_owner(path)
        if owner and is_alive(owner, path):
            return f"being run by another lowres runner ({describe_owner(owner)})"
        path.unlink(missing_ok=True)  # stale: its runner is gone
    return f"could not claim {path} (another runner keeps taking it)"


def publish_exclusively(path: Path, text: str) -> bool:
    """Create `path` holding `text` unless it exists. Written aside and hard-linked into place, so nobody
    ever reads a half-written claim (an empty one would look stale and be taken over)."""
    draft = path.with_name(f"{path.name}.{os.getpid()}-{os.urandom(4).hex()}.draft")
    draft.write_text(text)
    try:
        os.link(draft, path)
        return True
    except FileExistsError:
        return False
    finally:
        draft.unlink()


def is_claimed(study: str, run_id: str) -> bool:
    """A live runner holds this run's claim (it is executing now)."""
    path = work_dir(study) / f"{run_id}.claim"
    owner = read_owner(path)
    return bool(owner) and is_alive(owner, path)


# ---------------------------------------------------------------------------------------------- attempts
def new_attempt_dir(study: str, run_id: str) -> Path:
    """A fresh folder for an attempt's outputs, beside (never inside) the committed run."""
    path = work_dir(study) / f"{run_id}.{os.getpid()}-{os.urandom(4).hex()}"
    path.mkdir()
    return path


def old_dirs(study: str, run_id: str) -> list[Path]:
    return sorted(work_dir(study).glob(f"{run_id}.*{OLD_SUFFIX}"), key=lambda p: p.stat().st_mtime)


def status_of(folder: Path) -> str | None:
    try:
        return results.load_result(folder).status
    except (FileNotFoundError, results.CorruptResult):
        return None


def keep_previous(old: Path, run: Path) -> None:
    """Move the newest ok attempt of `old` (itself, or the `previous/` it carried) into `run/previous`."""
    keep = old if status_of(old) == "ok" else old / PREVIOUS if status_of(old / PREVIOUS) == "ok" else None
    target = run / PREVIOUS
    if keep is not None:
        if keep is old:
            shutil.rmtree(old / PREVIOUS, ignore_errors=True)  # one level of history: the newer ok wins
        shutil.rmtree(target, ignore_errors=True)
        os.replace(keep, target)
    shutil.rmtree(old, ignore_errors=True)


def recover(study: str, run_id: str, run: Path) -> None:
    """Finish or undo a commit that a crash interrupted (call while holding the run's claim)."""
    leftovers = old_dirs(study, run_id)
    if not leftovers:
        return
    if not run.exists():  # killed between the two renames: the old attempt goes back
        os.replace(leftovers.pop(), run)
    for old in leftovers:
        keep_previous(old, run)


def commit(study: str, run_id: str, attempt: Path, run: Path) -> str:
    """Make `attempt` the committed run; returns what happened to the one it replaced (for the summary)."""
    old = None
    if run.exists():
        old = attempt.with_name(attempt.name + OLD_SUFFIX)
        os.replace(run, old)
    os.replace(attempt, run)
    if old is None:
        return ""
    was = status_of(old)
    keep_previous(old, run)
    if (run / PREVIOUS).is_dir():
        return f"previous ok result kept in {run.name}/{PREVIOUS}/" + ("" if was == "ok" else f" (last attempt: {was})")
    return f"replaced a {was or 'unreadable'} result"


def discard_stale_attempts(study: str, run_id: str) -> None:
    """Remove attempt folders of runners that died mid-run (call while holding the claim)."""
    for path in work_dir(study).glob(f"{run_id}.*"):
        if path.is_dir() and not path.name.endswith(OLD_SUFFIX):
            shutil.rmtree(path, ignore_errors=True)
