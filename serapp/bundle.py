"""Model bundles: one safetensors file holding the weights and everything needed to run them.

Layout: a standard safetensors file whose `__metadata__` has
  "format": "serapp-bundle", "format_version": "<int>", "meta": "<JSON of BundleMeta>".
Loading never unpickles anything. The metadata carries a SHA-256 over the tensors, so bit
rot in the weights is reported instead of producing silently wrong predictions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from serapp import __version__
from serapp.bundle_file import MAX_HEADER, check_skeleton, first_line, read_header
from serapp.errors import BundleError, UnknownModelError
from serapp.feature_config import FrontEndConfig
from serapp.files import special_kind, write_atomically
from serapp.readout import BASIC, basic_labels, check_calibration
from serapp.settings import MAX_WINDOW_S

if TYPE_CHECKING:  # torch is imported where weights are touched, not to read a bundle's metadata
    import torch
    from torch import nn

DEFAULT_BUNDLE_NAME = "default.safetensors"
# The models that ship with serapp, by the name `--model NAME` takes: (file, what it is).
# serapp model-info tells the rest.
BUNDLED_MODELS = {
    "default": (DEFAULT_BUNDLE_NAME, "Whisper base's encoder with a small head; adapts to a voice"),
    "small": ("small.safetensors", "a small CRNN, for machines too slow for the default"),
}

FORMAT_NAME = "serapp-bundle"
FORMAT_VERSION = 1
_MAX_LABELS = 64


@dataclass
class BundleMeta:
    """What a bundle says about its model, besides the weights."""

    architecture: str
    labels: list[str]
    frontend: FrontEndConfig
    window_s: float  # the clip length the model was trained on; long audio is windowed to it
    hparams: dict = field(default_factory=dict)
    trim_top_db: float | None = None  # trim leading/trailing silence before whole-clip predict
    training: dict = field(default_factory=dict)  # data, protocol, metrics, notes
    readout: dict = field(default_factory=dict)  # calibration per readout (serapp.readout); empty: none
    format_version: int = FORMAT_VERSION
    serapp_version: str = __version__
    created_utc: str = ""

    @property
    def sample_rate(self) -> int:
        return self.frontend.sample_rate

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["frontend"] = self.frontend.to_dict()
        data["sample_rate"] = self.sample_rate
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "BundleMeta":
        """Parse and check every field's type and range before anything is built from it."""
        if not isinstance(text, str):
            raise ValueError("the meta entry is not a JSON string")
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("metadata is not a JSON object")
        rate = data.pop("sample_rate", None)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"metadata lacks {', '.join(missing)}")
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        _check_fields(data)
        data["frontend"] = FrontEndConfig.from_dict(data["frontend"])
        meta = cls(**data)
        if rate is not None and rate != meta.frontend.sample_rate:
            raise ValueError(f"sample_rate {rate!r} disagrees with the front-end's {meta.frontend.sample_rate}")
        frame_s = meta.frontend.win_length / meta.frontend.sample_rate
        if meta.window_s < frame_s:  # a window shorter than one frame gives the model nothing to read
            raise ValueError(f"window_s must be at least one front-end frame ({frame_s:g} s), not {meta.window_s!r}")
        return meta


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _check_fields(data: dict) -> None:
    """Types and ranges of a bundle's metadata fields (ValueError naming the field)."""
    if not isinstance(data["architecture"], str):
        raise ValueError("architecture must be a string")
    labels = data["labels"]
    if (not isinstance(labels, list) or not labels or len(labels) > _MAX_LABELS
            or not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels)):
        raise ValueError(f"labels must be a list of 1 to {_MAX_LABELS} different names")
    if not isinstance(data["frontend"], dict):
        raise ValueError("frontend must be a JSON object")
    if not _is_number(data["window_s"]) or not 0 < data["window_s"] <= MAX_WINDOW_S:
        raise ValueError(f"window_s must be a number of seconds in (0, {MAX_WINDOW_S:g}], not {data['window_s']!r}")
    trim = data.get("trim_top_db")
    if trim is not None and (not _is_number(trim) or not 0 < trim <= 200):
        raise ValueError(f"trim_top_db must be null or a number of dB in (0, 200], not {trim!r}")
    hparams = data.get("hparams", {})
    if not isinstance(hparams, dict) or not all(
            isinstance(v, (str, bool)) or v is None or _is_number(v) for v in hparams.values()):
        raise ValueError("hparams must be a JSON object of numbers, strings and booleans")
    if hparams.get("basic_head") is True and basic_labels(labels) != list(BASIC):
        raise ValueError(f"a head for the basic four (hparams.basic_head) needs labels covering {', '.join(BASIC)}")
    if not isinstance(data.get("training", {}), dict):
        raise ValueError("training must be a JSON object")
    check_calibration(data.get("readout", {}))


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes, in name order (independent of file layout)."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")  # no copy of the bytes
    return h.hexdigest()


