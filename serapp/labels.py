"""The one emotion vocabulary shared by corpora loaders, bundles, the GUI and reports."""

# Canonical names, in the RAVDESS code order (01..08). Corpora map onto these.
EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

# Display colours per emotion (hex), chosen to stay readable on light and dark backgrounds.
EMOTION_COLORS = {
    "neutral": "#8c8c8c",
    "calm": "#4fa3a5",
    "happy": "#f2b705",
    "sad": "#3b6fd8",
    "angry": "#d93025",
    "fearful": "#8e44ad",
    "disgust": "#4c9a2a",
    "surprised": "#f28c28",
}


def emotion_color(label: str) -> str:
    """Colour for a label; labels outside the vocabulary get a neutral grey."""
    return EMOTION_COLORS.get(label, "#7f7f7f")
