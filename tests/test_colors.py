"""The emotions' colours can be told apart: every two far apart in CIELAB, happy and surprised
clearly, and none a grey that looks disabled."""

import itertools
import math

from serapp.labels import EMOTION_COLORS, EMOTIONS


def _lab(hex_color: str) -> tuple[float, float, float]:
    """sRGB (D65) to CIELAB, the textbook formulas (a test needs no colour library for 8 colours)."""
    def linear(c: float) -> float:
        return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92

    r, g, b = (linear(int(hex_color[i : i + 2], 16) / 255) for i in (1, 3, 5))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(v: float) -> float:
        return v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def test_every_emotion_has_a_colour_far_from_every_other():
    lab = {e: _lab(EMOTION_COLORS[e]) for e in EMOTIONS}
    closest = min((math.dist(lab[a], lab[b]), a, b) for a, b in itertools.combinations(EMOTIONS, 2))
    assert closest[0] >= 30, closest
    assert math.dist(lab["happy"], lab["surprised"]) >= 50


def test_no_emotion_is_drawn_in_a_grey():
    for e in EMOTIONS:
        _, a, b = _lab(EMOTION_COLORS[e])
        assert math.hypot(a, b) >= 20, e
