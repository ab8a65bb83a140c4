"""A bundle's int8 encoder graph is data, never a program: it is held to the graph
trainer/quantise.py makes before onnxruntime ever sees it.

An ONNX graph can read files beside it (external data), allocate what it likes
(ConstantOfShape, Expand, Tile, broadcasting), loop for ever (Loop, Scan, If) and call custom
operators. The encoder's topology is fixed by its hyper-parameters, so a graph is refused,
with one line saying why, unless it is made only of the operators the exporter emits, carries
all its tensors inline, reads `features` (batch, 80, frames) and writes `pooled` (batch,
layers, width), and every value it computes, for each batch it is ever run on, is no larger
than the encoder's own activations (onnx's shape inference, run with each of those batches).

onnxruntime cannot list a graph's operators or shapes, so the graph is read with the `onnx`
package, the format's reference implementation, on the protobuf onnxruntime already needs: its
generated protobuf module and its C++ checker and shape inference, without the rest of the
package (`onnx_parts`).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import math
import sys
import threading

from serapp.errors import BundleError

# What the exporter and onnxruntime's dynamic quantiser emit for the Whisper encoder (the
# shipped default's graph, and every width, depth and pooling tests/test_int8.py makes). None
# allocates beyond its inputs' shapes or runs a subgraph.
OPS = frozenset({
    "Add", "Cast", "Concat", "Constant", "Conv", "Div", "DynamicQuantizeLinear", "Gather", "Gelu",
    "LayerNormalization", "MatMul", "MatMulInteger", "Mul", "ReduceMean", "Reshape", "Shape", "Slice",
    "Softmax", "Sqrt", "Sub", "Transpose", "Unsqueeze",
})
_DOMAINS = ("", "ai.onnx")
# The integer and float types the graph's weights, scales and shape constants are stored in.
_TENSOR_TYPES = frozenset({1, 2, 3, 6, 7, 10})  # FLOAT, UINT8, INT8, INT32, INT64, FLOAT16
# serapp/models/int8.py runs at most this many windows at once: the shapes are checked for each
# batch from 1 to it, so no batch it is run on is left unchecked.
MAX_BATCH = 4
# Nodes the exporter makes: about 110 a block and 90 for the stem and pooling.
_NODES_PER_BLOCK, _NODES_BASE = 200, 200
# SpeechEncoderClassifier's defaults, for a bundle whose metadata leaves one out (a test holds
# them equal).
DEFAULTS = {"blocks": 4, "width": 512, "heads": 8, "pooling": "mean"}


class GraphRefused(ValueError):
    """The graph is not the exporter's; the message says what is wrong, in one line."""


_PARTS_LOCK = threading.Lock()
_parts = None


def onnx_parts():
    """(onnx's protobuf classes, its C++ extension): all of onnx the check uses; ImportError
    without onnx. `import onnx` would also import onnx.helper and with it ml_dtypes, whose numpy
    types take 1.1 s to register: a fifth of loading the default model."""
    global _parts
    with _PARTS_LOCK:
        if _parts is None:
            _parts = _load_onnx_parts()
        return _parts


def _load_onnx_parts():
    names = ("onnx.onnx_ml_pb2", "onnx.onnx_cpp2py_export")
    spec = importlib.util.find_spec("onnx") if "onnx" not in sys.modules else None
    where = spec.submodule_search_locations if spec else None
    children = [importlib.machinery.PathFinder.find_spec(n, where) for n in names] if spec else []
    if spec is None or None in children:  # onnx in already, or laid out otherwise: the whole package
        import onnx
        from onnx import onnx_cpp2py_export

        return onnx, onnx_cpp2py_export
    # The two modules under their own names, in a package whose __init__ runs when something
    # first uses it (an `import onnx` elsewhere then gets the whole package, with these in it).
    lazy = importlib.util.LazyLoader(spec.loader)
    spec.loader = lazy
    package = importlib.util.module_from_spec(spec)
    sys.modules["onnx"] = package
    lazy.exec_module(package)
    try:
        for name, child in zip(names, children):
            module = importlib.util.module_from_spec(child)
            sys.modules[name] = module
            child.loader.exec_module(module)
            setattr(package, name.rpartition(".")[2], module)  # a module's __dict__: the package stays unrun
    except BaseException:
        for name in ("onnx", *names):
            sys.modules.pop(name, None)
        raise
    return tuple(sys.modules[n] for n in names)


