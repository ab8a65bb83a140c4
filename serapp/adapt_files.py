"""A voice adapted to from files, for the command lines (`serapp predict --adapt`, `serapp profile
create`), and the paths given, said in one line."""

from __future__ import annotations

import sys

from serapp.errors import SerappError, UsageError, counted, printable
from serapp.settings import AnalysisSettings


def adapt_voice(paths: list[str], predictor, settings: AnalysisSettings, gate, unreadable, what: str = "--adapt"):
    """A voice's adaptation state from the speech of `paths` (one speaker); None, said (prefixed
    with `what`), when no speech was found. A model that cannot adapt is a usage error."""
    from serapp.analysis import adapt_to_file
    from serapp.audio.io import iter_audio_files
    from serapp.profiles import speech_heard

    if not predictor.adapts:
        raise UsageError(f"{what}: the model {predictor.path.name if predictor.path else ''} does not adapt to a "
                         "voice (it has no speaker normalisation)")
    voice = predictor.new_voice()
    for path in iter_audio_files(paths, on_error=unreadable):
        try:
            adapt_to_file(path, predictor, voice, settings, gate)
        except SerappError as exc:
            print(f"serapp: {what}: {exc}", file=sys.stderr)
    if not voice.adapted:
        print(f"serapp: {what}: no speech found in {some_paths(paths)}: nothing to adapt to", file=sys.stderr)
        return None
    print(f"serapp: adapted to the voice in {some_paths(paths)}: {counted(voice.windows, 'speech window')} "
          f"({speech_heard(voice.seconds)})", file=sys.stderr)
    return voice


def some_paths(paths: list[str], shown: int = 3) -> str:
    """The paths given, for one line: all of a few, else how many and the first few."""
    names = [printable(p) for p in paths[:shown]]
    if len(paths) <= shown:
        return ", ".join(names)
    return f"{len(paths)} files or folders ({', '.join(names)}, …)"
