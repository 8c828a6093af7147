"""A job document encoded into a temporary file instead of memory.

A large job's document (480 MB for a million nodes) would otherwise be held whole beside the
job's state while it is written to the store and to the CLI's output; from a file, both read it
a piece at a time.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from engine.deflated import PIECE, DeflatedFile, Deflater, inflate_pieces, read_pieces


class SpooledDocument:
    """An encoded document in an unnamed temporary file, deleted when the document is closed or
    no longer referenced (and when the process ends, however it ends). Its pieces can be read
    any number of times, from any thread: every read says where it starts, and nothing moves
    a shared position. Whoever holds it may read it: the file lives as long as the object."""

    def __init__(
        self, encode: Callable[[Callable[[bytes], object]], None], *, deflate: bool = False
    ) -> None:
        """Make the file from `encode`, which writes the document through the function it is
        given (one call per piece, in order).

        With `deflate` (for a store that keeps large documents deflated), a thread deflates the
        document as it is written (see engine/deflated.py), and that stream is the only file:
        `deflated`, and what `pieces` inflate again. The JSON is about five times its size, and
        a first write of that many pages is what a large run's end waits on most (0.25 s of a
        100,000-iteration run's 48 MB, on an ext4 /tmp); inflating it again for a reader
        takes a third of that. When the deflated file cannot be made (no room for it), the
        document is encoded again, into a file of its own, and `deflated` is None."""
        self.deflated: DeflatedFile | None = None
        self._fd: int | None = None
        if not hasattr(os, "pread"):  # positioned reads (POSIX): the caller keeps it in memory
            raise OSError("no positioned file reads on this system")
        if deflate:
            self.deflated, self.size = _deflated_only(encode)
        self._closer: weakref.finalize[..., Any]
        if self.deflated is not None:
            self._closer = weakref.finalize(self, self.deflated.close)
            return
        handle = _unnamed_file()
        self._fd = handle
        self._closer = weakref.finalize(self, os.close, handle)
        try:
            with (
                io.FileIO(handle, "wb", closefd=False) as raw,
                io.BufferedWriter(raw, PIECE) as out,
            ):
                encode(out.write)
            self.size = os.fstat(handle).st_size
        except BaseException:
            self.close()
            raise

    def pieces(self, size: int = PIECE) -> Iterator[bytes]:
        """The document, `size` bytes at a time (at most, from a deflated one)."""
        if self._fd is not None:
            return read_pieces(self._fd, self.size, size)
        assert self.deflated is not None
        return inflate_pieces(self.deflated.pieces(), size)

    def read(self) -> bytes:
        """The whole document (for a reader that needs it at once)."""
        return b"".join(self.pieces())

    def close(self) -> None:
        """Delete the file now (for its only holder: a reader would fail)."""
        self._closer()

    @property
    def closed(self) -> bool:
        return not self._closer.alive


def _unnamed_file() -> int:
    """A temporary file's descriptor, its name already gone: it lives while the descriptor is
    open, and no longer. Raises OSError on a system that keeps open files."""
    import tempfile  # only large jobs get here: not among the CLI's start-up imports

    handle, path = tempfile.mkstemp(prefix="flowgraph-document-")
    try:
        os.unlink(path)
    except OSError:  # a system that keeps open files (the caller keeps it in memory)
        os.close(handle)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return handle


def _deflated_only(
    encode: Callable[[Callable[[bytes], object]], None],
) -> tuple[DeflatedFile | None, int]:
    """The document `encode` writes, deflated by a thread beside it into a file of its own,
    and its size as JSON; None when the deflated file could not be made (no thread, no room
    for the file)."""
    try:
        deflater = Deflater()
    except OSError:
        return None, 0
    sink = _ToDeflater(deflater)
    try:
        with _deflating_beside(), io.BufferedWriter(sink, PIECE) as out:
            encode(out.write)
    except BaseException:
        deflater.abandon()
        raise
    return deflater.finish(), sink.size


_interval_lock = threading.Lock()
_deflating = 0  # documents being encoded with a deflating thread beside them, in any thread
_interval_before = 0.005  # the switch interval before the first of them
SWITCH_INTERVAL = 0.0001  # seconds, while a document is encoded with a deflating thread


@contextlib.contextmanager
def _deflating_beside() -> Iterator[None]:
    """While a document is encoded with a deflating thread beside it: that thread takes the
    GIL back a few times a piece (to take it, to deflate it, to write it), and waits each time
    for the encoding thread to let go of it, at most the interpreter's switch interval (5 ms).
    At that, a megabyte piece (4 ms of deflating) would leave the thread slower than the
    encoding; at half a millisecond it still was, a little (the encoding waited for it: 0.27-0.30
    s for 100,000 iterations' 48 MB, against 0.21 s encoded alone); at 0.1 ms, 0.25-0.26 s.
    Shorter (50 µs) was no faster."""
    global _deflating, _interval_before
    with _interval_lock:  # the interval is the process's: the first in sets, the last out restores
        if not _deflating:
            _interval_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_interval_before, SWITCH_INTERVAL))
        _deflating += 1
    try:
        yield
    finally:
        with _interval_lock:
            _deflating -= 1
            if not _deflating:
                sys.setswitchinterval(_interval_before)


class _ToDeflater(io.RawIOBase):
    """Raw writes handed to a deflater, counted: the buffered writer above makes them a
    megabyte (PIECE) at a time."""

    def __init__(self, deflater: Deflater) -> None:
        self._deflater = deflater
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._deflater.put(bytes(data))  # the writer's buffer is used again
        self.size += len(data)
        return len(data)
