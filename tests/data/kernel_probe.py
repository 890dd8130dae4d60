"""A fingerprint of the floating-point kernels of this machine's torch build, for the study pins.

Short trainings are bit-identical on one machine, but not across machines: the vectorised math
(exp, log, pow, ...), the reduction order of sums and the BLAS kernels differ with the CPU, and a
training step uses all of them (an AVX-512 Xeon and the machine of the first pins gave different
short cells with the same torch wheel and the same code). The study pin file keeps the short
cells per probe, one entry for each kind of machine they were recorded on; where this machine's
probe has none the study pin test skips with that reason instead of failing, unless
``MLABS_PINS_STRICT=1`` (then it fails: set it on a machine the pins belong to). The samplers'
draw plans need no probe: they use exactly rounded arithmetic only and hold on every machine
(tests/test_selection_pinned.py).
"""

from __future__ import annotations

import functools
import hashlib
import os
from typing import Iterable


@functools.lru_cache(maxsize=1)
def kernel_probe() -> str:
    """sha256 (16 hex digits) of the torch/numpy versions, the CPU capability torch uses and the
    results of the primitive operations the pins depend on (one thread)."""
    import numpy as np
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(2024)
        h = hashlib.sha256(f"{torch.__version__} {np.__version__} "
                           f"{torch.backends.cpu.get_cpu_capability()}".encode())
        x64 = torch.rand(100_003, generator=g, dtype=torch.float64) * 40 - 20
        x32 = x64.to(torch.float32)
        outs = []
        for x in (x32, x64):
            outs += [torch.exp(x), torch.expm1(x), torch.log(x.abs() + 1e-3), torch.log1p(x.abs()),
                     torch.sigmoid(x), torch.tanh(x), torch.pow(x.abs() + 0.5, 1.7), torch.sqrt(x.abs()),
                     x.sum(), x.cumsum(0), x.mean(), x.std(), torch.softmax(x[:1000], 0),
                     torch.nn.functional.softplus(x), torch.special.xlogy(x.abs(), x.abs())]
        # matrix shapes of the study: emotions-sized layers, a batch of 128, the kNN distances
        a = torch.randn(473, 72, generator=g)
        w = torch.randn(256, 72, generator=g)
        layer = torch.nn.Linear(72, 6)
        torch.nn.init.normal_(layer.weight, generator=g)
        out = layer(torch.relu(a[:128] @ w.T) @ torch.randn(256, 72, generator=g))
        torch.nn.functional.binary_cross_entropy_with_logits(out, torch.sigmoid(out.detach())).backward()
        outs += [a @ w.T, a.double() @ w.double().T, torch.cdist(a, a), layer.weight.grad, torch.erf(x32)]
        for t in outs:
            h.update(t.detach().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]
    finally:
        torch.set_num_threads(threads)


def skip_unless_recorded_here(recorded: str | Iterable[str], what: str, generator: str) -> str:
    """This machine's probe when it is (one of) ``recorded``; else skip the calling test (fail
    under ``MLABS_PINS_STRICT=1``): ``what`` was recorded elsewhere; ``generator`` records it here."""
    import pytest

    recorded = [recorded] if isinstance(recorded, str) else sorted(recorded)
    probe = kernel_probe()
    if probe in recorded:
        return probe
    message = (f"{what} were recorded on machines whose floating-point kernels differ from this one's "
               f"(probes {', '.join(recorded) or 'none'}; here {probe}); to check a change here, run "
               f"{generator} with the code before the change and compare")
    if os.environ.get("MLABS_PINS_STRICT") == "1":
        pytest.fail(message)
    pytest.skip(message)


if __name__ == "__main__":
    print(kernel_probe())
