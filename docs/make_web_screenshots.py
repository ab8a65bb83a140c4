"""The README's pictures of the web listening test, from the real page in Debian's chromium.

    python docs/make_web_screenshots.py [--audio ../shared/data/ravdess] [--out docs/screenshots]

Writes web-desktop.png (a desktop-wide page: practice just answered, its feedback, the first
clip heard and waiting for an answer) and web-phone.png (a 390 px phone page, two clips on,
the clip heard twice). The clips are RAVDESS's when --audio names its folder (all eight
emotions), else generated sounds named as RAVDESS names them. The server is `serapp.web` as
`serapp listen-web` runs it; the browser is headless chromium through selenium (tests/web_helpers.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the browser set-up and the generated corpus live there

from web_helpers import browser_missing, chromium  # noqa: E402


def corpus(audio: Path | None, tmp: Path) -> tuple[Path, tuple[str, ...]]:
    from serapp.labels import EMOTIONS

    if audio is not None and audio.is_dir():
        return audio, EMOTIONS
    from helpers import MORE_CLASSES, SYNTH_CLASSES, make_ravdess_corpus

    labels = tuple(e for e in EMOTIONS if e in SYNTH_CLASSES or e in MORE_CLASSES)
    return make_ravdess_corpus(tmp / "corpus", actors=range(1, 5), labels=labels, reps=2, seconds=1.5), labels


def answerable(driver, progress: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        shown = d.execute_script("return [document.getElementById('progress-text').textContent,"
                                 " document.getElementById('prompt').textContent]")
        return shown[0] == progress and shown[1].startswith("Which emotion")
    WebDriverWait(driver, 60, poll_frequency=0.05).until(ready, message=f"{progress}, answerable")


def keys(driver, text: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(text).perform()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", default=str(ROOT.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    missing = browser_missing()
    if missing:
        print(f"make_web_screenshots: {missing}", file=sys.stderr)
        return 1
    from serapp.corpora import detect_corpus
    from serapp.web.raters import WebPlan
    from serapp.web.server import BackgroundServer, link, listen, prepare

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root, labels = corpus(Path(args.audio), Path(tmp))
        plan = WebPlan(labels=labels, n_clips=40, seed=11, practice_clips=2)
        _, app, token, lock = prepare(detect_corpus(root), plan, Path(tmp) / "answers")
        sock = listen("127.0.0.1", 0)
        url, _ = link(sock, token)
        server = BackgroundServer(app, sock, lock)
        server.start()
        try:
            desk = chromium(1100, 720)
            try:
                desk.get(url)
                desk.find_element("id", "name").send_keys("Ann\n")
                answerable(desk, f"Practice 1 of 2 (with feedback, not saved)")
                keys(desk, "3")
                answerable(desk, "Practice 2 of 2 (with feedback, not saved)")
                keys(desk, "5")
                answerable(desk, "Clip 1 of 40")
                desk.save_screenshot(str(out / "web-desktop.png"))
            finally:
                desk.quit()
            phone = chromium(390, 780, phone=True, scale=2)
            try:
                phone.get(url)
                phone.find_element("id", "name").send_keys("Bo")
                phone.find_element("id", "start").click()
                for n, key in ((1, "4"), (2, "2")):
                    answerable(phone, f"Practice {n} of 2 (with feedback, not saved)")
                    keys(phone, key)
                for n, key in ((1, "4"), (2, "1")):
                    answerable(phone, f"Clip {n} of 40")
                    keys(phone, key)
                answerable(phone, "Clip 3 of 40")
                keys(phone, "r")
                answerable(phone, "Clip 3 of 40")
                phone.save_screenshot(str(out / "web-phone.png"))
            finally:
                phone.quit()
        finally:
            server.stop()
    print(f"wrote {out / 'web-desktop.png'} and {out / 'web-phone.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