def save_bundle(path: str | os.PathLike, model: nn.Module, meta: BundleMeta) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves half a bundle."""
    import safetensors.torch

    path = Path(path)
    meta = dataclasses.replace(
        meta,
        hparams=dict(getattr(model, "hparams", meta.hparams)),
        format_version=FORMAT_VERSION,
        serapp_version=__version__,
        created_utc=meta.created_utc or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "meta": meta.to_json(),
        "weights_sha256": tensors_digest(tensors),
    }

    def write(tmp: str) -> None:
        try:
            safetensors.torch.save_file(tensors, tmp, metadata=metadata)
        except safetensors.SafetensorError as exc:  # its I/O errors are not OSErrors, but name the errno
            code = re.search(r"os error (\d+)", str(exc))
            raise (OSError(int(code[1]), os.strerror(int(code[1]))) if code else OSError(str(exc))) from exc

    return write_atomically(path, write)


def _parse_meta(path: Path, header: dict) -> BundleMeta:
    raw = header.get("__metadata__") or {}  # a dict of strings (read_header checked it)
    if raw.get("format") != FORMAT_NAME:
        raise BundleError(path, "a safetensors file without serapp metadata, not a model bundle")
    try:
        version = int(raw.get("format_version", ""))
    except ValueError:
        raise BundleError(path, f"unreadable format version {raw.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise BundleError(path, f"bundle format version {version} is newer than this serapp reads ({FORMAT_VERSION}); upgrade serapp")
    try:
        return BundleMeta.from_json(raw.get("meta", ""))
    except RecursionError:
        raise BundleError(path, "damaged metadata: nested too deep") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise BundleError(path, f"damaged metadata: {exc}") from None


def _read(path: str | os.PathLike, head: bool = False) -> tuple[Path, bytes]:
    """(path, the file's bytes); `head`: only check that it can be opened (b"")."""
    path = resolve_bundle(path)
    if not path.exists():
        raise BundleError(path, "no such file")
    if path.is_dir():
        raise BundleError(path, "is a directory, not a model bundle")
    kind = special_kind(path)  # opening a FIFO would wait for a writer forever
    if kind is not None:
        raise BundleError(path, f"{kind}, not a regular file (not opened: reading it could wait forever)")
    try:
        if head:
            with open(path, "rb"):
                return path, b""
        return path, path.read_bytes()
    except OSError as exc:
        raise BundleError(path, f"cannot read: {exc.strerror or exc}") from None


def bundled_model_path(name: str = "default") -> Path | None:
    """A model shipped as package data (`BUNDLED_MODELS`), or None when this installation lacks it."""
    import importlib.resources

    try:
        resource = importlib.resources.files("serapp.assets") / BUNDLED_MODELS[name][0]
    except ModuleNotFoundError:
        return None
    return Path(str(resource)) if resource.is_file() else None


def default_bundle_path() -> Path | None:
    """The bundled default model, or None when there is none."""
    return bundled_model_path("default")


def resolve_bundle(spec: str | os.PathLike) -> Path:
    """A bundle's path from what a user typed: a file, or a bundled model's name (a file of that
    name wins)."""
    path = Path(spec)
    if not path.exists() and str(spec) in BUNDLED_MODELS:
        bundled = bundled_model_path(str(spec))
        if bundled is None:
            raise BundleError(str(spec), "this installation has no bundled model of that name")
        return bundled
    if not path.exists() and not path.suffix and len(path.parts) == 1:  # typed as a name, not a path
        raise UnknownModelError(str(spec), f"no such file, nor a bundled model's name ({', '.join(BUNDLED_MODELS)})")
    return path


def _read_head(path: str | os.PathLike) -> tuple[Path, dict]:
    """The header alone, read without the weights (a bundle with an encoder is tens of MB)."""
    path, _ = _read(path, head=True)
    try:
        with open(path, "rb") as f:
            start = f.read(8)
            n = struct.unpack("<Q", start)[0] if len(start) == 8 else 0
            data = start + f.read(max(64, n) if n <= MAX_HEADER else 64)  # enough to say what is wrong
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise BundleError(path, f"cannot read: {exc.strerror or exc}") from None
    return path, read_header(path, data, size)


def read_bundle_meta(path: str | os.PathLike) -> BundleMeta:
    """The metadata alone, validated (for showing a model's details before loading it)."""
    path, header = _read_head(path)
    return _parse_meta(path, header)


# Batch norm's running statistics, a speech-encoder head's population statistics (its basic
# head's too), Whisper's position table and its int8 graph (bytes) are stored beside the weights
# but are not parameters (a test holds the count to the model's own).
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked", "norm_mean", "norm_std", "positional_embedding",
            "encoder_int8", "basic_norm_mean", "basic_norm_std")


