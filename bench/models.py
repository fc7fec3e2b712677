"""Forward-time benchmark of one loaded application model: keraspec.impl vs Keras 3 on torch vs
plain torch.

Keras 3 (KERAS_BACKEND=torch, in this process) builds MobileNetV2 (weights=None, seeded random
weights) and saves it as .keras; keraspec loads that same file; the plain-torch reference runs the
same graph with torch's own ops in torch's native layout (NCHW, fused batch norm, weights converted
once from ours).  Batch 8, CPU, inference, medians.  A benchmark, not a test: nothing asserts.

    .venv/bin/python bench/models.py [--size 96] [--alpha 0.35] [--batch 8] [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["KERAS_BACKEND"] = "torch"  # Keras 3 runs on the same torch as ours, in this process
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def _median_time(fn: Callable[[], Any], repeat: int) -> float:
    for _ in range(3):  # warm-up: lazy builds, allocator, caches
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _same_pad(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding (the extra pixel goes after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def plain_torch(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's graph in plain torch ops on NCHW tensors; weights taken once from ``model``.
    Covers the layers of MobileNetV2/ResNet-style graphs (refuses any other)."""
    steps: list[tuple[str, Any, Callable[..., torch.Tensor]]] = []
    for node in model._nodes:
        layer, cls = node.layer, type(node.layer).__name__
        weights = [torch.as_tensor(w) for w in layer.get_weights()]
        if cls == "InputLayer":
            fn = lambda x: x.permute(0, 3, 1, 2).contiguous()  # noqa: E731
        elif cls in ("Conv2D", "DepthwiseConv2D"):
            kernel = weights[0]
            if cls == "Conv2D":
                kernel = kernel.permute(3, 2, 0, 1).contiguous()
                groups = 1
            else:
                kh, kw, cin, mult = kernel.shape
                kernel = kernel.reshape(kh, kw, cin * mult, 1).permute(2, 3, 0, 1).contiguous()
                groups = cin
            bias = weights[1] if len(weights) > 1 else None
            stride, padding = layer.strides, layer.padding

            def fn(x: torch.Tensor, k=kernel, b=bias, s=stride, p=padding, g=groups) -> torch.Tensor:
                if p == "same":
                    ph, pw = _same_pad(x.shape[2], k.shape[2], s[0]), _same_pad(x.shape[3], k.shape[3], s[1])
                    x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]))
                return F.conv2d(x, k, b, s, groups=g)
        elif cls == "BatchNormalization":
            gamma, beta, mean, var = weights
            fn = lambda x, g=gamma, b=beta, m=mean, v=var, e=layer.epsilon: F.batch_norm(x, m, v, g, b, False, 0.0, e)  # noqa: E731
        elif cls == "ReLU":
            fn = (lambda x: F.relu6(x)) if layer.max_value == 6.0 else (lambda x: F.relu(x))  # noqa: E731
        elif cls == "ZeroPadding2D":
            (top, bottom), (left, right) = layer.padding
            fn = lambda x, p=(left, right, top, bottom): F.pad(x, p)  # noqa: E731
        elif cls == "Add":
            fn = lambda xs: xs[0] + xs[1]  # noqa: E731
        elif cls == "GlobalAveragePooling2D":
            fn = lambda x: x.mean(dim=(2, 3))  # noqa: E731
        elif cls == "Dense":
            kernel_t, bias = weights[0].t().contiguous(), weights[1]
            softmax = layer.get_config()["activation"] == "softmax"
            fn = lambda x, k=kernel_t, b=bias, sm=softmax: torch.softmax(F.linear(x, k, b), -1) if sm else F.linear(x, k, b)  # noqa: E731
        else:
            raise NotImplementedError(f"plain torch reference: no op for {cls}")
        steps.append((layer.name, node.inputs, fn))

    def run(x: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {}
        out = x
        for name, inputs, fn in steps:
            if not inputs:
                out = fn(x)
            elif isinstance(inputs, list):
                out = fn([values[r[0]] for r in inputs])
            else:
                out = fn(values[inputs[0]])
            values[name] = out
        return out

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96, help="input height and width")
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    import keras

    from keraspec.impl.saving import load_model

    theirs = keras.applications.MobileNetV2(input_shape=(args.size, args.size, 3), alpha=args.alpha, weights=None,
                                            classes=10)
    rng = np.random.default_rng(0)
    theirs.set_weights([(rng.uniform(0.5, 1.5, w.shape) if w.path.endswith(("gamma", "moving_variance"))
                         else rng.normal(0, 0.1, w.shape)).astype(np.float32) for w in theirs.weights])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        theirs.save(path)
        ours = load_model(path)
    ours.eval()
    reference = plain_torch(ours)
    x = torch.randn(args.batch, args.size, args.size, 3)
    with torch.inference_mode():
        want = reference(x)
        got = ours(x, training=False)
        gap = float((got - want).abs().max())
        t_ours = _median_time(lambda: ours(x, training=False), args.repeat)
        t_torch = _median_time(lambda: reference(x), args.repeat)
        t_keras = _median_time(lambda: theirs(x, training=False), args.repeat)
    print(f"MobileNetV2 alpha={args.alpha} {args.size}x{args.size}, batch {args.batch}, CPU, "
          f"{torch.get_num_threads()} thread(s); ours vs plain torch max abs diff {gap:.2g}")
    print(f"{'model':16s} {'ours':>10s} {'torch':>10s} {'keras3-torch':>13s} {'ours/torch':>11s} {'keras/torch':>12s}")
    print(f"{'MobileNetV2':16s} {t_ours * 1e3:8.2f}ms {t_torch * 1e3:8.2f}ms {t_keras * 1e3:11.2f}ms "
          f"{t_ours / t_torch:11.2f} {t_keras / t_torch:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
