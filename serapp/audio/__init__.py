"""Audio input: files now, microphone sources and the ring buffer with the live app."""

from serapp.audio.io import (
    AUDIO_EXTENSIONS,
    iter_audio_files,
    load_audio,
    resample,
    to_mono,
    trim_silence,
)

__all__ = ["AUDIO_EXTENSIONS", "iter_audio_files", "load_audio", "resample", "to_mono", "trim_silence"]
