"""The bundled model must be found after a non-editable install, not only from the source tree."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import make_bundle

ROOT = Path(__file__).resolve().parents[1]


def test_non_editable_install_ships_and_finds_the_bundled_model(tmp_path, clip):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("serapp", "assets", "trainer"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.safetensors"))
    make_bundle(src / "assets" / "default.safetensors")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(src)],
        check=True, capture_output=True, timeout=300,
    )
    assert (site / "serapp" / "assets" / "default.safetensors").is_file()
    for package in ("serapp", "trainer"):  # every module ships: the GUI and the listening test too
        source = {p.relative_to(src) for p in (src / package).rglob("*.py")}
        installed = {p.relative_to(site) for p in (site / package).rglob("*.py")}
        assert source - installed == set()
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-m", "serapp", "predict", str(clip), "--format", "jsonl"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["path"] == str(clip)
    where = subprocess.run(
        [sys.executable, "-c", "import serapp.predictor as p; print(p.default_bundle_path())"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert where.stdout.strip() == str(site / "serapp" / "assets" / "default.safetensors")


def test_librosa_is_not_a_runtime_dependency_and_nothing_of_serapp_imports_it():
    """It pulls numba, llvmlite, scipy, scikit-learn and pooch into an install; only a test uses it."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("librosa") for d in project["dependencies"])
    assert any(d.startswith("librosa") for d in project["optional-dependencies"]["test"])
    code = ("import sys, serapp.cli, serapp.predictor, serapp.analysis, serapp.file_analysis, serapp.calibration, "
            "trainer.cli, trainer.run; print(sorted(m for m in ('librosa', 'scipy', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
