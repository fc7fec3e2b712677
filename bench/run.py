"""Forward-time benchmark: keraspec.impl vs the plain torch ops it is made of vs Keras 3 on torch.

All three run side by side in this one process (Keras with KERAS_BACKEND=torch), on the same
input, with the same weights; the script prints medians and the ratios ours/torch and
keras/torch.  A benchmark, not a test: nothing here asserts.

    .venv/bin/python bench/run.py [--device cuda] [--layers Dense,Conv2D] [--repeat 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ["KERAS_BACKEND"] = "torch"  # Keras 3 runs on the same torch as ours, in this process
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from keraspec import spec  # noqa: E402
from keraspec.impl import layers as ours_layers  # noqa: E402


def _ours_weights(layer: Any) -> list[torch.Tensor]:
    return list(layer.keras_weights())


# One representative case per layer: (config, input shape, plain-torch reference built from ours' weights).
# The reference is the minimal torch computation of the same math, given Keras-layout weights.
Reference = Callable[[Any], Callable[[torch.Tensor], torch.Tensor]]
CASES: dict[str, tuple[dict[str, Any], tuple[int, ...], Reference]] = {
    "Dense": ({"units": 256, "activation": "relu"}, (64, 512),
              lambda l: (lambda x, k=l.kernel, b=l.bias: F.relu(F.linear(x, k.t(), b)))),
    "Activation": ({"activation": "gelu"}, (64, 1024), lambda l: (lambda x: F.gelu(x))),
    # Ours checks the indices' range (a clear error where torch's CPU gather raises an IndexError and
    # its CUDA gather a device-side assert): the reference does not.
    "Embedding": ({"input_dim": 1000, "output_dim": 64, "mask_zero": True}, (64, 50),
                  lambda l: (lambda x, e=l.embeddings: (F.embedding(x, e), x != 0))),
    "Flatten": ({}, (64, 16, 16, 8), lambda l: (lambda x: x.reshape(x.shape[0], -1))),
    "Reshape": ({"target_shape": (32, -1)}, (64, 16, 16, 8), lambda l: (lambda x: x.reshape(x.shape[0], 32, -1))),
    "Permute": ({"dims": (2, 1)}, (64, 128, 32), lambda l: (lambda x: x.permute(0, 2, 1))),
    "RepeatVector": ({"n": 8}, (64, 256), lambda l: (lambda x: x.unsqueeze(1).expand(-1, 8, -1))),
    "Masking": ({"mask_value": 0.0}, (64, 50, 32),
                lambda l: (lambda x: (lambda keep: (torch.where(keep, x, torch.zeros((), dtype=x.dtype)), keep.squeeze(-1)))(
                    (x != 0).any(-1, keepdim=True)))),
    # The activity penalty is part of every call (Keras computes it too), so the reference pays it.
    "ActivityRegularization": ({"l1": 0.01}, (64, 1024),
                               lambda l: (lambda x: (x, 0.01 * x.abs().sum() / x.shape[0]))),
    "Identity": ({}, (64, 1024), lambda l: (lambda x: x)),
    # Convolutions and pooling on channels_last data: the plain op takes the same NHWC tensor
    # viewed channels-first, with the kernel already in torch's layout.
    "Conv2D": ({"filters": 64, "kernel_size": 3, "padding": "same"}, (32, 56, 56, 32),
               lambda l: (lambda x, k=l.kernel, b=l.bias: F.conv2d(x.movedim(-1, 1), k, b, padding=1).movedim(1, -1))),
    "Conv2DTranspose": ({"filters": 32, "kernel_size": 3, "strides": 2, "padding": "valid"}, (32, 28, 28, 64),
                        lambda l: (lambda x, k=l.kernel, b=l.bias: F.conv_transpose2d(x.movedim(-1, 1), k, b, stride=2)
                                   .movedim(1, -1))),
    "MaxPooling2D": ({"pool_size": 2}, (32, 56, 56, 64),
                     lambda l: (lambda x: F.max_pool2d(x.movedim(-1, 1), 2).movedim(1, -1))),
    "AveragePooling2D": ({"pool_size": 2}, (32, 56, 56, 64),
                         lambda l: (lambda x: F.avg_pool2d(x.movedim(-1, 1), 2).movedim(1, -1))),
    "GlobalAveragePooling2D": ({}, (32, 28, 28, 128), lambda l: (lambda x: x.mean(dim=(1, 2)))),
    "ZeroPadding2D": ({"padding": 1}, (32, 56, 56, 32), lambda l: (lambda x: F.pad(x, (0, 0, 1, 1, 1, 1)))),
    "UpSampling2D": ({"size": 2}, (32, 28, 28, 32),
                     lambda l: (lambda x: x.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2))),
    "Conv1D": ({"filters": 64, "kernel_size": 5, "padding": "causal"}, (32, 256, 64),
               lambda l: (lambda x, k=l.kernel, b=l.bias: F.conv1d(F.pad(x.movedim(-1, 1), (4, 0)), k, b).movedim(1, -1))),
    "Conv3D": ({"filters": 32, "kernel_size": 3, "strides": 2}, (8, 32, 32, 32, 16),
               lambda l: (lambda x, k=l.kernel, b=l.bias: F.conv3d(x.movedim(-1, 1), k, b, stride=2).movedim(1, -1))),
    "Conv2D[channels_first]": ({"filters": 64, "kernel_size": 3, "data_format": "channels_first"}, (32, 32, 56, 56),
                               lambda l: (lambda x, k=l.kernel, b=l.bias: F.conv2d(x, k, b))),
    "Conv1DTranspose": ({"filters": 32, "kernel_size": 4, "strides": 2, "padding": "same"}, (32, 128, 64),
                        # 'same' with k=4, s=2 crops one step on each side: torch's padding=1.
                        lambda l: (lambda x, k=l.kernel, b=l.bias: F.conv_transpose1d(x.movedim(-1, 1), k, b, stride=2,
                                                                                      padding=1).movedim(1, -1))),
    "Conv3DTranspose": ({"filters": 16, "kernel_size": 2, "strides": 2}, (8, 16, 16, 16, 32),
                        lambda l: (lambda x, k=l.kernel, b=l.bias: F.conv_transpose3d(x.movedim(-1, 1), k, b, stride=2)
                                   .movedim(1, -1))),
    "MaxPooling1D": ({"pool_size": 3, "strides": 2}, (32, 512, 64),
                     lambda l: (lambda x: F.max_pool1d(x.movedim(-1, 1), 3, 2).movedim(1, -1))),
    "MaxPooling3D": ({"pool_size": 2}, (8, 32, 32, 32, 16),
                     lambda l: (lambda x: F.max_pool3d(x.movedim(-1, 1), 2).movedim(1, -1))),
    "AveragePooling1D": ({"pool_size": 2}, (32, 512, 64),
                         lambda l: (lambda x: F.avg_pool1d(x.movedim(-1, 1), 2).movedim(1, -1))),
    "AveragePooling3D": ({"pool_size": 2}, (8, 32, 32, 32, 16),
                         lambda l: (lambda x: F.avg_pool3d(x.movedim(-1, 1), 2).movedim(1, -1))),
    "GlobalMaxPooling2D": ({}, (32, 28, 28, 128), lambda l: (lambda x: x.amax(dim=(1, 2)))),
    "GlobalAveragePooling1D": ({}, (32, 256, 128), lambda l: (lambda x: x.mean(dim=1))),
    "Cropping2D": ({"cropping": ((2, 1), (1, 2))}, (32, 56, 56, 32), lambda l: (lambda x: x[:, 2:-1, 1:-2])),
    "ZeroPadding3D": ({"padding": 1}, (8, 32, 32, 32, 16), lambda l: (lambda x: F.pad(x, (0, 0, 1, 1, 1, 1, 1, 1)))),
    "DepthwiseConv2D": ({"kernel_size": 3, "padding": "same", "depth_multiplier": 2}, (32, 56, 56, 32),
                        lambda l: (lambda x, k=l.kernel, b=l.bias: F.conv2d(x.movedim(-1, 1), k, b, padding=1, groups=32)
                                   .movedim(1, -1))),
    "SeparableConv2D": ({"filters": 64, "kernel_size": 3, "padding": "same"}, (32, 56, 56, 32),
                        lambda l: (lambda x, d=l.depthwise_kernel, p=l.pointwise_kernel, b=l.bias: F.conv2d(
                            F.conv2d(x.movedim(-1, 1), d, None, padding=1, groups=32), p, b).movedim(1, -1))),
    # The plain ops of a locally-connected layer: one unfold of the input, one bmm over positions.
    "LocallyConnected2D": ({"filters": 16, "kernel_size": 3}, (32, 16, 16, 8),
                           lambda l: (lambda x, k=l.kernel, b=l.bias: (torch.bmm(
                               F.unfold(x.movedim(-1, 1), 3).permute(2, 0, 1), k).transpose(0, 1)
                               .reshape(x.shape[0], 14, 14, 16) + b))),
    "UpSampling2D[bilinear]": ({"size": 2, "interpolation": "bilinear"}, (32, 28, 28, 32),
                               # torch's bilinear with align_corners=False is the same half-pixel rule.
                               lambda l: (lambda x: F.interpolate(x.movedim(-1, 1), scale_factor=2, mode="bilinear")
                                          .movedim(1, -1))),
    # No torch op resamples as TensorFlow's bicubic does (torch's uses a = -0.75 and clamps the edge);
    # its bicubic is still the yardstick for cost.
    "UpSampling2D[bicubic]": ({"size": 2, "interpolation": "bicubic"}, (32, 28, 28, 32),
                              lambda l: (lambda x: F.interpolate(x.movedim(-1, 1), scale_factor=2, mode="bicubic")
                                         .movedim(1, -1))),
    # Advanced activations.  LeakyReLU's plain op takes the slope Keras stores (0.3 as a float32 op
    # attribute); PReLU's is torch's channel-wise F.prelu on the channels-first view (its gradient at
    # 0 is alpha where Keras's relu(x) - alpha * relu(-x) gives 0, which ours keeps); ReLU with every
    # option against the one where of its textbook formula.
    "LeakyReLU": ({}, (64, 1024), lambda l: (lambda x: F.leaky_relu(x, 0.3))),
    "PReLU": ({"shared_axes": [1, 2]}, (32, 28, 28, 32),
              lambda l: (lambda x, a=l.alpha: F.prelu(x.movedim(-1, 1), a.reshape(-1)).movedim(1, -1))),
    "ELU": ({"alpha": 0.5}, (64, 1024), lambda l: (lambda x: F.elu(x, 0.5))),
    "ThresholdedReLU": ({"theta": 0.5}, (64, 1024), lambda l: (lambda x: F.threshold(x, 0.5, 0.0))),
    "Softmax": ({}, (64, 1024), lambda l: (lambda x: torch.softmax(x, dim=-1))),
    "Softmax[axes]": ({"axis": [1, 2]}, (32, 64, 64),
                      lambda l: (lambda x: torch.exp(x - torch.logsumexp(x, dim=(1, 2), keepdim=True)))),
    "ReLU": ({"max_value": 6.0}, (64, 1024), lambda l: (lambda x: F.relu6(x))),
    "ReLU[threshold]": ({"max_value": 4.0, "negative_slope": 0.1, "threshold": 0.5}, (64, 1024),
                        lambda l: (lambda x: torch.where(x > 0.5, x.clamp(max=4.0), 0.1 * (x - 0.5)))),
    # Merge layers: a list of inputs (one per shape).  Keras's Merge broadcasts a lower-rank input by
    # inserting axes after the batch axis; Maximum / Minimum are tf.maximum's, whose value torch.maximum
    # gives (ours uses it when no gradient is recorded); Dot is one batched matmul after moving axes.
    "Add": ({}, [(64, 1024)] * 2, lambda l: (lambda xs: xs[0] + xs[1])),
    "Add[4]": ({}, [(64, 1024)] * 4, lambda l: (lambda xs: xs[0] + xs[1] + xs[2] + xs[3])),
    "Add[broadcast]": ({}, [(32, 64, 128), (32, 128)], lambda l: (lambda xs: xs[0] + xs[1].unsqueeze(1))),
    "Subtract": ({}, [(64, 1024)] * 2, lambda l: (lambda xs: xs[0] - xs[1])),
    "Multiply": ({}, [(64, 1024)] * 2, lambda l: (lambda xs: xs[0] * xs[1])),
    "Average": ({}, [(64, 1024)] * 3, lambda l: (lambda xs: (xs[0] + xs[1] + xs[2]) / 3)),
    "Maximum": ({}, [(64, 1024)] * 2, lambda l: (lambda xs: torch.maximum(xs[0], xs[1]))),
    "Minimum": ({}, [(64, 1024)] * 3, lambda l: (lambda xs: torch.minimum(torch.minimum(xs[0], xs[1]), xs[2]))),
    "Concatenate": ({}, [(64, 512)] * 2, lambda l: (lambda xs: torch.cat(xs, dim=-1))),
    "Concatenate[axis1]": ({"axis": 1}, [(32, 64, 128), (32, 32, 128)], lambda l: (lambda xs: torch.cat(xs, dim=1))),
    "Dot": ({"axes": -1}, [(64, 32, 128), (64, 48, 128)], lambda l: (lambda xs: torch.bmm(xs[0], xs[1].transpose(1, 2)))),
    "Dot[normalize]": ({"axes": 1, "normalize": True}, [(64, 256)] * 2,
                       lambda l: (lambda xs: (F.normalize(xs[0], dim=1) * F.normalize(xs[1], dim=1)).sum(1, keepdim=True))),
    # Normalization (inference).  The plain references are torch's fused kernels on the same weights;
    # ours composes TensorFlow's formulas op for op (tf.nn.moments, x * inv + (beta - mean * inv)).
    "BatchNormalization": ({}, (32, 28, 28, 64),
                           lambda l: (lambda x, g=l.gamma, b=l.beta, m=l.moving_mean, v=l.moving_variance: F.batch_norm(
                               x.movedim(-1, 1), m, v, g, b, False, 0.0, 1e-3).movedim(1, -1))),
    "BatchNormalization[rank2]": ({}, (64, 1024),
                                  lambda l: (lambda x, g=l.gamma, b=l.beta, m=l.moving_mean, v=l.moving_variance:
                                             F.batch_norm(x, m, v, g, b, False, 0.0, 1e-3))),
    "LayerNormalization": ({}, (64, 128, 256),
                           lambda l: (lambda x, g=l.gamma, b=l.beta: F.layer_norm(x, (256,), g, b, 1e-3))),
    "LayerNormalization[2 axes]": ({"axis": [-2, -1]}, (32, 28, 28, 64),
                                   lambda l: (lambda x, g=l.gamma, b=l.beta: F.layer_norm(x, (28, 64), g, b, 1e-3))),
    "GroupNormalization": ({"groups": 8}, (32, 28, 28, 64),
                           lambda l: (lambda x, g=l.gamma, b=l.beta: F.group_norm(x.movedim(-1, 1), 8, g, b, 1e-3)
                                      .movedim(1, -1))),
    "UnitNormalization": ({}, (64, 1024), lambda l: (lambda x: F.normalize(x, dim=-1, eps=1e-6))),
    "RMSNormalization": ({}, (64, 128, 256), lambda l: (lambda x, s=l.scale: F.rms_norm(x, (256,), s, 1e-6))),
    # Mixed precision: float32 weights cast to the compute dtype on every call, a float32 input cast
    # too -- the plain reference pays the same casts, so the ratio measures the base layer's policy code.
    "Dense[mixed_float16]": ({"units": 256, "activation": "relu", "dtype": "mixed_float16"}, (64, 512),
                             lambda l: (lambda x, k=l.kernel, b=l.bias: F.relu(F.linear(x.half(), k.half().t(), b.half())))),
    "Conv2D[mixed_bfloat16]": ({"filters": 64, "kernel_size": 3, "padding": "same", "dtype": "mixed_bfloat16"},
                               (32, 56, 56, 32),
                               lambda l: (lambda x, k=l.kernel, b=l.bias: F.conv2d(
                                   x.movedim(-1, 1).bfloat16(), k.bfloat16(), b.bfloat16(), padding=1).movedim(1, -1))),
}


def _family_cases() -> None:
    """Merge the CASES of every ``bench/cases_<family>.py`` beside this script (one file per family
    added since, so families do not share one dict) into :data:`CASES`."""
    import importlib.util
    import pathlib

    for path in sorted(pathlib.Path(__file__).resolve().parent.glob("cases_*.py")):
        module_spec = importlib.util.spec_from_file_location(f"keraspec_bench_{path.stem}", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        clashes = set(module.CASES) & set(CASES)
        if clashes:
            raise SystemExit(f"bench: {path.name} redefines {sorted(clashes)}")
        CASES.update(module.CASES)


_family_cases()


def median_times(fns: list[Callable[[], Any]], repeat: int, device: str) -> list[float]:
    """Median seconds per call of each function, sampled round-robin so that load from elsewhere
    on the machine hits every contender alike."""

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for fn in fns:
        for _ in range(max(3, repeat // 10)):
            fn()
    sync()
    samples: list[list[float]] = [[] for _ in fns]
    for round_ in range(repeat):
        # Rotate who goes first, so no contender always runs right after the same other one.
        order = [(round_ + i) % len(fns) for i in range(len(fns))]
        for index in order:
            start = time.perf_counter()
            fns[index]()
            sync()
            samples[index].append(time.perf_counter() - start)
    return [statistics.median(s) for s in samples]


def keras_layer(name: str, config: dict[str, Any], ours: Any, shape: tuple[int, ...], device: str) -> Any:
    import keras

    layer = getattr(keras.layers, name)(**config)
    layer.build(shape)
    if ours.get_weights():
        layer.set_weights(ours.get_weights())
    return layer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layers", default=None)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args(argv)
    wanted = args.layers.split(",") if args.layers else list(CASES)
    device = args.device
    try:
        import keras

        keras_layers: Any = keras.layers
    except ImportError:
        keras_layers = None
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} repeat={args.repeat}")
    header = f"{'layer':24s} {'ours':>10s} {'torch':>10s} {'keras3-torch':>13s} {'ours/torch':>11s} {'keras/torch':>12s}"
    print(header)
    print("-" * len(header))
    for name in wanted:
        if name not in CASES:
            print(f"{name:24s} (no benchmark case)")
            continue
        config, shape, reference = CASES[name]
        layer_name = name.split("[")[0]  # "UpSampling2D[bilinear]": a second case of one layer
        ours = getattr(ours_layers, layer_name)(**config).to(device)
        rng = np.random.default_rng(0)
        indices = spec.lookup(layer_name).input.indices
        if isinstance(shape, list):  # a merge layer: one input per shape
            x: Any = [torch.as_tensor(rng.standard_normal(s), dtype=torch.float32, device=device) for s in shape]
        elif indices is not None:  # token ids in the spec's range, not measurements
            env = spec.lookup(layer_name).env(spec.lookup(layer_name).normalize(config))
            x = torch.as_tensor(rng.integers(int(indices.low(env)), int(indices.high(env)), shape), device=device)
        else:
            x = torch.as_tensor(rng.standard_normal(shape), dtype=torch.float32, device=device)
        with torch.no_grad():
            ours(x)
            plain = reference(ours)
            contenders = [lambda: ours(x), lambda: plain(x)]
            keras_cls_exists = keras_layers is not None and hasattr(keras_layers, layer_name)
            if keras_cls_exists:  # (Keras 3 has no LocallyConnected layers)
                k = keras_layer(layer_name, config, ours, shape, device)
                contenders.append(lambda: k(x))
            times = median_times(contenders, args.repeat, device)
            t_ours, t_torch = times[0], times[1]
            t_keras = times[2] if keras_cls_exists else float("nan")
        print(f"{name:24s} {t_ours * 1e6:9.1f}us {t_torch * 1e6:9.1f}us {t_keras * 1e6:12.1f}us "
              f"{t_ours / t_torch:11.2f} {t_keras / t_torch:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
