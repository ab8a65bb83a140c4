"""The one timeline format: a row per window, for `serapp predict --window W --format csv`, the
file view's export and the CSV a recording writes beside its WAV. No torch: the recorder and
the CLI's writer need it before (or without) a model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class WindowReading:
    start_s: float
    end_s: float
    speech: bool
    speech_fraction: float
    probabilities: dict[str, float] | None  # None: no speech (and the gate on)
    label: str | None
    sure: bool | None = None  # the top probability reaches the model's threshold (None: no speech)

    def to_dict(self) -> dict:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "speech": self.speech,
                "speech_fraction": round(self.speech_fraction, 3), "label": self.label, "sure": self.sure,
                "probabilities": None if self.probabilities is None else
                {k: round(v, 6) for k, v in self.probabilities.items()}}


NO_SPEECH = "no speech"  # what a reading without speech says, in the CSV and the table


def probability_cells(probabilities: dict[str, float] | None, labels: list[str]) -> list[str]:
    return [f"{probabilities[k]:.6f}" for k in labels] if probabilities else [""] * len(labels)


def sure_cell(sure: bool | None) -> str:
    return "" if sure is None else str(int(sure))


def timeline_header(labels: list[str]) -> list[str]:
    return ["path", "start_s", "end_s", "speech", "speech_fraction", "label", "sure", *labels, "warning"]


def timeline_rows(path: str | Path, segments: Iterable[WindowReading], labels: list[str],
                  warning: str = "") -> Iterable[list]:
    """A row per window, empty probabilities where there is no speech."""
    for s in segments:
        yield [str(path), f"{s.start_s:.3f}", f"{s.end_s:.3f}", int(s.speech), f"{s.speech_fraction:.3f}",
               s.label or NO_SPEECH, sure_cell(s.sure), *probability_cells(s.probabilities, labels), warning]
