""""Adapt to my voice": a short guided take, checked, turned into a voice profile (no Qt here;
serapp/gui/calibration.py is its dialog).

The person reads a few plain sentences in their normal voice for about 20 s. The take is
checked before anything is saved (enough speech, not clipped, not silence: one line each
saying what to do). It is kept beside the profile as `NAME.wav` (nothing recorded is lost, and
a profile can be made again from it for another model); the profile is made from it exactly as
`serapp profile create NAME NAME.wav` would make it.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf

from serapp.adaptation import WINDOW_HOP_S
from serapp.analysis import adapt_to_file, make_gate, speech_frames
from serapp.predictor import window_starts
from serapp.files import write_atomically
from serapp.profiles import (
    ProfileError,
    ProfileStore,
    VoiceProfile,
    check_name,
    from_voice,
    too_little_speech,
)
from serapp.settings import AnalysisSettings

TAKE_S = 20.0  # what the dialog asks for
CLIP_LEVEL = 0.999  # a sample at or above this (of full scale) is clipped
MAX_CLIPPED = 0.001  # the share of clipped samples a take may have
SILENT_DBFS = -45.0  # a take whose loudest sample is quieter than this heard no voice

SENTENCES = (
    "The train to the coast leaves at half past nine.",
    "Please put the blue folder back on the shelf.",
    "We walked along the river until the rain stopped.",
    "My neighbour grows tomatoes and beans in the garden.",
    "The meeting starts on Tuesday in the small room.",
    "Turn left at the bakery and the library is on your right.",
)


def check_take(samples: np.ndarray, rate: int, settings: AnalysisSettings = AnalysisSettings(), gate=None,
               window_s: float = 3.0) -> str | None:
    """Why a take cannot make a profile (one line, what to do), or None when it can. Its speech
    is counted as the profile will count it: model-length (`window_s`) speech windows at the
    voice's hop (serapp.profiles.MIN_SPEECH_S, the rule `profile create` keeps too)."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if samples.size == 0:
        return "nothing was recorded: is the microphone on?"
    peak = float(np.abs(samples).max())
    if peak <= 10 ** (SILENT_DBFS / 20):
        return (f"only silence was heard (the loudest moment is {20 * np.log10(max(peak, 1e-9)):.0f} dBFS): "
                "is the right microphone chosen, and unmuted?")
    clipped = float((np.abs(samples) >= CLIP_LEVEL).mean())
    if clipped > MAX_CLIPPED:
        return f"the take is clipped ({100 * clipped:.1f}% of it at full scale): move back or lower the input gain"
    gate = gate or make_gate(settings, rate)
    decisions = gate.scores(samples, reset=True) >= settings.gate_threshold
    window, hop = int(round(window_s * rate)), int(round(WINDOW_HOP_S * rate))
    starts = window_starts(samples.size, window, hop)
    speech = sum(speech_frames(decisions, gate.frame, s, min(s + window, samples.size))[0] * gate.frame / rate
                 >= settings.min_speech_s - 1e-9 for s in starts)
    return too_little_speech(speech * WINDOW_HOP_S, "read the sentences aloud for the whole take")


def profile_from_take(name: str, samples: np.ndarray, rate: int, predictor, store: ProfileStore,
                      settings: AnalysisSettings = AnalysisSettings(), replace: bool = False) -> VoiceProfile:
    """Save the take as NAME.wav beside the profiles, then the profile made from it."""
    name = check_name(name)
    if not replace:
        store.check_free(name)
    reason = check_take(samples, rate, settings, window_s=predictor.model_window / predictor.sample_rate)
    if reason:
        raise ProfileError(f"voice profile {name!r}: {reason}")
    wav = store.take(name)
    write_atomically(wav, lambda tmp: sf.write(tmp, np.asarray(samples, np.float32), rate, format="WAV", subtype="PCM_16"))
    voice = predictor.new_voice()
    if voice is None:
        raise ProfileError(f"voice profile {name!r}: the model does not adapt to a voice")
    gate = make_gate(settings, predictor.sample_rate) if settings.gate else None
    adapt_to_file(wav, predictor, voice, settings, gate)
    profile = from_voice(name, voice, predictor)
    store.save(profile, replace=replace)
    return profile

