"""Warm kernels that keep isolation: a fork server that has imported the training stack once per `lowres run`,
forking one fresh kernel process per run.

Each run still gets its own process, used once and shut down after it (a crash, an OOM or a timing of one run
cannot touch another), but the ~10 s of `import torch, transformers, lightning, ...` and codecarbon's hardware
probe are paid once, before any run starts, while no Meter window is open: nothing measured overlaps them.
Measured map of where a run's time goes and the pitfalls of forking: ../shared/notes/runner-overhead.md. This
implementation avoids them:

- the server starts per `lowres run` with the runs' environment (OMP_NUM_THREADS, HF offline flags are read
  at import), preloads only libraries that start no thread and hook nothing at import (no matplotlib
  backend, no IPython/ipykernel: the inline backend is set up in the child), checks it holds one thread
  before it forks, and never runs a torch op;
- each child starts a new session, dies with the server (which dies with the runner: parent-death signals),
  writes to the run's kernel.log, re-seeds its random generators, then becomes an ipykernel;
- a forked child shares the server's pages copy-on-write, so its RSS reads lower than a fresh kernel's: the
  child's environment says `LOWRES_KERNEL_MODE=forked`, results record it, and the run summary's memory kind
  says so (never compared with a fresh kernel's RSS silently).

Protocol: one JSON line per request on a Unix socket: {"op": "fork", "connection_file", "cwd", "env", "log"}
-> {"pid"}; {"op": "status", "pid"} -> {"returncode"} (None while it runs; -N: killed by signal N).
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PRELOAD = ("numpy", "scipy", "pandas", "torch", "transformers", "transformers.optimization", "lightning",
           "torchmetrics", "peft", "sentence_transformers", "faiss", "codecarbon", "lowres.train", "lowres.models",
           "lowres.data.modules", "lowres.meters", "lowres.meters.callback", "lowres.results", "lowres.recording",
           "lowres.summary")
START_TIMEOUT_S = 180.0
MODE_VARIABLE, FORKED = "LOWRES_KERNEL_MODE", "forked"


# ---------------------------------------------------------------------------------------------- the server
def preload() -> None:
    import importlib

    from lowres.meters.carbon import CarbonTracker

    for name in PRELOAD:
        importlib.import_module(name)
    tracker = CarbonTracker("USA")  # codecarbon caches its hardware probe per process: pay it here, once
    tracker.start()
    tracker.stop()


class Server:
    def __init__(self, path: str):
        self.path, self.exits, self.sock = path, {}, None

    def reap(self, signum=None, frame=None) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.exits[pid] = os.waitstatus_to_exitcode(status)

    def serve(self) -> None:
        preload()
        if threading.active_count() != 1:
            raise RuntimeError(f"fork server holds {threading.active_count()} threads after preloading: unsafe to fork")
        signal.signal(signal.SIGCHLD, self.reap)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        while True:
            conn, _ = self.sock.accept()
            with conn:
                request = json.loads(conn.makefile().readline())
                conn.sendall((json.dumps(self.answer(request, conn)) + "\n").encode())

    def answer(self, request: dict, conn) -> dict:
        if request["op"] == "fork":
            pid = os.fork()
            if pid == 0:
                conn.close()
                self.sock.close()
                become_kernel(request)
            return {"pid": pid}
        if request["op"] == "status":
            self.reap()
            return {"returncode": self.exits.get(request["pid"])}
        return {"ok": True}


def become_kernel(request: dict) -> None:
    """In the forked child: a new session that dies with the server, the run's log, cwd and environment,
    fresh random seeds, then an ipykernel on the connection file. Never returns."""
    from lowres.kernels import die_with_parent

    try:
        os.setsid()
        die_with_parent()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update({**request["env"], MODE_VARIABLE: FORKED})
        inline_figures()
        reseed()
        sys.argv = ["ipykernel_launcher", "-f", request["connection_file"]]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
    finally:
        os._exit(0)


def inline_figures() -> None:
    """torchmetrics imported matplotlib in the server, before ipykernel could name its inline backend in
    MPLBACKEND (read once, at import): name it now, so the kernel's figures still appear inline. pyplot resolves
    its backend on first use, in the kernel."""
    import matplotlib

    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    matplotlib.rcParams["backend"] = os.environ["MPLBACKEND"]


def reseed() -> None:
    """The child copied the server's generator states: give it its own, as a fresh process would have."""
    import numpy as np
    import torch

    seed = int.from_bytes(os.urandom(4), "little")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------- the runner side
class ForkedProcess:
    """What jupyter_client's LocalProvisioner needs of a Popen, for a kernel the server forked."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, server: "ForkServer"):
        self.pid, self.server, self.returncode = pid, server, None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.returncode(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(["forked kernel"], timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkServer:
    """Start one per `lowres run` (before any run), fork a kernel per run, stop it when the grid is done."""

    def __init__(self, log_path: Path):
        self.dir = tempfile.mkdtemp(prefix="lowres-warm-")
        self.path = os.path.join(self.dir, "server.sock")
        from lowres.kernels import die_with_parent

        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "lowres.warm", self.path], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, preexec_fn=die_with_parent)
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the warm-kernel server exited ({self.process.returncode}) while preloading")
            try:
                self.request({"op": "ping"})
                return
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.2)
        raise RuntimeError(f"the warm-kernel server was not ready after {START_TIMEOUT_S:.0f} s")

    def request(self, message: dict) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(self.path)
            sock.sendall((json.dumps(message) + "\n").encode())
            return json.loads(sock.makefile().readline())

    def fork(self, connection_file: str, cwd: str, env: dict, log: Path) -> int:
        return self.request({"op": "fork", "connection_file": connection_file, "cwd": cwd, "env": dict(env),
                             "log": str(log)})["pid"]

    def returncode(self, pid: int) -> int | None:
        return self.request({"op": "status", "pid": pid})["returncode"]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        Path(self.path).unlink(missing_ok=True)
        os.rmdir(self.dir)


if __name__ == "__main__":
    Server(sys.argv[1]).serve()
