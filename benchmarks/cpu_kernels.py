"""Which torch CPU primitives give other bits under other CPU kernels, on this machine.

Runs a fixed set of primitives (float32 and float64, 100,003 values, one thread) in subprocesses
under torch's portable and AVX2 kernels (``ATEN_CPU_CAPABILITY=default|avx2``, and ``avx512``
where the CPU has it) and MKL's reproducible mode (``MKL_CBWR=COMPATIBLE``, which changes what
MKL's vector math returns as another processor would), and prints for each primitive whether
its result is bit-identical to the native one. The samplers' draws use only the primitives that
are identical everywhere (docs/selection.md, "The same draws on every machine").

    python benchmarks/cpu_kernels.py
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path


def digests() -> dict[str, str]:
    import torch

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    x64 = torch.rand(100_003, generator=g, dtype=torch.float64) * -3
    ops = {
        "exp": torch.exp, "log": lambda x: torch.log(1 - x), "pow": lambda x: torch.pow(2.5, x),
        "expm1": torch.expm1, "log1p": lambda x: torch.log1p(-x / 4), "sum": lambda x: x.sum(),
        "cumsum": lambda x: x.cumsum(0), "mul, div": lambda x: x * 0.3 / 1.7, "sqrt": lambda x: torch.sqrt(-x),
        "matmul": lambda x: x[:90_000].view(300, 300) @ x[:90_000].view(300, 300),
        "randn": lambda x: torch.randn(1000, generator=torch.Generator().manual_seed(0), dtype=x.dtype),
        "rand": lambda x: torch.rand(1000, generator=torch.Generator().manual_seed(0), dtype=x.dtype),
    }
    out = {}
    for name, f in ops.items():
        for x in (x64.to(torch.float32), x64):
            out[f"{name} {str(x.dtype)[6:]}"] = hashlib.sha256(f(x).contiguous().numpy().tobytes()).hexdigest()
    for name, f in {"randint": lambda g: torch.randint(0, 10**12, (1000,), generator=g),
                    "randperm": lambda g: torch.randperm(100_003, generator=g),
                    "random_ int64": lambda g: torch.empty(1000, dtype=torch.int64).random_(generator=g)}.items():
        out[name] = hashlib.sha256(f(torch.Generator().manual_seed(0)).numpy().tobytes()).hexdigest()
    out["capability"] = torch.backends.cpu.get_cpu_capability()
    return out


def main() -> None:
    settings = {"native": {}, "ATEN_CPU_CAPABILITY=default": {"ATEN_CPU_CAPABILITY": "default"},
                "ATEN_CPU_CAPABILITY=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
                "MKL_CBWR=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE"}}
    try:
        if "avx512f" in Path("/proc/cpuinfo").read_text():
            settings["ATEN_CPU_CAPABILITY=avx512"] = {"ATEN_CPU_CAPABILITY": "avx512"}
    except OSError:
        pass
    results = {}
    for label, extra in settings.items():
        env = {**os.environ, **extra, "OMP_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True,
                             check=True)
        results[label] = json.loads(out.stdout)
    native = results.pop("native")
    print(f"native capability {native.pop('capability')}; 'same' = bit-identical to native, 'DIFFERS' = not")
    print("| primitive | " + " | ".join(results) + " |")
    print("|---" * (len(results) + 1) + "|")
    for key in native:
        print(f"| {key} | " + " | ".join("same" if r[key] == native[key] else "DIFFERS" for r in results.values()) + " |")


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        json.dump({k: v for k, v in digests().items()}, sys.stdout)
    else:
        main()
