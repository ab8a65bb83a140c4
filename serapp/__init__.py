"""serapp: speech emotion recognition, live from the microphone or from files."""

__version__ = "0.1.0"
