"""A JSON summary of a checkpoint value tree that the C# tests compute the same way (ValueSummary.cs)."""
import collections
import hashlib
import struct

import numpy as np
import torch

DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def tensor_summary(t):
    t = t.detach().contiguous()
    raw = t.reshape(-1).view(torch.uint8).numpy().tobytes()
    return {"tensor": DTYPES[t.dtype], "shape": list(t.shape), "sha256": hashlib.sha256(raw).hexdigest()}


def summarize(v):
    if isinstance(v, torch.Tensor):
        return tensor_summary(v)
    if isinstance(v, np.ndarray):
        native = v.astype(v.dtype.newbyteorder("="), order="C")  # ascontiguousarray would make 0-d arrays 1-d
        return tensor_summary(torch.from_numpy(native))
    if isinstance(v, collections.OrderedDict):
        return {"OrderedDict": [[summarize(k), summarize(x)] for k, x in v.items()]}
    if isinstance(v, dict):
        return {"dict": [[summarize(k), summarize(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple)):
        return [summarize(x) for x in v]
    if isinstance(v, float):
        return {"float": struct.unpack("<q", struct.pack("<d", v))[0]}
    if v is None or isinstance(v, (bool, int, str)):
        return v
    raise TypeError(f"no summary for {type(v)}")