def max_graph_bytes(blocks: int, width: int, positions: int = 1500, n_mels: int = 80) -> int:
    """The most a graph of this encoder may weigh: every float weight at 4 bytes (the float
    encoder held in memory weighs as much), plus 1 MiB for the structure."""
    weights = 3 * n_mels * width + 3 * width * width + positions * width + blocks * (12 * width * width + 16 * width)
    return 4 * weights + (1 << 20)


def limits(hparams: dict, frames: int) -> dict:
    """`check_graph`'s keyword arguments from a bundle's hyper-parameters and window length."""
    h = {**DEFAULTS, **{k: v for k, v in hparams.items() if k in DEFAULTS}}
    if not all(isinstance(h[k], int) and not isinstance(h[k], bool) and h[k] > 0 for k in ("blocks", "width", "heads")):
        raise GraphRefused("the encoder's blocks, width and heads are not all positive whole numbers")
    return dict(frames=frames, blocks=h["blocks"], width=h["width"], heads=h["heads"],
                out_width=h["width"] * (2 if h["pooling"] == "mean+std" else 1))


def window_frames(meta) -> int:
    """Front-end frames in one of a bundle's windows (BundleMeta): the length its graph reads."""
    return meta.frontend.n_frames(int(meta.window_s * meta.frontend.sample_rate))


def refuse_graph(path, check) -> None:
    """Run a bundle's graph check: a refusal is a BundleError naming the file. Without onnx nothing
    is checked, and nothing runs the graph (the float path reads; int8.Int8Encoder.available)."""
    try:
        check()
    except ImportError:
        pass
    except GraphRefused as exc:
        raise BundleError(path, f"its int8 encoder graph is refused: {exc}") from None


def check_stored_graph(path, header: dict, meta) -> None:
    """A bundle's graph from its file (its size against the encoder's first, then its bytes alone
    read), without building the model: what `serapp model-info` checks."""

    def check():
        import safetensors

        bounds = limits(meta.hparams, window_frames(meta))
        most, size = max_graph_bytes(bounds["blocks"], bounds["width"]), math.prod(header["encoder_int8"]["shape"])
        if size > most:
            raise GraphRefused(f"{size} bytes, more than this encoder's {most}")
        try:
            with safetensors.safe_open(str(path), "numpy") as f:
                graph = f.get_tensor("encoder_int8").tobytes()
        except Exception:  # safetensors' own error types for a malformed file
            raise GraphRefused("its bytes cannot be read from the file") from None
        check_graph(graph, **bounds)

    refuse_graph(path, check)


