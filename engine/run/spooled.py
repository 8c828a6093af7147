"""A job document encoded into a temporary file instead of memory.

A large job's document (480 MB for a million nodes) would otherwise be held whole beside the
job's state while it is written to the store and to the CLI's output; from a file, both read it
a piece at a time.
"""

from __future__ import annotations

import contextlib
import io
import os
import weakref
from collections.abc import Callable, Iterator

PIECE = 1 << 20  # bytes read at a time


class SpooledDocument:
    """An encoded document in an unnamed temporary file, deleted when the document is closed or
    no longer referenced (and when the process ends, however it ends). Its pieces can be read
    any number of times, from any thread: every read says where it starts, and nothing moves
    a shared position. Whoever holds it may read it: the file lives as long as the object."""

    def __init__(self, encode: Callable[[Callable[[bytes], object]], None]) -> None:
        """Make the file from `encode`, which writes the document through the function it is
        given (one call per piece, in order)."""
        import tempfile  # only large jobs get here: not among the CLI's start-up imports

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
        """The document, `size` bytes at a time."""
        for start in range(0, self.size, size):
            yield os.pread(self._fd, min(size, self.size - start), start)

    def read(self) -> bytes:
        """The whole document (for a reader that needs it at once)."""
        return b"".join(self.pieces())

    def close(self) -> None:
        """Delete the file now (for its only holder: a reader would fail)."""
        self._closer()

    @property
    def closed(self) -> bool:
        return not self._closer.alive
