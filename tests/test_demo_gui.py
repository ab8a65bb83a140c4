"""The app as a demo: one time axis, a readable timeline, presentation mode, two models side by
side, the arousal-valence panel, the command line, the results page and the messages. Checked by
geometry and state (Qt offscreen), not by pixels."""

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers import make_bundle, speechlike, write_audio  # noqa: E402
from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402
from qt_helpers import open_window  # noqa: E402

from serapp.audio.sources import FileSource  # noqa: E402
from serapp.gui.presentation import word_scale  # noqa: E402
from serapp.gui.widgets import CIRCUMPLEX_DEGREES, circumplex_point  # noqa: E402


@pytest.fixture
def talk(tmp_path):
    """Silence, then a voice: windows without and with speech."""
    y = np.concatenate([np.zeros(16000 * 2, np.float32), speechlike(3.0, seed=2), np.zeros(8000, np.float32)])
    return write_audio(tmp_path / "talk.wav", y, 16000)


def _plots_share_one_axis(panels):
    plots = panels.plots
    lefts = [round(p.vb.sceneBoundingRect().left(), 1) for p in plots]
    widths = [round(p.vb.sceneBoundingRect().width(), 1) for p in plots]
    ranges = [tuple(round(v, 6) for v in p.vb.viewRange()[0]) for p in plots]
    assert len(set(lefts)) == 1 and len(set(widths)) == 1, (lefts, widths)
    assert len(set(ranges)) == 1, ranges
    return ranges[0]


def _analysed(qtbot, w, path):
    w.open_file(str(path))
    qtbot.waitUntil(lambda: w.file_view.analysis is not None and "analysing" not in w.file_view.title.full_text(),
                    timeout=30000)
    QtWidgets.QApplication.processEvents()


def test_the_file_views_plots_share_one_time_axis_and_the_timeline_reads(qtbot, tmp_path, talk):
    w = open_window(qtbot, tmp_path)
    _analysed(qtbot, w, talk)
    panels = w.file_view.panels
    start, end = _plots_share_one_axis(panels)
    assert start == 0.0 and end == pytest.approx(5.5, abs=0.01)
    timeline = panels.tracks[0].timeline
    key = timeline.key
    assert [label.text for _, label in key.items] == w.predictor.labels  # every label, in the legend...
    assert not key.sceneBoundingRect().intersects(timeline.vb.sceneBoundingRect())  # ...outside the data
    strip = panels.tracks[0].strip
    segs = w.file_view.analysis.segments
    assert len(strip.bars.opts["x0"]) == sum(s.speech for s in segs) < len(segs)  # gaps where no speech
    silent = [s.speech for s in segs if s.end_s <= 2.0]  # 2 s of silence, then 3 s of a voice
    voiced = [s.speech for s in segs if 2.0 <= s.start_s and s.end_s <= 5.0]
    assert silent and not any(silent) and voiced and all(voiced)
    # The curves run from the first window's start to the last one's end, at least 2 px wide...
    xs = np.concatenate([c.getData()[0] for c in timeline.lines.values()])
    assert xs.min() == pytest.approx(segs[0].start_s) and xs.max() == pytest.approx(segs[-1].end_s)
    assert all(c.opts["pen"].width() >= 2 for c in timeline.lines.values())
    assert timeline.getAxis("left").labelText == "probability"  # what the curves' axis measures
    assert [text for _, text in strip.getAxis("left")._tickLevels[0]] == ["emotion"]  # what the strip's colour is
    # ...and wherever the strip has a colour, it is the top curve's there
    labels = list(timeline.lines)
    for x0, width, brush in zip(strip.bars.opts["x0"], strip.bars.opts["width"], strip.bars.opts["brushes"]):
        t = x0 + width / 2
        values = [np.interp(t, *timeline.lines[k].getData()) for k in labels]
        top = labels[int(np.argmax(values))]
        assert brush.color().name() == strip._brush(top).color().name()
    ends = [x0 + width for x0, width in zip(strip.bars.opts["x0"], strip.bars.opts["width"])]
    assert max(ends) == pytest.approx(segs[-1].end_s)
    w.close()