def check_graph(data: bytes, *, frames: int, blocks: int, width: int, heads: int, out_width: int) -> None:
    """Refuse (GraphRefused) any graph but the exporter's for this encoder; see the module."""
    onnx, c = onnx_parts()
    if len(data) > max_graph_bytes(blocks, width):
        raise GraphRefused(f"{len(data)} bytes, more than this encoder's {max_graph_bytes(blocks, width)}")
    try:
        model = onnx.ModelProto.FromString(bytes(data))
    except Exception:  # protobuf's DecodeError, or its recursion limit
        raise GraphRefused("not an ONNX graph") from None
    graph = model.graph
    if model.functions or model.training_info or graph.sparse_initializer:
        raise GraphRefused("it defines functions, training steps or sparse tensors")
    odd = sorted({o.domain for o in model.opset_import if o.domain not in _DOMAINS})
    if odd:
        raise GraphRefused(f"operators from another domain ({odd[0]!r})")
    per_window = 4 * max(80 * frames, 4 * width * frames, heads * frames * frames)
    weight = 4 * width * max(width, frames, 1500)  # the largest weight, with room
    if len(graph.node) > _NODES_BASE + _NODES_PER_BLOCK * blocks:
        raise GraphRefused(f"{len(graph.node)} operators, more than this encoder's {_NODES_BASE + _NODES_PER_BLOCK * blocks}")
    for node in graph.node:  # operators first: a Loop is named as such, whatever it holds
        if node.domain not in _DOMAINS or node.op_type not in OPS:
            name = f"{node.domain}.{node.op_type}" if node.domain not in _DOMAINS else node.op_type
            raise GraphRefused(f"operator {name!r} is not one the encoder uses")
    for node in graph.node:
        _check_attributes(onnx, node, weight)
    for tensor in graph.initializer:
        _check_tensor(onnx, tensor, weight)
    _check_io(graph.input, "features", [80, frames], "input")
    _check_io(graph.output, "pooled", [blocks + 1, out_width], "output")
    try:
        # onnx.checker.check_model's defaults: every value defined before use, attributes as the
        # operator's schema says
        c.checker.check_model(model.SerializeToString(), False, False, False)
    except Exception as exc:
        raise GraphRefused(f"malformed ({_first_line(exc)})") from None
    _check_shapes(onnx, c, model, per_window, weight, blocks + 1, out_width)


def _check_attributes(onnx, node, weight: int) -> None:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.TENSOR and node.op_type == "Constant" and attr.name == "value":
            _check_tensor(onnx, attr.t, weight, node.output[0] if node.output else "")
        elif attr.type not in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS, onnx.AttributeProto.FLOAT,
                               onnx.AttributeProto.STRING) or attr.ref_attr_name:
            raise GraphRefused(f"{node.op_type} has a {onnx.AttributeProto.AttributeType.Name(attr.type).lower()} "
                               f"attribute {attr.name!r} (subgraphs and other tensors are not allowed)")


def _check_tensor(onnx, tensor, weight: int, name: str = "") -> None:
    name = name or tensor.name
    if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
        where = next((e.value for e in tensor.external_data if e.key == "location"), "")
        raise GraphRefused(f"tensor {name!r} reads external data{f' ({where!r})' if where else ''}: "
                           "a bundle carries all its weights")
    if tensor.data_type not in _TENSOR_TYPES or any(d < 0 for d in tensor.dims) or math.prod(tensor.dims) > weight:
        raise GraphRefused(f"tensor {name!r} is not a weight of this encoder "
                           f"({onnx.TensorProto.DataType.Name(tensor.data_type)} {list(tensor.dims)})")


def _check_io(values, name: str, dims: list[int], what: str) -> None:
    want = f"{name} (batch, {', '.join(map(str, dims))}) float32"
    if len(values) != 1 or values[0].name != name:
        raise GraphRefused(f"its {what}s are {[v.name for v in values]}, not [{name!r}]: the {what} must be {want}")
    t = values[0].type.tensor_type
    got = [d.dim_value if d.HasField("dim_value") else "batch" for d in t.shape.dim]
    if t.elem_type != 1 or len(got) != 3 or got[1:] != dims or not values[0].type.tensor_type.shape.dim[0].dim_param:
        raise GraphRefused(f"its {what} {name!r} is {got}, not {want}")


