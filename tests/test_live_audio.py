"""Ring buffer, voice-activity gate, file source and the live analyzer (no Qt, no microphone)."""

import time

import numpy as np
import pytest
from helpers import make_bundle, speechlike, tone

from serapp.audio.recorder import Recorder
from serapp.audio.ringbuffer import RingBuffer
from serapp.audio.sources import FileSource
from serapp.audio.vad import EnergyGate, SileroGate
from serapp.live import LiveAnalyzer, LiveWorker, StreamResampler
from serapp.predictor import load_model
from serapp.settings import AnalysisSettings
from serapp.timeline import WindowReading


def test_ring_latest_is_contiguous_across_the_wrap():
    ring = RingBuffer(10)
    data = np.arange(1, 24, dtype=np.float32)
    for chunk in np.split(data, [3, 7, 8, 15]):
        ring.write(chunk)
    assert ring.written == 23
    view = ring.latest(10)
    assert view.flags["C_CONTIGUOUS"] and np.array_equal(view, data[-10:])
    assert np.array_equal(ring.latest(4), data[-4:])
    assert np.array_equal(RingBuffer(5).latest(3), np.zeros(3))


def test_ring_since_reports_losses_and_respects_limit():
    ring = RingBuffer(8)
    ring.write(np.arange(5, dtype=np.float32))
    got, pos, lost = ring.since(0)
    assert np.array_equal(got, np.arange(5)) and pos == 5 and lost == 0
    ring.write(np.arange(5, 20, dtype=np.float32))  # the reader falls behind by more than 8
    got, pos, lost = ring.since(pos)
    assert lost == 7 and np.array_equal(got, np.arange(12, 20)) and pos == 20
    ring.write(np.arange(20, 26, dtype=np.float32))
    got, pos, _ = ring.since(pos, limit=4)
    assert np.array_equal(got, [20, 21, 22, 23]) and pos == 24
    ring.write(np.arange(100, dtype=np.float32))  # a block larger than the ring keeps its tail
    assert np.array_equal(ring.latest(8), np.arange(92, 100)) and ring.written == 126


def test_ring_write_does_not_allocate_per_call():
    import tracemalloc

    ring = RingBuffer(4096)
    block = np.ones(256, np.float32)
    ring.write(block)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(200):
        ring.write(block)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
    assert grown < 4096  # no per-block buffers survive (a handful of interpreter bytes at most)


def test_speech_gate_tells_speech_from_silence_hum_hiss_and_tones():
    gate = SileroGate(16000)
    assert gate.is_speech(speechlike(1.0))
    assert not gate.is_speech(np.zeros(16000, np.float32))
    assert not gate.is_speech(tone(1.0, 16000, 50, 0.5))  # mains hum
    hiss = (0.001 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)  # -60 dBFS
    assert not gate.is_speech(hiss)
    assert not gate.is_speech(tone(1.0, 16000, 440, 0.5))  # a steady tone: loud, in the band, not a voice
    assert EnergyGate(16000).is_speech(tone(1.0, 16000, 440, 0.5))  # ...which fools the energy gate


def test_the_gate_streams_as_it_judges_whole_windows():
    gate, y = SileroGate(16000), speechlike(2.0, seed=1)
    whole = gate.scores(y, reset=True)
    gate.reset()
    parts = np.concatenate([gate.scores(y[i : i + 2048]) for i in range(0, y.size, 2048)])
    np.testing.assert_allclose(parts, whole, atol=1e-6)


def test_file_source_never_runs_ahead_of_the_clock():
    """Real time means a source never delivers audio before its time (a loaded machine can only
    make it later, so this holds whatever the load); as fast as possible delivers at once."""
    y = speechlike(0.6)
    src = FileSource(samples=y, sample_rate=16000, realtime=True, block_s=0.02)
    t0 = time.perf_counter()
    src.start()
    seen = []
    while src.active:
        seen.append((time.perf_counter() - t0, src.ring.written))
        time.sleep(0.005)
    assert src.finished and len(seen) > 1
    assert all(written <= elapsed * 16000 + src.block for elapsed, written in seen)
    got, _, lost = src.ring.since(0)
    assert lost == 0 and np.array_equal(got, y)
    fast = FileSource(samples=y, sample_rate=16000, realtime=False)
    fast.start()
    fast.stop()
    assert fast.finished and fast.ring.written == y.size


