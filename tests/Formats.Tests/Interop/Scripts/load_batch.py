"""torch.load()s every .pth named in the JSON list at sys.argv[1]; prints {path: [[key, summary], ...]} of each file's 'model'.

One process for a whole batch of generated cases: importing torch costs more than loading them.
"""
import json
import sys

import torch

from summary import tensor_summary

with open(sys.argv[1]) as f:
    paths = json.load(f)
result = {}
for path in paths:
    model = torch.load(path)["model"]
    result[path] = [[key, tensor_summary(value)] for key, value in model.items()]
print(json.dumps(result))