def _check_shapes(onnx, c, model, per_window: int, weight: int, layers: int, out_width: int) -> None:
    """Every value's shape, inferred for each batch the graph runs on, is known and bounded (onnx's
    inference resolves the shape arithmetic on Shape, Gather, Concat, Reshape)."""
    light = onnx.ModelProto()
    light.CopyFrom(model)
    graph = light.graph
    # the weights as typed inputs: inference needs their shapes, not their 20 MB of bytes
    weights = [onnx.ValueInfoProto(name=t.name, type=_tensor_type(onnx, t.data_type, t.dims))
               for t in graph.initializer]
    del graph.initializer[:]
    del graph.value_info[:]  # the file's own claims about shapes count for nothing
    graph.input.extend(weights)
    graph.output[0].type.tensor_type.ClearField("shape")
    for batch in range(1, MAX_BATCH + 1):
        graph.input[0].type.tensor_type.shape.dim[0].dim_value = batch
        inferred = _infer(onnx, c, light)
        total, bound = 0, batch * per_window + weight
        for value in [*inferred.value_info, *inferred.output]:
            shape = value.type.tensor_type.shape
            dims = [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]
            if not value.type.tensor_type.HasField("shape") or None in dims or math.prod(dims) > bound:
                raise GraphRefused(f"value {value.name!r} is {[d if d is not None else '?' for d in dims]} "
                                   f"for {batch} window(s): larger than this encoder's, or of no known size")
            total += math.prod(dims)
        if total > 50 * bound:  # all the exporter's values together are about 12 of its largest
            raise GraphRefused(f"its values total {total} numbers for {batch} window(s), more than this encoder needs")
        out = [d.dim_value for d in inferred.output[0].type.tensor_type.shape.dim]
        if out != [batch, layers, out_width]:
            raise GraphRefused(f"it computes 'pooled' as {out} for {batch} window(s), not {[batch, layers, out_width]}")


def _tensor_type(onnx, elem_type: int, dims):
    """What onnx.helper.make_tensor_type_proto makes: a scalar's shape is known, with no dims."""
    proto = onnx.TypeProto()
    proto.tensor_type.elem_type = elem_type
    proto.tensor_type.shape.SetInParent()
    for d in dims:
        proto.tensor_type.shape.dim.add().dim_value = d
    return proto


def _infer(onnx, c, model):
    """onnx's shape inference, with the shape arithmetic folded into constants until every
    shape is known (it does not follow a Slice whose ends come from a Shape: the positional
    table's, cut to the window's length)."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    for _ in range(8):
        try:  # onnx.shape_inference.infer_shapes, on the bytes
            inferred = c.shape_inference.infer_shapes(work.SerializeToString(), True, True, True)
            inferred = onnx.ModelProto.FromString(inferred).graph
        except Exception as exc:
            raise GraphRefused(f"malformed ({_first_line(exc)})") from None
        shapes = {v.name: v.type.tensor_type.shape for v in [*inferred.value_info, *inferred.input]}
        known, folded = {}, False
        for node in work.graph.node:
            value = _fold(node, known, shapes)
            if value is not None:
                known[node.output[0]] = value
                if node.op_type != "Constant":
                    node.CopyFrom(onnx.NodeProto(op_type="Constant", output=[node.output[0]], attribute=[
                        onnx.AttributeProto(name="value", type=onnx.AttributeProto.TENSOR, t=_tensor(onnx, value))]))
                    folded = True
        if not folded:
            return inferred
    raise GraphRefused("its shapes do not settle")


_FOLDED = frozenset({"Shape", "Gather", "Unsqueeze", "Concat", "Slice", "Cast", "Mul", "Div", "Add", "Sub"})
# TensorProto's integer types: shape arithmetic is done in these
_INTS = {2: "u1", 3: "i1", 4: "u2", 5: "i2", 6: "i4", 7: "i8", 12: "u4", 13: "u8"}


def _fold(node, known: dict, shapes: dict):
    """The value of a node that computes a shape (a few integers), or None."""
    import numpy as np

    if node.op_type == "Constant":
        value = _array(node.attribute[0].t, node.output[0])
    elif node.op_type == "Shape" and not node.attribute and node.input[0] in shapes:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in shapes[node.input[0]].dim]
        value = None if None in dims else np.array(dims, dtype=np.int64)
    elif node.op_type in _FOLDED and len(node.output) == 1 and all(i in known for i in node.input):
        try:
            value = _evaluate(node, [known[i] for i in node.input])
        except Exception as exc:  # a division by zero, an index out of range
            raise GraphRefused(f"{node.op_type} {node.output[0]!r} cannot be computed ({_first_line(exc)})") from None
    else:
        return None
    return value if value is not None and value.dtype.kind in "iu" and value.size <= 16 else None


def _array(tensor, name: str):
    """A Constant's value as numpy.array, where it is a few integers (onnx.numpy_helper.to_array's)."""
    import numpy as np

    if tensor.data_type not in _INTS or math.prod(tensor.dims) > 16:
        return None
    dtype = np.dtype(_INTS[tensor.data_type])
    if tensor.HasField("raw_data"):
        values = np.frombuffer(tensor.raw_data, dtype=dtype.newbyteorder("<"))
    else:
        wide = dtype == np.int64 or dtype.str[1:] in ("u4", "u8")  # where TensorProto stores each type
        field = ("int64_data" if dtype == np.int64 else "uint64_data") if wide else "int32_data"
        values = np.array(getattr(tensor, field)).astype(dtype)
    if values.size != math.prod(tensor.dims):
        raise GraphRefused(f"tensor {name!r} holds {values.size} numbers, not {list(tensor.dims)}")
    return values.astype(dtype).reshape(tuple(tensor.dims))


def _tensor(onnx, value):
    """onnx.numpy_helper.from_array's tensor of a few integers."""
    dtype = value.dtype.newbyteorder("<")
    return onnx.TensorProto(dims=value.shape, raw_data=value.astype(dtype).tobytes(),
                            data_type=next(k for k, v in _INTS.items() if dtype.str[1:] == v))


