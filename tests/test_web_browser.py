"""The web listening test in a real browser (Debian's headless chromium, through selenium) against
the real server on loopback: two raters at once, one by the keyboard on a desktop-sized page
(practice, replay, skip with a reason, a reload half-way), the other by touch on a phone-sized
page; the answer files hold exactly what the pages showed."""

from __future__ import annotations

import glob
from concurrent.futures import ThreadPoolExecutor

import pytest
from web_helpers import LABELS, browser_missing, chromium, small_corpus, start_server

from serapp.listening.answers import read_answers

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")


@pytest.fixture
def browsers():
    with ThreadPoolExecutor(2) as pool:  # both start at once: each takes a second or so
        desk, phone = pool.map(lambda kw: chromium(**kw), [{}, {"width": 390, "height": 800, "phone": True}])
    yield desk, phone
    for driver in (desk, phone):
        driver.quit()


def text(driver, element_id: str) -> str:
    return driver.execute_script("return document.getElementById(arguments[0]).textContent", element_id)


def wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 20, poll_frequency=0.02).until(lambda d: condition(d), message=what)


def wait_trial(driver, progress: str) -> None:
    """Until the page shows `progress` and its clip has been heard to the end (answers open)."""
    wait(driver, lambda d: text(d, "progress-text") == progress and text(d, "prompt").startswith("Which emotion"),
         f"{progress!r}, answerable (shows {text(driver, 'progress-text')!r}, {text(driver, 'prompt')!r})")


def press(driver, keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(keys).perform()


def desk_rater(driver, url: str, shown: list):
    """ann, by the keyboard only; yields after each step so the phone's rater answers in between."""
    from selenium.webdriver.common.keys import Keys

    driver.get(url)
    wait(driver, lambda d: d.find_element("id", "name").is_displayed(), "the name field")
    press(driver, "ann" + Keys.ENTER)
    wait_trial(driver, "Practice 1 of 1 (with feedback, not saved)")
    press(driver, "2")  # happy
    wait_trial(driver, "Clip 1 of 6")
    assert text(driver, "feedback") in ("✓ correct  ·  practice over: the test starts now",
                                        *(f"✗ it was {x}  ·  practice over: the test starts now" for x in LABELS
                                          if x != "happy"))
    yield
    press(driver, "r")  # once more
    wait(driver, lambda d: text(d, "heard") == "heard 2×", "the replay")
    press(driver, "3")
    shown.append("sad")
    wait_trial(driver, "Clip 2 of 6")
    assert text(driver, "feedback") == ""  # no feedback once the test proper begins
    yield
    press(driver, "s")
    wait(driver, lambda d: d.find_element("id", "skip-panel").is_displayed(), "the skip reasons")
    press(driver, Keys.ESCAPE)  # changed my mind
    wait(driver, lambda d: not d.find_element("id", "skip-panel").is_displayed(), "the reasons closed")
    press(driver, "s")
    press(driver, "2")  # no emotion here fits
    shown.append("skipped")
    wait_trial(driver, "Clip 3 of 6")
    yield
    press(driver, "1")
    shown.append("neutral")
    wait(driver, lambda d: text(d, "progress-text") == "Clip 4 of 6", "clip 4")
    driver.refresh()  # half-way: the page comes back where it was, no practice, no name asked
    wait_trial(driver, "Clip 4 of 6")
    assert text(driver, "who") == "Rating as ann"
    for key, label, after in (("4", "angry", "Clip 5 of 6"), ("2", "happy", "Clip 6 of 6"), ("4", "angry", None)):
        yield
        press(driver, key)
        shown.append(label)
        if after:
            wait_trial(driver, after)
    wait(driver, lambda d: d.find_element("id", "done").is_displayed(), "the end")


def phone_rater(driver, url: str, name: str, shown: list):
    """A rater on a phone-sized page, by touch (clicks), answering in turn with the desk."""
    driver.get(url)
    wait(driver, lambda d: d.find_element("id", "name").is_displayed(), "the name field")
    driver.find_element("id", "name").send_keys(name)
    driver.find_element("id", "start").click()
    wait_trial(driver, "Practice 1 of 1 (with feedback, not saved)")
    buttons = driver.find_elements("css selector", "#answers button")
    assert [b.text.split()[-1] for b in buttons] == list(LABELS)
    width = driver.execute_script("return window.innerWidth")
    assert width == 390 and driver.execute_script("return document.documentElement.scrollWidth") <= width
    assert all(b.rect["x"] >= 0 and b.rect["x"] + b.rect["width"] <= width and b.rect["height"] >= 44 for b in buttons)
    buttons[0].click()
    for n in range(1, 7):
        wait_trial(driver, f"Clip {n} of 6")
        yield
        label = LABELS[n % len(LABELS)]
        driver.find_element("xpath", f"//div[@id='answers']/button[contains(., '{label}')]").click()
        shown.append(label)
    wait(driver, lambda d: d.find_element("id", "done").is_displayed(), "the end")


def test_two_raters_at_once_keyboard_reload_and_phone(tmp_path, browsers):
    running = start_server(small_corpus(tmp_path / "corpus"), tmp_path / "answers")
    desk, phone = browsers
    name = "=1+1 <b>bo</b>"  # a formula and markup: shown and saved as typed, run by nothing
    shown_desk, shown_phone = [], []
    try:
        steps = [desk_rater(desk, running.url, shown_desk), phone_rater(phone, running.url, name, shown_phone)]
        while steps:
            for step in list(steps):
                try:
                    next(step)
                except StopIteration:
                    steps.remove(step)
    finally:
        running.stop()

    rows = {}
    for path in glob.glob(str(tmp_path / "answers" / "*.csv")):
        for a in read_answers(path):
            rows.setdefault(a.rater, []).append(a)
    assert sorted(rows) == sorted(["ann", name])
    for driver, rater, shown in ((desk, "ann", shown_desk), (phone, name, shown_phone)):
        saved = ["skipped" if a.skipped else a.chosen_label for a in rows[rater]]
        page = [li.text for li in driver.find_elements("css selector", "#done-list li")]
        assert saved == shown == page  # the file, the keys pressed and the page's own list agree
        assert text(driver, "done-text").startswith("You rated 6 of 6 clips")
    ann = rows["ann"]
    assert ann[0].replays == 1 and all(a.replays == 0 for a in ann[1:])
    assert ann[1].skip_reason == "skipped by rater: no emotion here fits"
    assert all(a.response_ms is not None and a.response_ms >= 0 for a in ann if not a.skipped)
    assert [a.clip for a in ann] == [a.clip for a in rows[name]]  # one seed: the same clips in one order
    assert text(phone, "who") == f"Rating as {name}" and not phone.find_elements("css selector", "#who b")