def test_no_tick_label_of_the_timeline_is_clipped(qtbot, tmp_path, talk):
    w = open_window(qtbot, tmp_path)
    _analysed(qtbot, w, talk)
    axis = w.file_view.panels.tracks[0].timeline.getAxis("left")
    image = QtGui.QImage(100, 100, QtGui.QImage.Format.Format_ARGB32)
    painter = QtGui.QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    texts = {text: rect for rect, _, text in specs[2]}
    assert set(texts) == {"0", "0.5", "1"}
    bounds = axis.boundingRect()
    assert all(bounds.contains(rect) for rect in texts.values()), (bounds, texts)
    w.close()


def test_the_waveform_scale_follows_the_recent_peak_with_a_floor(qtbot, tmp_path):
    quiet = write_audio(tmp_path / "quiet.wav", speechlike(2.0) * 0.05, 16000)
    w = open_window(qtbot, tmp_path)
    _analysed(qtbot, w, quiet)
    low, high = w.file_view.panels.waveform.vb.viewRange()[1]
    peak = float(np.abs(speechlike(2.0) * 0.05).max())
    assert high == pytest.approx(peak * 1.1, rel=0.05) and low == -high  # a quiet voice fills the plot
    silent = write_audio(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    _analysed(qtbot, w, silent)
    assert w.file_view.panels.waveform.vb.viewRange()[1][1] == pytest.approx(0.02)  # the floor: flat, not noise
    w.close()


def test_the_live_waveform_is_the_streams_envelope_whatever_the_chunking(qtbot):
    from serapp.gui.plots import WaveformPlot, configure_pyqtgraph

    configure_pyqtgraph()
    y = speechlike(12.0, seed=4) * 0.3
    plot = WaveformPlot(points=1200)
    plot.stream(10.0, 16000)
    rng = np.random.default_rng(0)
    pos = 0
    while pos < y.size:  # odd chunk sizes, as audio arrives
        n = int(rng.integers(1, 3000))
        plot.push(y[pos : pos + n])
        pos += n
    block = 10 * 16000 // 1200
    whole = y.size // block
    last = y[(whole - 1200) * block : whole * block].reshape(1200, block)  # the newest 1200 blocks
    x, env = plot.curve.getData()
    np.testing.assert_array_equal(env[0::2], last.min(axis=1))
    np.testing.assert_array_equal(env[1::2], last.max(axis=1))
    # The newest complete block ends where the stream's newest sample is less the unfinished block.
    assert x[-1] + plot.curve.pos().x() == pytest.approx(-(y.size - whole * block) / 16000)
    assert plot.vb.viewRange()[1][1] == pytest.approx(float(np.abs(last).max()) * 1.1, rel=1e-5)


def test_the_live_views_plots_share_one_time_axis(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path)
    w.attach_source(FileSource(samples=speechlike(20.0), sample_rate=16000, realtime=True, loop=True))
    w.source.start()
    qtbot.waitUntil(lambda: w.live.last_reading is not None, timeout=20000)
    start, end = _plots_share_one_axis(w.live.panels)
    assert end - start == pytest.approx(10.0) and -0.001 <= end <= 0.051
    w.stop_capture()
    w.close()


def test_live_curves_scroll_with_the_clock_and_take_data_only_when_a_reading_arrives(qtbot):
    from serapp.feature_config import FrontEndConfig
    from serapp.gui.time_panels import TimePanels

    panels = TimePanels(FrontEndConfig(), ["neutral", "happy"], live_seconds=10.0)
    qtbot.addWidget(panels)
    track = panels.tracks[0]
    track.add(5.0, {"neutral": 0.2, "happy": 0.8}, 0.5, 10.0)
    track.redraw(6.0, 0.0)
    curve = track.timeline.lines["happy"]
    data = curve.getData()

    def at(item, plot, x, y):  # where a point of an item lands in its plot's data coordinates
        return item.mapToItem(plot.getViewBox().childGroup, QtCore.QPointF(x, y))

    assert at(curve, track.timeline, data[0][-1], data[1][-1]).x() == pytest.approx(-1.0)  # read 1 s ago
    assert data[1][-1] == pytest.approx(0.8)
    track.redraw(7.5, 0.0)  # audio moved on, no new reading
    assert curve.getData()[0] is data[0]  # the curve was not handed its data again...
    assert at(curve, track.timeline, data[0][-1], 0).x() == pytest.approx(-2.5)  # ...it moved with the clock
    bars = track.strip.bars
    # its strip bar is a hop wide around the reading's time (the window's centre, where its speech is)
    assert at(bars, track.strip, bars.opts["x0"][-1] + bars.opts["width"][-1], 0).x() == pytest.approx(-2.25)


def test_two_models_read_the_same_audio_side_by_side(qtbot, tmp_path, talk):
    other = make_bundle(tmp_path / "other.safetensors", labels=("neutral", "happy", "sad", "angry"), window_s=2.0,
                        seed=5)[0]
    w = open_window(qtbot, tmp_path)
    w.open_compare(str(other))
    qtbot.waitUntil(lambda: w.compare_predictor is not None, timeout=20000)
    assert w.live.comparing and w.live.readouts[1].isVisibleTo(w.live)
    w.attach_source(FileSource(samples=speechlike(30.0, seed=4), sample_rate=16000, realtime=True, loop=True))
    w.source.start()
    before = [r.updates for r in w.live.readouts]
    qtbot.waitUntil(lambda: all(r.updates >= b + 3 for r, b in zip(w.live.readouts, before)), timeout=30000)
    a, b = w.live.workers
    assert a.analyzer.predictor is w.predictor and b.analyzer.predictor is w.compare_predictor
    assert a.analyzer.settings.window_for(a.analyzer.predictor) == 1.0  # each model its own window...
    assert b.analyzer.settings.window_for(b.analyzer.predictor) == 2.0
    assert w.live.readouts[1].labels == ["neutral", "happy", "sad", "angry"]  # ...and its own labels
    assert len(w.live.panels.tracks) == 2
    _plots_share_one_axis(w.live.panels)
    w.stop_capture()
    _analysed(qtbot, w, talk)
    fv = w.file_view
    assert fv.compared is not None and len(fv.panels.tracks) == 2 and fv.readouts[1].isVisibleTo(fv)
    assert "the models agree on" in fv.title.full_text()
    from serapp.gui.file_view import agreement

    share, n = agreement(fv.analysis.segments, fv.compared.segments)
    assert n > 0 and f"{share:.0%} of {n} windows" in fv.title.full_text()
    w.close()


def test_presentation_mode_is_full_screen_large_and_nothing_else(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path)
    w.attach_source(FileSource(samples=speechlike(30.0, seed=1), sample_rate=16000, realtime=True, loop=True))
    w.source.start()
    w.present_action.trigger()  # F11
    p = w.presentation
    assert p is not None and p.isFullScreen()
    qtbot.waitUntil(lambda: p.word.text() in w.predictor.labels, timeout=20000)
    top = w.live.last_reading.label
    assert p.word.text() == top and p.bar.value > 0
    assert p.word.font().pixelSize() >= 0.19 * p.height() * word_scale(p.bar.value)  # smaller when less sure
    assert p.spectrogram._count > 0  # the spectrogram scrolls there too
    widgets = [c for c in p.findChildren(QtWidgets.QWidget) if c.isVisibleTo(p)]
    assert {type(c).__name__ for c in widgets} <= {"QLabel", "ConfidenceBar", "GraphicsLayoutWidget", "QWidget"}
    qtbot.keyClick(p, QtCore.Qt.Key.Key_Escape)
    assert w.presentation is None
    w.stop_capture()
    w.close()


def test_the_arousal_valence_point_is_the_weighted_mean_of_the_placements(qtbot, tmp_path):
    x, y = circumplex_point({"happy": 1.0})
    assert (x, y) == pytest.approx((math.cos(math.radians(7.8)), math.sin(math.radians(7.8))))
    assert circumplex_point({"neutral": 1.0}) == (0.0, 0.0)
    mix = circumplex_point({"angry": 0.5, "sad": 0.5})
    expected = [0.5 * (f(math.radians(99.0)) + f(math.radians(207.5))) for f in (math.cos, math.sin)]
    assert mix == pytest.approx(tuple(expected))
    assert set(CIRCUMPLEX_DEGREES) == {"happy", "surprised", "angry", "fearful", "disgust", "sad", "calm"}
    w = open_window(qtbot, tmp_path)
    panel = w.live.circumplex
    for i in range(20):
        panel.add({"happy": i / 20, "sad": 1 - i / 20})
    assert len(panel.points) == panel.points.maxlen == 12  # a short trail
    sizes = [spot.size() for spot in panel.scatter.points()]
    assert sizes == sorted(sizes)  # the newest largest (and most opaque)
    w.close()


@pytest.mark.parametrize("size", [(230, 190), (320, 260), (600, 420)])
def test_the_arousal_valence_names_never_cover_each_other_the_circle_or_leave_the_plot(qtbot, size):
    from serapp.gui.widgets import CircumplexWidget

    panel = CircumplexWidget()
    qtbot.addWidget(panel)
    panel.resize(*size)
    panel.show()
    qtbot.waitExposed(panel)
    QtWidgets.QApplication.processEvents()
    vb = panel.getPlotItem().vb
    rects = {k: t.sceneBoundingRect() for k, t in panel.names.items()}
    assert set(rects) == set(CIRCUMPLEX_DEGREES)
    names = list(rects)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not rects[a].intersects(rects[b]), (a, b, size)
    for k, r in rects.items():
        assert vb.sceneBoundingRect().contains(r), (k, size)  # drawn whole
        view = vb.mapSceneToView(r).boundingRect()  # in data units: every corner's side of the circle
        nearest_x = min(max(0.0, view.left()), view.right())
        nearest_y = min(max(0.0, view.top()), view.bottom())
        assert math.hypot(nearest_x, nearest_y) > 1.0, (k, size)  # outside it, where no trail point goes


def test_presenting_a_file_shows_its_reading_even_when_asked_before_it_is_read(qtbot, tmp_path, talk):
    w = open_window(qtbot, tmp_path)
    qtbot.waitUntil(lambda: w.predictor is not None, timeout=30000)
    w.open_file(str(talk))
    w.toggle_presentation()  # as `serapp FILE --present` asks: before the analysis is done
    p = w.presentation
    qtbot.waitUntil(lambda: w.file_view.analysis is not None and talk.name in p.caption.text(), timeout=30000)
    overall = w.file_view.analysis.overall
    assert p.word.text() == overall.label and p.bar.value == pytest.approx(overall.probabilities[overall.label])
    assert p.spectrogram.image.width() > 0 and p.spectrogram.viewRange()[0][1] == pytest.approx(
        w.file_view.analysis.duration_s, abs=0.01)
    w.file_view.reading_now.emit(None, None)  # the playback cursor over a window without speech
    assert p.word.text() != overall.label
    qtbot.keyClick(p, QtCore.Qt.Key.Key_Escape)
    assert w.presentation is None
    w.file_view.reading_now.emit(overall.probabilities, overall.sure)  # no presentation listens any more
    w.tabs.setCurrentWidget(w.live)
    w.toggle_presentation()  # from the live view: the microphone's, as before
    assert w.presentation.caption.isHidden() and w.presentation.show_reading in w.live.reading_listeners
    w.toggle_presentation()
    w.close()


def test_messages_have_one_place_and_long_ones_are_elided(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path)
    w.resize(900, 600)
    text = "a very long message " * 30
    w.notify(text)
    QtWidgets.QApplication.processEvents()
    tip = QtGui.QTextDocumentFragment.fromHtml(w.banner.toolTip()).toPlainText()
    assert w.banner.full_text() == text and tip.strip() == text.strip()
    assert w.banner.text() != text and w.banner.text().endswith("…")
    assert w.statusBar().currentMessage() == ""  # not also in the status bar
    fields = [w.device_label, w.overflow_label, w.timing_label, w.model_label]
    rects = [f.geometry() for f in fields]
    assert all(not a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])  # never run together
    w.close()


