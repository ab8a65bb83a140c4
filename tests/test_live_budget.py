"""One live budget, one figure measured one way (issue 36, item 15): a reading may take half its
hop (settings.LIVE_BUDGET_MS at the default hop), the hop lengthens exactly past it, and the
status bar's cost, at load and live, is serapp.reading_cost's median of readings' features and
model milliseconds."""

import os
import re
import statistics
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import speechlike  # noqa: E402
from qt_helpers import open_window  # noqa: E402

from serapp.audio.sources import FileSource  # noqa: E402
from serapp.gui.model_control import live_hop_for  # noqa: E402
from serapp.settings import LIVE_BUDGET_MS, LIVE_HOP_S  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_hop_lengthens_exactly_past_the_one_budget():
    assert LIVE_BUDGET_MS == pytest.approx(100.0)
    assert live_hop_for(LIVE_BUDGET_MS, LIVE_HOP_S) is None
    assert live_hop_for(LIVE_BUDGET_MS + 1, LIVE_HOP_S) == pytest.approx(LIVE_HOP_S + 0.1)


def test_the_readme_gives_the_one_budget():
    text = " ".join(README.read_text(encoding="utf-8").split())
    budgets = re.findall(r"[^.]*\bbudget\b[^.]*\.", text)
    assert budgets and all(f"{LIVE_BUDGET_MS:.0f} ms" in b for b in budgets if " ms" in b), budgets


def test_the_status_bar_gives_the_cost_measured_one_way_at_load_and_live(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path)
    at_load = w.timing_label.full_text()
    assert at_load.startswith(f"model {w.model_cost_ms:.1f} ms per reading (measured at load)")
    assert f"budget {LIVE_BUDGET_MS:.0f} ms at a {LIVE_HOP_S:g} s hop" in at_load
    w.attach_source(FileSource(samples=speechlike(20.0), sample_rate=16000, realtime=True, loop=True))
    w.source.start()
    qtbot.waitUntil(lambda: len(w.live.reading_ms) >= 3 and "live" in w.timing_label.full_text(), timeout=20000)
    w.stop_capture()
    costs = list(w.live.reading_ms)
    assert w.timing_label.full_text().startswith(f"model {statistics.median(costs):.1f} ms per reading "
                                                 f"(median of the last {len(costs)} live)")
