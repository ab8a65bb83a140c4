"""Cross-validation summaries as a bundle records them (`ser-train train|export --cv-summary`),
the calibration a bundle ships, and the figures a table's row takes from a summary."""

from __future__ import annotations

import statistics

from serapp.readout import check_calibration


def brief_metrics(metrics: dict) -> dict:
    """The figures a fold record and a bundle keep of a metrics record."""
    out = {k: metrics[k] for k in ("n", "wa", "ua", "macro_f1", "basic_ua") if k in metrics}
    if "per_corpus" in metrics:
        out["ua_per_corpus"] = {g: m["ua"] for g, m in metrics["per_corpus"].items()}
    return out


def brief_cv(summary: dict) -> dict:
    """The cross-validation figures a bundle carries (from a `ser-train cv` summary.json)."""
    out = {"protocol": summary["protocol"], "config": summary.get("config"), "data": summary.get("data"),
           "wa": summary["wa"], "ua": summary["ua"], "macro_f1": summary.get("macro_f1"),
           "folds": [{"fold": f["fold"], "test_speakers": f.get("test_speakers"), **brief_metrics(f["test"]),
                      **({"test_corpus": f["test_corpus"], "chance_ua": 1.0 / len(f["test"]["labels"])}
                         if "test_corpus" in f else {})}
                     for f in summary["folds"]]}
    for key in ("basic_ua", "adapted_ua", "basic_adapted_ua", "ece", "coverage", "shown_right", "recipe", "adapt"):
        if key in summary:  # the encoder table's readout figures (trainer/encoder_render.py)
            out[key] = summary[key]
    if "robustness" in summary:
        out["robustness_ua"] = {c: v["ua_mean"] for c, v in summary["robustness"].items()}
        out["robustness_mean_drop"] = summary["robustness_mean_drop"]
    return out


def check_cv_summary(summary: dict) -> None:
    """A cv summary a bundle can record: KeyError, TypeError or ValueError where it is not one."""
    brief_cv(summary)
    if "readout" in summary:
        check_calibration(summary["readout"], "its readout")


def bundle_readout(own: dict | None, source: str, cv_summaries: list[dict] | None, training: dict) -> dict:
    """The calibration a bundle ships (serapp.readout), its source noted in `training`: the
    head's own (`source`), unless it has one and a cv summary given with it carries one fitted
    across corpora (trainer/encoder_table.py: on corpora the heads reading them never heard,
    as the app's voices are)."""
    across = [s["readout"] for s in cv_summaries or () if s.get("readout")]
    if own and across:
        own, source = across[0], "held-out corpora"
    if own:
        training["calibration"] = training.get("calibration") if source == "the run's bundle" else source
    return own or {}


def cv_record(summaries: list[dict]) -> dict:
    """Bundle metadata from cv summaries: `cross_corpus` for leave-one-corpus-out, else `cross_validation`."""
    out = {}
    for s in summaries or []:
        key = "cross_corpus" if str(s["protocol"]).startswith("cross-corpus") else "cross_validation"
        out[key] = brief_cv(s)
    return out


def table_figures(s: dict) -> dict:
    """What a table's row takes from a cv summary: the folds, WA and UA, UA per fold, and the mean
    validation UA."""
    folds = s["folds"]
    return {"folds": len(folds), "wa": s["wa"], "ua": s["ua"],
            "per_fold_ua": {f["fold"]: f["test"]["ua"] for f in folds},
            # what the best models are chosen by: their validation actors, never the test folds
            "val_ua": statistics.fmean(f["val"]["ua"] for f in folds)}
