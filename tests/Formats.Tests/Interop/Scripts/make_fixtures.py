"""Writes every interop fixture into sys.argv[1], each with <name>.json: the summary of what Python loads back."""
import collections
import json
import os
import pickle
import struct
import sys

import numpy as np
import torch

from summary import summarize

out = sys.argv[1]
torch.manual_seed(0)
rng = np.random.default_rng(0)


def path(name):
    return os.path.join(out, name)


def expect(name, value):
    with open(path(name + ".json"), "w") as f:
        json.dump(summarize(value), f)


# ---- torch.save zip: nested checkpoint with every dtype and every kind of view ----
base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
shared = torch.randn(3, 5)
model = collections.OrderedDict()
model["conv.weight"] = torch.randn(2, 3, 3, 3)
model["conv.bias"] = torch.nn.Parameter(torch.randn(2))
model["bn.num_batches_tracked"] = torch.tensor(7)
model["half"] = torch.randn(4, 4).half()
model["bf16"] = torch.randn(5).bfloat16()
model["mask"] = torch.tensor([True, False, True])
model["f64"] = torch.randn(2, 2, dtype=torch.float64)
model["i32"] = torch.tensor([1, -2, 3], dtype=torch.int32)
model["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
model["i8"] = torch.tensor([-1, 2, -3], dtype=torch.int8)
model["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
model["empty"] = torch.zeros(0, 3)
model._metadata = collections.OrderedDict({"": {"version": 1}, "bn": {"version": 2}})
nested = {
    "model": model,
    "views": {
        "row": base[1],
        "col": base[:, 2],
        "transposed": base.t(),
        "block": base[2:, 3:],
        "whole": base,
        "expanded": torch.arange(3.0).expand(2, 3),
        "half_col": model["half"][:, 1],
    },
    "tied": {"a": shared, "b": shared},
    "optimizer": {
        "state": {0: {"momentum_buffer": torch.randn(2, 3, 3, 3)}, 1: {"step": 10, "exp_avg": torch.randn(2)}},
        "param_groups": [{"lr": 0.02, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": False,
                          "betas": (0.9, 0.999), "name": None, "params": [0, 1]}],
    },
    "iteration": 12345,
    "big": 2 ** 40,
    "neg": -5,
    "counter": collections.Counter({"a": 3, "b": 1}),
    "floats": [float("nan"), float("-inf"), 1e300, -0.0],
    "text": "h\u00e9llo \u2713",
    "tuple_keys": {(1, 2): "pair"},
    "many": {f"k{i}": i for i in range(2500)},
    "numpy": rng.standard_normal((2, 3)).astype(np.float32),
}
torch.save(nested, path("nested.pth"))
expect("nested", torch.load(path("nested.pth")))
torch.save({"t": torch.ones(2)}, path("legacy.pth"), _use_new_zipfile_serialization=False)

# ---- pycls .pyth ----
pycls_state = collections.OrderedDict()
pycls_state["stem.conv.weight"] = torch.randn(4, 3, 3, 3)
pycls_state["stem.bn.weight"] = torch.randn(4)
pycls_state["stem.bn.num_batches_tracked"] = torch.tensor(3)
torch.save({"epoch": 3, "model_state": pycls_state, "optimizer_state": {"state": {}}}, path("pycls.pyth"))
expect("pycls", torch.load(path("pycls.pyth")))


# ---- Caffe2 / Detectron1 .pkl, written as Python 2 wrote it: str and bytes as BINSTRING ----
class Py2Pickler(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


blobs = {
    "conv1_w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
    "conv1_w_momentum": np.zeros((4, 3, 3, 3), np.float32),
    "res_conv1_bn_s": rng.standard_normal(4).astype(np.float32),
    "fc1000_w": np.asfortranarray(rng.standard_normal((3, 5))),
    "big_endian": rng.standard_normal((2, 3)).astype(">f4"),
    "strided": rng.standard_normal((4, 6)).astype(np.float32)[:, ::2],
    "half": rng.standard_normal(3).astype(np.float16),
    "i64": np.arange(5, dtype=np.int64),
    "i32_be": np.arange(4, dtype=">i4"),
    "u8": np.arange(6, dtype=np.uint8).reshape(2, 3),
    "flags": np.array([True, False]),
    "scalar_array": np.array(2.5),
}
c2 = {"blobs": blobs, "cfg": "MODEL:\n  TYPE: generalized_rcnn\n"}
with open(path("c2_p2.pkl"), "wb") as f:
    Py2Pickler(f, protocol=2).dump(c2)
with open(path("c2_p2.pkl"), "rb") as f:
    expect("c2_p2", pickle.load(f, encoding="latin1"))
with open(path("c2_p5.pkl"), "wb") as f:
    pickle.dump(c2, f, protocol=5)
with open(path("c2_p5.pkl"), "rb") as f:
    expect("c2_p5", pickle.load(f))

# ---- detectron2 model zoo .pkl ----
zoo = {
    "model": {"backbone.bottom_up.stem.conv1.weight": rng.standard_normal((2, 3, 1, 1)).astype(np.float32),
              "roi_heads.box_predictor.cls_score.bias": rng.standard_normal(3).astype(np.float32)},
    "__author__": "Detectron2 Model Zoo",
}
with open(path("d2zoo.pkl"), "wb") as f:
    pickle.dump(zoo, f)
with open(path("d2zoo.pkl"), "rb") as f:
    expect("d2zoo", pickle.load(f))


# ---- hostile files: loading them with pickle would run a shell command ----
class System:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class Eval:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (eval, (self.code,))


class Unknown:
    pass


def touch(marker):
    return f"touch {path(marker)}"


with open(path("hostile_system.pkl"), "wb") as f:
    pickle.dump({"model": System(touch("system.marker"))}, f, protocol=2)
with open(path("hostile_eval.pkl"), "wb") as f:
    pickle.dump([Eval(f"__import__('os').system('{touch('eval.marker')}')")], f, protocol=4)
with open(path("hostile_class.pkl"), "wb") as f:
    pickle.dump({"thing": Unknown()}, f, protocol=2)
torch.save({"model": System(touch("pth.marker"))}, path("hostile.pth"))

# Proof that the payload is live: Python itself runs it (on a copy with its own marker).
pickle.loads(pickle.dumps(System(touch("proof.marker")), protocol=2))
