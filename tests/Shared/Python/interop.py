"""Cross-language fixtures for the TrainerAgent and CLI tests: run as `interop.py COMMAND ARGS...`."""
import collections
import hashlib
import json
import os
import pickle
import struct
import sys

import numpy as np
import torch


def tensor_summary(t):
    data = t.detach().contiguous().numpy().tobytes()
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "sha256": hashlib.sha256(data).hexdigest()}


def summarize(value, path, tensors, values):
    """Flattens a loaded checkpoint: tensor leaves and other leaves by '/'-joined path."""
    if isinstance(value, torch.Tensor):
        tensors[path] = tensor_summary(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            summarize(v, f"{path}/{k}" if path else str(k), tensors, values)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            summarize(v, f"{path}/{i}" if path else str(i), tensors, values)
    else:
        values[path] = value


def read_pth(path):
    """Prints what torch.load sees: the type of 'model' and every tensor's dtype, shape and SHA-256."""
    loaded = torch.load(path, map_location="cpu")
    tensors, values = {}, {}
    summarize(loaded, "", tensors, values)
    model = loaded.get("model") if isinstance(loaded, dict) else None
    print(json.dumps({"model_type": type(model).__name__, "model_keys": list(model.keys()) if isinstance(model, dict) else None,
                      "tensors": tensors, "values": values}))


def read_native(folder):
    """Reads a native checkpoint folder without our code: the manifest, then each tensor's bytes from its
    safetensors shard, in the folder the manifest says holds it (incremental checkpoints reuse shards of
    earlier checkpoints beside it). Prints every tensor's SHA-256 and which folder held it."""
    with open(os.path.join(folder, "manifest.json"), "rb") as f:
        manifest = json.load(f)
    parent = os.path.dirname(os.path.abspath(folder))
    out = {}
    for key, t in manifest["tensors"].items():
        shard = manifest["shards"][t["shard"]]
        holder = shard.get("checkpoint") or os.path.basename(os.path.abspath(folder))
        with open(os.path.join(parent, holder, shard["path"]), "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            f.seek(8 + header_len + t["data_offsets"][0])
            data = f.read(t["data_offsets"][1] - t["data_offsets"][0])
        out[key] = {"sha256": hashlib.sha256(data).hexdigest(), "holder": holder}
    print(json.dumps(out))


NUMPY_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64, "I32": np.int32,
                "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def consolidate_native(folder):
    """Assembles each sharded tensor of a native checkpoint (format 3) from its chunks with numpy, without our code:
    a box chunk is the global array sliced at its offsets, a flat chunk a range of the flattened array. Prints each
    sharded tensor's SHA-256, dtype name and shape."""
    with open(os.path.join(folder, "manifest.json"), "rb") as f:
        manifest = json.load(f)
    parent = os.path.dirname(os.path.abspath(folder))

    def chunk_bytes(t):
        shard = manifest["shards"][t["shard"]]
        holder = shard.get("checkpoint") or os.path.basename(os.path.abspath(folder))
        with open(os.path.join(parent, holder, shard["path"]), "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            f.seek(8 + header_len + t["data_offsets"][0])
            return f.read(t["data_offsets"][1] - t["data_offsets"][0])

    out = {}
    for key, s in manifest.get("sharded", {}).items():
        dtype = NUMPY_DTYPES[s["dtype"]]
        whole = np.zeros(s["shape"], dtype=dtype)
        for c in s["chunks"]:
            t = manifest["tensors"][c["tensor"]]
            chunk = np.frombuffer(chunk_bytes(t), dtype=dtype).reshape(t["shape"])
            if "offsets" in c:
                whole[tuple(slice(o, o + n) for o, n in zip(c["offsets"], t["shape"]))] = chunk
            else:
                whole.reshape(-1)[c["flat_offset"]:c["flat_offset"] + chunk.size] = chunk
        out[key] = {"sha256": hashlib.sha256(whole.tobytes()).hexdigest(), "dtype": s["dtype"], "shape": s["shape"]}
    print(json.dumps(out))


def small_model():
    torch.manual_seed(7)
    return torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))


def write_d2_folder(folder):
    """What detectron2's PeriodicCheckpointer leaves: model_0000009.pth and last_checkpoint naming it."""
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(4, 2)).sum().backward()
    optimizer.step()
    data = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iteration": 9}
    torch.save(data, os.path.join(folder, "model_0000009.pth"))
    with open(os.path.join(folder, "last_checkpoint"), "w") as f:
        f.write("model_0000009.pth")
    print(json.dumps({k: tensor_summary(v) for k, v in model.state_dict().items()}))


