"""What a model bundle says about itself, as text: `serapp model-info`, the app's model tooltip,
and the one line the app shows when a model is opened.

A bundle's metadata (serapp.bundle) records its network, features, data, licences and figures;
this turns that record into lines a person reads. Older bundles lack the per-corpus record and
get their one data line and licence instead.
"""

from __future__ import annotations

from pathlib import Path

from serapp.bundle import BundleMeta
from serapp.errors import printable

MAX_SHOWN = 300  # characters of one line of a card: a bundle's text is bounded, and escaped, where shown
MAX_ITEMS = 40  # corpora or folds listed


def _shown(line: str) -> str:
    text = printable(line[: 4 * MAX_SHOWN])  # cut first: a 20 MB title costs nothing
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _section(what: str, make, *args) -> list[str]:
    """The lines `make` gives from a bundle's free-form training record, or one line saying the
    record is malformed there (a hand-edited bundle: wrong types, missing keys)."""
    try:
        lines = make(*args)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        return [f"{what}: not shown, the bundle's record of it is malformed ({type(exc).__name__}: {exc})"]
    return lines if len(lines) <= MAX_ITEMS else lines[:MAX_ITEMS] + [f"  … and {len(lines) - MAX_ITEMS} more"]


def _pct(x) -> str:
    return f"{100 * x:.1f}%"


def _features(meta: BundleMeta) -> str:
    f = meta.frontend
    kind = {"logmel": f"{f.n_mels} log-mel bands", "mfcc": f"{f.n_mfcc} MFCCs", "waveform": "the waveform",
            "whisper": f"Whisper's {f.n_mels}-band log-mel"}
    what = kind.get(f.kind, f.kind)
    return (f"{what} at {f.sample_rate} Hz, {1000 * f.hop_length / f.sample_rate:g} ms hop, "
            f"{meta.window_s:g} s windows" + (", normalised per window" if f.normalize else ""))


def _corpus_line(c: dict) -> str:
    n_train, n_val = len(c.get("train_speakers", [])), len(c.get("val_speakers", []))
    speakers = f"{c['speakers']} speakers" + (f": {n_train} training, {n_val} validation" if n_train else "")
    return f"  {c.get('title', c['name'])}: {c['clips']} clips, {speakers}; {c.get('licence', 'licence not recorded')}"


def _cross_validation(cv: dict) -> list[str]:
    sd = f" ± {_pct(cv['ua']['sd'])}" if cv["ua"].get("sd") is not None and len(cv.get("folds", [])) > 1 else ""
    return [f"{cv['protocol']}: UA {_pct(cv['ua']['mean'])}{sd}, WA {_pct(cv['wa']['mean'])} "
            f"({len(cv.get('folds', []))} folds)"]


def _cross_corpus(xc: dict, calibration=None) -> list[str]:
    folds = xc.get("folds", [])
    lines = [f"{xc['protocol']}: mean UA {_pct(xc['ua']['mean'])} over {len(folds)} corpora never seen in training"]
    if isinstance(xc.get("basic_ua"), dict):  # the encoder table's readout figures (trainer/encoder_render.py)
        lines[0] += f"; basic four {_pct(xc['basic_ua']['mean'])}"
        if isinstance(xc.get("basic_adapted_ua"), dict) and isinstance(xc.get("adapted_ua"), dict):
            lines.append(f"  adapted to the voice (20 clips): basic four {_pct(xc['basic_adapted_ua']['mean'])}, "
                         f"all labels {_pct(xc['adapted_ua']['mean'])}")
        if all(isinstance(xc.get(k), dict) for k in ("ece", "coverage", "shown_right")):
            where = f" on {calibration}" if isinstance(calibration, str) else ""
            lines.append(f"  confidence (basic four, calibrated{where}): ECE {xc['ece']['mean']:.3f}; a label shown on "
                         f"{_pct(xc['coverage']['mean'])} of speech windows, right on {_pct(xc['shown_right']['mean'])}"
                         " of those")
    for f in folds:
        chance = f" (chance {_pct(f['chance_ua'])})" if "chance_ua" in f else ""
        basic = f", basic four {_pct(f['basic_ua'])}" if isinstance(f.get("basic_ua"), (int, float)) else ""
        lines.append(f"  {f.get('test_corpus', f['fold'])}: UA {_pct(f['ua'])}{chance}{basic}")
    return lines


