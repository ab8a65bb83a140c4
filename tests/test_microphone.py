"""Capture through the real stack: PortAudio -> ALSA pulse plugin -> a PulseAudio pipe source."""

import os
import subprocess
import sys

import numpy as np
import pytest
import virtual_mic as vm
from helpers import make_bundle, speechlike

from serapp.audio.sources import (
    AudioDeviceError,
    find_input_device,
    list_input_devices,
    open_microphone,
)
from serapp.live import LiveAnalyzer
from serapp.predictor import load_model
from serapp.settings import AnalysisSettings


def test_devices_are_listed_with_the_default_marked(virtual_mic):
    devices = list_input_devices()
    assert any(d.is_default for d in devices)
    default = find_input_device(None)
    assert default.is_default and "[default]" in default.label
    assert find_input_device(default.index) == default
    assert find_input_device(default.name.upper()[:3].lower()).name.lower().startswith(default.name.lower()[:3])


def test_capture_is_sample_exact(virtual_mic):
    src, note = open_microphone(None)
    try:
        assert note is None and src.sample_rate == 16000 and src.active
        virtual_mic.until_heard(lambda: src.ring.written > 0)
        start = src.ring.written
        clip = speechlike(1.0, 16000, seed=7)
        virtual_mic.write(clip)
        virtual_mic.until_heard(lambda: src.ring.written - start >= clip.size)
        got, _, lost = src.ring.since(start)
    finally:
        src.stop()
    expected = vm.VirtualMic.quantized(clip)
    # Find the clip in what was captured (the source may deliver silence before the writer starts).
    corr = np.correlate(got, expected[:4000], "valid")
    k = int(np.argmax(corr))
    assert lost == 0 and src.overflows == 0
    np.testing.assert_array_equal(got[k : k + clip.size], expected)


def test_live_readout_follows_the_microphone(virtual_mic, tmp_path):
    path, _ = make_bundle(tmp_path / "m.safetensors", window_s=1.0)
    predictor = load_model(path, device="cpu")
    src, _ = open_microphone(None)
    try:
        analyzer = LiveAnalyzer(src, predictor, AnalysisSettings(hop_s=0.25))
        virtual_mic.until_heard(lambda: src.ring.written > 0)
        start = src.ring.written
        clip = speechlike(1.5, 16000, seed=2)
        virtual_mic.write(clip)
        virtual_mic.until_heard(lambda: src.ring.written - start >= clip.size)  # the event, not a guess at latency
        reading = analyzer.poll()
    finally:
        src.stop()
    assert reading is not None and reading.speech and reading.label in predictor.labels


def test_an_unknown_device_falls_back_to_the_default(virtual_mic):
    src, note = open_microphone("no such microphone")
    try:
        assert src.device.is_default and src.active
        assert "no such microphone" in note and "using the default input" in note
    finally:
        src.stop()
    with pytest.raises(AudioDeviceError, match="input device 999: no input device with that index"):
        find_input_device(999)


def test_a_vanishing_device_stops_cleanly_with_a_message(tmp_path):
    reason = vm.available()
    if reason:
        pytest.skip(reason)
    # Its own PulseAudio, in a child process, so killing it leaves the shared fixture alone.
    code = f"""
import os, sys, time
sys.path.insert(0, {str(os.path.dirname(__file__))!r})
import virtual_mic as vm
mic = vm.VirtualMic({str(tmp_path)!r}).start()
os.environ.update(mic.env)
from serapp.audio.sources import open_microphone
src, _ = open_microphone(None)
mic.write(__import__('numpy').zeros(1600, 'float32'))
assert src.active
mic.stop()
t0 = time.time()
while src.active and time.time() - t0 < 5:
    time.sleep(0.05)
print('ACTIVE', src.active)
print('ERROR', src.error)
src.stop()
print('STOPPED')
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "ACTIVE False" in proc.stdout, proc.stdout + proc.stderr
    assert "ERROR input device 'default' stopped (disconnected?)" in proc.stdout
    assert "STOPPED" in proc.stdout and "Traceback" not in proc.stderr


def test_missing_portaudio_is_a_clear_error():
    # Hide the library the way a Linux machine without libportaudio2 does: find_library finds nothing.
    code = """
import ctypes.util
ctypes.util.find_library = lambda name: None
from serapp.audio.sources import list_input_devices, AudioDeviceError
try:
    list_input_devices()
except AudioDeviceError as e:
    print(e)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "PortAudio is not installed" in proc.stdout and "libportaudio2" in proc.stdout, proc.stdout + proc.stderr
    assert "file analysis still works" in proc.stdout


def test_without_portaudio_the_virtual_microphone_says_what_to_install(tmp_path):
    """The README's test command on a machine without PortAudio: the tests that need it skip with
    this reason instead of erroring (here PortAudio is hidden from ctypes in a child process)."""
    (tmp_path / "sitecustomize.py").write_text(
        "import ctypes.util\n_find = ctypes.util.find_library\n"
        "ctypes.util.find_library = lambda name: None if 'portaudio' in name else _find(name)\n")
    tests = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), tests])}
    out = subprocess.run([sys.executable, "-c", "import virtual_mic; print(virtual_mic.available())"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "PortAudio is not installed (apt-get install libportaudio2)"
