"""Command line: `python -m grasp_lib run PARAMS [-p key=value ...]`; `python -m grasp_lib data fetch [names]`;
`python -m grasp_lib data verify [names]` (checksums of the corpus files, re-checked in place);
`python -m grasp_lib figures [--run R]` (figures/ from existing runs, no training);
`python -m grasp_lib rescore RUN... [--cross-check]` (metrics.json again from saved completions, no generation;
strict and lenient F1 side by side; --cross-check: strict and set F1 recomputed by nervaluate and plain sets)."""

from __future__ import annotations

import argparse
import sys

from . import runner
from .params import ParamsError, parse_override
from .runner import RunLocked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grasp_lib", description="GRASP workspace")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the numbered notebooks with papermill")
    run.add_argument("params", help="a params YAML file, e.g. params/quick.yaml")
    run.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a param (dotted keys: sft.learning_rate=1e-4); repeatable")
    run.add_argument("--notebooks", help="comma-separated subset, e.g. 05_evaluate,06_figures")
    figs = commands.add_parser("figures", help="regenerate figures/ from existing runs (no training)")
    figs.add_argument("--run", default="runs/quick", help="the run folder of figures (a)-(e) (default runs/quick)")
    figs.add_argument("--reward-runs", nargs="*", metavar="RUN", help="ablation (g), reward variants "
                      "(default runs/ablation_binary runs/ablation_granular runs/ablation_adaptive)")
    figs.add_argument("--prompt-runs", nargs="*", metavar="RUN", help="ablation (g), prompt levels on and off "
                      "(default runs/ablation_prompt_*)")
    figs.add_argument("--calibration-run", default="runs/confidence_quick", metavar="RUN",
                      help="the run of (f), reliability: one whose model states a confidence "
                           "(default runs/confidence_quick, from params/confidence_quick.yaml)")
    rescore = commands.add_parser("rescore", help="recompute results/metrics.json of runs from their saved "
                                                  "completions (after a metric change); no generation")
    rescore.add_argument("runs", nargs="+", help="run folders, e.g. runs/quick")
    rescore.add_argument("--cross-check", action="store_true", help="also show the strict and set entity F1 "
                         "recomputed independently, by nervaluate and by plain sets")
    _add_data_parser(commands)
    args = parser.parse_args(argv)

    if args.command == "data":
        return _data(args)
    try:
        return _command(args)
    # bad input (params, a cut predictions file) and every OSError (a read-only run folder, a full disk, no
    # permission): one line, exit 2, never a traceback
    except (ParamsError, KeyError, ValueError, OSError, RunLocked) as err:
        print(f"error: {_describe(err)}", file=sys.stderr)
        return 2


def _command(args) -> int:
    if args.command == "rescore":
        return _rescore(args.runs, args.cross_check)
    if args.command == "figures":
        from .figures import regenerate

        return regenerate(args.run, args.reward_runs, args.prompt_runs, args.calibration_run)
    overrides = dict(parse_override(o) for o in args.overrides)
    notebooks = args.notebooks.split(",") if args.notebooks else None
    return runner.run(args.params, overrides, notebooks)


def _describe(err: BaseException) -> str:
    if isinstance(err, KeyError):
        return str(err.args[0])
    if isinstance(err, OSError) and err.filename and not isinstance(err, FileNotFoundError):
        return (f"{err.filename}: {err.strerror or err} ({type(err).__name__}): the run folder and the files "
                f"it writes must be writable, on a disk with free space")
    return str(err)


def _add_data_parser(commands) -> None:
    data = commands.add_parser("data", help="corpora: fetch them onto this machine")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    fetch = data_commands.add_parser("fetch", help="download the corpora from their public sources, verify "
                                                   "SHA-256 checksums; idempotent")
    fetch.add_argument("names", nargs="*", help="datasets (registry names); all when none")
    fetch.add_argument("--data-dir", help="target data root (default: GRASP_DATA_DIR, ../shared/data, "
                                          "else ~/.cache/grasp/data)")
    fetch.add_argument("--base-url", help="a mirror laid out like the data root, instead of the public sources")
    fetch.add_argument("--if-missing", action="store_true", help="do nothing when every corpus folder exists")
    verify = data_commands.add_parser("verify", help="re-check the SHA-256 of the corpus files in place "
                                                     "(exit 1 when one changed or is missing)")
    verify.add_argument("names", nargs="*", help="datasets (registry names); all when none")
    verify.add_argument("--data-dir", help="the data root (default: as the readers find it)")


def _rescore(runs: list[str], cross_check: bool) -> int:
    from pathlib import Path

    from .evaluation import cross_checks, rescore_run
    from .metrics import f1_table, text_table

    for run_dir in runs:
        print(run_dir)
        table = f1_table(rescore_run(Path(run_dir)))
        first = ["stage", "n", "strict_f1", "lenient_f1"]  # the two readings side by side, then the rest
        print(text_table(table, [c for c in first if any(c in r for r in table)]
                         + [c for c in dict.fromkeys(k for r in table for k in r) if c not in first]))
        if cross_check:
            print("  cross-check: strict F1 and nervaluate's on the same spans (exact matches first; in answer "
                  "order); set F1 and a plain one:")
            print(text_table(cross_checks(Path(run_dir)), ["stage", "strict", "nervaluate_strict",
                                                           "nervaluate_listed", "set", "plain_set"]))
    return 0


def _data(args) -> int:
    from pathlib import Path

    from .corpora.fetch import ChecksumError, FetchError, fetch, missing_data
    from .paths import data_root

    try:
        target = Path(args.data_dir).expanduser() if args.data_dir else data_root(must_exist=args.data_command == "verify")
        if args.data_command == "verify":
            return _verify(args.names, target)
        if args.if_missing and not missing_data(target):
            print(f"data root {target}: every corpus is present")
            return 0
        counts = fetch(args.names, target, args.base_url)
    except (ChecksumError, FetchError, KeyError, FileNotFoundError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 1
    print(f"data root {target}: {counts['files']} files, {counts['downloaded']} downloaded, "
          f"{counts['present']} already present and verified")
    return 0


def _verify(names: list[str], target) -> int:
    from .corpora.fetch import verify

    bad = 0
    for folder, found in verify(names, target).items():
        problems = [f"changed {rel}" for rel in found["changed"]] + [f"missing {rel}" for rel in found["missing"]]
        print(f"{folder}: {len(found['sha256'])} files checked, {len(found['changed'])} changed, "
              f"{len(found['missing'])} missing")
        for problem in problems:
            print(f"  {problem}")
        bad += len(problems)
    print(f"data root {target}: " + (f"{bad} file(s) differ from grasp_lib/corpora/checksums.sha256; "
                                     f"`data fetch` restores them" if bad else "every file matches its checksum"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