def _figures(t: dict, per_corpus: bool) -> list[str]:
    lines = []
    if t.get("cross_validation"):
        lines += _cross_validation(t["cross_validation"])
    if t.get("cross_corpus"):
        lines += _cross_corpus(t["cross_corpus"], t.get("calibration"))[: None if per_corpus else 1]
    if not lines and t.get("test_metrics"):
        lines.append(f"{t.get('protocol', 'test')}: UA {_pct(t['test_metrics']['ua'])}, "
                     f"WA {_pct(t['test_metrics']['wa'])}")
    return lines


def _no_figures(t: dict) -> str:
    """Why a bundle carries no held-out figures."""
    if t.get("split") == "all" or t.get("fold") == "all":
        return "no held-out figures: trained on every speaker it had (its recipe's figures come from its cross-validation)"
    if t.get("data", "").startswith("random init"):
        return "no figures: an untrained network (random weights)"
    return "no held-out figures recorded in this bundle"


def model_brief(meta: BundleMeta, path: str | Path | None = None) -> str:
    """One line: the network, labels, data and headline figures (shown when a model is opened)."""
    head = f"{Path(path).name}: {meta.architecture}" if path else meta.architecture
    parts = [head, f"labels {', '.join(meta.labels)}", f"data {meta.training.get('data', 'not recorded')}"]
    return _shown("; ".join(parts + _section("figures", _figures, meta.training, False)))


def model_card(meta: BundleMeta, path: str | Path | None = None, parameters: int | None = None,
               shown: str | None = None) -> str:
    """Several lines: what the model is, what it hears, what it was trained on under which
    licences, and the figures it was measured with. `shown`: the bundle as the user named it
    (many runs' bundles share one file name), else its file name."""
    t = meta.training
    head = f"{shown or Path(path).name}: " if shown or path else ""
    size = f", {parameters / 1e6:.2f} M parameters" if parameters else ""
    if parameters and meta.hparams.get("encoder_dir") and not meta.hparams.get("finetune"):
        size += " here, plus the frozen speech encoder's"  # a frozen encoder is not stored in the bundle
    lines = [f"{head}{meta.architecture}{size}",
             f"labels: {', '.join(meta.labels)}",
             f"features: {_features(meta)}"]
    if meta.hparams.get("encoder_dir"):
        lines.append(f"speech encoder: {meta.hparams['encoder_dir']} (this folder must be on the machine that runs it)")
    if meta.hparams.get("backbone") == "whisper":
        lines.append(f"speech encoder: Whisper base's audio encoder, its first {meta.hparams.get('blocks')} blocks, frozen, "
                     "inside this bundle; " + t.get("encoder_licence", "MIT licence, Copyright (c) 2022 OpenAI"))
        if meta.hparams.get("int8_bytes"):
            lines.append("on a CPU the encoder runs in int8 through onnxruntime (float32 on a GPU, or without onnxruntime)")
    if meta.hparams.get("basic_head") is True:
        lines.append("a head for the basic four (neutral, happy, sad, angry; calm counted as neutral) beside the full "
                     "head: the basic readout reads it; all emotions come from the full head")
    if meta.hparams.get("speaker_norm"):
        lines.append("adapts to a voice: features normalised by the speaker's statistics (the population's until "
                     "it has heard the voice; serapp predict --adapt FILES)")
    if t.get("corpora"):
        lines.append("trained on:")
        lines += _section("the corpora", lambda: [_corpus_line(c) for c in t["corpora"]])
    else:
        lines.append(f"trained on: {t.get('data', 'not recorded')}")
        if t.get("licence"):
            lines.append(f"licence: {t['licence']}")
    lines += _section("its figures", lambda: _figures(t, per_corpus=True) or [_no_figures(t)])
    lines.append(f"made by serapp {meta.serapp_version}" + (f" on {meta.created_utc}" if meta.created_utc else ""))
    return "\n".join(_shown(line) for line in lines)
