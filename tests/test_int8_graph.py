"""A bundle's int8 graph is data, never a program (issue 37, items 1-4): graphs that read files
beside the working directory, allocate gigabytes, loop for ever or are malformed are refused when
the bundle is loaded (load_bundle, `serapp predict`, `serapp model-info`), in one line naming
the file, before any reading. The graphs are the tiny encoder's own, edited."""

import inspect
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
import safetensors
import safetensors.torch
import torch
from helpers import WHISPER_FE, speechlike, tiny_whisper_folder, tiny_whisper_model, write_audio
from onnx import TensorProto, helper, numpy_helper

from serapp.bundle import BundleMeta, load_bundle, save_bundle, tensors_digest
from serapp.cli import main
from serapp.errors import BundleError
from serapp.models.int8_check import DEFAULTS, MAX_BATCH, _array, _evaluate, _tensor
from serapp.models.speech_encoder import SpeechEncoderClassifier
from trainer.quantise import attach_int8

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt makes the application

REFUSED = "its int8 encoder graph is refused"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny frozen-Whisper bundle carrying the exporter's int8 graph."""
    tmp = tmp_path_factory.mktemp("int8")
    model = tiny_whisper_model(tiny_whisper_folder(tmp / "enc")).eval()
    attach_int8(model, WHISPER_FE.n_frames(16000))
    meta = BundleMeta(architecture="speech_encoder", labels=["neutral", "happy", "sad", "angry"], frontend=WHISPER_FE,
                      window_s=1.0, trim_top_db=None, hparams=dict(model.hparams))
    return save_bundle(tmp / "base.safetensors", model, meta)


def _with_graph(base, out, graph: bytes):
    """`base` with `graph` as its int8 graph, its size and checksum made to agree."""
    with safetensors.safe_open(str(base), "pt") as f:
        metadata = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors["encoder_int8"] = torch.frombuffer(bytearray(graph), dtype=torch.uint8)
    meta = json.loads(metadata["meta"])
    meta["hparams"]["int8_bytes"] = len(graph)
    metadata["meta"] = json.dumps(meta)
    metadata["weights_sha256"] = tensors_digest(tensors)
    safetensors.torch.save_file(tensors, str(out), metadata=metadata)
    return out


def _edited(base, out, edit):
    with safetensors.safe_open(str(base), "np") as f:
        model = onnx.load_from_string(f.get_tensor("encoder_int8").tobytes())
    edit(model)
    return _with_graph(base, out, model.SerializeToString())


def _external(location):
    def edit(model):  # a bias of the stem read from a file instead
        bias = next(t for t in model.graph.initializer if t.data_type == TensorProto.FLOAT and len(t.dims) == 1)
        size = 4 * int(np.prod(bias.dims))
        bias.ClearField("raw_data")
        del bias.float_data[:]
        bias.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
            bias.external_data.add(key=key, value=value)
    return edit


def _after_pooled(*nodes, opset=None):
    """The graph's output passed through `nodes` (from "raw" to "pooled")."""
    def edit(model):
        for node in model.graph.node:
            node.output[:] = ["raw" if o == "pooled" else o for o in node.output]
        model.graph.node.extend(nodes)
        if opset:
            model.opset_import.append(helper.make_opsetid(*opset))
    return edit


def _constant(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value)))


def _loop(model):
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond"], ["cond_out"]), helper.make_node("Identity", ["acc"], ["acc_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("acc", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [])])
    _after_pooled(_constant("trips", np.int64(2**62)), _constant("go", np.bool_(True)), _constant("zero", np.float32(0)),
                  helper.make_node("Loop", ["trips", "go", "zero"], ["spun"], body=body),
                  helper.make_node("Add", ["raw", "spun"], ["pooled"]))(model)


def _renamed_input(model):
    for node in model.graph.node:
        node.input[:] = ["feats" if i == "features" else i for i in node.input]
    model.graph.input[0].name = "feats"


def _padded(model):  # an unused weight of 2 MB: more than the whole tiny encoder weighs
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(512 * 1024, np.float32), "padding"))


