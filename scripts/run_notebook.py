"""Execute a pipeline notebook with papermill, leaving an output that depends only on the run's results.

Usage (from ``scripts/run-notebook``, the command of every stage in ``dvc.yaml``)::

    python scripts/run_notebook.py INPUT.ipynb OUTPUT.ipynb [-p NAME VALUE]...

Compared with the ``papermill`` command line this

* talks to the kernel over CurveZMQ-encrypted sockets when pyzmq supports it (the kernelspec
  declares ``supported_encryption: curve``), which is what ipykernel's warning "Kernel is running
  over TCP without encryption" asks for;
* shuts the kernel down without the SIGINT jupyter_client sends first (see
  ``quiet_shutdown_kernel_manager``);
* starts the kernel with ``PYTHONHASHSEED=0``, so that set iteration order, and with it the
  drawing order of the critical-difference diagrams, is the same in every run;
* removes what changes on every run although the results do not (papermill's start and end
  times and durations, nbclient's execution timestamps, the random id of the injected
  parameters cell), so that ``dvc.lock`` records the same hash for the same results;
* keeps progress out of the notebook: the kernel writes its progress bars and notes
  (``mlabs.progress``) to a log file, ``artifacts/logs/<output name>.log`` (``--log``), which this
  script relays to its own stderr while the notebook runs, so that the person running
  ``dvc repro`` sees them and the committed notebook holds only what depends on the results.

A rerun that computes the same numbers therefore writes a byte-identical notebook. Timings of the
cells are not in the notebook either; they live in each cell's uncached ``timing.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from pathlib import Path

#: papermill's per-run fields in the notebook and cell metadata
_TIMING_KEYS = ("start_time", "end_time", "duration")
#: the variable naming the kernel's progress file (mlabs.progress.PROGRESS_FILE_ENV; this script
#: does not import mlabs, which the kernel loads from the checkout)
PROGRESS_FILE_ENV = "MLABS_PROGRESS_FILE"
#: where the progress logs go by default, one per executed notebook
LOG_DIR = Path(__file__).resolve().parent.parent / "artifacts" / "logs"


def _value(text: str):
    """A ``-p`` value typed like papermill's command line does (int, float, bool, None or str)."""
    try:
        from papermill.cli import _resolve_type
    except ImportError:  # private helper; strings are what the stages pass anyway
        return text
    return _resolve_type(text)


def quiet_shutdown_kernel_manager():
    """An ``AsyncKernelManager`` that does not interrupt the kernel it is shutting down.

    jupyter_client sends SIGINT before every shutdown request. The notebook has run to its end
    by then, but a kernel still inside a message handler (finishing the last request) logs
    "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel." to the terminal, which reads like
    a failed stage although nothing failed. Interrupts at any other time (a cell timeout) are sent
    as usual; the kernel still gets its shutdown request, then SIGTERM and SIGKILL if it hangs.
    """
    from jupyter_client.manager import AsyncKernelManager

    class QuietShutdownKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return QuietShutdownKernelManager


def kernel_config():
    """The jupyter_client configuration: manager-provisioned CurveZMQ keys when pyzmq can do it,
    and a kernel manager that shuts the kernel down without interrupting it."""
    import zmq
    from traitlets.config import Config

    config = Config()
    if zmq.has("curve"):
        config.KernelManager.transport_encryption = "auto"
    config.NotebookClient.kernel_manager_class = quiet_shutdown_kernel_manager()
    return config


def strip_run_metadata(nb) -> None:
    """Remove run-specific metadata from an executed notebook, in place."""
    pm = nb.metadata.get("papermill", {})
    for key in _TIMING_KEYS:
        pm.pop(key, None)
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)
        for key in _TIMING_KEYS:
            cell.metadata.get("papermill", {}).pop(key, None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"


@contextlib.contextmanager
def relay(path: str | os.PathLike, target, interval: float = 0.2):
    """Copy what is appended to ``path`` to the binary stream ``target`` until the block ends.

    The kernel writes its progress there; a thread of this process forwards it, every
    ``interval`` seconds and once more at the end, so nothing written before the block ends
    is lost.
    """
    stop = threading.Event()

    def pump() -> None:
        with open(path, "rb") as source:
            while True:
                last = stop.is_set()  # read once more after the stop
                chunk = source.read()
                if chunk:
                    target.write(chunk)
                    target.flush()
                if last:
                    return
                stop.wait(interval)

    thread = threading.Thread(target=pump, name="run-notebook-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="run-notebook", description=__doc__.split("\n\n")[0])
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("-p", "--parameters", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument("-k", "--kernel", default="mlabs", help="kernel name (default: mlabs)")
    p.add_argument("--log", help="the kernel's progress log (default: artifacts/logs/<output name>.log)")
    args = p.parse_args(argv)

    import nbformat
    import papermill

    # the kernel inherits this: a fixed string-hash seed makes the iteration order of sets of
    # names the same in every run (scikit-posthocs' critical-difference diagram draws from sets
    # of method names), so the same results give byte-identical figures and dvc.lock hashes
    os.environ["PYTHONHASHSEED"] = "0"
    params = {name: _value(value) for name, value in args.parameters}
    # the kernel inherits the variable, writes its progress to the log, and this process shows it
    # a profile's first run writes into reports/<profile>/notebooks/, which does not exist yet;
    # logs are named after the output's folder below reports/ too, so two profiles never share one
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    stem = "-".join([*output.parent.parts[1:-1], output.stem]) if output.parts[0] == "reports" else output.stem
    log = Path(args.log) if args.log else LOG_DIR / f"{stem}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    os.environ[PROGRESS_FILE_ENV] = str(log.resolve())
    try:
        with relay(log, getattr(sys.stderr, "buffer", sys.stderr)):
            nb = papermill.execute_notebook(args.input, args.output, parameters=params, kernel_name=args.kernel,
                                            progress_bar=False, record_timing=False, config=kernel_config())
    except papermill.PapermillExecutionError as exc:
        print(f"{args.input} failed, see {args.output}:\n{exc}", file=sys.stderr)
        return 1
    strip_run_metadata(nb)
    nbformat.write(nb, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
