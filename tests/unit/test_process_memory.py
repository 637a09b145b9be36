"""The allocator hints: harmless to call, and on glibc they do what they say."""

from __future__ import annotations

import ctypes

import pytest

from shared.adapters import process_memory

pytestmark = pytest.mark.unit

_M_TRIM_THRESHOLD = -1  # mallopt parameter number, from glibc's malloc.h


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def test_freed_memory_goes_back_to_the_system_on_glibc() -> None:
    if process_memory._glibc() is None:
        pytest.skip("not glibc: the hints do nothing by design")
    process_memory.limit_allocator_arenas()
    process_memory.limit_allocator_arenas()  # once per process; a second call changes nothing
    # Blocks below glibc's mmap threshold between small ones that stay (as a page's records lie
    # between the couplings and counters that outlive them): freed, they leave holes in the heap
    # that only a trim gives back.
    libc = process_memory._glibc()
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    large, small = [], []
    for _ in range(800):
        block = libc.malloc(64 * 1024)
        ctypes.memset(block, 1, 64 * 1024)  # touched, so it counts in the resident set
        large.append(block)
        small.append(libc.malloc(64))
    libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)  # free() alone must not give the top of the heap back
    try:
        for block in large:
            libc.free(block)
        held = _rss_kib()
        process_memory.release_freed_memory()
        released = held - _rss_kib()
    finally:
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)  # glibc's default
    for block in small:
        libc.free(block)
    assert released > 30_000  # most of the 50 MiB of holes came back
