"""`serapp listen-web`: the listening test served to raters' browsers (serapp.web)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

DEFAULT_PORT = 8765


def add_parser(sub) -> None:
    p = sub.add_parser("listen-web", help="run a listening test in raters' browsers (a link for a room or a network)",
                       description="Serve the listening test to web browsers: raters open the printed link, give a "
                                   "name, practise, then label the clips; each rater's answers go to their own CSV in "
                                   "the answers folder, which `serapp bench-report` and the app's results read.")
    p.add_argument("corpus", metavar="CORPUS", help="a corpus folder or a CSV manifest path,label[,speaker]")
    p.add_argument("--emotions", metavar="LIST", help="the emotions in the test, comma-separated (default: every "
                                                     "emotion the corpus has)")
    p.add_argument("--clips", type=int, default=50, metavar="N", help="clips per rater (default 50)")
    p.add_argument("--practice", type=int, default=3, metavar="N",
                   help="practice clips first, with feedback, not saved (default 3)")
    p.add_argument("--seed", type=int, default=1, help="raters given the same seed hear the same clips in the same order")
    p.add_argument("--no-balance", action="store_true", help="do not balance the clips over speakers")
    p.add_argument("--answers", metavar="DIR", help="the answers folder, one CSV per rater "
                                                   "(default: Documents/serapp-listening/web-CORPUS)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the port (default {DEFAULT_PORT}; 0: any free one)")
    p.add_argument("--new-link", action="store_true",
                   help="a new link for this answers folder (the previous link stops working)")


def default_folder(corpus_root: Path) -> Path:
    import platformdirs

    from serapp.listening.answers import file_name_part

    return Path(platformdirs.user_documents_dir()) / "serapp-listening" / f"web-{file_name_part(corpus_root.name, 'corpus')}"


def plan_from(args: argparse.Namespace, corpus):
    from serapp.errors import UsageError
    from serapp.web.raters import WebPlan

    if args.emotions:
        labels = tuple(dict.fromkeys(e.strip().lower() for e in args.emotions.split(",") if e.strip()))
        missing = [e for e in labels if e not in corpus.labels]
        if missing:
            raise UsageError(f"--emotions: the corpus has no {', '.join(missing)} clips (it has {', '.join(corpus.labels)})")
    else:
        labels = tuple(corpus.labels)
    if not 1 <= args.clips <= 10000:
        raise UsageError("--clips takes 1 to 10000")
    if not 0 <= args.practice <= 20:
        raise UsageError("--practice takes 0 to 20")
    return WebPlan(labels=labels, n_clips=args.clips, seed=args.seed, balance_speakers=not args.no_balance,
                   practice_clips=args.practice)


def run(args: argparse.Namespace) -> int:
    from serapp.corpora import detect_corpus
    from serapp.errors import printable
    from serapp.web.server import link, listen, prepare, serve_forever

    def say(line: str) -> None:
        print(f"{datetime.now():%H:%M:%S} {line}", flush=True)

    corpus = detect_corpus(args.corpus)
    plan = plan_from(args, corpus)
    folder = Path(args.answers) if args.answers else default_folder(corpus.root)
    test, app, token, lock = prepare(corpus, plan, folder, args.new_link, log=say)
    with lock:  # the answers folder is this server's until it stops (or the process ends)
        sock = listen(args.host, args.port)
        url, note = link(sock, token)
        print(f"open {url}", flush=True)
        print(f"  {note}; {plan.n_clips} clips of {printable(corpus.root)} ({', '.join(plan.labels)}), "
              f"{plan.practice_clips} practice; answers in {printable(folder)}, one CSV per rater; Ctrl+C stops",
              flush=True)
        serve_forever(app, sock)
    raters, answers = test.counts()
    print(f"stopped: {answers} answers from {raters} raters in {printable(folder)}", flush=True)
    return 0
