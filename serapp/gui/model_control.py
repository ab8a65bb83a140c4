"""The main window's models, loaded off the GUI thread: the model, and a second one to compare with
(a mixin of MainWindow, which owns the widgets and the messages).

torch is imported here, in the background, after the window is on screen. Its thread count is
process-wide, so it is set at the first load only, before any model runs.
"""

from __future__ import annotations

import math

from PySide6 import QtWidgets

from serapp.bundle import (
    BUNDLED_MODELS,
    bundled_model_path,
    default_bundle_path,
    read_bundle_meta,
    read_bundle_summary,
)
from serapp.errors import SerappError
from serapp.gui.status import plain_tooltip
from serapp.model_card import model_brief, model_card
from serapp.reading_cost import reading_cost_ms
from serapp.settings import LIVE_SHARE


def load_in_background(path: str | None, device: str, set_threads: bool):
    """(predictor, ms per reading, compute devices present, its model card): run on a worker thread."""
    from serapp.predictor import available_devices, load_model

    predictor = load_model(path, device=device, set_threads=set_threads)
    meta, parameters = read_bundle_summary(predictor.path)
    card = model_card(meta, predictor.path, parameters)
    return predictor, reading_cost_ms(predictor), available_devices(), card


def live_hop_for(cost_ms: float, hop_s: float) -> float | None:
    """The hop, in tenths of a second, of which a reading of `cost_ms` takes at most the live
    budget's share (settings.LIVE_SHARE); None where `hop_s` is that long already."""
    hop = round(math.ceil(round(cost_ms / LIVE_SHARE / 100, 6)) / 10, 1)
    return hop if hop > hop_s else None  # a hop already long enough stays, without a message


def timing_text(cost_ms: float, hop_s: float, measured: str) -> str:
    """The status bar's cost field: one figure (serapp.reading_cost), and the budget at this hop."""
    return (f"model {cost_ms:.1f} ms per reading ({measured}); budget {LIVE_SHARE * hop_s * 1000:.0f} ms "
            f"at a {hop_s:g} s hop")


def model_summary(predictor) -> str:
    """The status bar's model field: name, architecture, device, its figures (its cost is the
    timing field's: one place for milliseconds)."""
    meta = predictor.meta
    t = meta.training
    parts = [f"{predictor.path.name if predictor.path else meta.architecture}", meta.architecture,
             predictor.device.type]
    ua = t.get("cross_validation", {}).get("ua", {}).get("mean")
    if ua:
        parts.append(f"UA {ua:.0%}")
    xc = t.get("cross_corpus", {})
    basic = xc.get("basic_ua", {}).get("mean") if isinstance(xc.get("basic_ua"), dict) else None
    if basic:  # the readout's own figure: the basic four, cold, on corpora never heard
        parts.append(f"unseen corpora {basic:.0%} (basic four)")
    elif xc.get("ua", {}).get("mean"):
        parts.append(f"unseen corpora {xc['ua']['mean']:.0%}")
    return "model: " + ", ".join(parts)


