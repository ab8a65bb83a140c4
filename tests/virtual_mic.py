"""A private PulseAudio daemon whose default input is a FIFO: a real microphone path for tests.

Recipe: ../shared/docs/virtual-mic.md. PortAudio reaches it through ALSA's pulse plugin, so
the code under test opens a real PortAudio input stream.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np


class VirtualMic:
    def __init__(self, root: Path, rate: int = 16000):
        self.root, self.rate = Path(root), rate
        self.fifo = self.root / "virtmic.fifo"
        self.env = {"XDG_RUNTIME_DIR": str(self.root), "PULSE_RUNTIME_PATH": str(self.root / "pulse")}

    def _run(self, *cmd, check=True):
        return subprocess.run(cmd, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=30, check=check)

    def start(self) -> "VirtualMic":
        self._run("pulseaudio", "-D", "--exit-idle-time=-1", "-n", "--load=module-native-protocol-unix",
                  "--load=module-null-sink sink_name=null", f"--log-target=file:{self.root / 'pulse.log'}")
        for _ in range(50):
            if self._run("pactl", "info", check=False).returncode == 0:
                break
            time.sleep(0.1)
        self._run("pactl", "load-module", "module-pipe-source", "source_name=virtmic", f"file={self.fifo}",
                  "format=s16le", f"rate={self.rate}", "channels=1")
        self._run("pactl", "set-default-source", "virtmic")
        return self

    def stop(self) -> None:
        self._run("pactl", "exit", check=False)

    def write(self, samples: np.ndarray, realtime: bool = True, block_s: float = 0.05, on_block=None) -> None:
        """Feed float samples (at `rate`) into the microphone, paced like real time.

        `on_block(first_sample, last_sample, t)` is called after each block is fully written,
        with t = time.perf_counter(): when those samples really entered the FIFO.
        """
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        block = int(block_s * self.rate) * 2
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        deadline = time.perf_counter() + samples.size / self.rate + 10.0  # nobody reading: give up
        try:
            t0 = time.perf_counter()
            for i in range(0, len(pcm), block):
                data = pcm[i : i + block]
                while data:
                    try:
                        data = data[os.write(fd, data):]
                    except BlockingIOError:
                        if time.perf_counter() > deadline:
                            raise TimeoutError("the virtual microphone's FIFO is not being read") from None
                        time.sleep(0.005)
                if on_block is not None:
                    on_block(i // 2, (i + block) // 2, time.perf_counter())
                if realtime:
                    time.sleep(max(0.0, t0 + (i + block) / (2 * self.rate) - time.perf_counter()))
        finally:
            os.close(fd)

    def until_heard(self, heard, timeout: float = 20.0) -> None:
        """Feed silence until `heard()` holds, as a real microphone goes on delivering: a stream
        just opened may not be linked to the source yet (what the FIFO gets before then reaches
        nobody), and after a clip the capture side hands over whole blocks, so the clip's tail
        can wait for the samples after it."""
        deadline = time.perf_counter() + timeout
        while not heard():
            if time.perf_counter() > deadline:
                raise TimeoutError("the capture stream never received the virtual microphone")
            self.write(np.zeros(int(0.05 * self.rate), np.float32))

    @staticmethod
    def quantized(samples: np.ndarray) -> np.ndarray:
        """What a float32 capture of `samples` reads back (int16 in, /32768 out)."""
        return (np.clip(samples, -1, 1) * 32767).astype(np.int16).astype(np.float32) / 32768.0


def available() -> str | None:
    """None when a virtual mic can be made here, else the reason it cannot."""
    # Found as sounddevice finds it, without importing sounddevice: its import would enumerate
    # the devices before the virtual microphone exists.
    if ctypes.util.find_library("portaudio") is None and importlib.util.find_spec("_sounddevice_data") is None:
        return "PortAudio is not installed (apt-get install libportaudio2)"
    for tool in ("pulseaudio", "pactl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
    return None


def start_for_app(prefix: str) -> tuple[VirtualMic, Path]:
    """For a script that runs the app on the virtual microphone: a started microphone whose
    PulseAudio server this process now uses, and a fresh folder; exits with the reason when
    PulseAudio is not at hand."""
    reason = available()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    mic = VirtualMic(folder).start()
    os.environ.update(mic.env)
    return mic, folder
