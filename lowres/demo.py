"""`lowres demo --profile P`: profile P of every study through the runner, then the report.

Studies are discovered from params/*.yaml. A study that is refused (bad params, missing data) or crashes is
recorded in `<outputs>/report/demo_summary.json` (the report shows why) and the demo goes on; its runs'
own failures are recorded by the runner as usual. Finished runs are skipped on a re-run (resume), like
`lowres run`. Progress: one header per study, the runner's per-run bar, one result line per study.
"""
from __future__ import annotations

import dataclasses
import json
import time

from lowres import config, report, runner
from lowres.paths import outputs_dir
from lowres.results import atomic_write_text


@dataclasses.dataclass
class StudyOutcome:
    study: str
    state: str  # ok | some runs failed | refused | crashed | no such profile
    runs: int = 0
    ok: int = 0
    skipped: int = 0
    wall_s: float = 0.0
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.state in ("ok", "no such profile")

    def line(self) -> str:
        counts = f"{self.ok + self.skipped}/{self.runs} ok" + (f" ({self.skipped} already done)" if self.skipped else "")
        tail = f" - {self.message}" if self.message else ""
        return f"{self.study:<16} {self.state:<17} {counts:<26} {self.wall_s:7.1f} s{tail}"


def has_profile(study: str, profile: str) -> bool:
    return profile in (config.read_study_yaml(study).get("profiles") or {})


def outcome_of(study: str, outcomes: list, wall_s: float) -> StudyOutcome:
    bad = runner.failed(outcomes)
    message = "; ".join(f"{o.run_id}: {o.status} ({o.message[:120]})" for o in bad[:3])
    return StudyOutcome(study, "some runs failed" if bad else "ok", len(outcomes),
                        sum(o.status == "ok" for o in outcomes), sum(o.status == "skipped" for o in outcomes),
                        wall_s, message)


def run_one(study: str, profile: str) -> StudyOutcome:
    """One study's grid; every failure becomes its outcome, nothing propagates."""
    started = time.perf_counter()
    try:
        if not has_profile(study, profile):
            return StudyOutcome(study, "no such profile", message=f"{study}.yaml has no {profile!r} profile")
        outcomes = runner.run_study(study, profile)
    except config.ParamsError as err:
        return StudyOutcome(study, "refused", wall_s=time.perf_counter() - started, message=str(err))
    except Exception as err:  # noqa: BLE001 - one study's crash must not stop the demo
        return StudyOutcome(study, "crashed", wall_s=time.perf_counter() - started,
                            message=f"{type(err).__name__}: {err}")
    return outcome_of(study, outcomes, time.perf_counter() - started)


def save_summary(outcomes: list, out) -> None:
    atomic_write_text(out / report.DEMO_SUMMARY, json.dumps([dataclasses.asdict(o) for o in outcomes], indent=2))


def run_demo(args) -> int:
    """Every study's profile, then the report; prints the HTML path and a per-study summary."""
    profile, started = args.profile, time.perf_counter()
    studies = config.available_studies()
    out = outputs_dir() / report.REPORT_NAME
    out.mkdir(parents=True, exist_ok=True)
    print(f"lowres demo --profile {profile}: {len(studies)} studies ({', '.join(studies)}), results in {outputs_dir()}",
          flush=True)
    outcomes = []
    for number, study in enumerate(studies, 1):
        print(f"\n[{number}/{len(studies)}] {study} --profile {profile}", flush=True)
        outcomes.append(run_one(study, profile))
        print(f"  -> {outcomes[-1].line()}", flush=True)
        save_summary(outcomes, out)
    print(f"\n[report] executing notebooks/07_report.ipynb on {outputs_dir()}", flush=True)
    report_ok, html = report.build_report(outputs_dir(), out)
    print_summary(outcomes, html, report_ok, time.perf_counter() - started)
    return 0 if report_ok and html and all(o.succeeded for o in outcomes) else 1


def print_summary(outcomes: list, html, report_ok: bool, wall_s: float) -> None:
    print("\n" + "=" * 100)
    for outcome in outcomes:
        print(outcome.line())
    failing = [o.study for o in outcomes if not o.succeeded]
    print(f"studies: {len(outcomes) - len(failing)}/{len(outcomes)} without failures"
          + (f"; see the report for {', '.join(failing)}" if failing else ""))
    print(f"report: {html or 'not written'}" + ("" if report_ok else " (the report notebook stopped early)"))
    print(f"demo wall time: {wall_s / 60:.1f} min (set-up by `make` not included)")
