"""Hostile and malformed ONNX graphs for ``tests/hostile_graphs.rs``: each names one thing a graph file can get wrong.

    python scripts/hostile_graphs.py ../../tests/data/hostile      (from models/recipe)

Every file is a few hundred bytes but ``deep_chain`` (3,000 nodes). What the runtime says for each is the
Rust test's table; ``src/graph/guard.rs`` says which ones tract 0.23.9 panics on or never returns from.
"""

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

out = str(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()) + "/"
Path(out).mkdir(parents=True, exist_ok=True)
def model(nodes, inputs, outputs, inits=(), name="g"):
    g = h.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    return m
def vi(n, shape, t=T.FLOAT): return h.make_tensor_value_info(n, t, shape)
def save(m, name):
    open(out + name + ".onnx", "wb").write(m.SerializeToString())
X = vi("x", [1, 4]); Y = vi("y", [1, 4])
# 1 initializer declaring a huge shape with 16 bytes of data
t = onnx.TensorProto(); t.name = "w"; t.data_type = T.FLOAT; t.dims.extend([1 << 20, 1 << 20]); t.raw_data = b"\0" * 16
save(model([h.make_node("Add", ["x", "w"], ["y"])], [X], [Y], [t]), "huge_initializer_dims")
# 2 raw_data shorter than its dims
t = onnx.TensorProto(); t.name = "w"; t.data_type = T.FLOAT; t.dims.extend([4]); t.raw_data = b"\0" * 3
save(model([h.make_node("Add", ["x", "w"], ["y"])], [X], [Y], [t]), "short_raw_data")
# 3 node reads a value nobody defines
save(model([h.make_node("Add", ["x", "nowhere"], ["y"])], [X], [Y]), "undefined_input")
# 4 cycle
save(model([h.make_node("Add", ["x", "b"], ["a"]), h.make_node("Relu", ["a"], ["b"]), h.make_node("Identity", ["a"], ["y"])], [X], [Y]), "cycle")
# 5 external data outside the bundle
t = onnx.TensorProto(); t.name = "w"; t.data_type = T.FLOAT; t.dims.extend([4]); t.data_location = onnx.TensorProto.EXTERNAL
e = t.external_data.add(); e.key = "location"; e.value = "../../etc/shadow"
save(model([h.make_node("Add", ["x", "w"], ["y"])], [X], [Y], [t]), "external_data_escape")
t2 = onnx.TensorProto(); t2.CopyFrom(t); t2.external_data[0].value = "/etc/passwd"
save(model([h.make_node("Add", ["x", "w"], ["y"])], [X], [Y], [t2]), "external_data_absolute")
# 7 Reshape to an impossible constant shape
s = nh.from_array(np.array([-5, 3], np.int64), "s")
save(model([h.make_node("Reshape", ["x", "s"], ["y"])], [X], [Y], [s]), "reshape_negative")
s = nh.from_array(np.array([-1, -1], np.int64), "s")
save(model([h.make_node("Reshape", ["x", "s"], ["y"])], [X], [Y], [s]), "reshape_two_minus_one")
# 8 Gather with constant out-of-range indices on a constant
d = nh.from_array(np.arange(4, dtype=np.float32), "d"); i = nh.from_array(np.array([7], np.int64), "i")
save(model([h.make_node("Gather", ["d", "i"], ["g"]), h.make_node("Add", ["x", "g"], ["y"])], [X], [Y], [d, i]), "gather_out_of_range")
# 9 Slice with step 0
st = nh.from_array(np.array([0], np.int64), "st"); en = nh.from_array(np.array([4], np.int64), "en")
ax = nh.from_array(np.array([1], np.int64), "ax"); sp = nh.from_array(np.array([0], np.int64), "sp")
save(model([h.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], [X], [Y], [st, en, ax, sp]), "slice_step_zero")
# 10 Conv with a rank-1 weight
w = nh.from_array(np.ones(3, np.float32), "w")
save(model([h.make_node("Conv", ["x", "w"], ["y"])], [vi("x", [1, 1, 8, 8])], [vi("y", [1, 1, 6, 6])], [w]), "conv_rank1_weight")
# 11 Concat axis out of range
save(model([h.make_node("Concat", ["x", "x"], ["y"], axis=9)], [X], [Y]), "concat_axis_9")
# 12 Transpose with a bad permutation
save(model([h.make_node("Transpose", ["x"], ["y"], perm=[0, 0])], [X], [Y]), "transpose_bad_perm")
# 13 MatMul of mismatched constant shapes (constant folding)
a = nh.from_array(np.ones((2, 3), np.float32), "a"); b = nh.from_array(np.ones((5, 7), np.float32), "b")
save(model([h.make_node("MatMul", ["a", "b"], ["c"]), h.make_node("Identity", ["x"], ["y"])], [X], [Y], [a, b]), "matmul_mismatch_const")
# 14 input with a zero dim and negative dim
save(model([h.make_node("Relu", ["x"], ["y"])], [vi("x", [1, -3])], [Y]), "negative_input_dim")
# 15 Unknown op
save(model([h.make_node("FrobnicateV9", ["x"], ["y"])], [X], [Y]), "unknown_op")
# 16 Expand to a huge shape
s = nh.from_array(np.array([1 << 30, 1 << 30], np.int64), "s")
save(model([h.make_node("Expand", ["x", "s"], ["y"])], [X], [Y], [s]), "expand_huge")
# 17 Pad with negative pads beyond size
p = nh.from_array(np.array([0, -9, 0, -9], np.int64), "p")
save(model([h.make_node("Pad", ["x", "p"], ["y"])], [X], [Y], [p]), "pad_negative")
# 18 Split with sizes not summing
sp = nh.from_array(np.array([3, 3], np.int64), "sp")
save(model([h.make_node("Split", ["x", "sp"], ["y", "z"], axis=1)], [X], [Y, vi("z", [1, 3])], [sp]), "split_bad_sizes")
# 19 Gemm with transA on rank 1
save(model([h.make_node("Gemm", ["x", "x"], ["y"], transA=1)], [vi("x", [4])], [Y]), "gemm_rank1")
# 20 Resize with empty scales
sc = nh.from_array(np.array([], np.float32), "sc")
save(model([h.make_node("Resize", ["x", "", "sc"], ["y"])], [vi("x", [1, 1, 4, 4])], [Y], [sc]), "resize_empty_scales")
# 21 truncated protobuf, 22 garbage
b = model([h.make_node("Relu", ["x"], ["y"])], [X], [Y]).SerializeToString()
open(out + "truncated.onnx", "wb").write(b[: len(b) // 2])
open(out + "garbage.onnx", "wb").write(bytes(range(256)) * 4)
# 23 ConstantOfShape huge
s = nh.from_array(np.array([1 << 40], np.int64), "s")
save(model([h.make_node("ConstantOfShape", ["s"], ["c"]), h.make_node("Identity", ["x"], ["y"])], [X], [Y], [s]), "constant_of_shape_huge")
# 24 Topk k larger than axis
k = nh.from_array(np.array([9], np.int64), "k")
save(model([h.make_node("TopK", ["x", "k"], ["y", "ix"], axis=1)], [X], [Y, vi("ix", [1, 9], T.INT64)], [k]), "topk_k_too_big")
# 25 Squeeze a non-1 axis
ax = nh.from_array(np.array([1], np.int64), "ax")
save(model([h.make_node("Squeeze", ["x", "ax"], ["y"])], [X], [Y], [ax]), "squeeze_non_unit")
# 26 Range with step 0
r0 = nh.from_array(np.array(0, np.int64), "r0"); r1 = nh.from_array(np.array(10, np.int64), "r1"); r2 = nh.from_array(np.array(0, np.int64), "r2")
save(model([h.make_node("Range", ["r0", "r1", "r2"], ["r"]), h.make_node("Identity", ["x"], ["y"])], [X], [Y], [r0, r1, r2]), "range_step_zero")
# 27 deep chain
n = 3000
nodes = [h.make_node("Relu", ["x" if i == 0 else f"t{i-1}"], [f"t{i}" if i < n - 1 else "y"]) for i in range(n)]
save(model(nodes, [X], [Y]), "deep_chain")
# 28 huge dims, no data at all
t = onnx.TensorProto(); t.name = "w"; t.data_type = T.FLOAT; t.dims.extend([1 << 20, 1 << 20])
save(model([h.make_node("Add", ["x", "w"], ["y"])], [X], [Y], [t]), "huge_dims_no_data")
# 29 Constant node with a huge tensor, no data
t = onnx.TensorProto(); t.data_type = T.FLOAT; t.dims.extend([1 << 20, 1 << 20])
save(model([h.make_node("Constant", [], ["w"], value=t), h.make_node("Add", ["x", "w"], ["y"])], [X], [Y]), "constant_node_huge")
# 30 negative initializer dim
t = onnx.TensorProto(); t.name = "w"; t.data_type = T.FLOAT; t.dims.extend([-4]); t.raw_data = b"\0" * 16
save(model([h.make_node("Add", ["x", "w"], ["y"])], [X], [Y], [t]), "negative_initializer_dim")
# 31 Transpose perm out of range
save(model([h.make_node("Transpose", ["x"], ["y"], perm=[0, 5])], [X], [Y]), "transpose_perm_out_of_range")
# 32 input with absurd dims
save(model([h.make_node("Relu", ["x"], ["y"])], [vi("x", [1 << 40, 1 << 40])], [vi("y", [1 << 40, 1 << 40])]), "absurd_input_dims")
# 33 Gather whose indices come at run time (fails when run with an index out of range)
d = nh.from_array(np.arange(4, dtype=np.float32), "d")
save(model([h.make_node("Gather", ["d", "i"], ["y"])], [vi("i", [1], T.INT64)], [vi("y", [1])], [d]), "gather_runtime_index")
# 34 the interface of a 256×256 one-channel classifier (image → logits, cam), panicking in tract's constant folding
d = nh.from_array(np.zeros((1, 4), np.float32), "d"); i = nh.from_array(np.array([7], np.int64), "i")
save(model([h.make_node("Gather", ["d", "i"], ["logits"], axis=1), h.make_node("Identity", ["image"], ["cam"])],
           [vi("image", [1, 1, 256, 256])], [vi("logits", [1, 1]), vi("cam", [1, 1, 256, 256])], [d, i]),
     "classifier_that_panics")
# 35 an input declaring 2^28 elements (1 GB of uint32) in front of one Gelu: tract spends ~14 s optimizing it
# (found by fuzzing the graph target; fuzz/regressions/graph/hangs-*)
save(model([h.make_node("Gelu", ["x"], ["y"])], [vi("x", [1 << 28], T.UINT32)], [vi("y", [1 << 28])]),
     "large_declared_input")

# Graphs with the tiny bundle's interfaces that compute NaN or Inf (tests/data/nan/, for the numbers guard):
# classifier image (1,1,256,256) → logits (1,1), cam (1,1,16,16); encoder image → image_embeddings (1,256,16,16).
nan_dir = Path(out).parent / "nan"
nan_dir.mkdir(exist_ok=True)
img = vi("image", [1, 1, 256, 256])
pool = h.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16])
mean = h.make_node("ReduceMean", ["image"], ["m4"], keepdims=1)
flat = nh.from_array(np.array([1, 1], np.int64), "shape11")
to11 = h.make_node("Reshape", ["m4", "shape11"], ["m"])
zero = nh.from_array(np.array(0.0, np.float32), "zero")
minus1 = nh.from_array(np.array(-1.0, np.float32), "minus1")
ten = nh.from_array(np.array(10.0, np.float32), "ten")


