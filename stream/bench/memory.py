"""Host and device memory probes: current and peak RSS, available memory, peaks of a block of work."""
from __future__ import annotations

import contextlib

import torch


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float | None:
    """Resident host memory of this process now (VmRSS), in MiB; None off Linux."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def peak_rss_mb() -> float | None:
    """Peak resident host memory (VmHWM) since the last ``reset_peak_rss``, in MiB."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib / 1024


def reset_peak_rss() -> bool:
    """Restart the VmHWM peak at the current RSS (Linux clear_refs); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def available_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@contextlib.contextmanager
def recording_peaks(device: torch.device, into: dict):
    """Record peak host RSS and peak device memory (CUDA) of the enclosed work into ``into``."""
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    yield
    into["peak_rss_mb"] = peak_rss_mb()
    into["peak_device_mb"] = (torch.cuda.max_memory_allocated(device) / 2**20
                              if device.type == "cuda" else None)
