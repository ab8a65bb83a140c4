"""Loading models for the window, off the GUI thread: the model, and a second one to compare with.

torch is imported here, in the background, after the window is on screen. Its thread count is
process-wide, so it is set at the first load only, before any model runs.
"""

from __future__ import annotations

import math
from pathlib import Path

LIVE_BUDGET_MS = 50.0  # a model slower than this per window gets a longer live hop


def load_in_background(path: str | None, device: str, set_threads: bool):
    """(predictor, ms per window, compute devices present): run on a worker thread."""
    from serapp.predictor import available_devices, load_model

    predictor = load_model(path, device=device, set_threads=set_threads)
    return predictor, predictor.window_cost_ms(), available_devices()


def live_hop_for(cost_ms: float, hop_s: float) -> float | None:
    """A hop the live view can keep up with for a model this slow (None: the hop is fine)."""
    if cost_ms <= LIVE_BUDGET_MS:
        return None
    return max(hop_s, round(math.ceil(2 * cost_ms / 100) / 10, 1))


def model_summary(predictor, cost_ms: float) -> str:
    """The status bar's model field: name, architecture, device, its figures, its cost."""
    meta = predictor.meta
    t = meta.training
    parts = [f"{predictor.path.name if predictor.path else meta.architecture}", meta.architecture,
             predictor.device.type]
    ua = t.get("cross_validation", {}).get("ua", {}).get("mean")
    if ua:
        parts.append(f"UA {ua:.0%}")
    xc = t.get("cross_corpus", {}).get("ua", {}).get("mean")
    if xc:
        parts.append(f"unseen corpora {xc:.0%}")
    parts.append(f"{cost_ms:.0f} ms/window")
    return "model: " + ", ".join(parts)


def describe_model(path: str, meta) -> str:
    """What a bundle says about itself, in one line (shown when it is opened)."""
    t = meta.training
    cv = t.get("cross_validation", {})
    parts = [f"{Path(path).name}: {meta.architecture}", f"labels {', '.join(meta.labels)}",
             f"data {t.get('data', '?')}", f"protocol {cv.get('protocol') or t.get('protocol', '?')}"]
    if cv:
        parts.append(f"UA {cv['ua']['mean']:.1%} ± {cv['ua']['sd']:.1%}, WA {cv['wa']['mean']:.1%} "
                     f"({len(cv.get('folds', []))}-fold)")
    xc = t.get("cross_corpus", {})
    if xc:
        parts.append(f"cross-corpus UA {xc['ua']['mean']:.1%} (mean over {len(xc.get('folds', []))} corpora never "
                     "seen in training)")
    if not cv and not xc and t.get("test_metrics"):
        parts.append(f"test UA {t['test_metrics'].get('ua', 0):.1%}")
    return "; ".join(parts)
