"""Shared fixtures. Every test makes its own small audio and models; no corpus is needed."""

from __future__ import annotations

import pytest
from helpers import make_bundle, speechlike, write_audio


@pytest.fixture
def tiny_bundle(tmp_path):
    path, _ = make_bundle(tmp_path / "tiny.safetensors")
    return path


@pytest.fixture
def clip(tmp_path):
    return write_audio(tmp_path / "clip.wav", speechlike(2.5), 16000)
