"""Command line: `serapp` (the desktop app); `serapp predict`, `serapp bench-report`,
`serapp model-info` and `serapp profile` (headless); `serapp listen-web` (a web server).

Exit status: 0 success, 1 a file or model failed (one line each on stderr), 2 usage error.
No user error prints a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from serapp import __version__, listen_web_cli, profile_cli
from serapp.adapt_files import adapt_voice, some_paths
from serapp.bundle import BUNDLED_MODELS
from serapp.errors import SerappError, UsageError, printable
from serapp.predict_output import OutputError, ResultWriter
from serapp.readout import EMOTION_CHOICES
from serapp.settings import MAX_WINDOW_S, MIN_HOP_S, AnalysisSettings

FORMATS = ("table", "jsonl", "csv")
COMMANDS = ("predict", "bench-report", "model-info", "profile", "listen-web")
MODEL_HELP = ("a model bundle, or a bundled model by name: "
              + "; ".join(f"{name} ({about})" for name, (_, about) in BUNDLED_MODELS.items()) + ". Default: default")
VIEWS = ("live", "file", "listening")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number greater than 0")
    return value


def _seconds(lo: float, hi: float):
    def parse(text: str) -> float:
        value = _positive_float(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: give {lo:g} to {hi:g} seconds")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serapp",
        usage="serapp [options] [FILE]\n       serapp COMMAND ... (predict, profile, model-info, bench-report, listen-web)",
        description="Speech emotion recognition. With no command, opens the desktop app (on FILE, if given).",
    )
    parser.add_argument("--version", action="version", version=f"serapp {__version__}")
    gui = parser.add_argument_group("desktop app (no command; `serapp FILE` opens FILE in the file view)")
    gui.add_argument("--open", metavar="FILE", help="open this audio file in the file view (as `serapp FILE`)")
    gui.add_argument("--view", choices=VIEWS, help="the view to show: live, file or listening")
    gui.add_argument("--compare", metavar="BUNDLE", help="read a second model on the same audio, side by side")
    gui.add_argument("--present", action="store_true", help="presentation mode: full screen, large type (F11)")
    gui.add_argument("--model", metavar="PATH|NAME", help=MODEL_HELP)
    gui.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="compute device for the model")
    gui.add_argument("--input-device", metavar="NAME_OR_INDEX", help="start live capture on this input at launch")
    gui.add_argument("--quit-after", type=_positive_float, metavar="SECONDS", help="quit after this long (demos, tests)")
    gui.add_argument("--screenshot", metavar="FILE.png", help="with --quit-after: save the main window first")
    # prog: the commands' own usage lines and errors start "serapp predict", not the app's usage
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", prog="serapp")
    p = sub.add_parser("predict", help="predict the emotion of audio files (headless)",
                       description="Predict the emotion of audio files and directories (walked for audio).")
    # "*": none given is said by main, which knows whether --adapt took them
    p.add_argument("paths", nargs="*", metavar="FILE|DIR", help="audio files or directories")
    p.add_argument("--model", metavar="PATH|NAME", help=MODEL_HELP)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="compute device (default: auto = CUDA, then MPS, then CPU)")
    p.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")
    p.add_argument("--emotions", default="basic", choices=EMOTION_CHOICES,
                   help="basic: neutral, happy, sad, angry (calm counts as neutral; the default); all: every emotion "
                        "the model knows")
    p.add_argument("--window", type=_seconds(0.1, MAX_WINDOW_S), metavar="S",
                   help=f"also give a sliding-window timeline with windows of S seconds (0.1 to {MAX_WINDOW_S:g})")
    p.add_argument("--hop", type=_seconds(MIN_HOP_S, MAX_WINDOW_S), metavar="S",
                   help=f"timeline hop in seconds (default 0.5, at least {MIN_HOP_S:g}; needs --window)")
    p.add_argument("--no-gate", action="store_true",
                   help="read every file and window, even without speech (default: they read 'no speech')")
    p.add_argument("--adapt", nargs="+", metavar="FILE|DIR",
                   help="these files are one speaker: learn that voice's statistics from their speech first (no labels "
                        "needed), then read every file with them (a model that adapts, such as the bundled one). "
                        "It takes every path after it: give the files to read first, or end its list with --")
    p.add_argument("--profile", metavar="NAME|FILE",
                   help="read every file adapted to a saved voice profile (serapp profile create; a profile's name "
                        "or its .json file)")
    b = sub.add_parser("bench-report", help="score listening-test answer files (people, agreement, a model)",
                       description="Accuracy and UA per rater and pooled, confusion, Fleiss' kappa, and "
                                   "optionally a model on exactly the same clips.")
    b.add_argument("files", nargs="+", metavar="FILE.csv", help="answer files written by the listening test")
    b.add_argument("--model", nargs="?", const=BUNDLED, metavar="BUNDLE",
                   help="also score this model bundle on the same clips (--model alone: the bundled model)")
    b.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="compute device for --model")
    b.add_argument("--root", metavar="DIR", help="the corpus folder, when it has moved since the test was taken")
    b.add_argument("--format", default="text", choices=("text", "json"), help="output format (default: text)")
    m = sub.add_parser("model-info", help="what a model bundle was trained on, its licences and figures",
                       description="What a model bundle says about itself: network, features, the corpora it "
                                   "was trained on with their licences, and the figures it was measured with.")
    m.add_argument("bundle", nargs="?", metavar="BUNDLE|NAME",
                   help="a model bundle or a bundled model's name (default: every bundled model)")
    m.add_argument("--format", default="text", choices=("text", "json"), help="output format (default: text)")
    profile_cli.add_parser(sub, MODEL_HELP)
    listen_web_cli.add_parser(sub)
    parser.commands = sub.choices  # so main's own checks print the command's usage, as argparse's do
    return parser


BUNDLED = "\0bundled"


def run_model_info(args: argparse.Namespace) -> int:
    from serapp.bundle import (
        BUNDLED_MODELS,
        bundled_model_path,
        check_bundle,
        resolve_bundle,
    )
    from serapp.model_card import model_card

    if args.bundle:
        named = {"": resolve_bundle(args.bundle)}
    else:  # every model this installation ships, by the name --model takes
        named = {name: bundled_model_path(name) for name in BUNDLED_MODELS}
        named = {name: path for name, path in named.items() if path is not None}
        if not named:
            print("serapp: no bundled model in this installation: name a bundle", file=sys.stderr)
            return 1
    records, cards = [], []
    for name, path in named.items():
        meta, parameters = check_bundle(path)  # the checks predict makes: a card only for a bundle it would load
        records.append({**({"name": name} if name else {}), "path": str(path), "parameters": parameters,
                        **json.loads(meta.to_json())})
        cards.append((f"== {name} (--model {name})\n" if name else "")
                     + model_card(meta, path, parameters, shown=None if name else args.bundle))
    if args.format == "json":
        print(json.dumps(records[0] if args.bundle else records, indent=2))
    else:
        print("\n\n".join(cards))
    return 0


def run_bench_report(args: argparse.Namespace) -> int:
    from serapp.listening.report import (
        build_report,
        format_text,
        load_answer_files,
        score_model,
    )

    if args.root is not None and not Path(args.root).is_dir():
        print(f"serapp: --root {printable(args.root)}: no such folder", file=sys.stderr)
        return 2
    problems: list[str] = []  # a bad line costs that line: the answers around it are scored
    answers = load_answer_files(args.files, problems)
    for line in problems:
        print(f"serapp: {printable(line)}" + ("; that line is left out" if answers else ""), file=sys.stderr)
    if not answers:
        if not problems:
            print(f"serapp: {some_paths(args.files)}: no answers yet", file=sys.stderr)
        return 1
    report = build_report(answers)
    if args.model is not None:
        from serapp.predictor import load_model

        path = None if args.model == BUNDLED else args.model
        predictor = load_model(path, device=args.device)
        report["model"] = model = score_model(predictor, answers, args.root,
                                              bundle=str(path) if path else "(bundled default)")
        if model["n"] == 0 and model["excluded"]:  # a score of nothing is no score
            why = "; ".join(f"{n} {reason}" for reason, n in model["excluded"].items())
            first = f" (first: {model['errors'][0]})" if model["errors"] else ""
            print(f"serapp: the model could score none of the answered clips: {why}{first}; "
                  "give --root the corpus folder if it moved", file=sys.stderr)
            return 1
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        sys.stdout.write(format_text(report, args.files))
    return 1 if problems else 0


def run_predict(args: argparse.Namespace) -> int:
    from serapp.analysis import analyse_file, make_gate
    from serapp.audio.io import iter_audio_files
    from serapp.predictor import load_model

    predictor = load_model(args.model, device=args.device, emotions=args.emotions)
    settings = AnalysisSettings(window_s=args.window, hop_s=args.hop or 0.5, gate=not args.no_gate)
    gate = make_gate(settings, predictor.sample_rate) if settings.gate else None
    writer = ResultWriter(args.format, predictor.labels, args.window is not None)
    failed = 0

    def unreadable(path, reason) -> None:
        nonlocal failed
        print(f"serapp: {path}: cannot read this folder ({reason}); its files were not analysed", file=sys.stderr)
        failed += 1

    voice = None
    if args.adapt:
        voice = adapt_voice(args.adapt, predictor, settings, gate, unreadable)
        if voice is None:
            return 1
    elif args.profile:
        from serapp.profiles import ProfileStore, speech_heard

        profile = ProfileStore().load(args.profile)
        voice = profile.voice(predictor)
        print(f"serapp: reading with voice profile {profile.name!r} ({speech_heard(profile.seconds)})", file=sys.stderr)

    for given in args.paths:
        files = list(iter_audio_files([given], on_error=unreadable))
        if not files and Path(given).is_dir():
            print(f"serapp: {given}: no audio files found", file=sys.stderr)
            failed += 1
        for path in files:
            t0 = time.perf_counter()
            try:
                fr = analyse_file(path, predictor, settings, timeline=args.window is not None, gate=gate, voice=voice)
            except SerappError as exc:
                print(f"serapp: {exc}", file=sys.stderr)
                failed += 1
                continue
            o = fr.overall
            result = {"path": str(path), "label": o.label, "sure": o.sure, "speech": o.speech,
                      "speech_fraction": round(o.speech_fraction, 3),
                      "probabilities": o.to_dict()["probabilities"], "duration_s": round(fr.duration_s, 3),
                      "ms": round((time.perf_counter() - t0) * 1e3, 1)}
            if fr.shortfall:
                result["warning"] = fr.shortfall
                print(f"serapp: warning: {printable(path)}: {fr.shortfall}", file=sys.stderr)
            if args.window is not None:
                result["segments"] = [s.to_dict() for s in fr.segments]
            writer.write(result, fr.segments)
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
    from serapp.gui.app import LaunchOptions

    if args.open and not Path(args.open).exists():
        print(f"serapp: {args.open}: no such file", file=sys.stderr)
        return 2
    return run_app(LaunchOptions(model=args.model, device=args.device, input_device=args.input_device,
                                 quit_after=args.quit_after, screenshot=args.screenshot, open_file=args.open,
                                 view=args.view or ("file" if args.open else None), compare=args.compare,
                                 present=args.present))


def _file_as_open(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`serapp FILE [options]`, `serapp [options] FILE`: the desktop app on FILE (as --open FILE),
    wherever FILE stands among the app's options; a command (predict, ...) is left as it is."""
    takes_value = {o for a in parser._actions if a.option_strings and a.nargs != 0 for o in a.option_strings}
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--" or token in COMMANDS:
            return argv
        if token.startswith("-"):
            i += 2 if token in takes_value else 1  # "--opt=value" is one token
            continue
        return [*argv[:i], "--open", token, *argv[i + 1:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = _file_as_open(parser, list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    predict = parser.commands["predict"]
    if args.command == "predict" and args.hop is not None and args.window is None:
        predict.error("--hop needs --window")
    if args.command == "predict" and args.adapt and args.profile:
        predict.error("--adapt and --profile each give the voice: use one")
    if args.command == "predict" and not args.paths:
        predict.error(f"no file to read: --adapt took every path after it ({some_paths(args.adapt)}) as the voice's; "
                      "give the files to read before --adapt, or end its list with --" if args.adapt else
                      "give the audio files or folders to read")
    try:
        if args.command == "predict":
            return run_predict(args)
        if args.command == "bench-report":
            return run_bench_report(args)
        if args.command == "model-info":
            return run_model_info(args)
        if args.command == "profile":
            return profile_cli.run(args)
        if args.command == "listen-web":
            return listen_web_cli.run(args)
        return run_gui(args)
    except UsageError as exc:  # a name that is not there, options that do not go together
        print(f"serapp: {exc}", file=sys.stderr)
        return 2
    except SerappError as exc:
        print(f"serapp: {exc}", file=sys.stderr)
        if isinstance(exc, OutputError):  # nothing more can reach it, not even the final flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly; point stdout at devnull so the
        # interpreter's final flush does not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
