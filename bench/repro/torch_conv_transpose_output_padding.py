"""Minimal reproduction: torch's CPU (oneDNN) weight gradient of a 1x1 ``conv_transpose2d`` with
``output_padding == stride - 1`` on a channels_last input corrupts memory.

Found with torch 2.13.0+cpu (oneDNN ``jit_1x1:avx512_core`` backward_weights, seen in
``ONEDNN_VERBOSE=1``).  All of these are needed:

- float32 (or another dtype torch sends to oneDNN; float64 takes torch's own kernel),
- a channels_last input (``x.movedim(-1, 1)`` of an NHWC tensor is one) and a batch > 1
  (an odd batch triggers it most often; batch 1 takes another path),
- a 1 x 1 kernel, a stride s > 1 and ``output_padding = s - 1`` on some axis (the output is
  grown to ``n * s``; ``output_padding < s - 1`` or a larger kernel picks another oneDNN kernel),
- at least two intra-op threads (the kernel splits the minibatch over threads),
- oneDNN enabled (``torch.backends.mkldnn.enabled``).

The symptom is heap corruption inside ``convolution_backward``: most runs die (SIGSEGV, SIGABRT
with "double free or corruption" / "corrupted double-linked list", SIGFPE) or hang; a run that
survives may return a wrong kernel gradient or corrupt unrelated memory.  The forward pass and
the input gradient are not affected.  Because the outcome depends on the heap, each try runs in a
child process; the parent compares every surviving gradient with a hand-derived one: with a 1 x 1
kernel, ``d kernel[c, f] = sum_{b,i,j} x[b, c, i, j] * grad_y[b, f, s_h * i, s_w * j]``.

Run: ``python bench/repro/torch_conv_transpose_output_padding.py [--tries N]``.
Exit status: 1 when the bug shows (a crash, a hang or a wrong gradient in any try), 0 when every
try returns the right gradient.  Controls (the same call with one condition removed) are printed
for comparison and do not change the exit status.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys

# (batch, in_channels, filters, height, width), strides, output_padding
CASE = {"shape": [3, 2, 5, 5, 4], "stride": [3, 1], "output_padding": [2, 0]}
CONTROLS = {
    "channels-first (contiguous) input": {"contiguous": True},
    "output_padding = 1 (< stride - 1)": {"output_padding": [1, 0]},
    "oneDNN disabled": {"mkldnn": False},
    "one thread": {"threads": 1},
    "float64": {"dtype": "float64"},
}


def child(case: dict) -> None:
    """One try: the call, then the kernel gradient and the reference as JSON on stdout."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(case.get("threads", 2))
    torch.backends.mkldnn.enabled = case.get("mkldnn", True)
    dtype = getattr(torch, case.get("dtype", "float32"))
    batch, cin, cout, h, w = case["shape"]
    (sh, sw), op = case["stride"], case["output_padding"]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, h, w, cin, generator=gen, dtype=dtype).movedim(-1, 1)  # NHWC viewed NCHW
    if case.get("contiguous"):
        x = x.contiguous()
    kernel = torch.randn(cin, cout, 1, 1, generator=gen, dtype=dtype, requires_grad=True)
    y = F.conv_transpose2d(x, kernel, None, (sh, sw), 0, op)
    grad_y = torch.randn(y.shape, generator=gen, dtype=dtype).contiguous(memory_format=torch.channels_last)
    (got,) = torch.autograd.grad(y, kernel, grad_y)
    want = torch.einsum("bchw,bfhw->cf", x.double(), grad_y[:, :, : h * sh : sh, : w * sw : sw].double())
    print(json.dumps({"got": got[:, :, 0, 0].double().tolist(), "want": want.tolist()}))


def run(case: dict, tries: int, timeout: float) -> tuple[str, str]:
    """('ok' | 'wrong' | 'crash' | 'hang', detail) over ``tries`` child processes."""
    import torch

    for _ in range(tries):
        try:
            proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(case)],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "hang", f"no result within {timeout:.0f} s"
        if proc.returncode != 0:
            why = signal.Signals(-proc.returncode).name if proc.returncode < 0 else f"exit {proc.returncode}"
            last = (proc.stderr.strip().splitlines() or [""])[-1]
            return "crash", f"{why} {last}".strip()
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        got, want = torch.tensor(result["got"]), torch.tensor(result["want"])
        tol = 1e-5 if case.get("dtype", "float32") == "float32" else 1e-12
        if not torch.allclose(got, want, rtol=tol, atol=tol * want.abs().max().item()):
            err = ((got - want).abs().max() / want.abs().max()).item()
            return "wrong", f"relative error {err:.3g}\n  got  {got.tolist()}\n  want {want.tolist()}"
    return "ok", f"{tries} tries equal to the reference"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=8, help="child processes per case (default 8)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per child (default 60)")
    parser.add_argument("--no-controls", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0

    import torch

    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    batch, cin, cout, h, w = CASE["shape"]
    print(f"F.conv_transpose2d(x, kernel, None, stride={tuple(CASE['stride'])}, padding=0, "
          f"output_padding={tuple(CASE['output_padding'])}); x {batch}x{cin}x{h}x{w} channels_last float32, "
          f"kernel {cin}x{cout}x1x1; d kernel via autograd, 2 threads")
    status, detail = run(CASE, args.tries, args.timeout)
    print(f"  bug case: {status}: {detail}")
    if status == "crash":
        want = json.loads(subprocess.run([sys.executable, __file__, "--child", json.dumps({**CASE, "mkldnn": False})],
                                         capture_output=True, text=True, check=True).stdout)["want"]
        print(f"  right kernel gradient (einsum): {want}")
    if not args.no_controls:
        for name, change in CONTROLS.items():
            c_status, c_detail = run({**CASE, **change}, max(2, args.tries // 4), args.timeout)
            print(f"  control, {name}: {c_status}: {c_detail.splitlines()[0]}")
    if status == "ok":
        print("bug not present")
        return 0
    print("bug present")
    return 1


if __name__ == "__main__":
    sys.exit(main())
