"""CPU package and DRAM energy from Linux RAPL counters (`/sys/class/powercap/intel-rapl:*`).

Counters are cumulative microjoules that wrap at `max_energy_range_uj` (a few minutes to an hour at full
load), so a window polls them from its sampler thread and adds up the deltas, undoing each wrap. Package
domains are summed across sockets; `core`/`uncore` subdomains are inside the package and `psys` covers the
whole platform, so neither is added. The root is configurable (tests use a fake tree in a temp dir).
"""
from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

RAPL_ROOT = "/sys/class/powercap"


@dataclasses.dataclass(frozen=True)
class Domain:
    path: Path
    name: str  # package-0, dram, ...
    kind: str  # package | dram
    max_range_uj: int

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


def domain_kind(name: str) -> str | None:
    if name.startswith("package"):
        return "package"
    return "dram" if name == "dram" else None


def discover(root: str | os.PathLike | None = None) -> tuple[list[Domain], str | None]:
    """Readable package/DRAM domains under `root` (default LOWRES_RAPL_ROOT or /sys/class/powercap)."""
    base = Path(root or os.environ.get("LOWRES_RAPL_ROOT") or RAPL_ROOT)
    if not base.is_dir():
        return [], f"no RAPL counters: {base} does not exist (not Linux, a VM or container without powercap)"
    domains, unreadable = [], []
    for path in sorted(base.glob("intel-rapl:*")):
        try:
            kind = domain_kind((path / "name").read_text().strip())
            if kind is None:
                continue
            domain = Domain(path, (path / "name").read_text().strip(), kind,
                            int((path / "max_energy_range_uj").read_text().strip()))
            domain.read_uj()
        except PermissionError:
            unreadable.append(path.name)
            continue
        except (OSError, ValueError):
            continue
        domains.append(domain)
    if domains:
        return domains, None
    if unreadable:
        return [], (f"RAPL counters under {base} are not readable ({', '.join(unreadable)}): energy_uj is root-only "
                    "since Linux 5.10; run as root or `chmod o+r` the energy_uj files")
    return [], f"no RAPL package domain under {base}"


class RaplCounter:
    """Accumulates energy per domain from repeated polls, undoing counter wraparound."""

    def __init__(self, domains: list[Domain]):
        self.domains = domains
        self._lock = threading.Lock()
        self._last = {d: d.read_uj() for d in domains}
        self._total_uj = {d: 0 for d in domains}

    def poll(self) -> None:
        with self._lock:
            for d in self.domains:
                try:
                    value = d.read_uj()
                except (OSError, ValueError):  # a torn or vanished read: keep the last value
                    continue
                delta = value - self._last[d]
                if delta < 0:  # wrapped (once; polling often keeps it at most once)
                    delta += d.max_range_uj
                self._total_uj[d] += delta
                self._last[d] = value

    def energy_j(self, kind: str) -> float | None:
        """Energy of all domains of `kind` since the counter was created; None if there is no such domain."""
        values = [uj for d, uj in self._total_uj.items() if d.kind == kind]
        return sum(values) / 1e6 if values else None
