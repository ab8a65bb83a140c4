"""`serapp listen-web` as raters meet it: its first line is the link, Ctrl+C stops it cleanly, a
second server on the same answers folder is refused, and a server killed mid-test (SIGKILL)
loses no acknowledged answer, leaves no lock behind and resumes every rater."""

from __future__ import annotations

import glob
import signal
import subprocess
import threading
from urllib.parse import urlsplit

import pytest
from web_helpers import LABELS, SERAPP, Client, cli_server, small_corpus

from serapp.cli import main as serapp_main
from serapp.corpora import detect_corpus
from serapp.listening.answers import read_answers
from serapp.web.folder_lock import FolderInUse, FolderLock
from serapp.web.raters import WebPlan
from serapp.web.server import SECRETS_FILE, prepare


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return small_corpus(tmp_path_factory.mktemp("corpus"))


def stop(proc: subprocess.Popen, sig=signal.SIGINT) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_the_first_line_is_the_link_and_ctrl_c_stops_cleanly(corpus_dir, tmp_path):
    proc, url = cli_server(corpus_dir, tmp_path / "answers", "--host", "0.0.0.0")
    try:
        parts = urlsplit(url)
        assert parts.scheme == "http" and parts.hostname != "0.0.0.0" and parts.port > 0
        assert len(parts.path.strip("/")) >= 22 and url.endswith("/")
        client = Client(f"http://127.0.0.1:{parts.port}{parts.path}")  # listening on every address
        client.join("ann")
        # the same port again: one line naming the address and the cause, exit 1
        taken = subprocess.run([*SERAPP, "listen-web", str(corpus_dir), "--answers", str(tmp_path / "b"),
                                "--port", str(parts.port)], capture_output=True, text=True, timeout=60)
        assert taken.returncode == 1 and taken.stdout == ""
        assert taken.stderr.count("\n") == 1 and f"port {parts.port}" in taken.stderr and "in use" in taken.stderr
    finally:
        rc, out, err = stop(proc)
    assert rc == 0 and "Traceback" not in err + out
    assert out.splitlines()[-1].startswith("stopped: 0 answers from 1 raters")
    assert "rater 'ann' joined" in out


def test_setup_mistakes_are_one_line(corpus_dir, tmp_path):
    for args, rc, words in ((["--emotions", "happy,bored"], 2, "no bored clips"),
                            (["--clips", "0"], 2, "--clips"), (["--port", "70000"], 1, "out of range")):
        run = subprocess.run([*SERAPP, "listen-web", str(corpus_dir), "--answers", str(tmp_path), *args],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == rc and words in run.stderr and run.stderr.count("\n") == 1, run.stderr
    run = subprocess.run([*SERAPP, "listen-web", str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "no such folder" in run.stderr and "Traceback" not in run.stderr


def test_a_killed_server_keeps_every_acknowledged_answer_and_raters_resume(corpus_dir, tmp_path):
    folder, clips, names = tmp_path / "answers", 30, ("ann", "bob", "cy")
    proc, url = cli_server(corpus_dir, folder, clips=clips)
    acked: dict[str, list[str]] = {n: [] for n in names}
    ready = threading.Barrier(len(names) + 1)

    def rater(name: str) -> None:
        client = Client(url)
        state = client.join(name)
        ready.wait()
        i = 0
        while not state["done"]:
            label = LABELS[i % len(LABELS)]
            try:
                status, out = client.answer(state["trial"], label)
            except OSError:  # the server is gone
                return
            if status != 200:
                return
            if not state["practice"]:
                acked[name].append(label)
            state, i = out["state"], i + 1

    threads = [threading.Thread(target=rater, args=(n,)) for n in names]
    for t in threads:
        t.start()
    ready.wait()
    while sum(map(len, acked.values())) < 12 and proc.poll() is None:
        threading.Event().wait(0.005)
    proc.kill()  # SIGKILL: no clean-up of any kind
    proc.communicate(timeout=30)
    for t in threads:
        t.join(30)

    rows = {}
    for path in glob.glob(str(folder / "*.csv")):
        for a in read_answers(path):  # a torn last line would be an error here
            rows.setdefault(a.rater, []).append(a)
    for name in names:
        mine = rows.get(name, [])
        chosen = [a.chosen_label for a in mine]
        assert chosen[:len(acked[name])] == acked[name]  # every acknowledged answer, in order
        assert len(chosen) - len(acked[name]) in (0, 1)  # at most one saved whose reply was lost
        assert len({a.clip for a in mine}) == len(mine)  # none twice

    assert sum(map(len, rows.values())) < len(names) * clips  # killed in the middle, not after
    port = urlsplit(url).port
    proc, url2 = cli_server(corpus_dir, folder, port=port, clips=clips)
    try:
        assert url2 == url  # the same link after a restart
        for name in names:
            client = Client(url)
            state = client.join(name)
            done = len(rows.get(name, []))
            assert state["answered"] == done and state["number"] == done + 1
            assert state["practice"] == (done == 0)
            while not state["done"]:
                state = client.answer(state["trial"], "sad")[1]["state"]
        files = glob.glob(str(folder / "*.csv"))
        final = {read_answers(p)[0].rater: read_answers(p) for p in files}
        assert sorted(final) == sorted(names)
        plans = [[a.clip for a in final[n]] for n in names]
        assert all(len(p) == clips and len(set(p)) == clips for p in plans) and plans[0] == plans[1] == plans[2]
        assert serapp_main(["bench-report", *files]) == 0
    finally:
        rc, out, err = stop(proc, signal.SIGTERM)
    assert rc == 0 and "Traceback" not in err


def test_one_server_to_an_answers_folder_and_the_lock_dies_with_its_process(corpus_dir, tmp_path):
    folder = tmp_path / "answers"
    proc, url = cli_server(corpus_dir, folder)
    try:
        Client(url).join("ann")
        kept = (folder / SECRETS_FILE).read_bytes()
        # a second server on that folder (another port, even a new link asked): one line, exit 1, nothing touched
        second = subprocess.run([*SERAPP, "listen-web", str(corpus_dir), "--answers", str(folder), "--port", "0",
                                 "--new-link"], capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and second.stdout == "" and second.stderr.count("\n") == 1, second.stderr
        assert second.stderr.startswith(f"serapp: another server uses the answers folder {folder} ")
        assert (folder / SECRETS_FILE).read_bytes() == kept  # the first server's link still works
        # nor in this process (the app's Share in a browser… prepares the same way)
        with pytest.raises(FolderInUse, match="another server uses the answers folder"):
            prepare(detect_corpus(corpus_dir), WebPlan(labels=LABELS, n_clips=6, seed=3), folder)
        assert Client(url).join("ann")["name"] == "ann"  # the first serves on
    finally:
        proc.kill()  # SIGKILL: the lock goes with the process, no clean-up needed
        proc.communicate(timeout=30)
    proc, url2 = cli_server(corpus_dir, folder)
    try:
        assert urlsplit(url2).path == urlsplit(url).path and Client(url2).join("ann")["name"] == "ann"  # its link
    finally:
        rc, _, err = stop(proc)
    assert rc == 0 and "Traceback" not in err
    with FolderLock(folder):  # a server stopped by Ctrl+C lets the folder go too
        with pytest.raises(FolderInUse):
            FolderLock(folder).acquire()  # a second open of the file conflicts, even in one process
    FolderLock(folder).acquire().release()
