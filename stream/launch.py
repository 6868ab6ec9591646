"""The ``densestream`` process entry: Ctrl-C and SIGTERM give exit status 130 and one line from
the first instant, also while the heavy imports (torch) are still loading.

Three phases: while the command's modules import, a signal ends the process at once (nothing
is open yet, and a KeyboardInterrupt raised inside an extension module's import can be
swallowed there and break the import later); then the usual Python behaviour, except that
``densestream run`` sets up its run under ``interrupt_on_signals`` (a signal raises
KeyboardInterrupt, so that opened inputs and outputs are closed); once the run starts,
``stream.pipeline.stop_on_signals`` takes the signals over. Before torch loads, the OpenMP set-up
of ``stream.cpu_share`` runs (a short spin before a waiting thread sleeps).
"""
from __future__ import annotations

import os
import signal

from .cpu_share import prepare_environment

STARTING_MESSAGE = "interrupted while starting: no frame was processed"
HANDLED = (signal.SIGINT, signal.SIGTERM)

_launched = False
_signalled = False


def _exit_now(signum: int, frame: object) -> None:
    os.write(2, f"{STARTING_MESSAGE}\n".encode())
    os._exit(130)


def _raise_interrupt(signum: int, frame: object) -> None:
    global _signalled
    _signalled = True
    raise KeyboardInterrupt


def interrupt_on_signals() -> None:
    """From here on (set-up of a run), Ctrl-C and SIGTERM raise KeyboardInterrupt; does nothing
    unless the process was started through ``main``."""
    if _launched:
        for handled in HANDLED:
            signal.signal(handled, _raise_interrupt)


def _exit_finished(signum: int, frame: object) -> None:
    os.write(2, b"interrupted: the outputs were already complete\n")
    os._exit(130)


def exit_on_signals_once_finished() -> None:
    """After a run has closed its outputs (only the summary is left to print), Ctrl-C and SIGTERM
    end the process at once with status 130; does nothing unless started through ``main``."""
    if _launched:
        for handled in HANDLED:
            signal.signal(handled, _exit_finished)


def signalled() -> bool:
    """True once a signal arrived during set-up, even if the KeyboardInterrupt got lost."""
    return _signalled


def main() -> None:
    """Run the ``densestream`` command (SIGINT is caught even when it was inherited ignored)."""
    global _launched
    _launched = True
    for handled in HANDLED:
        signal.signal(handled, _exit_now)
    prepare_environment()
    from . import api  # noqa: F401 - the heavy imports, done while a signal can end the process
    from .cli import main as command

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    command()
