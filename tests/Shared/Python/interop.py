"""Cross-language fixtures for the TrainerAgent and CLI tests: run as `interop.py COMMAND ARGS...`."""
import collections
import hashlib
import json
import os
import pickle
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


COMMANDS = {"read_pth": read_pth, "write_d2_folder": write_d2_folder, "write_c2_pkl": write_c2_pkl}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
