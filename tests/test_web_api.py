"""The web listening test through its real server on loopback: the token, opaque clips, bounded
and checked requests, one rater's trials, answers saved once and read by bench-report."""

from __future__ import annotations

import csv
import glob
import os
import re

import pytest
from web_helpers import LABELS, Client, SharedServer, small_corpus

from serapp.cli import main as serapp_main
from serapp.listening.answers import COLUMNS, read_answers
from serapp.listening.report import build_report, load_answer_files
from serapp.web.limits import MAX_BODY


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return small_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def shared():
    server = SharedServer()
    yield server
    server.stop()


@pytest.fixture
def server(shared, corpus_dir, tmp_path):
    """A test of its own (its token, its answers folder) on the module's server."""
    return shared.use(corpus_dir, tmp_path / "answers")


def answer_all(client: Client, state: dict, label_for=lambda s: LABELS[0]) -> list[dict]:
    """Answer every trial from `state` on; the states seen, in order."""
    seen = []
    while not state["done"]:
        seen.append(state)
        status, out = client.answer(state["trial"], label_for(state))
        assert status == 200, out
        state = out["state"]
    return seen


def rater_rows(folder) -> dict[str, list]:
    rows = {}
    for path in glob.glob(str(folder / "*.csv")):
        for a in read_answers(path):
            rows.setdefault(a.rater, []).append(a)
    return rows


# --- the token and the paths ------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/", "/index.html", "/app.js", "/api/state", "/api/join", "/{bad}/", "/{bad}/api/state", "/{short}/",
    "/{token}x/", "/x{token}/", "/{upper}/",
])
def test_without_the_token_everything_is_404(server, path):
    token = server.token
    path = path.format(bad="A" * len(token), short=token[:-1], token=token, upper=token.swapcase())
    client = Client(server.url)
    for method in ("GET", "POST"):
        status, _, body = client.raw(method, path, b"{}" if method == "POST" else None)
        assert status == 404 and token.encode() not in body


def test_the_page_is_served_under_the_token_with_its_safety_headers(server):
    client = Client(server.url)
    status, headers, body = client.raw("GET", f"/{server.token}/")
    assert status == 200 and b"<script src=\"app.js\"" in body and b"http" not in body.split(b"<body>")[1]
    assert "script-src 'self'" in headers["content-security-policy"] and headers["x-content-type-options"] == "nosniff"
    for name in ("app.js", "style.css"):
        assert client.raw("GET", f"/{server.token}/{name}")[0] == 200
    status, headers, _ = client.raw("GET", f"/{server.token}")  # the link without its slash
    assert status == 308 and headers["location"] == f"/{server.token}/"


TRAVERSALS = [
    "../../../etc/passwd", "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%252f..%252fetc%252fpasswd", "..\\..\\etc\\passwd", "..%5c..%5cetc%5cpasswd", "/etc/passwd", "%2fetc%2fpasswd",
    "....//....//etc/passwd", "..;/..;/etc/passwd", "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "app.js/../../pyproject.toml",
    "static/../raters.py", "raters.py", "__init__.py", "static/app.js", "%00", "app.js%00.html", ".",
]


@pytest.mark.parametrize("tail", TRAVERSALS)
@pytest.mark.parametrize("where", ["", "api/clip/"])
def test_no_path_reaches_another_file(server, tail, where):
    client = Client(server.url)
    client.join("ann")
    status, _, body = client.raw("GET", f"/{server.token}/{where}{tail}")
    assert status in (400, 403, 404), status
    assert b"root:" not in body and b"[project]" not in body and b"import" not in body


