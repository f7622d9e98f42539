"""How close can ONNX Runtime get to the GFLOPs limit at these widths? A reference.

The plain pre-LN stack ``prune_latency.PlainBlock`` (fused QKV, no gates, no masks,
nothing a pruned model does not need) at the early-fusion HAPT length (33 tokens), 4
blocks of width 128: 4 heads / 256 FFN channels against 2 / 128 (exactly half the
GFLOPs), exported (static shapes) two ways and timed interleaved at batch 1, 1 thread:

* ``plain``: the TorchScript export ONNX Runtime optimises itself;
* ``fused``: attention exported as ONNX Runtime's fused ``com.microsoft.Attention``
  (projection + attention in one kernel), the fewest ops this graph can have.

If even this reference stays under 90% of its 2.0× limit, the shortfall of our models
is the runtime's, not something an export can remove.

    nice -n 5 python benchmarks/ort_limit.py --rounds 40
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.prune_latency import PlainBlock  # noqa: E402


class _OrtAttention(torch.autograd.Function):
    """Eager: the same attention as PlainBlock; exported: one com.microsoft.Attention."""

    @staticmethod
    def forward(ctx, x, w, b, num_heads: int):  # type: ignore[no-untyped-def]
        B, T, _ = x.shape
        q, k, v = F.linear(x, w.t(), b).view(B, T, 3, num_heads, -1).permute(2, 0, 3, 1, 4)
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, -1)

    @staticmethod
    def symbolic(g, x, w, b, num_heads: int):  # type: ignore[no-untyped-def]
        return g.op("com.microsoft::Attention", x, w, b, num_heads_i=num_heads)


class FusedBlock(PlainBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _OrtAttention.apply(self.ln1(x), self.qkv.weight.t(), self.qkv.bias, self.n_head)
        x = x + self.o(y)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


def session(model: torch.nn.Module, x: torch.Tensor, path: Path):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"],
                          opset_version=17, dynamo=False)  # fmt: skip
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = 1, 1, 3
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        diff = float(np.abs(s.run(None, {"x": x.numpy()})[0] - model(x).numpy()).max())
    if diff > 1e-4:
        raise SystemExit(f"error: {path.name} differs from torch by {diff:.3g}")
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=33)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--round-size", type=int, default=25)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x = torch.randn(1, args.tokens, 128)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, cls in (("plain", PlainBlock), ("fused", FusedBlock)):
            for width, (nh, ff) in (("full", (4, 256)), ("half", (2, 128))):
                torch.manual_seed(0)
                model = torch.nn.Sequential(*(cls(128, nh, ff) for _ in range(4))).eval()
                runs[kind, width] = session(model, x, Path(tmp) / f"{kind}-{width}.onnx")
    feed = {"x": x.numpy()}
    rounds: dict[tuple, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, s in runs.items():
            s.run(None, feed)
            lat = []
            for _ in range(args.round_size):
                t0 = time.perf_counter()
                s.run(None, feed)
                lat.append((time.perf_counter() - t0) * 1e3)
            rounds[k].append(statistics.median(lat))
    print("| export | full ms | half ms | speedup (p25–p75 over rounds) | % of the 2.00× limit |")
    print("|---|---|---|---|---|")
    for kind in ("plain", "fused"):
        full, half = rounds[kind, "full"], rounds[kind, "half"]
        ratios = [f / h for f, h in zip(full, half, strict=True)]
        sp = statistics.median(ratios)
        q1, q3 = np.percentile(ratios, [25, 75])
        print(f"| {kind} | {statistics.median(full):.3f} | {statistics.median(half):.3f} | "
              f"{sp:.2f}× ({q1:.2f}–{q3:.2f}) | {sp / 2 * 100:.0f}% |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
