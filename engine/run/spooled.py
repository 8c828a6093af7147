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

from engine.deflated import PIECE, DeflatedFile, Deflater, read_pieces


class SpooledDocument:
    """An encoded document in an unnamed temporary file, deleted when the document is closed or
    no longer referenced (and when the process ends, however it ends). Its pieces can be read
    any number of times, from any thread: every read says where it starts, and nothing moves
    a shared position. Whoever holds it may read it: the file lives as long as the object."""

    def __init__(
        self, encode: Callable[[Callable[[bytes], object]], None], *, deflate: bool = False
    ) -> None:
        """Make the file from `encode`, which writes the document through the function it is
        given (one call per piece, in order). With `deflate`, a thread deflates the document
        as it is written (see engine/deflated.py): `deflated` is then that stream (None when
        it could not be made), for a store that keeps large documents deflated."""
        import tempfile  # only large jobs get here: not among the CLI's start-up imports

        self.deflated: DeflatedFile | None = None
        if not hasattr(os, "pread"):  # positioned reads (POSIX): the caller keeps it in memory
            raise OSError("no positioned file reads on this system")
        handle, path = tempfile.mkstemp(prefix="flowgraph-document-")
        self._fd = handle
        self._closer = weakref.finalize(self, os.close, handle)
        try:
            os.unlink(path)  # the file lives while its descriptor is open, and no longer
        except OSError:  # a system that keeps open files (the caller keeps it in memory)
            self.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        deflater = None
        if deflate:
            try:
                deflater = Deflater()
            except OSError:  # no room for a second file: the store takes the JSON
                deflater = None
        try:
            raw = io.FileIO(handle, "wb", closefd=False)
            with (
                _deflating_beside(deflater),
                raw,
                io.BufferedWriter(_Tee(raw, deflater) if deflater else raw, PIECE) as out,
            ):
                encode(out.write)
            self.size = os.fstat(handle).st_size
            if deflater is not None:
                self.deflated, deflater = deflater.finish(), None
                if self.deflated is not None:  # goes with the document, as its file does
                    self._deflated_closer = weakref.finalize(self, self.deflated.close)
        except BaseException:
            if deflater is not None:
                deflater.abandon()
            self.close()
            raise

    def pieces(self, size: int = PIECE) -> Iterator[bytes]:
        """The document, `size` bytes at a time."""
        return read_pieces(self._fd, self.size, size)

    def read(self) -> bytes:
        """The whole document (for a reader that needs it at once)."""
        return b"".join(self.pieces())

    def close(self) -> None:
        """Delete the file now (for its only holder: a reader would fail)."""
        self._closer()
        if self.deflated is not None:
            self._deflated_closer()

    @property
    def closed(self) -> bool:
        return not self._closer.alive


_interval_lock = threading.Lock()
_deflating = 0  # documents being encoded with a deflating thread beside them, in any thread
_interval_before = 0.005  # the switch interval before the first of them


@contextlib.contextmanager
def _deflating_beside(deflater: Deflater | None) -> Iterator[None]:
    """While a document is encoded with a deflating thread beside it: that thread takes the
    GIL back after each piece, and waits for the encoding thread to let go of it, at most the
    interpreter's switch interval (5 ms). At that, a megabyte piece (4 ms of deflating) would
    leave the thread slower than the encoding; half a millisecond's wait at most keeps it ahead,
    with a megabyte at a time in its queue rather than four."""
    if deflater is None:
        yield
        return
    global _deflating, _interval_before
    with _interval_lock:  # the interval is the process's: the first in sets, the last out restores
        if not _deflating:
            _interval_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_interval_before, 0.0005))
        _deflating += 1
    try:
        yield
    finally:
        with _interval_lock:
            _deflating -= 1
            if not _deflating:
                sys.setswitchinterval(_interval_before)


class _Tee(io.RawIOBase):
    """A file's raw writes, each handed to a deflater too: the buffered writer above makes
    them a megabyte (PIECE) at a time."""

    def __init__(self, raw: io.FileIO, deflater: Deflater) -> None:
        self._raw = raw
        self._deflater = deflater

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        written = self._raw.write(data) or 0
        self._deflater.put(bytes(data[:written]))  # the writer's buffer is used again
        return written
