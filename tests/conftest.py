"""Shared fixtures. Every test makes its own small audio and models; no corpus is needed."""

from __future__ import annotations

import pytest
from helpers import make_bundle, speechlike, write_audio


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path_factory, monkeypatch):
    """Voice profiles (serapp.profiles) go to a folder of the test's own, never the user's."""
    folder = tmp_path_factory.mktemp("serapp-data")
    monkeypatch.setenv("SERAPP_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def tiny_bundle(tmp_path):
    path, _ = make_bundle(tmp_path / "tiny.safetensors")
    return path


@pytest.fixture
def clip(tmp_path):
    return write_audio(tmp_path / "clip.wav", speechlike(2.5), 16000)


@pytest.fixture(scope="session")
def virtual_mic(tmp_path_factory):
    """A private PulseAudio whose default input is a FIFO; PortAudio is re-initialised to see it."""
    import os

    import virtual_mic as vm

    reason = vm.available()
    if reason:
        pytest.skip(reason)
    mic = vm.VirtualMic(tmp_path_factory.mktemp("pulse")).start()
    saved = {k: os.environ.get(k) for k in mic.env}
    os.environ.update(mic.env)
    import sounddevice

    sounddevice._terminate()  # PortAudio enumerates devices once; make it look again
    sounddevice._initialize()
    yield mic
    mic.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _destroy_qt_windows() -> bool:
    """Close and delete every top-level window now, while nothing is being painted (False:
    there was none)."""
    import gc
    import sys

    if "PySide6.QtWidgets" not in sys.modules:
        return False
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is None or not app.topLevelWidgets():
        return False
    app.closeAllWindows()
    for w in app.topLevelWidgets():
        w.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    app.processEvents()
    gc.collect()
    return True


@pytest.fixture(autouse=True)
def _qt_objects_die_between_tests():
    """Python's cyclic garbage collector runs at arbitrary moments; when it frees a PySide6
    object of an earlier test's window while Qt is painting, Qt can deadlock in the object's
    destructor (seen once here, a QMenu during a repaint). So the collector is off during a
    test, and windows are closed, deleted and collected between tests (a full collection costs
    about a second once torch is loaded, so tests without windows skip it)."""
    import gc

    gc.disable()
    try:
        yield
    finally:
        _destroy_qt_windows()
        gc.enable()


@pytest.fixture(scope="session", autouse=True)
def _qt_teardown_before_interpreter_exit():
    """Destroy Qt widgets while QApplication lives: PySide6 can crash when they are collected
    during interpreter shutdown (the app does the same in serapp.gui.app.run_app)."""
    yield
    _destroy_qt_windows()
