"""What the `ser-train` command groups share: the configs folder, the results document, each
command's example, the cache options, and the corpora a run reads."""

from __future__ import annotations

import argparse
from pathlib import Path

from serapp.corpora import CorpusError, load_corpus, parse_data_arg

CONFIGS = Path(__file__).resolve().parent / "configs"
RESULTS_DOC = "docs/results.md"  # the full results; the README links it and shows the headline figures

EXAMPLES = {
    "train": "ser-train train --config trainer/configs/whisper.toml --data-root ../shared/data --fold all \\\n"
             "    --set model.encoder_dir='\"../shared/models/whisper-base\"' --out runs/whisper-final",
    "cv": "ser-train cv --config trainer/configs/default.toml --data ravdess=../shared/data/ravdess --out runs/cv",
    "evaluate": "ser-train evaluate --model assets/default.safetensors --data emovo=../shared/data/emovo",
    "crosscorpus": "ser-train crosscorpus --data-root ../shared/data --emobox-folds 1 3",
    "encoder-table": "ser-train encoder-table --data-root ../shared/data",
    "zoo": "ser-train zoo --data-root ../shared/data --folds 1 2 --random-split --best 2 --jobs 2",
    "export": "ser-train export runs/final --out my.safetensors --onnx my.onnx",
}


def subcommand(sub, name: str, help: str, **kw) -> argparse.ArgumentParser:
    """A subcommand whose help ends with an example."""
    return sub.add_parser(name, help=help, description=kw.pop("description", help[:1].upper() + help[1:] + "."),
                          epilog=f"example:\n  {EXAMPLES[name]}", formatter_class=argparse.RawDescriptionHelpFormatter,
                          **kw)


def cache_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", metavar="DIR", help="decoded audio and encoder outputs (default ~/.cache/serapp)")
    p.add_argument("--no-cache", action="store_true", help="decode (and encode) every file on every run")


def cache_dir(args):
    from trainer.cache import DEFAULT_CACHE_DIR

    if getattr(args, "no_cache", False):
        return None
    return Path(args.cache_dir) if args.cache_dir else DEFAULT_CACHE_DIR


def load_corpora(data_args: list[str], listed: list[str], data_root: str | None) -> list:
    """The corpora of a run: each --data NAME=DIR, then those the config lists, found under --data-root."""
    given = dict(parse_data_arg(text) for text in data_args)
    if len(given) != len(data_args):
        raise CorpusError("a corpus is named twice in --data")
    wanted = list(given) + [name for name in listed if name not in given]
    if not wanted:
        raise CorpusError("no data: give --data CORPUS=DIR (repeatable), or a config listing data.corpora with --data-root DIR")
    corpora = []
    for name in wanted:
        where = given.get(name)
        if where is None:
            if data_root is None:
                raise CorpusError(f"the config lists corpus {name!r}: give --data-root DIR (holding {name}/) "
                                  f"or --data {name}=DIR")
            where = str(Path(data_root) / name)
        corpora.append(load_corpus(name, where))
    return corpora