def test_a_link_in_the_corpus_is_never_served(shared, tmp_path):
    corpus = small_corpus(tmp_path / "corpus")
    secret = tmp_path / "outside.wav"
    victim = next(corpus.glob("Actor_01/*.wav"))
    secret.write_bytes(victim.read_bytes())
    victim.unlink()
    victim.symlink_to(secret)
    # every clip, the link among them, as fast as the client can ask
    running = shared.use(corpus, tmp_path / "answers", clips=32, practice=0, rate=(1000, 1000))
    client = Client(running.url)
    state = client.join("ann")
    refused = 0
    while not state["done"]:
        status, body = client.call("GET", f"api/clip/{state['trial']}")
        if status == 410:
            refused += 1
            state = client.call("GET", "api/state")[1]
            continue
        assert status == 200
        state = client.answer(state["trial"], "sad")[1]["state"]
    assert refused == 1
    skipped = [a for a in rater_rows(running.folder)["ann"] if a.skipped]
    assert [a.clip for a in skipped] == [victim.relative_to(corpus).as_posix()]
    assert "a link" in skipped[0].skip_reason


# --- opaque clips -------------------------------------------------------------------------------

def test_nothing_names_a_clip_or_its_label_before_the_answer(server, corpus_dir):
    client = Client(server.url)
    state = client.join("ann")
    names = {p.stem for p in corpus_dir.rglob("*.wav")}
    while not state["done"]:
        status, wav = client.call("GET", f"api/clip/{state['trial']}")
        assert status == 200 and wav[:4] == b"RIFF" and b"LIST" not in wav and b"Actor" not in wav
        text = str(state)
        assert not any(n in text for n in names) and "Actor" not in text and ".wav" not in text
        assert re.fullmatch(r"[0-9a-f]{24}", state["trial"]) and "truth" not in text
        status, out = client.answer(state["trial"], "happy")
        if state["practice"]:  # the practice clip's label comes back only once it is answered
            assert out["feedback"]["truth"] in LABELS
        state = out["state"]


def test_practice_gives_feedback_and_is_not_saved(server):
    client = Client(server.url)
    state = client.join("ann")
    assert state["practice"] and state["of"] == 1
    out = client.answer(state["trial"], "angry")[1]
    assert out["feedback"]["correct"] == (out["feedback"]["truth"] == "angry")
    assert not out["state"]["practice"] and out["state"]["number"] == 1
    assert rater_rows(server.folder) == {}


# --- answers ------------------------------------------------------------------------------------

def test_answers_land_in_one_file_per_rater_in_the_desktop_format(server):
    a, b = Client(server.url), Client(server.url)
    sa, sb = a.join("ann"), b.join("bob")
    answer_all(a, sa, lambda s: "sad")
    answer_all(b, sb, lambda s: "happy")
    files = sorted(glob.glob(str(server.folder / "*.csv")))
    assert len(files) == 2
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            assert next(csv.reader(f)) == list(COLUMNS)
    rows = rater_rows(server.folder)
    assert {k: len(v) for k, v in rows.items()} == {"ann": 6, "bob": 6}
    assert {r.chosen_label for r in rows["ann"]} == {"sad"} and {r.chosen_label for r in rows["bob"]} == {"happy"}
    # the same clips in the same order for both (one seed), as the desktop test selects them
    assert [r.clip for r in rows["ann"]] == [r.clip for r in rows["bob"]]
    report = build_report(load_answer_files(files))  # what the app's results page reads
    assert set(report["raters"]) == {"ann", "bob"} and report["kappa_detail"]["clips"] == 6
    assert serapp_main(["bench-report", *files]) == 0


def test_an_answer_sent_twice_is_saved_once(server):
    client = Client(server.url)
    state = client.join("ann")
    state = client.answer(state["trial"], "sad")[1]["state"]  # practice
    trial = state["trial"]
    first = client.answer(trial, "sad")[1]
    again = client.answer(trial, "sad")[1]
    assert not first["duplicate"] and again["duplicate"] and again["state"] == first["state"]
    assert len(rater_rows(server.folder)["ann"]) == 1


