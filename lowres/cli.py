"""`lowres run | collect | report | recommend | env | demo`. Bad input: a one-line message, exit code 2."""
from __future__ import annotations

import argparse
import sys

EXIT_BAD_INPUT, EXIT_RUN_FAILED = 2, 1


class OneLineParser(argparse.ArgumentParser):
    """argparse's errors as one line on stderr (no usage block), exit code 2, like every other bad input."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def cmd_run(args) -> int:
    from lowres import config, runner

    overrides = config.parse_overrides(args.set)
    if args.executor != "local":
        return submit_to_cluster(args, overrides)
    outcomes = runner.run_study(args.study, args.profile, overrides, force=args.force, dry_run=args.dry_run,
                                timeout=args.timeout, retry_failed=args.retry_failed, warm=not args.no_warm)
    print(runner.summary_table(outcomes))
    bad = runner.failed(outcomes)
    if bad:
        print(f"{len(bad)} of {len(outcomes)} runs did not succeed: {', '.join(o.run_id for o in bad)}")
    return EXIT_RUN_FAILED if bad else 0


CLUSTER_ARGS = ("partition", "gpus_per_task", "cpus_per_task", "mem_gb", "time_min", "array_parallelism")


def submit_to_cluster(args, overrides: dict) -> int:
    """`--executor slurm | submitit-local`: the grid as one task per point (lowres.cluster)."""
    from lowres import cluster, config, runner

    timeout = config.check_timeout(args.timeout)
    given = {key: getattr(args, key) for key in CLUSTER_ARGS}
    given["sbatch"] = args.sbatch or None
    options = cluster.cluster_options(args.study, args.profile, given)
    if args.dry_run:
        plan = config.load_params(args.study, args.profile, overrides)
        print(cluster.sbatch_script(args.study, options, len(cluster.pending(plan, args.retry_failed)),
                                    cluster.attempts.work_dir(args.study) / "submitit")
              if args.executor == "slurm" else f"{len(plan.runs)} grid points; submitit-local runs them one by one")
        return 0
    outcomes = cluster.submit(args.study, args.profile, overrides, args.executor, options, timeout, args.retry_failed)
    print(runner.summary_table(outcomes))
    if any(o.status == "queued" for o in outcomes):
        print(f"`lowres status {args.study}` follows them; results land in outputs/{args.study}/<run_id>/")
    bad = runner.failed([o for o in outcomes if o.status != "queued"])
    return EXIT_RUN_FAILED if bad else 0


def cmd_status(args) -> int:
    from lowres import cluster, config

    config.check_name("study", args.study, config.available_studies())
    cluster.print_status(args.study)
    return 0


def cmd_collect(args) -> int:
    from lowres import config, results

    config.check_name("study", args.study, config.available_studies())
    frame = results.collect(args.study)
    if frame.empty:
        print(f"no results for {args.study!r} yet; run `lowres run {args.study}`")
        return 0
    paths = results.save_table(frame, args.study)
    table = results.compact_table(frame) if not args.full else frame
    print(table.to_string(index=False, na_rep="-"))
    print(f"{len(frame)} runs; every column ({frame.shape[1]}) in {paths['csv']} and {paths['parquet']}")
    return 0


def cmd_env(args) -> int:
    from lowres.env import describe, fingerprint

    info = fingerprint()
    print(__import__("json").dumps(info, indent=2, default=str) if args.json else describe(info))
    return 0


def cmd_recommend(args) -> int:
    from lowres import selector

    return selector.run_recommend(args)


def cmd_report(args) -> int:
    from lowres import report

    return report.run_report(args)


def cmd_demo(args) -> int:
    from lowres import demo

    return demo.run_demo(args)


def first_sentence(text: str, limit: int = 96) -> str:
    text = " ".join(str(text or "").split())
    cut = text.split(". ")[0].split("; ")[0]
    return cut if len(cut) <= limit else cut[:limit - 3].rstrip() + "..."


def study_listing() -> str:
    """The studies and their profiles, one line each (for `lowres run --help`)."""
    from lowres import config

    lines = ["studies and profiles:"]
    for study in config.available_studies():
        spec = config.read_study_yaml(study)
        lines.append(f"  {study:<15} {first_sentence(spec.get('description'))}")
        for name, profile in (spec.get("profiles") or {}).items():
            lines.append(f"    --profile {name:<6} {first_sentence((profile or {}).get('description'), 80)}")
    lines.append("\nexamples:\n  lowres run quickstart --profile cpu --set seed=[0,1,2]\n"
                 "  lowres run lora --profile smoke --set measure.country_iso_code=ARG --dry-run")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lowres", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute a study's notebook once per grid point",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=study_listing())
    run.add_argument("study", help="one of the studies listed below")
    run.add_argument("--profile", default="smoke", help="one of the study's profiles listed below (default: smoke)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param (repeatable)")
    run.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    run.add_argument("--force", action="store_true", help="re-run runs that already succeeded")
    run.add_argument("--timeout", default=None, help="per-cell time limit in whole seconds (default: none)")
    run.add_argument("--retry-failed", action="store_true", help="run only the points whose last attempt failed")
    run.add_argument("--no-warm", action="store_true",
                     help="start a fresh interpreter for every run's kernel (default: fork each run's kernel from a "
                          "server that imported the training stack once; each run still has its own process)")
    cluster = run.add_argument_group("cluster (--executor slurm | submitit-local; defaults from a `cluster:` block)")
    cluster.add_argument("--executor", choices=("local", "submitit-local", "slurm"), default="local",
                         help="local: one run at a time here (default); slurm: a SLURM job array through "
                              "submitit, one task per point; submitit-local: the same path on this machine")
    cluster.add_argument("--partition", default=None)
    cluster.add_argument("--gpus-per-task", type=int, default=None)
    cluster.add_argument("--cpus-per-task", type=int, default=None)
    cluster.add_argument("--mem-gb", type=float, default=None)
    cluster.add_argument("--time-min", type=int, default=None, help="time limit per task in minutes")
    cluster.add_argument("--array-parallelism", type=int, default=None, help="tasks running at once")
    cluster.add_argument("--sbatch", action="append", default=[], metavar="NAME=VALUE",
                         help="an extra sbatch option, e.g. --sbatch account=nlp (repeatable)")
    run.set_defaults(func=cmd_run)
    status = sub.add_parser("status", help="what is queued, running, done and failed for a study")
    status.add_argument("study")
    status.set_defaults(func=cmd_status)
    collect = sub.add_parser("collect", help="a study's results: a compact table here, every column in CSV + parquet")
    collect.add_argument("study")
    collect.add_argument("--full", action="store_true", help="print every column instead of the compact table")
    collect.set_defaults(func=cmd_collect)
    env = sub.add_parser("env", help="hardware/software fingerprint")
    env.add_argument("--json", action="store_true")
    env.set_defaults(func=cmd_env)
    add_optional_commands(sub)
    return parser


def add_optional_commands(sub) -> None:
    """Commands whose modules own their arguments (selector, report, demo)."""
    from lowres import selector  # light: rules + the analytic estimator (no torch at import)

    recommend = sub.add_parser("recommend", help="recommend an adaptation strategy for a task and hardware",
                               description="A ready plan (strategy, models, precision, batch size, parallelism) "
                                           "and its reasons; see docs/selector.md.")
    selector.add_recommend_arguments(recommend)
    recommend.set_defaults(func=cmd_recommend)
    report = sub.add_parser("report", help="execute the cross-study report notebook and export HTML")
    report.add_argument("--out", default=None, help="folder for the HTML report (default outputs/report)")
    report.set_defaults(func=cmd_report)
    demo = sub.add_parser("demo", help="every study's profile through `lowres run`, then the report")
    demo.add_argument("--profile", default="smoke")
    demo.set_defaults(func=cmd_demo)


def main(argv: list[str] | None = None) -> int:
    from lowres.config import ParamsError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ParamsError as err:
        print(f"lowres: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("lowres: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
