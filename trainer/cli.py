"""`ser-train train | cv | evaluate | export` (one run: trainer/cli_run.py) and `ser-train
crosscorpus | encoder-table | zoo` (the README's tables: trainer/cli_tables.py).

Exit status: 0 done, 1 a runtime failure, 2 a usage error (bad arguments, config, corpus or
folder: one line naming it), 130 interrupted (the checkpoint is kept; rerun with --resume).
"""

from __future__ import annotations

import argparse
import sys

from serapp.corpora import CorpusError
from serapp.errors import SerappError
from trainer import cli_run, cli_tables
from trainer.config import ConfigError
from trainer.training import TrainingInterrupted


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ser-train", description="Train and evaluate serapp models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_run.add_run_commands(sub)  # train, cv, evaluate
    cli_tables.add_table_commands(sub)  # crosscorpus, encoder-table, zoo
    cli_run.add_export(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args, sys.argv[1:] if argv is None else list(argv))
        return 0
    except (ConfigError, CorpusError) as exc:
        print(f"ser-train: {exc}", file=sys.stderr)
        return 2
    except SerappError as exc:
        print(f"ser-train: {exc}", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        print(f"ser-train: {exc}; continue with --resume --out <run dir>", file=sys.stderr)
        return 130
    except OSError as exc:  # a file the run needs cannot be read or written (WriteError is caught above)
        print(f"ser-train: {exc.filename or 'file'}: {exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
