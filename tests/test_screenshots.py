"""The README's screenshot script runs after any change to the GUI (generated audio here; the
README's pictures were made with RAVDESS speech)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import virtual_mic as vm
from PySide6 import QtGui

ROOT = Path(__file__).resolve().parents[1]
VIEWS = ("live", "file", "compare", "presentation", "listening", "calibration")


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed (apt-get install xvfb xauth)")
@pytest.mark.skipif(bool(vm.available()), reason=f"the script plays into a virtual microphone: {vm.available()}")
def test_the_screenshot_script_makes_one_picture_per_view(tmp_path):
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, str(ROOT / "docs" / "make_screenshots.py"),
           "--audio", "", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "xcb"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for view in VIEWS:
        img = QtGui.QImage(str(tmp_path / f"{view}.png"))
        assert img.width() >= 800 and img.height() >= 500, view