def test_stream_resampler_matches_one_shot():
    import soxr

    y = speechlike(1.0, 48000)
    rs = StreamResampler(48000, 16000)
    out = np.concatenate([rs(c) for c in np.array_split(y, 37)])
    ref = soxr.resample(y, 48000, 16000, quality="HQ")
    # The stream holds back the filter's look-ahead (under 30 ms) until more input comes; what it
    # has given out is aligned with the one-shot result.
    assert 16000 - 480 < out.size <= 16000
    np.testing.assert_allclose(out[100:], ref[100 : out.size], atol=1e-3)


@pytest.fixture
def predictor(tmp_path):
    path, _ = make_bundle(tmp_path / "m.safetensors", window_s=1.0)
    return load_model(path, device="cpu")


def test_live_analyzer_gates_silence_and_reads_speech(predictor):
    audio = np.concatenate([np.zeros(16000, np.float32), speechlike(2.0), np.zeros(16000, np.float32)])
    src = FileSource(samples=audio, sample_rate=16000, realtime=False)
    analyzer = LiveAnalyzer(src, predictor, AnalysisSettings(hop_s=0.5))
    readings = []
    for i in range(0, audio.size, 800):  # feed 50 ms blocks as a device would
        src.ring.write(audio[i : i + 800])
        r = analyzer.poll()
        if r is not None:
            readings.append(r)
    assert [r.t for r in readings] == [0.5 * k for k in range(1, 9)]
    assert [r.speech for r in readings] == [False, False, True, True, True, True, True, False]
    spoken = [r for r in readings if r.speech]
    assert all(abs(sum(r.probabilities.values()) - 1) < 1e-5 and r.label in predictor.labels for r in spoken)
    assert all(r.probabilities is None and r.label is None for r in readings if not r.speech)


def test_a_compared_model_reads_the_first_models_gate_scores(predictor, tmp_path):
    other = load_model(make_bundle(tmp_path / "other.safetensors", window_s=1.5, seed=7)[0], device="cpu")
    audio = np.concatenate([np.zeros(16000, np.float32), speechlike(2.0), np.zeros(16000, np.float32)])
    src = FileSource(samples=audio, sample_rate=16000, realtime=False)
    settings = AnalysisSettings(hop_s=0.5)
    first = LiveAnalyzer(src, predictor, settings)
    second = LiveAnalyzer(src, other, settings, scores_from=first)
    alone = LiveAnalyzer(src, other, settings)  # the same model judging the audio itself
    judged = []
    first.gate.scores = (lambda scores: lambda *a, **k: judged.append(1) or scores(*a, **k))(first.gate.scores)
    readings = {"second": [], "alone": []}
    for i in range(0, audio.size, 800):
        src.ring.write(audio[i : i + 800])
        first.poll()
        for name, analyzer in (("second", second), ("alone", alone)):
            r = analyzer.poll()
            if r is not None:
                readings[name].append((r.t, r.speech, r.speech_fraction))
    assert second.shared_scores and second.scores is first.scores and not alone.shared_scores
    assert len(judged) == audio.size // 800  # the shared gate judged each block once, for both
    assert readings["second"] == readings["alone"] and any(s for _, s, _ in readings["second"])


def test_live_analyzer_resamples_a_48k_device(predictor):
    audio = speechlike(2.0, 48000)
    src = FileSource(samples=audio, sample_rate=48000, realtime=False)
    analyzer = LiveAnalyzer(src, predictor, AnalysisSettings(hop_s=0.5))
    src.ring.write(audio)
    r = analyzer.poll()
    assert r is not None and r.speech and r.t == pytest.approx(2.0, abs=0.05)


def test_live_analyzer_skips_stale_hops_and_smooths(predictor):
    audio = speechlike(4.0, seed=3)
    src = FileSource(samples=audio, sample_rate=16000, realtime=False)
    analyzer = LiveAnalyzer(src, predictor, AnalysisSettings(hop_s=0.5, smoothing=0.5))
    src.ring.write(audio[:48000])
    first = analyzer.poll()
    assert first.t == pytest.approx(3.0) and analyzer.poll() is None  # one reading, not six
    raw = predictor.predict_prepared(audio[48000:64000])  # the model's 1 s window
    src.ring.write(audio[48000:])
    second = analyzer.poll()
    expected = 0.5 * np.array([first.probabilities[k] for k in predictor.labels]) + 0.5 * raw
    np.testing.assert_allclose([second.probabilities[k] for k in predictor.labels], expected, atol=1e-5)


