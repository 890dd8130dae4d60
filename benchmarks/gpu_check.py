"""Check the package on a CUDA GPU and time two models' epochs there against one CPU thread.

Run from the repository root of a checkout (with ``data/`` holding emotions and Corel5k), on a
machine with a CUDA GPU and a CUDA build of torch already installed (any recent version: the
script prints which)::

    python benchmarks/gpu_check.py              # CUDA tests, then the Corel5k timing
    python benchmarks/gpu_check.py --dry-run    # no GPU needed: the same steps, small, on the CPU

1. Prints Python, torch, CUDA, cuDNN and GPU versions and names.
2. Runs the package from source (``src/`` first on the path, ``PYTHONPATH=src`` for the tests).
   A missing small pure-Python dependency (scikit-multilearn, tqdm, pytest) is installed with
   pip, from ``--wheels DIR`` when given (offline); anything else missing is reported.
3. Runs ``tests/test_cuda.py`` in a subprocess (sampler draws, a few epochs of each of the five
   models, exact resume, all on ``device="cuda"``); without CUDA they skip. ``--dry-run`` runs
   the same tests on the CPU (``MLABS_CUDA_TEST_DEVICE=cpu``) to check them without a GPU.
4. Times one training epoch (shuffled batches of 128, Adam, the models' default
   hyper-parameters, as ``benchmarks/bench_models.py``; a few untimed batches first) of DELA and
   C2AE on Corel5k fold 0, on the GPU and on one CPU thread, and prints the ratio.
   ``--dry-run``: emotions, a capped number of batches.

The exit status is that of the tests (0: passed or skipped).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(1, str(Path(__file__).resolve().parent))

#: importable name -> (pip package, install its dependencies too); small pure-Python wheels only
PURE_PYTHON = {"skmultilearn": ("scikit-multilearn", False), "tqdm": ("tqdm", False), "pytest": ("pytest", True)}
#: needed too, but not small pure-Python wheels: reported when missing, never installed here
COMPILED = {"numpy": "numpy", "scipy": "scipy", "sklearn": "scikit-learn", "pandas": "pandas"}
BATCH = 128


def ensure_dependencies(wheels: str | None) -> list[str]:
    """Install the missing pure-Python dependencies; return what is still missing."""
    missing = []
    for module, (package, with_deps) in PURE_PYTHON.items():
        if importlib.util.find_spec(module) is not None:
            continue
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", package]
        cmd += [] if with_deps else ["--no-deps"]
        cmd += ["--no-index", "--find-links", wheels] if wheels else []
        print(f"# installing {package}: {' '.join(cmd[1:])}", flush=True)
        try:
            ok = subprocess.run(cmd, timeout=180).returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        importlib.invalidate_caches()
        if not ok or importlib.util.find_spec(module) is None:
            missing.append(package)
    missing += [pkg for module, pkg in COMPILED.items() if importlib.util.find_spec(module) is None]
    return missing


def describe_machine(torch) -> bool:
    """Print versions and the GPU; return whether CUDA can be used."""
    cuda = torch.cuda.is_available()
    print(f"# python {platform.python_version()}, torch {torch.__version__}, CUDA build {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version() if cuda else None}")
    print(f"# CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    if cuda:
        props = torch.cuda.get_device_properties(0)
        print(f"# GPU: {torch.cuda.get_device_name(0)}, {props.total_memory / 2**30:.0f} GiB, "
              f"compute capability {props.major}.{props.minor}; TF32 matmul "
              f"{torch.backends.cuda.matmul.allow_tf32}, CUBLAS_WORKSPACE_CONFIG="
              f"{os.environ.get('CUBLAS_WORKSPACE_CONFIG')}")
    else:
        print("# GPU: none (CUDA not available): the CUDA tests skip and only the CPU is timed")
    return cuda


def run_tests(dry_run: bool) -> int:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))
    if dry_run:
        env["MLABS_CUDA_TEST_DEVICE"] = "cpu"
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests/test_cuda.py"]
    print(f"# {'MLABS_CUDA_TEST_DEVICE=cpu ' if dry_run else ''}PYTHONPATH=src {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    print(f"# tests: exit status {rc} in {time.perf_counter() - t0:.0f} s", flush=True)
    return rc


def time_epoch(torch, name: str, X, Y, device: str, max_batches: int | None) -> float:
    """Wall seconds of one training epoch of ``name`` on ``device`` (after a few untimed batches)."""
    from mlabs.models import build

    torch.manual_seed(0)
    model = build(name, X.shape[1], Y.shape[1], train_labels=Y).to(device)
    model.set_generators(train=torch.Generator(device=device).manual_seed(1),
                         eval=torch.Generator(device=device).manual_seed(2))
    opt = torch.optim.Adam(model.parameter_groups(1e-4), lr=1e-4, weight_decay=1e-4)
    xt, yt = torch.as_tensor(X, device=device), torch.as_tensor(Y, device=device)
    order = torch.randperm(xt.shape[0], generator=torch.Generator(device=device).manual_seed(3), device=device)
    starts = list(range(0, xt.shape[0], BATCH))[:max_batches]
    model.train()

    def step(idx):
        opt.zero_grad(set_to_none=True)
        out = model.training_step(xt[idx], yt[idx])
        out.loss.backward()
        opt.step()

    for start in starts[:3]:   # kernels loaded, cuBLAS handles and optimiser state created
        step(order[start:start + BATCH])
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for start in starts:
        step(order[start:start + BATCH])
    sync()
    return time.perf_counter() - t0


def run_timing(torch, cuda: bool, dataset: str, models: list[str], max_batches: int | None) -> None:
    from bench_models import load_training_part

    X, Y, _, source = load_training_part(dataset)
    print(f"# one training epoch, {dataset} fold 0 ({source} data: N = {X.shape[0]}, d = {X.shape[1]}, "
          f"q = {Y.shape[1]}), batch {BATCH}" + (f", first {max_batches} batches only" if max_batches else ""))
    print("model\tgpu_s\tcpu1_s\tcpu1/gpu")
    threads = torch.get_num_threads()
    for name in models:
        gpu = time_epoch(torch, name, X, Y, "cuda", max_batches) if cuda else None
        torch.set_num_threads(1)
        try:
            cpu = time_epoch(torch, name, X, Y, "cpu", max_batches)
        finally:
            torch.set_num_threads(threads)
        ratio = f"{cpu / gpu:.1f}" if gpu else "n/a (no GPU)"
        print(f"{name}\t{gpu:.3f}\t{cpu:.3f}\t{ratio}" if gpu else f"{name}\tn/a\t{cpu:.3f}\t{ratio}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true",
                    help="small and on the CPU: the tests with MLABS_CUDA_TEST_DEVICE=cpu, emotions, few batches")
    ap.add_argument("--wheels", help="folder of wheels to install missing pure-Python dependencies from (offline)")
    ap.add_argument("--dataset", default=None, help="timed data set (default Corel5k; emotions with --dry-run)")
    ap.add_argument("--models", nargs="+", default=["dela", "c2ae"])
    ap.add_argument("--skip-tests", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    missing = ensure_dependencies(args.wheels)
    if missing:
        print(f"# missing and not installable here: {', '.join(missing)}; install them (pip install "
              f"{' '.join(missing)}) or pass --wheels DIR", file=sys.stderr)
        return 2
    # mlabs.training sets CUBLAS_WORKSPACE_CONFIG at import: before this process touches CUDA
    import mlabs.training  # noqa: F401
    import torch

    cuda = describe_machine(torch)
    if not (ROOT / "data" / "emotions.arff.gz").exists():
        print(f"# {ROOT / 'data'} lacks emotions (the tests train on it): run `dvc pull` or copy data/ "
              f"from a checkout first", file=sys.stderr)
        return 2
    rc = 0 if args.skip_tests else run_tests(args.dry_run)
    dataset = args.dataset or ("emotions" if args.dry_run else "Corel5k")
    run_timing(torch, cuda and not args.dry_run, dataset, args.models, 8 if args.dry_run else None)
    print(f"# gpu_check done in {time.perf_counter() - t0:.0f} s, tests exit status {rc}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
