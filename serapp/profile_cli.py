"""`serapp profile create|list|delete|rename`: voice profiles from the command line
(serapp.profiles); `serapp predict --profile` reads with one."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub, model_help: str) -> None:
    p = sub.add_parser("profile", help="voice profiles: a voice's statistics, saved under a name",
                       description="Voice profiles: the model adapts to a voice from its speech (no labels), and "
                                   "a profile keeps that under a name for `serapp predict --profile` and the app.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser("create", help="a profile from one speaker's audio files or folders")
    c.add_argument("name", metavar="NAME")
    c.add_argument("paths", nargs="+", metavar="FILE|DIR", help="the speaker's audio (its speech windows are used)")
    c.add_argument("--model", metavar="PATH|NAME", help=model_help)
    c.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="compute device")
    c.add_argument("--replace", action="store_true", help="replace a profile of that name")
    c.add_argument("--no-gate", action="store_true", help="use every window, even without speech (as predict's)")
    actions.add_parser("list", help="the saved profiles: name, speech heard, model, date")
    d = actions.add_parser("delete", help="delete a profile")
    d.add_argument("name", metavar="NAME")
    r = actions.add_parser("rename", help="rename a profile")
    r.add_argument("name", metavar="NAME")
    r.add_argument("new_name", metavar="NEW_NAME")


def run(args: argparse.Namespace) -> int:
    from serapp.errors import printable
    from serapp.profiles import ProfileStore, check_name, speech_heard

    store = ProfileStore()
    if args.action == "list":
        profiles, problems = store.list()
        for line in problems:
            print(f"serapp: skipped {printable(line)}", file=sys.stderr)
        if not profiles:
            print(f"no voice profiles (in {store.folder})")
        for p in profiles:
            print(f"{printable(p.name)}\t{speech_heard(p.seconds)}\tmodel {printable(p.model)}\t"
                  f"{printable(p.created_utc)}")  # a shared file's text, escaped: one line per profile
        return 0
    if args.action == "delete":
        store.delete(args.name)
        print(f"deleted voice profile {args.name!r}")
        return 0
    if args.action == "rename":
        store.rename(args.name, args.new_name)
        print(f"renamed voice profile {args.name!r} to {args.new_name!r}")
        return 0
    return _create(args, store, check_name(args.name))


def _create(args, store, name: str) -> int:
    from serapp.adapt_files import adapt_voice
    from serapp.analysis import make_gate
    from serapp.predictor import load_model
    from serapp.profiles import ProfileError, from_voice, speech_heard, too_little_speech
    from serapp.settings import AnalysisSettings

    if not args.replace:
        store.check_free(name)  # before minutes of reading, not after
    predictor = load_model(args.model, device=args.device)
    settings = AnalysisSettings(gate=not args.no_gate)
    failed = []

    def unreadable(path, reason) -> None:
        print(f"serapp: {path}: cannot read this folder ({reason}); its files were not used", file=sys.stderr)
        failed.append(path)

    gate = make_gate(settings, predictor.sample_rate) if settings.gate else None
    voice = adapt_voice(args.paths, predictor, settings, gate, unreadable, "profile create")
    if voice is None:
        return 1
    short = too_little_speech(voice.seconds, "give more of the speaker's audio (the app's take asks the same)")
    if short:
        raise ProfileError(f"voice profile {name!r}: {short}")
    path = store.save(from_voice(name, voice, predictor), replace=args.replace)
    print(f"voice profile {name!r}: {speech_heard(voice.seconds)}, saved to {path}")
    return 1 if failed else 0
