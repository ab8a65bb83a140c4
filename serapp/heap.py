"""One process-wide setting of the C allocator, made first thing by `serapp` (the app and the
command line), before any thread starts.

glibc gives threads that allocate at the same time heaps of their own ("arenas", up to eight
per core), and each keeps its high-water mark: onnxruntime's, torch's and the reading threads'
allocations over a long file left `serapp predict` on a two-hour recording at 611 MB. Two
arenas are enough for this program's few busy threads (benchmarks/bench_memory.py).
Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def limit_arenas(arenas: int = ARENAS) -> bool:
    """True when glibc took the setting."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
