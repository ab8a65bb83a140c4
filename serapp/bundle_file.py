"""The safetensors file a model bundle is (serapp/bundle.py), checked by hand before any weight is
read: its header parsed so that what is wrong can be named (`read_header`), and the architecture
the metadata names built without memory against the file's tensors (`check_skeleton`). `meta` is
the bundle's BundleMeta."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from serapp.errors import BundleError

if TYPE_CHECKING:  # torch is imported where a model is built, not to read a header
    from torch import nn

MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


def read_header(path: Path, data: bytes, size: int | None = None) -> dict:
    """Parse the safetensors header ourselves, to name precisely what is wrong. `data`: the file,
    or its beginning (at least the header) when `size` gives the file's length."""
    if data[:4] == b"PK\x03\x04":
        raise BundleError(path, "is a PyTorch checkpoint (zip/pickle), not a serapp bundle; convert it with `ser-train export`")
    if len(data) < 10:
        raise BundleError(path, f"truncated or not a model bundle ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    looks_like_json = data[8:9] == b"{"
    if not looks_like_json or n > MAX_HEADER:
        raise BundleError(path, "not a serapp model bundle (no safetensors header)")
    if 8 + n > len(data):
        raise BundleError(path, f"truncated: the header needs {8 + n} bytes, the file has {len(data)}")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, ValueError, RecursionError):  # ValueError: JSONDecodeError, or a number too long
        raise BundleError(path, "corrupt: the safetensors header is not valid JSON (or nested too deep)") from None
    if not isinstance(header, dict):
        raise BundleError(path, "corrupt: the safetensors header is not a JSON object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise BundleError(path, "corrupt: __metadata__ must be a JSON object of strings")
    data_len = (len(data) if size is None else size) - 8 - n
    ends = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if (not isinstance(entry.get("dtype") if isinstance(entry, dict) else None, str)
                or not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
                or not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise BundleError(path, f"corrupt: tensor {name!r} has no valid dtype, shape and data_offsets")
        ends.append(offsets[1])
    if ends and max(ends) > data_len:
        raise BundleError(path, f"truncated: the weights need {max(ends)} bytes, the file holds {data_len}")
    return header


def check_skeleton(path: Path, header: dict, meta) -> None:
    """The architecture built without memory (meta device): hyper-parameters that would build a
    model unlike the file's tensors (or an absurdly large one) are refused before any allocation."""
    import torch

    from serapp.models import build_model

    try:
        with torch.device("meta"):
            skeleton = build_model(meta.architecture, meta.frontend.n_features, len(meta.labels), meta.hparams)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise BundleError(path, f"cannot build {meta.architecture!r} from the metadata: {first_line(exc)}") from None
    shapes = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    _check_state(path, skeleton, shapes, meta)


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_state(path: Path, model: nn.Module, shapes: dict[str, tuple], meta) -> None:
    """The model's tensors against the file's (names and shapes), before any weight is read."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}{' …' if len(extra) > 3 else ''}")
        raise BundleError(path, f"weights do not match architecture {meta.architecture!r}: {'; '.join(parts)}")
    for name, want in expected.items():
        got = shapes[name]
        if tuple(got) != tuple(want.shape):
            raise BundleError(
                path,
                f"weights do not match the metadata: tensor {name!r} is {list(got)} in the file, "
                f"but {meta.architecture!r} with {len(meta.labels)} labels and "
                f"{meta.frontend.n_features} features expects {list(want.shape)}",
            )
