"""Side-by-side speed measurements of one task on one input; ``measure(...)`` returns a dict.

Rows, all on the same frames and the same model object: ``decode`` (open_source iteration),
``model`` (device tensors in and out, the task's forward only), ``pipeline_null`` and
``pipeline_mp4`` (the real Pipeline into a NullSink / a VideoSink), ``naive`` (the one-thread
OpenCV + eager fp32 NCHW loop a user would write), ``live`` (the input paced at its frame
rate: latency and drops) and ``supervision`` (its ``process_video`` loop, when installed).
Each row holds per-repeat lists (``frames``, ``seconds``, ``fps``) and medians
(``fps_median``, ``ms_per_frame_median``), ``peak_rss_mb`` and ``peak_device_mb``; a
skipped row holds only ``skipped`` (the reason). The result also has ``meta`` (device,
torch, date, precision, settings), ``ratios`` (from the medians) and ``precision_check``.
``soak`` watches host memory over a long synthetic run; ``argmax_disagreement`` measures
the accuracy cost of a reduced precision on any frames.
"""
from .accuracy import argmax_disagreement
from .baselines import naive_overlay
from .inputs import parse_resolution, prepare_input
from .measuring import ROWS, compute_ratios, measure
from .report import format_soak, format_table, write_json
from .soaking import soak
from .timing import time_decode

__all__ = ["ROWS", "argmax_disagreement", "compute_ratios", "format_soak", "format_table", "measure", "naive_overlay",
           "parse_resolution", "prepare_input", "soak", "time_decode", "write_json"]
