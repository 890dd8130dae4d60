"""The chain sampler's epoch time against the selection pressure s_e (docs/selection.md, "Known limitations").

N = 100 samples, 4 labels, B = 50, one sample's loss far above the rest; each s_e runs one
post-warm-up epoch in a subprocess stopped after ``--limit`` seconds, so a stall prints as such:

    python benchmarks/bench_chain_pressure.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

EPOCH = """
import torch
from mlabs.selection import ChainBatchSampler
torch.manual_seed(0)
Y = torch.rand(100, 4) < 0.4
Y[:, 0] |= ~Y.any(1)
s = ChainBatchSampler(Y, 50, warmup_epochs=0, selection_pressure={se})
loss = torch.zeros(100); loss[0] = 1
s.update(torch.arange(100), loss)
list(s)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pressures", type=float, nargs="+", default=[64.0, 1e4, 1e12])
    ap.add_argument("--limit", type=float, default=60.0, help="seconds before an epoch counts as stalled")
    args = ap.parse_args()
    for se in args.pressures:
        t0 = time.perf_counter()
        try:
            subprocess.run([sys.executable, "-c", EPOCH.format(se=se)], check=True, timeout=args.limit)
            # the subprocess's start (imports) is timed too: compare against s_e = 64
            print(f"s_e = {se:g}: one epoch in {time.perf_counter() - t0:.2f} s (process start included)")
        except subprocess.TimeoutExpired:
            print(f"s_e = {se:g}: no epoch within {args.limit:g} s")


if __name__ == "__main__":
    main()
