"""Benchmark of MultiHeadAttention: ours vs plain torch on the same weights vs Keras 3 on torch.

bench/run.py calls a layer on one tensor or one list and builds the Keras layer with
``build(shape)``; MultiHeadAttention is called as ``layer(query, value=...)`` and Keras's builds from
``build(query_shape, value_shape)``, so it cannot be a run.py CASE yet (CASES stays empty; run.py
merges it).  Run this file instead:

    .venv/bin/python bench/cases_attention.py [--device cuda] [--repeat 100]

The plain-torch reference is what a porter holding the four projection matrices writes: three
einsums for the projections, ``F.scaled_dot_product_attention`` (no mask, no dropout: exactly the
fused Keras 3 math up to rounding) and the output einsum.  Ours runs Keras's explicit einsum/softmax
path, whose masking differs from SDPA's (see keraspec/impl/attention.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CASES: dict[str, tuple[dict[str, Any], tuple[int, ...], Any]] = {}

#: Batch 16, 64 query and value steps, 128 features, 8 heads of 16 (a small encoder block).
QUERY = (16, 64, 128)
CONFIG = {"num_heads": 8, "key_dim": 16}


def plain_torch(layer: Any) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    wq, bq, wk, bk, wv, bv, wo, bo = (w.detach() for w in layer.keras_weights())
    scale = layer._scale

    def run(query: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        q = torch.einsum("btd,dnh->bnth", query, wq) + bq.unsqueeze(1)
        k = torch.einsum("bsd,dnh->bnsh", value, wk) + bk.unsqueeze(1)
        v = torch.einsum("bsd,dnh->bnsh", value, wv) + bv.unsqueeze(1)
        out = F.scaled_dot_product_attention(q, k, v, scale=scale)
        return torch.einsum("bnth,nhe->bte", out, wo) + bo

    return run


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import median_times  # the same round-robin medians as run.py

    from keraspec.impl.layers import MultiHeadAttention

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    query = torch.as_tensor(rng.standard_normal(QUERY), dtype=torch.float32, device=args.device)
    value = torch.as_tensor(rng.standard_normal(QUERY), dtype=torch.float32, device=args.device)
    ours = MultiHeadAttention(**CONFIG).to(args.device)
    ours.build([QUERY, QUERY])
    ours = ours.to(args.device)
    plain = plain_torch(ours)
    contenders = [lambda: ours(query, value=value), lambda: plain(query, value)]
    with torch.no_grad():
        diff = (contenders[0]() - contenders[1]()).abs().max().item()
        try:
            import keras

            theirs = keras.layers.MultiHeadAttention(**CONFIG)
            theirs.build(QUERY, QUERY)
            theirs.set_weights(ours.get_weights())
            contenders.append(lambda: theirs(query, value))
        except Exception as exc:  # noqa: BLE001 - Keras 3 on torch is optional here
            print(f"(Keras 3 on torch not measured: {exc})")
        times = median_times(contenders, args.repeat, args.device)
    t_keras = times[2] if len(times) > 2 else float("nan")
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} max|ours-torch|={diff:.2e}")
    print(f"MultiHeadAttention ours {times[0] * 1e6:.1f}us torch {times[1] * 1e6:.1f}us keras3-torch "
          f"{t_keras * 1e6:.1f}us ours/torch {times[0] / times[1]:.2f} keras/torch {t_keras / times[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