def c2_blobs():
    """Caffe2 / Detectron1 blobs (float32 numpy arrays) for a stem conv, a box head fc and a classifier."""
    rng = np.random.RandomState(3)
    return collections.OrderedDict([
        ("conv1_w", rng.randn(4, 3, 3, 3).astype(np.float32)),
        ("conv1_b", rng.randn(4).astype(np.float32)),
        ("conv1_w_momentum", rng.randn(4, 3, 3, 3).astype(np.float32)),
        ("fc6_w", rng.randn(5, 8).astype(np.float32)),
        ("fc6_b", rng.randn(5).astype(np.float32)),
        ("cls_score_w", rng.randn(3, 5).astype(np.float32)),
        ("cls_score_b", rng.randn(3).astype(np.float32)),
    ])


def write_c2_pkl(path):
    """A Detectron1-style .pkl ({"blobs": ...}, pickle protocol 2) and, on stdout, each blob's values."""
    blobs = c2_blobs()
    with open(path, "wb") as f:
        pickle.dump({"blobs": blobs, "cfg": "unused"}, f, protocol=2)
    print(json.dumps({k: {"shape": list(v.shape), "values": [float(x) for x in v.ravel()]} for k, v in blobs.items()}))


def write_safetensors_file(path, arrays, metadata):
    """The official safetensors layout, by hand (Debian has no `safetensors` package): 8-byte little-endian header
    length, JSON header (``__metadata__`` first) padded with spaces to 8 bytes, then the tensors' little-endian bytes
    ordered by alignment (largest first) and name, as the official serializer orders them."""
    order = sorted(arrays, key=lambda k: (-arrays[k][2].itemsize, k))
    header, offset, data = {"__metadata__": metadata}, 0, b""
    for key in order:
        dtype, shape, array = arrays[key]
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
    return {k: {"dtype": arrays[k][0], "shape": arrays[k][1], "sha256": hashlib.sha256(np.ascontiguousarray(arrays[k][2]).astype(arrays[k][2].dtype.newbyteorder("<")).tobytes()).hexdigest()} for k in order}


def write_safetensors_dtypes(path):
    """One tensor of every dtype the official library writes, including those torch 1.13 lacks (U16-U64, float8 as raw bytes)."""
    rng = np.random.RandomState(5)
    arrays = {
        "u16": ("U16", [2, 3], np.arange(60000, 60006, dtype=np.uint16).reshape(2, 3)),
        "u32": ("U32", [3], np.array([1, 2**31 + 5, 2**32 - 1], dtype=np.uint32)),
        "u64": ("U64", [2], np.array([7, 2**64 - 1], dtype=np.uint64)),
        "f8_e4m3": ("F8_E4M3", [4], rng.randint(0, 256, 4).astype(np.uint8)),
        "f8_e5m2": ("F8_E5M2", [2, 2], rng.randint(0, 256, 4).astype(np.uint8).reshape(2, 2)),
        "f32": ("F32", [2, 2], rng.randn(2, 2).astype(np.float32)),
        "empty": ("F32", [0, 3], np.zeros((0, 3), dtype=np.float32)),
        "scalar": ("I64", [], np.array(42, dtype=np.int64)),
        "mask": ("BOOL", [3], np.array([True, False, True])),
    }
    print(json.dumps({"tensors": write_safetensors_file(path, arrays, {"format": "pt", "source": "hand-written"})}))


def write_safetensors_model(path):
    """small_model()'s state dict as pretrained weights in a .safetensors file; prints each tensor's summary."""
    state = small_model().state_dict()
    arrays = {k: ("F32", list(v.shape), v.numpy()) for k, v in state.items()}
    write_safetensors_file(path, arrays, {"format": "pt"})
    print(json.dumps({k: tensor_summary(v) for k, v in state.items()}))


COMMANDS = {"read_pth": read_pth, "read_native": read_native, "consolidate_native": consolidate_native, "write_d2_folder": write_d2_folder, "write_c2_pkl": write_c2_pkl,
            "write_safetensors_dtypes": write_safetensors_dtypes, "write_safetensors_model": write_safetensors_model}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