def nan_model(nodes, outputs, inits, name):
    m = model([pool, mean, to11] + nodes, [img], outputs, [flat, zero, minus1, ten] + inits)
    open(nan_dir / f"{name}.onnx", "wb").write(m.SerializeToString())


cls_out = [vi("logits", [1, 1]), vi("cam", [1, 1, 16, 16])]
# logits = sqrt(0·mean − 1) = NaN
nan_model([h.make_node("Mul", ["m", "zero"], ["m0"]), h.make_node("Add", ["m0", "minus1"], ["neg"]),
           h.make_node("Sqrt", ["neg"], ["logits"]), h.make_node("Identity", ["pooled"], ["cam"])],
          cls_out, [], "classifier_nan_logits")
# logits = 0·mean + 10 (present), cam = pooled / 0 = ±Inf or NaN
nan_model([h.make_node("Mul", ["m", "zero"], ["m0"]), h.make_node("Add", ["m0", "ten"], ["logits"]),
           h.make_node("Div", ["pooled", "zero"], ["cam"])],
          cls_out, [], "classifier_inf_cam")
# logits = 0·mean + 10 (present), cam = 10 everywhere (a prompt on every frame); the encoder's embeddings = pooled (×256 channels) / 0
nan_model([h.make_node("Mul", ["m", "zero"], ["m0"]), h.make_node("Add", ["m0", "ten"], ["logits"]),
           h.make_node("Mul", ["pooled", "zero"], ["p0"]), h.make_node("Add", ["p0", "ten"], ["cam"])],
          cls_out, [], "classifier_always_present")
reps = nh.from_array(np.array([1, 256, 1, 1], np.int64), "reps")
nan_model([h.make_node("Tile", ["pooled", "reps"], ["tiled"]), h.make_node("Div", ["tiled", "zero"], ["image_embeddings"])],
          [vi("image_embeddings", [1, 256, 16, 16])], [reps], "encoder_inf")
