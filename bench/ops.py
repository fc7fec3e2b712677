"""Backend-function benchmark: keraspec.impl.backend (K.*) vs the plain torch call a porter would
write, and vs Keras 3's keras.ops on torch where it has the function.  Medians of forward times and
the ratios ours/torch and keras/torch.  A benchmark, not a test: nothing here asserts.

    .venv/bin/python bench/ops.py [--device cuda] [--functions batch_dot,dot] [--repeat 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ["KERAS_BACKEND"] = "torch"  # keras.ops runs on the same torch as ours, in this process
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from keraspec.impl import backend as K  # noqa: E402

#: Exit status for a bad command line (as the keraspec CLI).
EXIT_BAD_INPUT = 2
Inputs = Callable[[torch.device], dict[str, Any]]


def _inputs(**shapes: tuple[int, ...]) -> Inputs:
    return lambda device: {name: torch.randn(shape, device=device) for name, shape in shapes.items()}


def _probabilities(device: torch.device) -> dict[str, Any]:
    target = torch.softmax(torch.randn(256, 1000, device=device), -1)
    return {"target": target, "output": torch.rand(256, 1000, device=device) + 0.01}


def _ctc(device: torch.device) -> dict[str, Any]:
    batch, time_steps, classes, labels = 32, 50, 20, 10
    return {"y_true": torch.randint(0, classes - 1, (batch, labels), device=device),
            "y_pred": torch.softmax(torch.randn(batch, time_steps, classes, device=device), -1),
            "input_length": torch.full((batch, 1), time_steps, device=device),
            "label_length": torch.full((batch, 1), labels, device=device)}


def _plain_ctc(y_true: torch.Tensor, y_pred: torch.Tensor, input_length: torch.Tensor,
               label_length: torch.Tensor) -> torch.Tensor:
    """What a porter writes: torch's ctc_loss on log(y_pred), blank last (without tf_keras's
    epsilon and second log-softmax)."""
    return F.ctc_loss(torch.log(y_pred.transpose(0, 1)), y_true, input_length.reshape(-1), label_length.reshape(-1),
                      blank=y_pred.shape[-1] - 1, reduction="none").unsqueeze(1)


def _rnn_inputs(device: torch.device) -> dict[str, Any]:
    return {"inputs": torch.randn(32, 50, 64, device=device), "weights": torch.randn(64, 64, device=device) * 0.1,
            "h0": torch.zeros(32, 64, device=device),
            "mask": torch.rand(32, 50, device=device) > 0.2}


def _ours_rnn(inputs: torch.Tensor, weights: torch.Tensor, h0: torch.Tensor, mask: torch.Tensor) -> Any:
    def step(x: torch.Tensor, states: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = torch.tanh(x @ weights + states[0])
        return h, [h]
    return K.rnn(step, inputs, [h0], mask=mask)


def _plain_rnn(inputs: torch.Tensor, weights: torch.Tensor, h0: torch.Tensor, mask: torch.Tensor) -> Any:
    """The loop a porter writes: masked steps keep the state and repeat the previous output."""
    h, outputs = h0, []
    for t in range(inputs.shape[1]):
        new = torch.tanh(inputs[:, t] @ weights + h)
        keep = mask[:, t : t + 1]
        h = torch.where(keep, new, h)
        outputs.append(h)
    return h, torch.stack(outputs, 1), [h]


# One representative call per function: (inputs, ours, plain torch, keras.ops or None).
CASES: dict[str, tuple[Inputs, Callable[..., Any], Callable[..., Any], Callable[..., Any] | None]] = {
    "batch_dot": (_inputs(x=(64, 128, 64), y=(64, 128, 32)),
                  lambda x, y: K.batch_dot(x, y, axes=(1, 1)),
                  lambda x, y: torch.bmm(x.transpose(1, 2), y), None),
    "dot": (_inputs(x=(32, 64, 128), y=(8, 128, 64)), K.dot,
            # keras.ops.dot on torch is torch.matmul (batched), not the N-D rule it has on TensorFlow: not timed.
            lambda x, y: torch.tensordot(x, y, dims=([2], [1])), None),
    "conv2d": (_inputs(x=(16, 64, 64, 32), kernel=(3, 3, 32, 64)),
               lambda x, kernel: K.conv2d(x, kernel, padding="same"),
               lambda x, kernel: F.conv2d(x.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1), padding=1).permute(0, 2, 3, 1),
               "conv"),
    "sum": (_inputs(x=(64, 128, 128)), lambda x: K.sum(x, axis=(0, 2)), lambda x: x.sum(dim=(0, 2)), "sum"),
    "softmax": (_inputs(x=(256, 1000)), K.softmax, lambda x: torch.softmax(x, -1), "softmax"),
    "categorical_crossentropy": (_probabilities, K.categorical_crossentropy,
                                 lambda target, output: -(target * torch.log(torch.clamp(
                                     output / output.sum(-1, keepdim=True), 1e-7, 1 - 1e-7))).sum(-1),
                                 "categorical_crossentropy"),
    "rnn": (_rnn_inputs, _ours_rnn, _plain_rnn, None),
    "ctc_batch_cost": (_ctc, K.ctc_batch_cost, _plain_ctc, None),
    "normalize_batch_in_training": (
        _inputs(x=(32, 16, 16, 64), gamma=(64,), beta=(64,)),
        lambda x, gamma, beta: K.normalize_batch_in_training(x, gamma, beta, [0, 1, 2]),
        lambda x, gamma, beta: F.batch_norm(x.permute(0, 3, 1, 2), None, None, gamma, beta, training=True, eps=1e-3),
        None),
}


def _median_seconds(fn: Callable[[], Any], repeat: int, device: torch.device) -> float:
    for _ in range(max(3, repeat // 10)):  # warm-up
        fn()
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/ops.py", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="torch device (cpu or cuda)")
    parser.add_argument("--functions", help=f"comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--repeat", type=int, default=100, help="timed calls per function (default 100)")
    args = parser.parse_args(argv)
    names = args.functions.split(",") if args.functions else list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"bench/ops.py: --functions: {', '.join(unknown)} not benchmarked; choose from {', '.join(CASES)}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench/ops.py: --device cuda: no CUDA device is available", file=sys.stderr)
        return EXIT_BAD_INPUT
    device = torch.device(args.device)
    import keras

    print(f"{'function':30} {'ours ms':>9} {'torch ms':>9} {'keras ms':>9} {'ours/torch':>11} {'keras/torch':>12}")
    torch.manual_seed(0)
    with torch.no_grad():
        for name in names:
            make, ours, plain, keras_name = CASES[name]
            inputs = make(device)
            t_ours = _median_seconds(lambda: ours(**inputs), args.repeat, device)
            t_torch = _median_seconds(lambda: plain(**inputs), args.repeat, device)
            t_keras = float("nan")
            if keras_name is not None:
                fn = getattr(keras.ops, keras_name)
                values = list(inputs.values())
                extra = {"padding": "same"} if keras_name == "conv" else {}  # the same call as ours
                t_keras = _median_seconds(lambda: fn(*values, **extra), args.repeat, device)
            print(f"{name:30} {t_ours * 1e3:9.3f} {t_torch * 1e3:9.3f} {t_keras * 1e3:9.3f} "
                  f"{t_ours / t_torch:11.2f} {t_keras / t_torch:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
