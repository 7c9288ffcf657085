"""The kernel of one run: its lifetime tied to the runner's, its memory watched, its failures classified.

- A kernel never outlives its runner: it gets a parent-death signal (Linux `prctl(PR_SET_PDEATHSIG)`, which
  also works under a subreaper such as `systemd --user` or `tini -s`, where ipykernel's own parent poller
  waits for a re-parent to pid 1 that never comes), and the runner kills each kernel's process group
  (DDP workers included) when the run ends and when the runner exits or is terminated.
- Connection files are named after the runner's pid (`lowres-kernel-<pid>-<id>.json`); the next runner
  removes those of runners that are gone (a SIGKILLed runner cannot clean up after itself).
- `KernelWatch` samples the kernel's process tree RSS and the host's available memory while the run
  executes, and reads the cgroup's OOM-kill counter before and after: how `classify_failure` tells an
  out-of-memory kill from any other death (see `oom_evidence`).
"""
from __future__ import annotations

import atexit
import ctypes
import os
import re
import signal
import sys
import threading
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

CONNECTION_PREFIX = "lowres-kernel-"
PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.5
LOW_MEMORY_FRACTION = 0.05  # host memory available below 5% of the total during the run: the host was short
NEAR_LIMIT_FRACTION = 0.90  # or the kernel's RSS reached 90% of its memory limit (cgroup or host)
OOM_NAMES = ("OutOfMemoryError", "MemoryError")
OOM_PATTERNS = re.compile(r"out of memory|can't allocate memory|cannot allocate memory|std::bad_alloc|"
                          r"CUBLAS_STATUS_ALLOC_FAILED|DefaultCPUAllocator", re.IGNORECASE)
CGROUP_OOM_FILES = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")
CGROUP_LIMIT_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")

_live_groups: set[int] = set()  # process groups of kernels this runner started and has not yet reaped


# ---------------------------------------------------------------------------------------------- lifetime
def die_with_parent() -> None:
    """preexec_fn of a kernel: SIGKILL when the runner dies (Linux only; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def kill_group(pgid: int | None) -> None:
    """SIGKILL a kernel's whole process group (its DDP workers included); gone already is fine."""
    if not pgid:
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    _live_groups.discard(pgid)


def kill_live_kernels() -> None:
    for pgid in list(_live_groups):
        kill_group(pgid)


def terminate_on_signal(signum, frame) -> None:
    """SIGTERM/SIGHUP to the runner: take the kernels down with it, then exit as that signal asks."""
    kill_live_kernels()
    raise SystemExit(128 + signum)


def install_exit_handlers() -> None:
    """Kill live kernels when the runner exits normally, on an exception, or on SIGTERM/SIGHUP."""
    atexit.register(kill_live_kernels)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, terminate_on_signal)


def runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    path = Path(jupyter_runtime_dir())
    path.mkdir(parents=True, exist_ok=True)
    return path


