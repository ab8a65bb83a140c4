"""Command line: `serapp` (the desktop app), `serapp predict` and `serapp bench-report` (headless).

Exit status: 0 success, 1 a file or model failed (one line each on stderr), 2 usage error.
No user error prints a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

from serapp import __version__
from serapp.errors import SerappError

FORMATS = ("table", "jsonl", "csv")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serapp",
        description="Speech emotion recognition. With no command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"serapp {__version__}")
    gui = parser.add_argument_group("desktop app (no command)")
    gui.add_argument("--model", metavar="PATH", help="model bundle (default: the bundled model)")
    gui.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="compute device for the model")
    gui.add_argument("--input-device", metavar="NAME_OR_INDEX", help="start live capture on this input at launch")
    gui.add_argument("--quit-after", type=_positive_float, metavar="SECONDS", help="quit after this long (demos, tests)")
    gui.add_argument("--screenshot", metavar="FILE.png", help="with --quit-after: save the main window first")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("predict", help="predict the emotion of audio files (headless)",
                       description="Predict the emotion of audio files and directories (walked for audio).")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR", help="audio files or directories")
    p.add_argument("--model", metavar="PATH", help="model bundle (default: the bundled model)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="compute device (default: auto = CUDA, then MPS, then CPU)")
    p.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")
    p.add_argument("--window", type=_positive_float, metavar="S",
                   help="also give a sliding-window timeline with windows of S seconds")
    p.add_argument("--hop", type=_positive_float, metavar="S",
                   help="timeline hop in seconds (default 0.5; needs --window)")
    b = sub.add_parser("bench-report", help="score listening-test answer files (people, agreement, a model)",
                       description="Accuracy and UA per rater and pooled, confusion, Fleiss' kappa, and "
                                   "optionally a model on exactly the same clips.")
    b.add_argument("files", nargs="+", metavar="FILE.csv", help="answer files written by the listening test")
    b.add_argument("--model", nargs="?", const=BUNDLED, metavar="BUNDLE",
                   help="also score this model bundle on the same clips (--model alone: the bundled model)")
    b.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="compute device for --model")
    b.add_argument("--root", metavar="DIR", help="the corpus folder, when it has moved since the test was taken")
    b.add_argument("--format", default="text", choices=("text", "json"), help="output format (default: text)")
    return parser


BUNDLED = "\0bundled"


def run_bench_report(args: argparse.Namespace) -> int:
    from serapp.listening.report import (
        build_report,
        format_text,
        load_answer_files,
        score_model,
    )

    answers = load_answer_files(args.files)
    if not answers:
        print(f"serapp: {', '.join(args.files)}: no answers yet", file=sys.stderr)
        return 1
    report = build_report(answers)
    if args.model is not None:
        from serapp.predictor import load_model

        path = None if args.model == BUNDLED else args.model
        predictor = load_model(path, device=args.device)
        report["model"] = score_model(predictor, answers, args.root, bundle=str(path) if path else "(bundled default)")
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        sys.stdout.write(format_text(report, args.files))
    return 0


class _Writer:
    """Prints one result per file as soon as it is ready, in the chosen format."""

    def __init__(self, fmt: str, labels: list[str], windowed: bool, out=None):
        self.fmt, self.labels, self.windowed = fmt, labels, windowed
        self.out = out or sys.stdout
        self._csv = csv.writer(self.out, lineterminator="\n") if fmt == "csv" else None
        if self._csv:
            head = ["path", "start_s", "end_s"] if windowed else ["path", "duration_s", "ms"]
            self._csv.writerow(head + ["label"] + self.labels)

    def write(self, result: dict) -> None:
        if self.fmt == "jsonl":
            self.out.write(json.dumps(result) + "\n")
        elif self.fmt == "csv":
            rows = result.get("segments") if self.windowed else [result]
            for r in rows:
                lead = [r["start_s"], r["end_s"]] if self.windowed else [result["duration_s"], result["ms"]]
                self._csv.writerow([result["path"], *lead, r["label"]] + [f"{r['probabilities'][k]:.6f}" for k in self.labels])
        else:
            probs = result["probabilities"]
            top = sorted(probs.items(), key=lambda kv: -kv[1])[:3]
            alts = "  ".join(f"{k} {v:.0%}" for k, v in top)
            self.out.write(f"{result['path']}  {result['duration_s']:.2f}s  {result['label'].upper():<10} {alts}  ({result['ms']:.0f} ms)\n")
            for seg in result.get("segments", []):
                p = seg["probabilities"][seg["label"]]
                self.out.write(f"    {seg['start_s']:7.2f}-{seg['end_s']:7.2f}s  {seg['label']:<10} {p:.0%}\n")
        self.out.flush()


def _round_probs(probs: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in probs.items()}


def run_predict(args: argparse.Namespace) -> int:
    from serapp.audio.io import iter_audio_files
    from serapp.predictor import load_model

    predictor = load_model(args.model, device=args.device)
    writer = _Writer(args.format, predictor.labels, args.window is not None)
    failed = 0
    for given in args.paths:
        files = list(iter_audio_files([given]))
        if not files and Path(given).is_dir():
            print(f"serapp: {given}: no audio files found", file=sys.stderr)
            failed += 1
        for path in files:
            t0 = time.perf_counter()
            try:
                samples, probs = predictor.predict_file(path)
                segments = None
                if args.window is not None:
                    segments = predictor.timeline(samples, predictor.sample_rate, args.window, args.hop or 0.5)
            except SerappError as exc:
                print(f"serapp: {exc}", file=sys.stderr)
                failed += 1
                continue
            result = {
                "path": str(path),
                "label": max(probs, key=probs.get),
                "probabilities": _round_probs(probs),
                "duration_s": round(samples.size / predictor.sample_rate, 3),
                "ms": round((time.perf_counter() - t0) * 1e3, 1),
            }
            if segments is not None:
                result["segments"] = [dict(s.to_dict(), probabilities=_round_probs(s.probabilities)) for s in segments]
            writer.write(result)
    return 1 if failed else 0


def _display_problem() -> str | None:
    """Why Qt could not open a window here, before Qt aborts the process over it."""
    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return "no display found (set DISPLAY or run under xvfb-run); `serapp predict` works without one"


def run_gui(args: argparse.Namespace) -> int:
    if args.screenshot and args.quit_after is None:
        print("serapp: --screenshot needs --quit-after", file=sys.stderr)
        return 2
    problem = _display_problem()
    if problem:
        print(f"serapp: {problem}", file=sys.stderr)
        return 1
    try:
        from serapp.gui.app import run_app
    except ImportError as exc:
        print(f"serapp: the desktop app cannot start: {exc} (Qt or one of its system libraries is missing)",
              file=sys.stderr)
        return 1
    return run_app(args.model, args.device, args.input_device, args.quit_after, args.screenshot)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "predict" and args.hop is not None and args.window is None:
        parser.error("--hop needs --window")
    try:
        if args.command == "predict":
            return run_predict(args)
        if args.command == "bench-report":
            return run_bench_report(args)
        return run_gui(args)
    except SerappError as exc:
        print(f"serapp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly; point stdout at devnull so the
        # interpreter's final flush does not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
