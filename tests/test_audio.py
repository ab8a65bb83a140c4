import numpy as np
import pytest
from helpers import tone, write_audio

from serapp.audio import iter_audio_files, load_audio, resample, to_mono, trim_silence
from serapp.errors import AudioDecodeError, SerappError


def _peak_hz(y, rate):
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return np.fft.rfftfreq(y.size, 1 / rate)[np.argmax(spec)]


def _assert_one_line_error(excinfo, path, fragment):
    msg = str(excinfo.value)
    assert str(path) in msg and fragment in msg and "\n" not in msg
    assert isinstance(excinfo.value, SerappError)


@pytest.mark.parametrize("subtype, tol", [("PCM_U8", 1 / 64), ("PCM_16", 1e-4), ("PCM_24", 1e-6), ("FLOAT", 1e-7)])
def test_wav_sample_formats_decode_to_float(tmp_path, subtype, tol):
    y = tone(0.5, 16000, 300, 0.5)
    path = write_audio(tmp_path / f"{subtype}.wav", y, 16000, subtype)
    got, rate = load_audio(path)
    assert rate == 16000 and got.dtype == np.float32 and got.shape == y.shape
    assert np.abs(got - y).max() <= tol


@pytest.mark.parametrize("ext, fmt, subtype", [("flac", "FLAC", None), ("ogg", "OGG", "VORBIS"), ("mp3", "MP3", "MPEG_LAYER_III")])
def test_compressed_formats(tmp_path, ext, fmt, subtype):
    y = tone(1.0, 16000, 500, 0.4)
    path = write_audio(tmp_path / f"x.{ext}", y, 16000, subtype, fmt)
    got, rate = load_audio(path, 16000)
    assert rate == 16000
    assert abs(got.size - y.size) <= 2000  # MP3 adds encoder delay/padding
    assert abs(_peak_hz(got, 16000) - 500) < 5


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = tone(0.5, 16000, 300, 0.4), tone(0.5, 16000, 300, 0.2)
    path = write_audio(tmp_path / "st.wav", np.stack([left, right], axis=1), 16000, "FLOAT")
    got, _ = load_audio(path)
    np.testing.assert_allclose(got, (left + right) / 2, atol=1e-7)
    assert to_mono(np.stack([left, right], 1)).shape == left.shape


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_resampled_to_the_model_rate(tmp_path, rate):
    y = tone(1.0, rate, 1000, 0.5)
    path = write_audio(tmp_path / f"r{rate}.wav", y, rate)
    got, out_rate = load_audio(path, 16000)
    assert out_rate == 16000
    assert abs(got.size - 16000) <= 1
    assert abs(_peak_hz(got, 16000) - 1000) < 3
    assert abs(np.sqrt(np.mean(got[1000:-1000] ** 2)) - 0.5 / np.sqrt(2)) < 0.01


def test_resample_identity_and_length():
    y = tone(0.25, 48000)
    assert resample(y, 48000, 48000) is not None and np.array_equal(resample(y, 48000, 48000), y)
    assert resample(y, 48000, 16000).size == 4000


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioDecodeError) as e:
        load_audio(path)
    _assert_one_line_error(e, path, "empty file")


def test_zero_samples(tmp_path):
    path = write_audio(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioDecodeError) as e:
        load_audio(path)
    _assert_one_line_error(e, path, "no audio samples")


def test_truncated_header(tmp_path):
    full = write_audio(tmp_path / "full.wav", tone(0.5), 16000)
    path = tmp_path / "trunc.wav"
    path.write_bytes(full.read_bytes()[:30])
    with pytest.raises(AudioDecodeError) as e:
        load_audio(path)
    _assert_one_line_error(e, path, "unrecognised or damaged audio")


def test_random_bytes_with_wav_name(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(AudioDecodeError) as e:
        load_audio(path)
    _assert_one_line_error(e, path, "unrecognised or damaged audio")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioDecodeError) as e:
        load_audio(tmp_path / "nope.wav")
    _assert_one_line_error(e, tmp_path / "nope.wav", "no such file")
    with pytest.raises(AudioDecodeError) as e:
        load_audio(tmp_path)
    _assert_one_line_error(e, tmp_path, "is a directory")


def test_non_finite_samples(tmp_path):
    y = tone(0.1)
    y[10] = np.nan
    path = write_audio(tmp_path / "nan.wav", y, 16000, "FLOAT")
    with pytest.raises(AudioDecodeError) as e:
        load_audio(path)
    _assert_one_line_error(e, path, "NaN")


def test_directory_walk_picks_audio_and_skips_other_files(tmp_path):
    (tmp_path / "sub").mkdir()
    write_audio(tmp_path / "b.wav", tone(0.1), 16000)
    write_audio(tmp_path / "sub" / "a.flac", tone(0.1), 16000)
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "UPPER.WAV").write_bytes((tmp_path / "b.wav").read_bytes())
    found = list(iter_audio_files([tmp_path]))
    assert [p.name for p in found] == ["UPPER.WAV", "b.wav", "a.flac"]
    # A file named explicitly is always tried, whatever its extension.
    assert list(iter_audio_files([tmp_path / "notes.txt"])) == [tmp_path / "notes.txt"]


def test_trim_silence_cuts_quiet_edges():
    rate = 16000
    y = np.concatenate([np.zeros(8000), tone(1.0, rate, 300, 0.5), 1e-4 * np.ones(4000)]).astype(np.float32)
    trimmed, (start, end) = trim_silence(y, rate, top_db=40)
    assert abs(start - 8000) <= 400 and abs(end - 24000) <= 400
    assert np.array_equal(trimmed, y[start:end])
    silent = np.zeros(1000, np.float32)
    assert trim_silence(silent, rate)[0].size == 1000