def test_the_command_line_opens_a_file_a_comparison_and_presentation(tmp_path, talk):
    other = make_bundle(tmp_path / "other.safetensors", window_s=1.5, seed=7)[0]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SERAPP_SETTINGS": str(tmp_path / "s.ini"),
           "SERAPP_STARTUP_REPORT": "1"}
    shot = tmp_path / "present.png"
    proc = subprocess.run([sys.executable, "-m", "serapp", str(talk), "--compare", str(other), "--present",
                           "--quit-after", "12", "--screenshot", str(shot)], env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "torch imported: False" in proc.stderr  # the window was on screen before torch
    # ... and before its plots: the frame first, then the views, then the model.
    moments = [float(re.search(rf"{what} at ([0-9.]+)", proc.stderr).group(1))
               for what in ("first expose", "views built", "model loaded")]
    assert moments == sorted(moments)
    assert QtGui.QImage(str(shot)).width() > 0 and "comparing with other.safetensors" in proc.stderr
    bad = subprocess.run([sys.executable, "-m", "serapp", str(tmp_path / "absent.wav")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "absent.wav: no such file" in bad.stderr
    view = subprocess.run([sys.executable, "-m", "serapp", "--view", "listening", "--quit-after", "3"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert view.returncode == 0, view.stderr


def test_a_model_compared_with_itself_or_its_namesake_is_named_apart(qtbot, tmp_path):
    from serapp.gui.live_view import model_names
    from serapp.predictor import load_model

    w = open_window(qtbot, tmp_path)
    w.open_compare(str(w.predictor.path))  # the same model twice
    qtbot.waitUntil(lambda: w.compare_predictor is not None, timeout=20000)
    titles = [r.title.text() for r in w.live.readouts]
    assert titles == ["m", "m (same model)"]
    (tmp_path / "elsewhere").mkdir()
    namesake = load_model(make_bundle(tmp_path / "elsewhere" / "m.safetensors", seed=3)[0], device="cpu")
    assert model_names(w.predictor, namesake) == [f"{tmp_path.name}/m", "elsewhere/m"]
    w.close()


def test_comparing_two_models_on_a_file_keeps_every_panel_legible(qtbot, tmp_path, talk):
    """Two models: the spectrogram keeps its height, both timelines are equally tall with one
    legend beside them, both readouts are whole, and the arousal-valence panel shows a point for
    each model, with a key."""
    other = make_bundle(tmp_path / "other.safetensors", window_s=1.5, seed=7)[0]
    w = open_window(qtbot, tmp_path)
    w.resize(1024, 640)  # a small window, where room is short
    w.open_compare(str(other))
    qtbot.waitUntil(lambda: w.compare_predictor is not None, timeout=20000)
    _analysed(qtbot, w, talk)
    panels = w.file_view.panels
    _plots_share_one_axis(panels)
    from serapp.gui.time_panels import SPECTROGRAM_MIN_PX

    assert panels.spectrogram.sceneBoundingRect().height() >= SPECTROGRAM_MIN_PX - 1
    heights = [round(t.timeline.vb.sceneBoundingRect().height()) for t in panels.tracks]
    assert len(heights) == 2 and heights[0] == heights[1] > 0
    keys = [t.timeline.key for t in panels.tracks if t.timeline.key.isVisible()]
    assert len(keys) == 1 and [label.text for _, label in keys[0].items] == w.predictor.labels
    for readout in w.file_view.readouts:
        assert readout.isVisible()
        for label in readout.findChildren(QtWidgets.QLabel):
            if label.isVisible() and label.text():
                assert label.width() >= label.sizeHint().width() - 1, label.text()  # nothing clipped
    circle = w.file_view.circumplex
    assert circle.models == 2 and [len(points) for points, _ in circle.series] == [1, 1]  # both models' readings
    assert circle.key.isVisible() and [label.text for _, label in circle.key.items] == \
        [r.title.text() for r in w.file_view.readouts]
    w.close()