def test_live_worker_runs_off_the_calling_thread(predictor):
    # The audio arrives a hop at a time and the test waits for each reading, so a slow machine
    # cannot make the analyzer skip hops (which it does on purpose when it falls behind).
    audio = speechlike(1.5)
    src = FileSource(samples=audio, sample_rate=16000, realtime=False)
    worker = LiveWorker(LiveAnalyzer(src, predictor, AnalysisSettings(hop_s=0.25, window_s=0.5)), interval_s=0.02)
    worker.start()
    readings = []
    for start in range(0, 24000, 4000):
        src.ring.write(audio[start:start + 4000])
        if start == 0:
            continue  # the first reading needs the whole 0.5 s window
        deadline = time.time() + 30
        got = []
        while not got and time.time() < deadline:
            time.sleep(0.01)
            got = worker.drain()  # the calling thread only collects: the worker polls the analyzer
        readings += got
    worker.stop()
    assert [r.t for r in readings] == pytest.approx([0.5, 0.75, 1.0, 1.25, 1.5])
    assert all(r.speech for r in readings[1:])
    assert worker.error is None and not worker.running


def test_a_killed_recording_is_still_a_valid_wav(tmp_path):
    import subprocess
    import sys
    import wave

    code = f"""
import os, signal, numpy as np
from serapp.audio.ringbuffer import RingBuffer
from serapp.audio.recorder import Recorder
from serapp.timeline import WindowReading
import time
ring = RingBuffer(16000)
rec = Recorder({str(tmp_path / 'take.wav')!r}, ring, 16000, ["a", "b"])
for i in range(5):
    ring.write(np.full(1600, 0.25, np.float32))
rec.add_reading(WindowReading(-2.5, 0.5, True, 0.9, {{"a": 0.7, "b": 0.3}}, "a"))
deadline = time.time() + 30  # the writer thread takes it from here; wait for it, then die
while (rec.frames < 8000 or len(open({str(tmp_path / 'take.csv')!r}).read().splitlines()) < 2) and time.time() < deadline:
    time.sleep(0.01)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9
    with wave.open(str(tmp_path / "take.wav")) as w:  # a strict reader: trusts the header
        assert w.getnframes() == 8000 and w.getframerate() == 16000
        data = np.frombuffer(w.readframes(8000), "<i2")
    assert np.all(np.abs(data / 32768 - 0.25) < 1e-3)
    lines = (tmp_path / "take.csv").read_text().splitlines()
    wav = tmp_path / "take.wav"  # the timeline's columns, as `serapp predict --window W --format csv` writes
    assert lines == ["path,start_s,end_s,speech,speech_fraction,label,sure,a,b,warning",
                     f"{wav},-2.500,0.500,1,0.900,a,,0.700000,0.300000,"]


def test_the_recorder_writes_on_its_own_thread_and_fills_losses_with_silence(tmp_path):
    import wave

    ring = RingBuffer(4000)
    rec = Recorder(tmp_path / "r.wav", ring, 16000, ["a"])
    ring.write(np.full(3000, 0.5, np.float32))
    deadline = time.time() + 30
    while rec.frames < 3000 and time.time() < deadline:  # nobody pumps: the writer thread takes it
        time.sleep(0.01)
    assert rec.frames == 3000
    ring.write(np.full(10000, -0.5, np.float32))  # laps the 4000-sample ring before the writer wakes
    while rec.frames < 13000 and time.time() < deadline:
        time.sleep(0.01)
    rec.add_reading(WindowReading(0.3, 0.8, False, 0.0, None, None))
    rec.close()
    with wave.open(str(tmp_path / "r.wav")) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768
    assert data.size == 13000 and rec.lost == 6000  # every sample accounted for: the timeline stays aligned
    assert np.allclose(data[:3000], 0.5, atol=1e-3) and np.all(data[3000:9000] == 0)
    assert np.allclose(data[9000:], -0.5, atol=1e-3)
    row = (tmp_path / "r.csv").read_text().splitlines()[-1]  # 6000 / 16000 s of silence
    assert row == f"{tmp_path / 'r.wav'},0.300,0.800,0,0.000,no speech,,,0.375 s missed so far and written as silence"
    assert rec.closed and rec.error is None


def test_settings_reach_the_analyzer_whole_and_window_zero_means_the_models(predictor):
    audio = speechlike(3.0, seed=4)
    src = FileSource(samples=audio, sample_rate=16000, realtime=False)
    analyzer = LiveAnalyzer(src, predictor, AnalysisSettings(hop_s=0.5, window_s=0.5))
    src.ring.write(audio[:16000])
    short = analyzer.poll()
    np.testing.assert_allclose([short.probabilities[k] for k in predictor.labels],
                               predictor.predict_prepared(audio[8000:16000]), atol=1e-6)
    analyzer.update(AnalysisSettings(hop_s=0.5, window_s=None))  # back to the model's own window (1 s)
    src.ring.write(audio[16000:24000])
    back = analyzer.poll()
    np.testing.assert_allclose([back.probabilities[k] for k in predictor.labels],
                               predictor.predict_prepared(audio[8000:24000]), atol=1e-6)
    with pytest.raises(ValueError):
        AnalysisSettings(hop_s=0.0)
    with pytest.raises(Exception):
        analyzer.settings.hop_s = 2.0  # frozen: a worker never sees half an update


def test_one_predictor_shared_by_threads_gives_each_its_own_answers(predictor):
    """The live worker, file analysis and listening scoring may call one Predictor at once."""
    import threading

    clips = [speechlike(1.0 + 0.25 * i, seed=i) for i in range(6)]
    expected = [predictor.predict_prepared(c) for c in clips]
    got, errors = {}, []

    def work(i):
        try:
            for _ in range(15):
                got.setdefault(i, []).append((predictor.predict_prepared(clips[i]), dict(predictor.last_timing)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clips))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, results in got.items():
        assert all(np.allclose(p, expected[i], atol=1e-6) for p, _ in results)
        assert all(t["model_ms"] > 0 for _, t in results)


def test_each_thread_reads_the_stage_times_of_its_own_call(predictor):
    import threading

    mine, theirs_done, seen = {}, threading.Event(), {}
    ready = threading.Event()

    def worker():
        predictor.predict_prepared(speechlike(3.0, seed=1))
        mine.update(predictor.last_timing)
        ready.set()
        theirs_done.wait(30)
        seen.update(predictor.last_timing)  # after another thread's call

    t = threading.Thread(target=worker)
    t.start()
    assert ready.wait(30)
    predictor.predict_prepared(speechlike(0.5, seed=2))
    theirs_done.set()
    t.join()
    assert seen == mine


def _feed(src, analyzers, audio, on_reading=None):
    """Write `audio` into the source in 50 ms blocks, polling every analyzer after each."""
    out = {id(a): [] for a in analyzers}
    for i in range(0, audio.size, 800):
        src.ring.write(audio[i : i + 800])
        for a in analyzers:
            r = a.poll()
            if r is not None:
                out[id(a)].append((r, a.ring.latest(min(a.ring.written, a.predictor.model_window)).copy()))
    return [out[id(a)] for a in analyzers]


def test_live_adaptation_learns_a_voice_and_reset_is_as_if_it_had_never_heard_it():
    """Two synthetic voices in turn through the bundled default (a model that adapts): the first
    voice moves the readings; after `reset_voice` the readings are exactly those of an analyzer
    that never learned the first voice."""
    predictor = load_model("default", device="cpu")
    voice_a = speechlike(6.0, seed=1) * 0.8
    voice_b = np.concatenate([speechlike(3.0, seed=5)[::-1] * 0.3, speechlike(3.0, seed=6) * 0.3])
    src = FileSource(samples=np.zeros(1, np.float32), sample_rate=16000, realtime=False)
    learning = LiveAnalyzer(src, predictor, AnalysisSettings(hop_s=0.5, gate=False))
    never = LiveAnalyzer(src, predictor, AnalysisSettings(hop_s=0.5, gate=False, adapt=False))
    heard, cold = _feed(src, [learning, never], voice_a)
    assert heard[-1][0].voice_s > 0 and cold[-1][0].voice_s == 0
    # not learning, the readings are the cold start's: the population's statistics
    for r, window in cold:
        assert np.array_equal(np.array(list(r.probabilities.values()), np.float32), predictor.predict_prepared(window))
    assert heard[-1][0].probabilities != cold[-1][0].probabilities  # the voice moved the readings

    learning.reset_voice()
    never.update(AnalysisSettings(hop_s=0.5, gate=False))  # starts learning now, from the population's
    after, fresh = _feed(src, [learning, never], voice_b)
    assert [r.probabilities for r, _ in after] == [r.probabilities for r, _ in fresh]
    assert [r.voice_s for r, _ in after] == [r.voice_s for r, _ in fresh] and after[-1][0].voice_s > 0
