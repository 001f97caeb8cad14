"""Command line: `python -m grasp_lib run PARAMS [-p key=value ...]`."""

from __future__ import annotations

import argparse
import sys

from .params import ParamsError, parse_override


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grasp_lib", description="GRASP workspace")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the numbered notebooks with papermill")
    run.add_argument("params", help="a params YAML file, e.g. params/quick.yaml")
    run.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a param (dotted keys: sft.learning_rate=1e-4); repeatable")
    run.add_argument("--notebooks", help="comma-separated subset, e.g. 05_evaluate,06_figures")
    args = parser.parse_args(argv)

    from . import runner

    try:
        overrides = dict(parse_override(o) for o in args.overrides)
        notebooks = args.notebooks.split(",") if args.notebooks else None
        return runner.run(args.params, overrides, notebooks)
    except (ParamsError, FileNotFoundError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
