import numpy as np
import pytest
import torch
from helpers import make_bundle, speechlike, write_audio

import serapp.predictor as predictor_mod
from serapp.errors import BundleError, DeviceError
from serapp.labels import EMOTIONS
from serapp.readout import BASIC, describe
from serapp.predictor import (
    available_devices,
    load_model,
    resolve_device,
    window_starts,
)


@pytest.mark.parametrize(
    "available, expected",
    [(["cpu"], "cpu"), (["cpu", "mps"], "mps"), (["cpu", "cuda"], "cuda"), (["cpu", "cuda", "mps"], "cuda")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(available, expected):
    assert resolve_device("auto", available).type == expected


def test_explicit_device_must_be_present():
    assert resolve_device("cpu", ["cpu"]).type == "cpu"
    assert resolve_device("cuda:1", ["cpu", "cuda"]) == torch.device("cuda:1")
    with pytest.raises(DeviceError, match="device 'cuda' is not available here \\(available: cpu\\)"):
        resolve_device("cuda", ["cpu"])
    with pytest.raises(DeviceError, match="'mps' is not available"):
        resolve_device("mps", ["cpu", "cuda"])
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        resolve_device("tpu", ["cpu"])


def test_available_devices_match_torch():
    found = available_devices()
    assert found[0] == "cpu"
    assert ("cuda" in found) == torch.cuda.is_available()
    assert ("mps" in found) == torch.backends.mps.is_available()


def test_load_model_on_an_absent_device_is_a_clear_error(tiny_bundle):
    absent = next((d for d in ("cuda", "mps") if d not in available_devices()), None)
    if absent is None:
        pytest.skip("both CUDA and MPS are present here")
    with pytest.raises(DeviceError, match=f"'{absent}' is not available"):
        load_model(tiny_bundle, device=absent)


def test_no_bundled_model_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(predictor_mod, "default_bundle_path", lambda: None)
    with pytest.raises(BundleError, match="no bundled model in this installation; pass a bundle with --model"):
        load_model(None)


def test_predict_gives_a_distribution_over_the_labels(tiny_bundle):
    p = load_model(tiny_bundle, device="cpu", emotions="all")
    probs = p.predict(speechlike(1.7), 16000)
    assert list(probs) == list(EMOTIONS)
    assert abs(sum(probs.values()) - 1) < 1e-5 and all(0 <= v <= 1 for v in probs.values())
    assert set(p.last_timing) == {"features_ms", "model_ms"} and p.last_timing["model_ms"] > 0


def test_predict_resamples_input(tiny_bundle):
    import soxr

    p = load_model(tiny_bundle, device="cpu")
    y16 = speechlike(0.9)
    y48 = soxr.resample(y16, 16000, 48000)
    a, b = p.predict(y16, 16000), p.predict(y48, 48000)
    assert max(abs(a[k] - b[k]) for k in a) < 0.02


def test_long_clip_is_the_mean_of_its_windows(tiny_bundle):
    p = load_model(tiny_bundle, device="cpu")  # window_s = 1.0
    y = speechlike(2.5, seed=4)
    whole = p.predict(y, 16000)
    windows = np.stack([y[s : s + 16000] for s in window_starts(y.size, 16000, 8000)])
    expected = p.probabilities(windows).mean(axis=0)
    np.testing.assert_allclose([whole[k] for k in p.labels], expected, atol=1e-6)


def test_window_starts_cover_the_signal():
    assert window_starts(100, 200, 50) == [0]
    assert window_starts(200, 200, 50) == [0]
    assert window_starts(450, 200, 100) == [0, 100, 200, 250]
    assert window_starts(500, 200, 100) == [0, 100, 200, 300]


def _timeline(p, y, tmp_path, window_s, hop_s=0.5, gate=False):
    from serapp.analysis import analyse_file
    from serapp.settings import AnalysisSettings

    path = write_audio(tmp_path / f"t{y.size}.wav", y, 16000, "FLOAT")
    return analyse_file(path, p, AnalysisSettings(window_s=window_s, hop_s=hop_s, gate=gate), timeline=True).segments


def test_timeline_segments(tiny_bundle, tmp_path):
    p = load_model(tiny_bundle, device="cpu")
    y = speechlike(4.2)
    segs = _timeline(p, y, tmp_path, 1.0)
    assert len(segs) == 8  # starts 0, .5, ..., 3.0, then 3.2 so the last window ends at 4.2
    assert segs[0].start_s == 0 and segs[-1].end_s == pytest.approx(4.2)
    assert all(s.end_s - s.start_s == pytest.approx(1.0) for s in segs)
    for s in segs:
        assert s.label == max(s.probabilities, key=s.probabilities.get)
    short = _timeline(p, y[:8000], tmp_path, 1.0)
    assert len(short) == 1 and short[0].end_s == pytest.approx(0.5)
    from serapp.settings import AnalysisSettings

    with pytest.raises(ValueError):
        AnalysisSettings(window_s=0)


def test_a_window_reads_the_same_in_the_file_timeline_and_live(tiny_bundle, tmp_path):
    """One reading rule: a 2.5 s window (the model's is 1 s) is the mean of its model-length
    pieces, in the file timeline as in predict_prepared, which the live analyzer calls."""
    p = load_model(tiny_bundle, device="cpu")
    y = speechlike(5.0, seed=7)
    segs = _timeline(p, y, tmp_path, 2.5, hop_s=2.5)
    assert [(s.start_s, s.end_s) for s in segs] == [(0.0, 2.5), (2.5, 5.0)]
    for s in segs:
        window = y[int(s.start_s * 16000) : int(s.end_s * 16000)]
        direct = p.predict_prepared(window)
        pieces = [p.predict_prepared(window[a : a + 16000]) for a in (0, 8000, 16000, 24000)]  # 1 s at 0.5 s hop
        assert np.allclose(direct, np.mean(pieces, axis=0), atol=1e-6)
        assert max(abs(s.probabilities[k] - float(v)) for k, v in zip(p.labels, direct)) < 1e-5


def test_timeline_over_many_windows_is_batched_consistently(tiny_bundle, tmp_path):
    p = load_model(tiny_bundle, device="cpu")
    y = speechlike(6.0, seed=2)
    batched = _timeline(p, y, tmp_path, 1.0, 0.5)
    for s in batched:
        one = p.predict_prepared(y[int(round(s.start_s * 16000)) : int(round(s.end_s * 16000))])
        assert max(abs(s.probabilities[k] - float(v)) for k, v in zip(p.labels, one)) < 1e-5


def test_trimming_follows_the_bundle(tmp_path):
    path, _ = make_bundle(tmp_path / "m.safetensors")
    p = load_model(path, device="cpu")
    y = speechlike(1.0)
    padded = np.concatenate([np.zeros(16000, np.float32), y, np.zeros(16000, np.float32)])
    assert p.predict(padded, 16000) != p.predict(y, 16000)
    p.meta.trim_top_db = 40.0
    a, b = p.predict(padded, 16000), p.predict(y, 16000)
    assert max(abs(a[k] - b[k]) for k in a) < 0.05


def test_cpu_threads_are_limited(tiny_bundle, monkeypatch):
    monkeypatch.setenv("SERAPP_THREADS", "1")
    before = torch.get_num_threads()
    try:
        load_model(tiny_bundle, device="cpu")
        assert torch.get_num_threads() == 1
        load_model(tiny_bundle, device="cpu", threads=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_loading_another_model_can_leave_torchs_threads_alone(tiny_bundle):
    """torch's thread count is process-wide: the app sets it once, and a model loaded while
    another runs (a reload, a second model) must not change it under that one's feet."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        load_model(tiny_bundle, device="cpu", threads=2, set_threads=False)
        assert torch.get_num_threads() == 1
        load_model(tiny_bundle, device="cpu", threads=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_basic_readout_sums_calm_into_neutral_and_renormalises_over_the_four(tiny_bundle):
    every = load_model(tiny_bundle, device="cpu", emotions="all").predict(speechlike(1.7), 16000)
    p = load_model(tiny_bundle, device="cpu")
    basic = p.predict(speechlike(1.7), 16000)
    assert p.emotions == "basic" and list(basic) == list(BASIC) == p.labels
    kept = every["neutral"] + every["calm"] + every["happy"] + every["sad"] + every["angry"]
    assert basic["neutral"] == pytest.approx((every["neutral"] + every["calm"]) / kept, abs=1e-5)
    assert basic["angry"] == pytest.approx(every["angry"] / kept, abs=1e-5)
    p.set_emotions("all")
    assert p.labels == list(EMOTIONS) and p.predict(speechlike(1.7), 16000) == pytest.approx(every, abs=1e-6)
    # a head without the basic four shows what it has
    odd, _ = make_bundle(tiny_bundle.parent / "odd.safetensors", labels=["fearful", "disgust", "happy"])
    assert load_model(odd, device="cpu").labels == ["fearful", "disgust", "happy"]


def test_the_bundles_calibration_reaches_the_reading_and_a_low_top_probability_is_not_sure(tmp_path):
    plain, _ = make_bundle(tmp_path / "plain.safetensors")
    hot, _ = make_bundle(tmp_path / "hot.safetensors",
                         readout={"basic": {"temperature": 4.0, "threshold": 0.99}, "all": {"temperature": 4.0,
                                                                                           "threshold": 0.0}})
    x = speechlike(1.7)
    a, b = load_model(plain, device="cpu"), load_model(hot, device="cpu")
    assert (b.readout.temperature, b.readout.threshold, b.readout.calibrated) == (4.0, 0.99, True)
    pb = b.predict(x, 16000)
    assert a.is_sure(a.predict(x, 16000)) and not b.is_sure(pb)
    assert describe(max(pb, key=pb.get), pb, False).startswith("not sure (")
    a.set_emotions("all")
    b.set_emotions("all")
    pa, pb = a.predict(x, 16000), b.predict(x, 16000)
    # T = 4 flattens the reading towards uniform, keeping its order; this entry's threshold is 0
    assert max(pb.values()) < max(pa.values()) and max(pb, key=pb.get) == max(pa, key=pa.get)
    assert b.is_sure(pb)


@pytest.mark.parametrize("entry", [{"basic": {"temperature": 1.0, "threshold": 1.5}},
                                   {"basic": {"temperature": 0.0, "threshold": 0.5}},
                                   {"basic": {"temperature": 1.0}}, {"most": {"temperature": 1.0, "threshold": 0.5}}])
def test_a_calibration_out_of_range_is_refused_at_load_in_one_line(tmp_path, entry):
    path, _ = make_bundle(tmp_path / "bad.safetensors", readout=entry)
    with pytest.raises(BundleError, match="readout"):
        load_model(path, device="cpu")