def sweep_connection_files() -> list[Path]:
    """Remove connection files left by runners that are gone; returns what was removed."""
    import psutil

    removed = []
    for path in runtime_dir().glob(f"{CONNECTION_PREFIX}*.json"):
        owner = path.name[len(CONNECTION_PREFIX):].split("-")[0]
        if owner.isdigit() and not psutil.pid_exists(int(owner)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class RunKernelManager(AsyncKernelManager):
    """A kernel manager for one run (a subclass per run carries its `watch` and `log_path`, see
    `manager_class_for`). The kernel's own stdout/stderr (ipykernel's transport warning, a KeyboardInterrupt
    notice at shutdown, C-level library output) go to `log_path`, not into the runner's progress output."""

    watch: "KernelWatch | None" = None
    log_path: Path | None = None
    fork_server = None  # lowres.warm.ForkServer: fork the kernel from it instead of starting a new interpreter

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.connection_file = str(runtime_dir() / f"{CONNECTION_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}.json")

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if self.fork_server is not None:
            return self._launch_forked(kw)
        kw["preexec_fn"] = die_with_parent
        if self.log_path is not None:
            with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
                kw["stdout"] = kw["stderr"] = log
                await super()._async_launch_kernel(kernel_cmd, **kw)
        else:
            await super()._async_launch_kernel(kernel_cmd, **kw)
        process = getattr(self.provisioner, "process", None)
        pgid = getattr(self.provisioner, "pgid", None)
        if pgid:
            _live_groups.add(pgid)
        if self.watch is not None and process is not None:
            self.watch.attach(process, pgid)


    def _launch_forked(self, kw: dict) -> None:
        """The warm path: the fork server forks the kernel (a fresh process of its own, its imports done); the
        provisioner drives it through a Popen-like handle, as it would a kernel it had started itself."""
        from lowres.warm import ForkedProcess

        log = self.log_path or Path(os.devnull)
        pid = self.fork_server.fork(self.connection_file, str(kw.get("cwd") or os.getcwd()), kw.get("env") or {}, log)
        provisioner = self.provisioner
        provisioner.process = ForkedProcess(pid, self.fork_server)
        provisioner.pid = provisioner.pgid = pid  # the child started its own session
        provisioner.cwd = kw.get("cwd")
        _live_groups.add(pid)
        if self.watch is not None:
            self.watch.attach(provisioner.process, pid)
        self._reconcile_connection_info(provisioner.connection_info)


def manager_class_for(watch: "KernelWatch | None", log_path: Path | None = None, fork_server=None) -> type:
    """A RunKernelManager subclass bound to one run's watch, log and (warm runs) the fork server; nbclient
    instantiates the class itself."""
    return type("BoundRunKernelManager", (RunKernelManager,),
                {"watch": watch, "log_path": log_path, "fork_server": fork_server})


# ---------------------------------------------------------------------------------------------- memory watch
def read_first_int(paths, pattern: str | None = None) -> int | None:
    """The first integer found in the first readable file of `paths` (after `pattern` when given)."""
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        match = re.search(rf"{pattern}\s+(\d+)" if pattern else r"(\d+)", text)
        if match:
            return int(match.group(1))
    return None


def cgroup_oom_kills() -> int | None:
    """How many processes the OOM killer has killed in this cgroup (None where the counter is unreadable)."""
    return read_first_int(CGROUP_OOM_FILES, "oom_kill")


def memory_limit_bytes() -> int:
    """The memory this process tree may use: the cgroup limit where one is set, else the host's RAM."""
    import psutil

    total = psutil.virtual_memory().total
    limit = read_first_int(CGROUP_LIMIT_FILES)
    return min(total, limit) if limit else total


class KernelWatch:
    """Samples the kernel's process tree RSS and the host's available memory while a run executes."""

    def __init__(self, interval_s: float = WATCH_INTERVAL_S):
        self.interval_s = interval_s
        self.process = self.pgid = None
        self.peak_rss_bytes = 0
        self.min_available_bytes: int | None = None
        self.oom_kills_before = cgroup_oom_kills()
        self.limit_bytes = memory_limit_bytes()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, process, pgid) -> None:
        self.process, self.pgid = process, pgid
        self._thread = threading.Thread(target=self._run, name="lowres-kernel-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.process.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.wait(self.interval_s):
            self.sample(root)

    def sample(self, root) -> None:
        import psutil

        try:
            rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            rss = 0
        available = psutil.virtual_memory().available
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        self.min_available_bytes = available if self.min_available_bytes is None else min(self.min_available_bytes,
                                                                                           available)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def exit_signal(self) -> int | None:
        """The signal that ended the kernel (None while it runs or when it exited by itself)."""
        code = self.process.poll() if self.process is not None else None
        return -code if code is not None and code < 0 else None

    def reap(self) -> None:
        """After the run: stop sampling and kill whatever is left of the kernel's process group."""
        self.stop()
        kill_group(self.pgid)

    def figures(self) -> dict:
        return {"kernel_peak_rss_bytes": self.peak_rss_bytes or None,
                "host_available_min_bytes": self.min_available_bytes, "memory_limit_bytes": self.limit_bytes}


# ---------------------------------------------------------------------------------------------- classification
def oom_evidence(watch: KernelWatch | None, died_by: int | None) -> str | None:
    """Why a dead kernel counts as out-of-memory, or None. The rule, in order:
    1. the cgroup's OOM-kill counter rose during the run (the kernel's OOM killer acted here);
    2. the kernel died by SIGKILL while the host's available memory fell under 5% of the total, or its own
       RSS reached 90% of the memory limit (the OOM killer is the one thing that SIGKILLs a kernel then)."""
    if watch is None:
        return None
    after = cgroup_oom_kills()
    if watch.oom_kills_before is not None and after is not None and after > watch.oom_kills_before:
        return f"the OOM killer acted (cgroup oom_kill count {watch.oom_kills_before} -> {after})"
    if died_by != signal.SIGKILL:
        return None
    import psutil

    total = psutil.virtual_memory().total
    if watch.min_available_bytes is not None and watch.min_available_bytes < LOW_MEMORY_FRACTION * total:
        return (f"killed by SIGKILL while the host had {watch.min_available_bytes / 2**30:.2f} GiB of "
                f"{total / 2**30:.1f} GiB available")
    if watch.peak_rss_bytes >= NEAR_LIMIT_FRACTION * watch.limit_bytes:
        return (f"killed by SIGKILL at {watch.peak_rss_bytes / 2**30:.2f} GiB RSS, near the "
                f"{watch.limit_bytes / 2**30:.1f} GiB limit")
    return None


def is_oom_error(name: str | None, message: str | None, traceback_lines=()) -> bool:
    """An exception raised in the kernel that means out-of-memory (CPU allocator, CUDA, MemoryError)."""
    if name in OOM_NAMES:
        return True
    text = " ".join([message or "", *(traceback_lines or [])[-5:]])
    return bool(OOM_PATTERNS.search(text)) or (not message and "MemoryError" in text)


def classify_failure(exc: BaseException, watch: KernelWatch | None = None) -> tuple[str, dict]:
    """Map what papermill/nbclient raised to (status, error dict); memory figures of the kernel included."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from lowres.results import error_info

    figures = watch.figures() if watch is not None else {}
    if isinstance(exc, PapermillExecutionError):
        tail = list(exc.traceback or [])[-15:]
        status = "oom" if is_oom_error(exc.ename, exc.evalue, tail) else "failed"
        return status, {"type": exc.ename, "message": exc.evalue, "traceback": tail, "cell": exc.exec_count,
                        **figures}
    if isinstance(exc, (CellTimeoutError, TimeoutError)):
        return "timeout", {**error_info(exc), **figures}
    if isinstance(exc, DeadKernelError):
        died_by = watch.exit_signal() if watch is not None else None
        why = oom_evidence(watch, died_by)
        info = {**error_info(exc), **figures, "exit_signal": died_by}
        if why:
            info["message"] = f"out of memory: {why}"
            return "oom", info
        info["message"] = (f"kernel died ({signal.Signals(died_by).name if died_by else 'exit status unknown'}; "
                           f"memory was not short): {exc}")
        return "failed", info
    if isinstance(exc, CellExecutionError):
        info = {**error_info(exc), **figures}
        return ("oom" if is_oom_error(getattr(exc, "ename", None), getattr(exc, "evalue", None),
                                      str(exc).splitlines()) else "failed"), info
    return "failed", {**error_info(exc), **figures}

