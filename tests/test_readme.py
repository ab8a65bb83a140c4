"""The README a newcomer follows: its set-up is what CI does, its commands parse, its links
land, and the result tables live in docs/results.md where the commands that draw them write."""

import re
import shlex
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


def test_the_apt_command_names_the_packages_ci_installs_for_the_app():
    readme = set(block_after(README, "<!-- apt-command").split()[3:])
    ci = set(re.search(r'PKGS="([^"]*)"', CI).group(1).split())
    only_tests = {"pulseaudio", "pulseaudio-utils", "libasound2-plugins", "xvfb", "xauth", "chromium", "chromium-driver"}
    assert readme - {"python3-venv"} == ci - only_tests  # python3-venv: Debian's Python has no ensurepip
    assert {"libegl1", "libgl1", "libdbus-1-3"} <= readme


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
