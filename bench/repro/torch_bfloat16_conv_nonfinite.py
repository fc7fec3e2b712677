"""torch's CPU bfloat16 convolution sends an inf or NaN input to outputs whose windows do not hold it.

    python bench/repro/torch_bfloat16_conv_nonfinite.py

The input ``[1, 2, 3, 4, -inf, 1, 2, 3]`` convolved with ``[1, 1, 1]`` (valid) is
``[6, 9, -inf, -inf, -inf, 6]``: the second window, ``[2, 3, 4]``, holds no infinity.  In float32
torch gives that; in bfloat16 it gives NaN for the second window.  keraspec.impl computes bfloat16
convolutions on the CPU in float32 and rounds once (impl/convolutional.py), which is the same bits
for finite inputs, since the bfloat16 kernel accumulates in float32 too.
"""

import torch
import torch.nn.functional as F

x = torch.tensor([[[1.0, 2.0, 3.0, 4.0, -float("inf"), 1.0, 2.0, 3.0]]])
w = torch.ones(1, 1, 3)
print("float32 ", F.conv1d(x, w).tolist())
print("bfloat16", F.conv1d(x.bfloat16(), w.bfloat16()).float().tolist())
print("torch", torch.__version__)