def _evaluate(node, args: list):
    """A shape-arithmetic node on integers, computed as onnx.reference's operators compute it
    (tests/test_int8_graph.py holds the two equal); a raised error refuses the graph."""
    import numpy as np

    op, attrs = node.op_type, {a.name: a for a in node.attribute}
    if op in ("Add", "Sub", "Mul", "Div"):
        a, b = args
        if a.dtype != b.dtype:
            raise TypeError(f"input type mismatch: {a.dtype} != {b.dtype}")
        if op != "Div":
            return np.asarray({"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](a, b))
        if np.any(b == 0):
            raise ZeroDivisionError("division by zero")
        q = np.floor_divide(a, b)  # rounded towards zero, as in C++
        return np.asarray(q + ((np.remainder(a, b) != 0) & ((a < 0) ^ (b < 0))).astype(q.dtype))
    if op == "Gather":
        return np.asarray(np.take(args[0], args[1], axis=attrs["axis"].i if "axis" in attrs else 0))
    if op == "Unsqueeze":  # the axes an input, since opset 13
        data, axes = args
        return np.expand_dims(data, axis=tuple(int(a) for a in axes.reshape(-1)))
    if op == "Concat":
        axis = attrs["axis"].i
        if any(not -a.ndim <= axis < a.ndim for a in args):
            raise ValueError(f"axis {axis} is out of range")
        return np.concatenate(args, axis)
    if op == "Slice":  # the starts, ends, axes and steps inputs, since opset 10
        data, starts, ends, *rest = args
        axes, steps = (rest + [None, None])[:2]
        slices = [slice(0, n) for n in data.shape] if axes is not None else []
        for k, (s, e) in enumerate(zip(starts.reshape(-1), ends.reshape(-1))):
            step = steps.reshape(-1)[k] if steps is not None else None
            if axes is None:
                slices.append(slice(s, e, step))
            else:
                slices[axes.reshape(-1)[k]] = slice(s, e, step)
        return data[tuple(slices)]
    if op == "Cast":
        to = _INTS.get(attrs["to"].i)
        return args[0].astype(to) if to else None  # to anything else: no longer shape arithmetic
    raise ValueError(f"{op} is not folded")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
