"""Memory: the budget calibration stays under, and the peak each stage really reached.

Calibration passes run whole batches through ONNX Runtime, and what a batch costs depends on the
model's activations, not on the dataset: a 640×640 detector holds hundreds of megabytes per
sample. So batch sizes come from a budget (default: a quarter of the machine's memory): one
sample is run first and the growth of the process's peak memory measured; a batch is as many
samples as the rest of the budget holds.

Peaks per stage come from a thread that samples the memory the process holds (resident less
file-backed pages, from Linux's ``/proc/self/statm``) every few milliseconds; elsewhere they are
not measured.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import threading
from collections.abc import Callable

from calibench.errors import ConfigError

STATM = "/proc/self/statm"
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
DEFAULT_SHARE = 0.25
MARGIN = 0.8
"""Share of the room left under the limit that batches are sized for: a batch costs a little
more than its samples times one sample's growth (measured: up to 17 % on a 640×640 detector)."""
MIN_LIMIT = 256 << 20
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def machine_memory() -> int:
    """Physical memory of this machine in bytes."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def default_limit() -> int:
    return int(machine_memory() * DEFAULT_SHARE)


def parse_size(text: str | int) -> int:
    """``4G``, ``512M``, ``2048`` (MiB when no unit: what people type) → bytes."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if match is None:
        raise ConfigError(f"not a memory size: {text!r} (write e.g. 4G or 512M)")
    number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * (_UNITS[unit] if unit else 1 << 20))
    if size < MIN_LIMIT:
        raise ConfigError(f"a memory limit of {text} is too small; give at least 256M")
    return size


def current_rss() -> int | None:
    """The memory this process holds, in bytes: resident pages less file-backed ones (Linux;
    None elsewhere). A memory-mapped dataset's pages are left out: the kernel drops them when
    memory runs short, so they cannot exhaust the machine, while a budget that counted them
    would shrink every batch as the dataset is read."""
    try:
        with open(STATM) as handle:
            fields = handle.read().split()
        return (int(fields[1]) - int(fields[2])) * PAGE
    except (OSError, ValueError, IndexError):
        return None


class RssWatch:
    """Samples the resident memory in a thread and keeps its maximum: peaks without touching
    the kernel's own high-water mark (which a parent's ``getrusage`` and ``time -v`` read)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self._peak = current_rss() or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss = current_rss()
            if rss is not None and rss > self._peak:
                self._peak = rss

    def __enter__(self) -> RssWatch:
        if current_rss() is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        rss = current_rss()
        if rss is not None and rss > self._peak:
            self._peak = rss

    def take(self) -> int:
        """The peak since the last ``take`` (or the start); starts a new one from now."""
        peak = max(self._peak, current_rss() or 0)
        self._peak = current_rss() or 0
        return peak


def release_free_memory() -> None:
    """Hand memory freed by earlier stages back to the system (glibc keeps it otherwise), so
    that the resident set measures what is really in use and a probe's growth shows."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            _libc = False
    trim = getattr(_libc, "malloc_trim", None) if _libc else None
    if trim is not None:
        trim(0)


_libc: ctypes.CDLL | bool | None = None


def fitting_batch(
    probe: Callable[[], object], limit: int | None, requested: int
) -> tuple[int, int | None]:
    """How many samples fit a batch under ``limit``: ``probe`` runs one sample, and the growth
    of the resident memory while it runs is one sample's cost. Returns the batch size (at least
    1, at most ``requested``) and the measured bytes per sample."""
    release_free_memory()
    start = current_rss()
    if limit is None or start is None:
        probe()
        return requested, None
    with RssWatch(0.002) as watch:
        probe()
    per_sample = max(watch.take() - start, 1 << 20)
    room = int((limit - start) * MARGIN)
    return max(1, min(requested, room // per_sample)), per_sample
