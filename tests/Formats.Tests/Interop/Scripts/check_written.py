"""torch.load()s sys.argv[1] (written by our PthWriter) and prints its summary plus what the C# test cannot see."""
import json
import sys
import zipfile

import torch

from summary import summarize

loaded = torch.load(sys.argv[1])
with zipfile.ZipFile(sys.argv[1]) as z:
    compression = sorted({i.compress_type for i in z.infolist()})
print(json.dumps({
    "summary": summarize(loaded),
    "compression": compression,
    "tied": loaded["tied_a"].data_ptr() == loaded["tied_b"].data_ptr(),
}))
