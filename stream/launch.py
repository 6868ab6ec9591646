"""The ``densestream`` process entry: Ctrl-C and SIGTERM give exit status 130 and one line from
the first instant, even while the heavy imports (torch) are still loading."""
from __future__ import annotations

import os
import signal
import sys


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Run the ``densestream`` command with SIGTERM treated like Ctrl-C until a run takes over
    the signals (``stream.pipeline.stop_on_signals``)."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with it ignored (cmd &)
    try:
        from .cli import main as command

        command()
    except KeyboardInterrupt:
        for handled in (signal.SIGINT, signal.SIGTERM):
            signal.signal(handled, signal.SIG_IGN)
        sys.stderr.write("interrupted while starting: no frame was processed\n")
        sys.stderr.flush()
        os._exit(130)  # skip interpreter teardown: a half-imported torch may abort in it