def test_skips_carry_the_reason_and_a_name_resumes(server):
    client = Client(server.url)
    state = client.join("ann")
    state = client.answer(state["trial"], "sad")[1]["state"]  # practice
    state = client.answer(state["trial"], skip="no emotion here fits", ms=120, replays=2)[1]["state"]
    state = client.answer(state["trial"], "happy")[1]["state"]
    again = Client(server.url)
    resumed = again.join("ANN")  # the same rater, however cased
    assert resumed["name"] == "ann" and resumed["number"] == 3 and not resumed["practice"]
    assert resumed["trial"] == state["trial"]
    rows = rater_rows(server.folder)["ann"]
    assert (rows[0].skipped, rows[0].skip_reason, rows[0].replays, rows[0].response_ms) == \
           (1, "skipped by rater: no emotion here fits", 2, 120)


def test_after_a_restart_a_name_in_any_case_resumes_its_own_file(shared, corpus_dir, tmp_path):
    first = shared.use(corpus_dir, tmp_path / "answers")
    client = Client(first.url)
    state = client.join("Ann")
    state = client.answer(state["trial"], "sad")[1]["state"]  # practice
    client.answer(state["trial"], "sad")
    again = shared.use(corpus_dir, tmp_path / "answers")  # a new server on the same folder
    assert again.url == first.url
    state = Client(again.url).join("aNN")
    assert (state["name"], state["answered"], state["practice"]) == ("Ann", 1, False)
    assert len(glob.glob(str(tmp_path / "answers" / "*.csv"))) == 1


def test_a_code_instead_of_a_name(server):
    client = Client(server.url)
    state = client.join(None)
    assert re.fullmatch(r"[A-Z2-9]{6}", state["name"])
    assert Client(server.url).join(state["name"])["trial"] == state["trial"]


def test_another_raters_trials_are_refused(server):
    a, b = Client(server.url), Client(server.url)
    sa = a.join("ann")
    sa = a.answer(sa["trial"], "sad")[1]["state"]
    sb = b.join("bob")
    sb = b.answer(sb["trial"], "sad")[1]["state"]
    assert sa["trial"] != sb["trial"]  # the same clip, another id
    status, out = b.answer(sa["trial"], "sad")
    assert status == 403 and sa["trial"] not in str(out)
    assert b.call("GET", f"api/clip/{sa['trial']}")[0] == 403
    assert rater_rows(server.folder) == {}
    assert b.answer(sb["trial"], "sad")[0] == 200


@pytest.mark.parametrize("body", [
    b"\xff\xfe{\"trial\": 1}", "{\"label\": \"caf\u00e9\"}".encode("latin-1"), b"not json", b"[" * 1500,
    b"{\"trial\": \"0\", \"label\": \"sad\"}", b"{\"label\": \"sad\"}", b"[]", b"null",
])
def test_malformed_bodies_are_refused(server, body):
    client = Client(server.url)
    client.join("ann")
    status, _, text = client.raw("POST", f"/{server.token}/api/answer", body, {"Content-Type": "application/json"})
    assert status == 400 and text.startswith(b"{\"error\"")
    assert body[:20] not in text


@pytest.mark.parametrize("change", [
    {"label": "bored"}, {"label": ["sad"]}, {"label": "sad", "skip": "another reason"}, {"skip": "=cmd|' /C calc'!A0"},
    {"replays": True}, {"replays": -1}, {"replays": 10**6}, {"response_ms": 1.5}, {"response_ms": -3},
    {"response_ms": 10**12}, {"response_ms": "12"}, {"extra": 1}, {"trial": "A" * 24}, {"trial": "../" * 8},
])
def test_answers_out_of_range_or_type_are_refused_and_nothing_is_written(server, change):
    client = Client(server.url)
    state = client.join("ann")
    state = client.answer(state["trial"], "sad")[1]["state"]  # practice
    body = {"trial": state["trial"], "label": "sad", "response_ms": 10, "replays": 0, **change}
    status, out = client.call("POST", "api/answer", body)
    assert status in (400, 403), out
    assert rater_rows(server.folder) == {}