class ModelActions:
    def load_model_async(self, path: str | None = None) -> None:
        path = path or self.model_path
        if path is None and default_bundle_path() is None:
            self.model_label.setText("model: none")
            self.notify("no bundled model in this installation: open one with “Open model…”")
            return
        self.model_label.setText("model: loading…")
        self._load(path, self._model_loaded)

    def _load(self, path: str | None, done) -> None:
        device = self.compute_combo.currentText()
        first = not self._models_loaded  # torch's thread count: set once, before any model runs
        self._models_loaded += 1
        self.run_in_background(lambda: load_in_background(path, device, first), done, self._model_failed)

    def _adopt(self, loaded) -> tuple:
        predictor, cost_ms, devices, _ = loaded
        predictor.set_emotions(self.emotions)  # the emotions chosen in the app (basic four by default)
        for name in devices:
            if self.compute_combo.findText(name) < 0:
                self.compute_combo.addItem(name)
        hop = live_hop_for(cost_ms, self.hop_spin.value())
        if hop is not None:  # too slow for the live view: fewer readings, never falling behind
            self.notify(f"{predictor.path.name} needs {cost_ms:.0f} ms per reading, too slow for live readings every "
                        f"{self.hop_spin.value():g} s (a reading may take {LIVE_SHARE:.0%} of the hop): "
                        f"the live hop is now {hop:g} s")
            self.hop_spin.setValue(hop)
        return predictor, cost_ms

    def _model_loaded(self, loaded) -> None:
        self.build_views()
        predictor, cost_ms = self._adopt(loaded)
        self.predictor = predictor
        self.model_cost_ms = cost_ms
        self.live.set_predictor(predictor)
        self.restore_profile()  # the voice profile chosen last time, where it fits this model
        self.model_label.setText(model_summary(predictor))
        self.timing_label.setText(timing_text(cost_ms, self.hop_spin.value(), "measured at load"))
        self.window_spin.setSpecialValueText(f"window: model's ({predictor.window_s:g} s)")
        # Hovering the model field tells what the model was trained on, under which licences, and its figures.
        self.model_label.setToolTip(plain_tooltip(loaded[3]))  # a bundle's text is shown, never run as markup
        if self.model_path:
            self.settings.setValue("model", str(self.model_path))

    def compare_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Compare with model", "", "serapp bundles (*.safetensors)")
        if path:
            self.open_compare(path)

    def open_compare(self, path: str | None) -> None:
        """Read a second model on the same audio (None: the bundled one); each keeps its own
        front-end and window."""
        if path is not None:
            try:
                read_bundle_meta(path)
            except SerappError as exc:
                self.notify(str(exc))
                return
        self._load(path, self._compare_loaded)

    def _compare_loaded(self, loaded) -> None:
        self.build_views()
        predictor, _ = self._adopt(loaded)
        self.compare_predictor = predictor
        self.live.set_predictor(predictor, slot=1)  # the live model reads on, with the voice it learnt
        self.end_compare_action.setEnabled(True)
        self.notify(f"comparing with {predictor.path.name}")
        # The file on screen is read again by both; one on another tab waits until it is looked at.
        self.file_stale = self.file_view.analysis is not None
        self.reread_file_if_stale()

    def reread_file_if_stale(self) -> None:
        if self.file_stale and self.tabs.currentWidget() is self.file_view:
            self.file_stale = False
            self.open_file(str(self.file_view.analysis.path))

    def end_compare(self) -> None:
        """Back to one model: the live view drops the second without restarting the first, and
        the file view shows the first model's reading it already has."""
        if self.compare_predictor is None:
            return
        name, self.compare_predictor = self.compare_predictor.path.name, None
        self.live.set_predictor(None, slot=1)
        self.end_compare_action.setEnabled(False)
        fv, self.file_stale = self.file_view, False
        if fv.analysis is not None and fv.compared is not None:
            fv.show_analysis(fv.analysis, self.predictor.labels if self.predictor else None)
        self.notify(f"comparison with {name} ended")

    def _model_failed(self, exc) -> None:
        self.model_label.setText("model: failed")
        self.notify(str(exc))

    def bundled_models_menu(self, open_name=None, open_file=None) -> QtWidgets.QMenu:
        """The models this installation ships, by name (as `--model NAME`), and a file; each
        opened by `open_name` and `open_file` (by default: as the model)."""
        open_name, open_file = open_name or self.open_model, open_file or self.open_model_dialog
        menu = QtWidgets.QMenu(self)
        for name, (_, about) in BUNDLED_MODELS.items():
            if bundled_model_path(name) is not None:
                action = menu.addAction(f"Bundled: {name}", lambda name=name: open_name(name))
                action.setToolTip(about)
        menu.addSeparator()
        menu.addAction("From a file…", open_file)
        menu.setToolTipsVisible(True)
        return menu

    def compare_menu(self) -> QtWidgets.QMenu:
        """Compare with a bundled model by name (as `--compare NAME`) or a file, or end it."""
        menu = self.bundled_models_menu(self.open_compare, self.compare_dialog)
        menu.addSeparator()
        self.end_compare_action = menu.addAction("End comparison", self.end_compare)
        self.end_compare_action.setEnabled(False)
        return menu

    def open_model_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open model bundle", "", "serapp bundles (*.safetensors)")
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> None:
        try:
            meta = read_bundle_meta(path)
        except SerappError as exc:
            self.notify(str(exc))
            return
        self.model_path = path
        self.notify(model_brief(meta, path))
        self.load_model_async(path)

    def _compute_changed(self, name: str) -> None:
        self.settings.setValue("compute_device", name)
        if self.predictor is not None:
            self.load_model_async(str(self.predictor.path))
