// The listening test's page. Text from the server is only ever set as textContent, never as HTML.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const storeKey = "serapp-listen:" + location.pathname;  // one test's rater per browser
  const audio = new Audio();
  let rater = null, state = null, reasons = [], colors = {}, shownLabels = "";
  let plays = 0, firstEnd = null, busy = false, skipping = false, clipUrl = null, wasPractice = false;

  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

  function show(section) {
    for (const id of ["join", "trial", "done"]) $(id).hidden = id !== section;
  }

  function say(text) {
    $("message").textContent = text || "";
    $("message").hidden = !text;
  }

  function storedName() {
    try { return localStorage.getItem(storeKey); } catch (e) { return null; }
  }

  function storeName(name) {
    try { localStorage.setItem(storeKey, name); } catch (e) { /* private mode: no resume after a reload */ }
  }

  // One request; a lost connection, "slow down" (429) or a failed save (503) is retried: an
  // answer is saved once however often it is sent. A rater the server no longer knows (it was
  // restarted) joins again by name.
  async function call(method, path, body, rejoined) {
    let response = null;
    for (let attempt = 0; ; attempt++) {
      const headers = {};
      if (rater) headers["X-Rater"] = rater;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      try {
        response = await fetch(path, { method, headers, cache: "no-store",
                                       body: body === undefined ? undefined : JSON.stringify(body) });
      } catch (e) {
        if (attempt >= 20) throw new Error("the server cannot be reached: check the network, then reload the page");
        say("the server cannot be reached: trying again…");
        await sleep(Math.min(5000, 300 * (attempt + 1)));
        continue;
      }
      if (response.status === 429 || (response.status === 503 && attempt < 10)) {
        const wait = Number(response.headers.get("Retry-After")) || 1;
        await sleep(wait * 1000);
        continue;
      }
      break;
    }
    if (response.status === 401 && !rejoined && storedName()) {
      await join(storedName(), false);
      return call(method, path, body, true);
    }
    if (!response.ok) {
      let text = "the server refused this (" + response.status + ")";
      try { text = (await response.json()).error || text; } catch (e) { /* not JSON */ }
      const error = new Error(text);
      error.status = response.status;
      throw error;
    }
    say("");
    return response;
  }

  async function join(name, code) {
    const response = await call("POST", "api/join", code ? { code: true } : { name });
    const data = await response.json();
    rater = data.rater;
    reasons = data.skip_reasons;
    colors = data.colors || {};
    storeName(data.state.name);
    $("who").textContent = code ? "Your code is " + data.state.name + ": note it to come back"
                                : "Rating as " + data.state.name;
    return data.state;
  }

  function choiceButton(key, text, onClick, swatch) {
    const button = document.createElement("button");
    button.type = "button";
    const k = document.createElement("span");
    k.className = "key";
    k.textContent = String(key);
    button.append(k, " " + text);
    if (swatch) button.style.setProperty("--swatch", swatch);
    button.addEventListener("click", () => { button.blur(); onClick(); });
    return button;
  }

  function setLabels(labels) {
    if (labels.join("|") === shownLabels) return;
    shownLabels = labels.join("|");
    const box = $("answers");
    box.replaceChildren(...labels.slice(0, 9).map((label, i) =>
      choiceButton(i + 1, label, () => answer(label), colors[label])));
    $("reasons").replaceChildren(...reasons.map((reason, i) => choiceButton(i + 1, reason, () => skip(reason))));
  }

  function enableAnswers(on) {
    for (const b of $("answers").querySelectorAll("button")) b.disabled = !on;
  }

  function showDone(s) {
    show("done");
    const skipped = s.answers.filter((a) => a.skipped).length;
    $("done-text").textContent = "You rated " + s.answers.length + " of " + s.total + " clips" +
      (skipped ? " (" + skipped + " skipped)" : "") + ". Your answers are saved: you may close this page.";
    $("done-list").replaceChildren(...s.answers.map((a) => {
      const li = document.createElement("li");
      li.textContent = a.skipped ? "skipped" : a.chosen;
      return li;
    }));
  }

  async function showState(s) {
    state = s;
    closeSkip();
    if (s.done) { showDone(s); return; }
    show("trial");
    setLabels(s.labels);
    $("progress-text").textContent = s.practice
      ? "Practice " + s.number + " of " + s.of + " (with feedback, not saved)"
      : "Clip " + s.number + " of " + s.of;
    $("progress-bar").value = s.total ? s.answered / s.total : 0;
    if (wasPractice && !s.practice) $("feedback").textContent += "  ·  practice over: the test starts now";
    wasPractice = s.practice;
    plays = 0;
    firstEnd = null;
    $("heard").textContent = "";
    enableAnswers(false);
    $("prompt").textContent = "Loading…";
    let response;
    try {
      response = await call("GET", "api/clip/" + s.trial);
    } catch (e) {
      if (e.status === 410 || e.status === 409) {  // unplayable (recorded as skipped), or moved on elsewhere
        say(e.message);
        return refresh();
      }
      throw e;
    }
    if (state !== s) return;
    if (clipUrl) URL.revokeObjectURL(clipUrl);
    clipUrl = URL.createObjectURL(await response.blob());
    audio.src = clipUrl;
    $("prompt").textContent = "Press R to listen";
    play();
  }

  async function refresh() {
    const response = await call("GET", "api/state");
    await showState(await response.json());
  }

  function play() {
    if (!state || state.done || !audio.src) return;
    audio.currentTime = 0;
    audio.play().then(() => {
      plays += 1;
      $("heard").textContent = plays > 1 ? "heard " + plays + "×" : "";
      if (firstEnd === null) $("prompt").textContent = "Listen…";
    }).catch(() => {
      $("prompt").textContent = "Press R or Play to listen";
    });
  }

  audio.addEventListener("ended", () => {
    if (firstEnd !== null || !state || state.done) return;
    firstEnd = performance.now();
    enableAnswers(true);
    $("prompt").textContent = "Which emotion?  (1–" + Math.min(9, state.labels.length) + ")";
  });

  async function send(body) {
    if (busy || !state || state.done) return;
    busy = true;
    try {
      body.trial = state.trial;
      body.response_ms = firstEnd === null ? null : Math.max(0, Math.round(performance.now() - firstEnd));
      body.replays = Math.max(0, plays - 1);
      audio.pause();
      const result = await (await call("POST", "api/answer", body)).json();
      const fb = $("feedback");
      fb.className = "";
      fb.textContent = "";
      if (result.feedback) {
        fb.className = result.feedback.correct ? "right" : "wrong";
        fb.textContent = result.feedback.correct ? "✓ correct" : "✗ it was " + result.feedback.truth;
      }
      await showState(result.state);
    } catch (e) {
      if (e.status === 409) { say(e.message); await refresh(); } else { say(e.message); }
    } finally {
      busy = false;
    }
  }

  function answer(label) {
    if (firstEnd === null) return;  // answers open once the clip has been heard to its end
    send({ label });
  }

  function skip(reason) { send({ skip: reason }); }

  function openSkip() {
    if (!state || state.done) return;
    skipping = true;
    $("skip-panel").hidden = false;
  }

  function closeSkip() {
    skipping = false;
    $("skip-panel").hidden = true;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || $("trial").hidden) return;
    const key = event.key.toLowerCase();
    const digit = /^[1-9]$/.test(key) ? Number(key) : 0;
    if (skipping) {
      if (digit && digit <= reasons.length) skip(reasons[digit - 1]);
      else if (key === "escape") closeSkip();
      else return;
    } else if (digit && state && digit <= Math.min(9, state.labels.length)) {
      answer(state.labels[digit - 1]);
    } else if (key === "r" || key === " ") {
      play();
    } else if (key === "s") {
      openSkip();
    } else {
      return;
    }
    event.preventDefault();
  });

  $("play").addEventListener("click", (e) => { e.currentTarget.blur(); play(); });
  $("skip").addEventListener("click", (e) => { e.currentTarget.blur(); openSkip(); });
  $("skip-cancel").addEventListener("click", (e) => { e.currentTarget.blur(); closeSkip(); });

  async function start(name, code) {
    $("start").disabled = $("code").disabled = true;
    try {
      await showState(await join(name, code));
    } catch (e) {
      say(e.message);
      show("join");
    } finally {
      $("start").disabled = $("code").disabled = false;
    }
  }

  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("name").value.trim();
    if (name) start(name, false); else say("give your name, or get a code");
  });
  $("code").addEventListener("click", () => start(null, true));

  const name = storedName();
  if (name) start(name, false); else { show("join"); $("name").focus(); }
})();
