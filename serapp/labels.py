"""The one emotion vocabulary shared by corpora loaders, bundles, the GUI and reports."""

# Canonical names, in the RAVDESS code order (01..08). Corpora map onto these.
EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

# Display colours per emotion (hex): every two at least 30 apart in CIELAB (happy and surprised
# about 100), none a grey that reads as disabled (chroma at least 20); tests/test_colors.py.
EMOTION_COLORS = {
    "neutral": "#8d6e4c",
    "calm": "#2a9d8f",
    "happy": "#e9a800",
    "sad": "#2f6bd6",
    "angry": "#d62828",
    "fearful": "#7b3fa0",
    "disgust": "#4c8c2a",
    "surprised": "#e0529c",
}


def emotion_color(label: str) -> str:
    """Colour for a label; labels outside the vocabulary get a neutral grey."""
    return EMOTION_COLORS.get(label, "#7f7f7f")
