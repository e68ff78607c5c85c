"""The `nuwa-inf` command: one entry point, subcommands registered by the parts that own them.

Every part exposes `register(subparsers)` which adds its subcommand(s) and sets
`func` on the parsed arguments. Errors the user can fix (`UserError`), bad flags and
errors of the machine (`OSError`: disk full, permission denied) become one line on stderr
and exit code 2; `main` returns the exit code (it never calls `sys.exit`), `run` exits with it.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import UserError

# (group or None, module): a module registers its commands under the group's subparsers.
COMMAND_MODULES = [
    ("data", "nuwa_inf.data.cli"),
    ("train", "nuwa_inf.train.cli"),
    ("train", "nuwa_inf.train.all_cli"),
    (None, "nuwa_inf.tokenizer.cli"),
    (None, "nuwa_inf.infer.cli"),
    (None, "nuwa_inf.eval.cli"),
    (None, "nuwa_inf.view.cli"),
    ("bench", "nuwa_inf.kernels.cli"),
]

GROUP_HELP = {
    "data": "make or inspect datasets",
    "train": "train the tokenizer or the transformer",
    "bench": "benchmarks",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad flags as a single line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="nuwa-inf", description="Infinite-canvas image synthesis (NUWA-Infinity style).")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    groups: dict[str, argparse._SubParsersAction] = {}
    for group, module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue  # that part is not built yet
            raise
        if group is None:
            module.register(top)
            continue
        if group not in groups:
            group_parser = top.add_parser(group, help=GROUP_HELP.get(group, group))
            groups[group] = group_parser.add_subparsers(dest=f"{group}_command", metavar="SUBCOMMAND",
                                                       parser_class=OneLineParser)
        module.register(groups[group])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # bad flags (one line already printed) or --help: return, don't exit
        return done.code if isinstance(done.code, int) else 2
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except UserError as err:
        print(f"nuwa-inf: error: {_one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        # the machine, not the code: disk full, permission denied, a file vanishing mid-run
        where = f": {err.filename}" if err.filename else ""
        print(f"nuwa-inf: error: {_one_line(err.strerror or str(err))}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nuwa-inf: interrupted (resume with --resume)", file=sys.stderr)
        return 130
    return int(result or 0)


def run() -> None:
    """The `nuwa-inf` command and `python -m nuwa_inf`: exit with `main`'s code. A torchrun
    worker (its process group joined by a trainer) leaves through `distributed.leave`."""
    code = main()
    # only a trainer imports distributed.py; importing it here would load torch for every command
    distributed = sys.modules.get("nuwa_inf.train.distributed")
    if distributed is not None and distributed.world_size() > 1:
        distributed.leave(code)
    sys.exit(code)


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    run()
