"""The README a newcomer follows: its set-up is what CI does, its commands parse, its links
land, and the result tables live in docs/results.md where the commands that draw them write."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from serapp.cli import _file_as_open
from serapp.cli import build_parser as serapp_parser
from trainer.cli import build_parser as trainer_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
DOCS = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md")}
MARKERS = ("crosscorpus", "encoder-table", "zoo")


def block_after(text: str, marker: str) -> str:
    """The first fenced code block after `marker`, its continuation lines joined."""
    rest = text[text.index(marker):]
    body = rest.split("```", 2)[1].split("\n", 1)[1]
    return body.replace("\\\n", " ")


def commands(text: str) -> list[str]:
    """Every `serapp ...` or `ser-train ...` line of the sh code blocks, comments stripped."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] in ("serapp", "ser-train"):
                found.append(words)
    return found


def test_the_setup_command_is_what_ci_runs():
    readme = [step.strip() for step in block_after(README, "<!-- setup-command").strip().split("&&")]
    ci = [line.strip().replace("python -m pip install -q", "pip install")
          for line in CI.splitlines() if line.startswith(("python3 -m venv", ". .venv", "python -m pip install"))]
    assert readme[:3] == ci, (readme, ci)
    assert readme[3] == "pip install -e ."  # then the project; the test command adds its [test] extras


def apt_packages() -> set[str]:
    """The packages the README's Install section has apt-get install."""
    return set(block_after(README, "<!-- apt-command").split("apt-get install", 1)[1].split())


def test_the_apt_command_names_the_packages_ci_installs_for_the_app():
    readme = apt_packages()
    ci = set(re.search(r'PKGS="([^"]*)"', CI).group(1).split())
    only_tests = {"pulseaudio", "pulseaudio-utils", "libasound2-plugins", "xvfb", "xauth", "chromium", "chromium-driver"}
    assert readme - {"python3-venv"} == ci - only_tests  # python3-venv: Debian's Python has no ensurepip
    assert {"libegl1", "libgl1", "libdbus-1-3"} <= readme


QT_WINDOW = ("lib/libQt6Core.so.6", "lib/libQt6Gui.so.6", "lib/libQt6Widgets.so.6", "lib/libQt6OpenGL.so.6",
             "lib/libQt6DBus.so.6", "lib/libQt6XcbQpa.so.6", "plugins/platforms/libqxcb.so")


def test_the_apt_command_brings_every_system_library_a_qt_window_loads():
    """On a machine with nothing but Python and the Install section's packages the window opens:
    each library the PySide6 wheel's X11 window takes from the system comes with one of those
    packages or their dependencies (a minimal Debian lacked libglib2.0-0, libfontconfig1,
    libfreetype6 and libxcb-shape0, which a desktop has anyway)."""
    import PySide6

    missing_tools = [t for t in ("ldd", "dpkg", "apt-cache") if shutil.which(t) is None]
    if missing_tools:
        pytest.skip(f"needs Debian's {', '.join(missing_tools)}")
    qt = Path(PySide6.__file__).parent / "Qt"
    ldd = subprocess.run(["ldd", *(str(qt / lib) for lib in QT_WINDOW)], capture_output=True, text=True).stdout
    assert "not found" not in ldd, ldd
    files = {Path(p).resolve().name for p in re.findall(r"=> (/\S+)", ldd) if not Path(p).resolve().is_relative_to(qt)}
    owned = subprocess.run(["dpkg", "-S", *sorted(files)], capture_output=True, text=True).stdout
    owner = {}
    for line in owned.splitlines():  # "libfoo1:amd64: /usr/lib/x86_64-linux-gnu/libfoo.so.1.2"
        package, path = line.split(": ", 1)
        if Path(path).name in files:
            owner.setdefault(Path(path).name, package.split(":")[0])
    assert set(owner) == files, f"not from a Debian package: {files - set(owner)}"
    closure = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                              "--no-breaks", "--no-replaces", "--no-enhances", *sorted(apt_packages())],
                             capture_output=True, text=True)
    if closure.returncode != 0:
        pytest.skip(f"apt-cache knows no packages here (apt-get update): {closure.stderr.strip()}")
    brought = {line.split(":")[0] for line in closure.stdout.splitlines() if not line.startswith(" ")}
    assert apt_packages() <= brought, f"not a package here: {apt_packages() - brought}"  # a misspelt name
    assert not {f: p for f, p in owner.items() if p not in brought}


def test_ci_finds_the_test_command():
    awk = re.search(r"awk '([^']*)' README.md", CI).group(1)
    out = subprocess.run(["awk", awk, str(ROOT / "README.md")], capture_output=True, text=True, check=True).stdout
    assert out.strip() == 'pip install -e ".[test]" && python -m pytest'


@pytest.mark.parametrize("doc", ["README.md", *sorted(DOCS)])
def test_documented_commands_parse(doc):
    text = README if doc == "README.md" else DOCS[doc]
    found = commands(text)
    assert found or doc != "README.md"
    for words in found:
        try:
            if words[0] == "serapp":
                parser = serapp_parser()
                parser.parse_args(_file_as_open(parser, words[1:]))
            else:
                trainer_parser().parse_args(words[1:])
        except SystemExit as exc:
            raise AssertionError(f"{doc}: `{shlex.join(words)}` does not parse") from exc


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", ["README.md", *sorted(DOCS)])
def test_links_to_documents_land(doc):
    text = README if doc == "README.md" else DOCS[doc]
    base = (ROOT / doc).parent
    for target, anchor in re.findall(r"\]\(([^)#\s]+\.md)(?:#([^)\s]+))?\)", text):
        path = (base / target).resolve()
        assert path.is_file(), f"{doc}: {target} is not there"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
            assert anchor in {slug(h) for h in headings}, f"{doc}: no heading #{anchor} in {target}"


def test_the_result_tables_are_drawn_into_docs_results():
    results = DOCS["docs/results.md"]
    for name in MARKERS:
        assert results.count(f"<!-- {name}:start -->") == 1 and results.count(f"<!-- {name}:end -->") == 1
        assert f"<!-- {name}:start -->" not in README
    sub = trainer_parser()._subparsers._group_actions[0].choices
    for command in ("crosscorpus", "encoder-table", "zoo"):
        assert sub[command].get_default("readme") == "docs/results.md"


def test_no_stale_test_counts():
    assert not re.search(r"\d+ passed", README)