CASES = {
    "external data ./secret.txt": (_external("secret.txt"), "reads external data ('secret.txt')"),
    "external data /etc/passwd": (_external("/etc/passwd"), "reads external data ('/etc/passwd')"),
    "external data ../../etc/passwd": (_external("../../etc/passwd"), "reads external data ('../../etc/passwd')"),
    "ConstantOfShape([2**30])": (_after_pooled(
        _constant("shape", np.array([2**30], np.int64)),
        helper.make_node("ConstantOfShape", ["shape"], ["big"], value=numpy_helper.from_array(np.zeros(1, np.float32))),
        helper.make_node("ReduceMean", ["big"], ["big_mean"], keepdims=0),
        helper.make_node("Add", ["raw", "big_mean"], ["pooled"])), "operator 'ConstantOfShape'"),
    "a Loop of 2**62": (_loop, "operator 'Loop'"),
    "a custom operator": (_after_pooled(helper.make_node("Evil", ["raw"], ["pooled"], domain="com.evil"),
                                       opset=("com.evil", 1)), "another domain ('com.evil')"),
    "a wrong output shape": (_after_pooled(helper.make_node("Transpose", ["raw"], ["pooled"], perm=[0, 2, 1])), "pooled"),
    "a renamed input": (_renamed_input, "the input must be features"),
    "a missing input": (lambda m: m.graph.ClearField("input"), "the input must be features"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_graph_that_is_not_the_exporters_is_refused_at_load_in_one_line(base, tmp_path, capsys, case):
    edit, fragment = CASES[case]
    bad = _edited(base, tmp_path / "bad.safetensors", edit)
    with pytest.raises(BundleError) as refused:
        load_bundle(bad)
    message = str(refused.value)
    assert message.startswith(f"{bad}: {REFUSED}: ") and fragment in message and "\n" not in message, message
    assert main(["model-info", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and message in err and len(err.strip().splitlines()) == 1, err


def test_a_graph_larger_than_the_encoder_is_refused_before_its_bytes_are_read(base, tmp_path, capsys, monkeypatch):
    bad = _edited(base, tmp_path / "bad.safetensors", _padded)

    def no_reading(*args, **kwargs):
        raise AssertionError("the weights were read")

    monkeypatch.setattr(safetensors.torch, "load_file", no_reading)
    monkeypatch.setattr(safetensors, "safe_open", no_reading)
    with pytest.raises(BundleError, match="int8_bytes must be a whole number in .0, 1385984. for this encoder"):
        load_bundle(bad)
    assert main(["model-info", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "1385984" in err and len(err.strip().splitlines()) == 1, err


def test_random_bytes_as_the_graph_are_refused_by_predict_before_any_reading(base, tmp_path, capsys):
    bad = _with_graph(base, tmp_path / "bad.safetensors", np.random.default_rng(0).bytes(4096))
    clip = write_audio(tmp_path / "a.wav", speechlike(1.5), 16000)
    assert main(["predict", str(clip), "--model", str(bad), "--format", "jsonl"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and f"{bad}: {REFUSED}" in err and "not an ONNX graph" in err and "Traceback" not in err


def test_a_bundle_never_reads_a_file_from_the_working_directory(base, tmp_path):
    """The issue's case through the real `serapp`: a graph whose stem bias is ./secret.txt."""
    bad = _edited(base, tmp_path / "bad.safetensors", _external("secret.txt"))
    (tmp_path / "secret.txt").write_bytes(b"\x00\x00\x80\x7f" * 64)
    clip = write_audio(tmp_path / "a.wav", speechlike(1.5), 16000)
    proc = subprocess.run([sys.executable, "-m", "serapp", "predict", str(clip), "--model", str(bad)],
                          capture_output=True, timeout=300, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and proc.stdout == b"", err
    assert f"{bad}: {REFUSED}: tensor" in err and "external data ('secret.txt')" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_the_exporters_graph_loads_and_runs_in_batches_the_check_covered(base):
    model, _ = load_bundle(base)
    assert model.runtime == "onnxruntime int8"
    features = torch.randn(2 * MAX_BATCH + 1, 80, WHISPER_FE.n_frames(16000))
    with torch.inference_mode():
        whole = model.pooled(features)
        one_batch = torch.cat([model.pooled(features[i : i + MAX_BATCH]) for i in range(0, len(features), MAX_BATCH)])
    assert torch.equal(whole, one_batch)  # run MAX_BATCH windows at a time, whatever the caller passes


def test_a_graph_is_checked_with_the_encoders_own_defaults():
    signature = inspect.signature(SpeechEncoderClassifier).parameters
    assert {k: signature[k].default for k in DEFAULTS} == DEFAULTS


def test_the_app_refuses_such_a_bundle_at_load_in_its_banner(base, tmp_path, qtbot):
    from PySide6 import QtCore

    from serapp.gui.main_window import MainWindow
    from serapp.gui.plots import configure_pyqtgraph

    bad = _with_graph(base, tmp_path / "bad.safetensors", np.random.default_rng(0).bytes(4096))
    configure_pyqtgraph()
    w = MainWindow(str(bad), "cpu", settings=QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.load_model_async()
    qtbot.waitUntil(lambda: any(REFUSED in m for m in w.messages), timeout=60000)
    assert w.predictor is None and f"{bad}: {REFUSED}: not an ONNX graph" in w.messages, w.messages
    w.close()


def test_loading_a_bundle_imports_only_the_parts_of_onnx_the_check_uses(base):
    # `import onnx` costs a second more (ml_dtypes); one made later still gets the whole package
    code = ("import sys; from serapp.bundle import load_bundle; model, _ = load_bundle(sys.argv[1]); "
            "assert model.runtime == 'onnxruntime int8'; "
            "assert not {'ml_dtypes', 'onnx.helper', 'onnx.checker'} & set(sys.modules), sorted(sys.modules); "
            "import onnx; from onnx import checker, helper; from onnx.reference import ReferenceEvaluator; "
            "assert onnx.onnx_ml_pb2.ModelProto is onnx.ModelProto and onnx.onnx_cpp2py_export.checker; "
            "checker.check_model(helper.make_model(helper.make_graph([], 'g', [], []))); print('ok')")
    out = subprocess.run([sys.executable, "-c", code, str(base)], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


FOLDS = {  # op, inputs (int64), attributes
    "Add": ("Add", [[3, -7], [2, 2]], {}), "Sub": ("Sub", [[3, -7], [5]], {}), "Mul": ("Mul", [[3, -7], [-2, 4]], {}),
    "Div rounds towards zero": ("Div", [[7, -7, 7, -7, 6], [2, 2, -2, -2, 3]], {}),
    "Gather a scalar, from the end": ("Gather", [[1, 80, 300], -1], {"axis": 0}),
    "Gather on axis 1": ("Gather", [[[1, 2], [3, 4]], [1, 0]], {"axis": 1}),
    "Unsqueeze a scalar": ("Unsqueeze", [5, [0]], {}),
    "Unsqueeze on two axes": ("Unsqueeze", [[5, 6], [-1, 0]], {}),
    "Concat": ("Concat", [[1], [2, 3]], {"axis": 0}),
    "Slice": ("Slice", [[0, 1, 2, 3, 4, 5], [1], [-1]], {}),
    "Slice backwards": ("Slice", [[0, 1, 2, 3, 4, 5], [-1], [-2**63], [0], [-2]], {}),
    "Slice past the end": ("Slice", [[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]], [1, 0], [2**62, 3], [0, -1]], {}),
    "Cast to int32": ("Cast", [[1, -1]], {"to": TensorProto.INT32}),
    "Cast to uint8": ("Cast", [[300, -1]], {"to": TensorProto.UINT8}),
}


@pytest.mark.parametrize("case", FOLDS)
def test_shape_arithmetic_is_folded_as_onnx_reference_computes_it(case):
    from onnx.reference import ReferenceEvaluator

    op, inputs, attrs = FOLDS[case]
    args = [np.array(a, np.int64) for a in inputs]
    node = helper.make_node(op, [f"x{i}" for i in range(len(args))], ["y"], **attrs)
    want = ReferenceEvaluator(node).run(None, {f"x{i}": a for i, a in enumerate(args)})[0]
    got = _evaluate(node, args)
    assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64, np.uint32, np.uint64])
def test_a_constants_integers_are_read_and_written_as_numpy_helper_does(dtype):
    value = np.array([[1, 2, 3], [4, 5, 127]], dtype)
    assert _tensor(onnx, value).SerializeToString() == numpy_helper.from_array(value).SerializeToString()
    stored = [numpy_helper.from_array(value), helper.make_tensor("v", helper.np_dtype_to_tensor_dtype(value.dtype),
                                                                 value.shape, value.reshape(-1).tolist())]
    for tensor in stored:  # as raw bytes, and in the typed field
        got = _array(tensor, "v")
        assert got.dtype == value.dtype and np.array_equal(got, value)