def test_oversized_bodies_are_refused_before_they_are_read(server):
    client = Client(server.url)
    client.join("ann")
    path = f"/{server.token}/api/answer"
    status, _, _ = client.raw("POST", path, b"{" + b" " * MAX_BODY + b"}", {"Content-Type": "application/json"})
    assert status == 413
    status, _, _ = client.raw("POST", path, b"x", {"Content-Length": str(10**12)})
    assert status == 413

    def chunks():  # no Content-Length: refused once the stream passes the limit
        for _ in range(64):
            yield b" " * 1024
    status, _, _ = client.raw("POST", path, chunks(), {"Transfer-Encoding": "chunked"})
    assert status == 413
    assert client.call("POST", "api/join", {"name": "x" * 5000})[0] == 413


def test_a_formula_name_is_written_as_text_and_an_escape_is_refused(server):
    client = Client(server.url)
    formula = "=HYPERLINK(\"http://x\",\"y\")"
    state = client.join(formula)
    state = client.answer(state["trial"], "sad")[1]["state"]
    client.answer(state["trial"], "sad")
    (path,) = glob.glob(str(server.folder / "*.csv"))
    with open(path, newline="", encoding="utf-8") as f:
        assert list(csv.reader(f))[1][1] == "'" + formula
    assert read_answers(path)[0].rater == formula
    assert not os.path.basename(path).startswith("=")
    for name in ("\x1b[31mred\x1b[0m", "ann\nbob", "a\tb", "\u202eevil", "", "   ", "x" * 61, 5, None, ["ann"]):
        status, out = Client(server.url).call("POST", "api/join", {"name": name})
        assert status == 400 and "\x1b" not in str(out), name
    assert server.lines and not any("\x1b" in line or "\n" in line for line in server.lines)


def test_too_many_requests_from_one_rater_slow_down(shared, corpus_dir, tmp_path):
    running = shared.use(corpus_dir, tmp_path / "answers", rate=(5, 0.5), join_rate=(3, 0.1))
    client = Client(running.url)
    client.join("ann")
    statuses = [client.call("GET", "api/state")[0] for _ in range(8)]
    assert statuses[:5] == [200] * 5 and 429 in statuses
    status, headers, _ = client.raw("GET", f"/{running.token}/api/state")
    assert status == 429 and int(headers["retry-after"]) >= 1
    other = Client(running.url)
    other.join("bob")  # another rater is not slowed by ann
    assert other.call("GET", "api/state")[0] == 200
    joins = [Client(running.url).call("POST", "api/join", {"name": f"r{i}"})[0] for i in range(4)]
    assert 429 in joins  # joining is limited per address


def test_a_clip_that_cannot_be_read_is_recorded_as_skipped(shared, tmp_path):
    corpus = small_corpus(tmp_path / "corpus")
    for path in corpus.rglob("*.wav"):
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    running = shared.use(corpus, tmp_path / "answers", practice=0)
    client = Client(running.url)
    state = client.join("ann")
    status, out = client.call("GET", f"api/clip/{state['trial']}")
    assert status == 410 and "Actor" not in str(out)
    (row,) = rater_rows(running.folder)["ann"]
    assert row.skipped and "cannot read audio" in row.skip_reason
    assert client.call("GET", "api/state")[1]["number"] == 2


def test_the_link_is_kept_private_in_the_answers_folder(tmp_path):
    from serapp.web.server import SECRETS_FILE, link_secrets

    token, key = link_secrets(tmp_path)
    path = tmp_path / SECRETS_FILE
    assert path.stat().st_mode & 0o777 == 0o600 and len(token) >= 22 and len(key) == 32
    assert link_secrets(tmp_path) == (token, key)  # a restart keeps the link
    new_token, same_key = link_secrets(tmp_path, new_link=True)
    assert new_token != token and same_key == key
    path.write_text("{not json", encoding="utf-8")  # damaged: a new link, no traceback
    assert link_secrets(tmp_path)[0] not in (token, new_token)
