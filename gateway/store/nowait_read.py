"""Reading a file only when it cannot block: every page, and the path itself, already cached.

The event loop must never wait for the disk (DESIGN invariant 5), yet a hop to the thread pool
costs more than reading a mail that sits in the page cache, which most mail a client opens
does. Linux can tell the two apart without blocking: `openat2(RESOLVE_CACHED)` fails with
EAGAIN instead of reading a directory from disk, and `preadv2(RWF_NOWAIT)` fails instead of
waiting for a page. Whatever this module cannot read at once, the caller reads in a thread.

Anywhere these calls are missing (other systems, kernels before 5.12, a file system without
RWF_NOWAIT), every read answers None and the caller always takes the thread. Paths must not
contain symbolic links (`BlobStore` passes its resolved root).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
import sys
from collections.abc import Callable

# openat2(2) is 437 in the generic syscall table that both of these use.
_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437}.get(platform.machine())
_AT_FDCWD = -100
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_CACHED = 0x20
# The kernel has no such call or refuses the flag, or the file system cannot: stop trying.
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


# O_NOATIME: an atime update dirties the inode and may wait for the file system's journal.
# O_NONBLOCK: opening anything but a regular file (a FIFO) must not wait either.
_HOW = _OpenHow(
    os.O_RDONLY | os.O_CLOEXEC | os.O_NOATIME | os.O_NONBLOCK,
    0,
    _RESOLVE_CACHED | _RESOLVE_NO_SYMLINKS,
)


def _load_syscall() -> Callable[..., int] | None:
    if sys.platform != "linux" or _SYS_OPENAT2 is None or not hasattr(os, "RWF_NOWAIT"):
        return None
    function = ctypes.CDLL(None, use_errno=True).syscall
    function.restype = ctypes.c_long
    return function


_syscall = _load_syscall()


def supported() -> bool:
    """Whether non-blocking reads may succeed here at all."""
    return _syscall is not None


def _open_cached(path: bytes) -> int | None:
    """A read-only descriptor if the path resolves from the dentry cache alone, else None."""
    if _syscall is None or _SYS_OPENAT2 is None:
        return None
    fd = int(
        _syscall(
            ctypes.c_long(_SYS_OPENAT2),
            ctypes.c_int(_AT_FDCWD),
            ctypes.c_char_p(path),
            ctypes.byref(_HOW),
            ctypes.c_size_t(ctypes.sizeof(_HOW)),
        )
    )
    if fd >= 0:
        return fd
    if ctypes.get_errno() in _UNSUPPORTED:
        _switch_off()
    return None


def _switch_off() -> None:
    global _syscall  # switched off once, for the life of the process
    _syscall = None


def read_if_cached(path: str, limit: int) -> bytes | None:
    """The whole file if it is at most `limit` bytes and reading it cannot block, else None.

    None also covers a missing file and every error: the caller's ordinary (threaded) read then
    finds out what is wrong and reports it.
    """
    fd = _open_cached(os.fsencode(path))
    if fd is None:
        return None
    try:
        status = os.fstat(fd)
        size = status.st_size
        if not stat.S_ISREG(status.st_mode) or size > limit:
            return None
        buffer = bytearray(size)
        try:
            got = os.preadv(fd, [buffer], 0, os.RWF_NOWAIT)
        except BlockingIOError:
            # A page is not in memory. The kernel may have started reading it ahead (without
            # waiting for it): the next read of this file is likely to succeed.
            return None
        except OSError as error:
            if error.errno in _UNSUPPORTED:  # a file system without RWF_NOWAIT
                _switch_off()
            return None
        # A short read means part of the file was cached and part was not.
        return bytes(buffer) if got == size else None
    finally:
        os.close(fd)