def read_bundle_summary(path: str | os.PathLike) -> tuple[BundleMeta, int]:
    """The metadata and the model's number of parameters, without building the model; an int8
    graph is checked as loading checks it (its bytes alone read)."""
    path, header = _read_head(path)
    parameters = sum(math.prod(v["shape"]) for k, v in header.items()
                     if k != "__metadata__" and k.rsplit(".", 1)[-1] not in _BUFFERS)
    meta = _parse_meta(path, header)
    if "encoder_int8" in header:  # checked as loading checks it
        from serapp.models.int8_check import check_stored_graph  # (importing serapp.models imports torch)

        check_stored_graph(path, header, meta)
    return meta, parameters


def load_bundle(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, BundleMeta]:
    """Build the named architecture, load the weights, return (model in eval mode, meta)."""
    import safetensors.torch
    import torch

    from serapp.models import build_model

    path, header = _read_head(path)  # the weights are read once, below, not held twice
    meta = _parse_meta(path, header)
    check_skeleton(path, header, meta)
    try:
        tensors = safetensors.torch.load_file(str(path))
    except OSError as exc:
        raise BundleError(path, f"cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise BundleError(path, f"corrupt weights ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    expected_digest = header["__metadata__"].get("weights_sha256")
    if expected_digest and tensors_digest(tensors) != expected_digest:
        raise BundleError(path, "corrupt: the weights do not match their checksum")
    for name, t in tensors.items():  # a bundle without a checksum can still carry a NaN
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise BundleError(path, f"corrupt: tensor {name!r} holds NaN or infinite values")
    try:
        model = build_model(meta.architecture, meta.frontend.n_features, len(meta.labels), meta.hparams)
    except (ValueError, TypeError, OSError) as exc:  # an external part (a speech encoder) missing or different
        raise BundleError(path, first_line(exc)) from None
    expected = model.state_dict()
    for name, t in tensors.items():
        want = expected[name]
        if t.dtype != want.dtype:
            raise BundleError(path, f"tensor {name!r} is {t.dtype} in the file, the model expects {want.dtype}")
    model.load_state_dict(tensors, strict=True)
    if "encoder_int8" in tensors:  # before anything can run it
        from serapp.models.int8_check import refuse_graph, window_frames

        refuse_graph(path, lambda: model.accept_int8(window_frames(meta)))
    return model.to(device).eval(), meta


def check_bundle(path: str | os.PathLike) -> tuple[BundleMeta, int]:
    """read_bundle_summary, plus every check load_bundle makes before it reads a weight (what
    `serapp model-info` shows is a bundle `serapp predict` would load)."""
    path, header = _read_head(path)
    meta = _parse_meta(path, header)
    check_skeleton(path, header, meta)
    return read_bundle_summary(path)
