"""Large encoded documents deflated into a temporary file, for a store that keeps them so.

A million-iteration job's document is 480 MB of JSON; zlib at level 1 makes it about a fifth,
at 250 MB/s, and lets go of the GIL while it works. `Deflater` does it in a thread of its own
while the document is being encoded (the run's thread encodes, another core deflates);
`deflate_to_file` does it at once, for a document that is already whole.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import zlib
from collections.abc import Iterable, Iterator

LEVEL = 1  # zlib's fastest: the pages saved cost less than a slower level's time
PIECE = 1 << 20  # bytes read at a time
ZLIB_HEADER = b"\x78"  # the first byte of a zlib stream at every level (a JSON text: `{`)


def read_pieces(fd: int, size: int, piece: int = PIECE) -> Iterator[bytes]:
    """The first `size` bytes of the file open as `fd`, `piece` bytes at a time, each read
    at its own position (from any thread: no shared position moves)."""
    for start in range(0, size, piece):
        yield os.pread(fd, min(piece, size - start), start)


def inflate_pieces(pieces: Iterable[bytes], size: int = PIECE) -> Iterator[bytes]:
    """A zlib stream given in `pieces`, inflated, at most `size` bytes at a time."""
    inflater = zlib.decompressobj()
    try:
        for piece in pieces:
            data = piece
            while data:
                inflated = inflater.decompress(data, size)
                if inflated:
                    yield inflated
                data = inflater.unconsumed_tail
        rest = inflater.flush()
    except zlib.error as error:  # as for a file cut short: the reader's failure, an OSError
        raise OSError(f"a deflated document is damaged: {error}") from None
    if rest:
        yield rest
    if not inflater.eof:  # a file cut short: its reader must not take a part for the whole
        raise OSError("a deflated document ends before its stream does")


class DeflatedFile:
    """A zlib stream in an unnamed temporary file, read back a piece at a time."""

    def __init__(self) -> None:
        import tempfile  # only large documents get here: not among the CLI's start-up imports

        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by `close`)
        self.size = 0

    def write(self, data: bytes) -> None:
        if data:
            self._file.write(data)
            self.size += len(data)

    def done(self) -> DeflatedFile:
        """Written whole: from now on it is only read (by any thread)."""
        self._file.flush()
        return self

    def pieces(self) -> Iterator[bytes]:
        return read_pieces(self._file.fileno(), self.size)

    def close(self) -> None:
        """Close and so delete it; a write still buffered that fails (a full disk) is dropped
        with it: what failed is reported where the writing was."""
        with contextlib.suppress(OSError):
            self._file.close()


def deflate_to_file(pieces: Iterable[bytes | memoryview]) -> DeflatedFile:
    """`pieces` of a document, deflated into a temporary file. Raises OSError when no
    temporary file can be written (a full disk, an unwritable TMPDIR)."""
    out = DeflatedFile()
    try:
        deflater = zlib.compressobj(LEVEL)
        for piece in pieces:
            out.write(deflater.compress(piece))
        out.write(deflater.flush())
        return out.done()
    except BaseException:
        out.close()
        raise


class Deflater:
    """Deflates the pieces given to `put` in a thread of its own, into a temporary file;
    `finish` waits for it. At most `ahead` pieces wait for the thread (the writer waits
    beyond). A failure of the thread (no room for the file) is kept: `finish` returns None
    and the document goes on undeflated."""

    def __init__(self, ahead: int = 1) -> None:
        self._out = DeflatedFile()
        self._queue: queue.Queue[bytes | bytearray | None] = queue.Queue(ahead)
        self._failed = False
        self._thread = threading.Thread(target=self._work, name="flowgraph-deflate", daemon=True)
        try:
            self._thread.start()
        except RuntimeError as error:  # no thread can be started: as for no room for the file
            self._out.close()
            raise OSError(f"cannot start a thread to deflate the document: {error}") from None

    def put(self, piece: bytes | bytearray) -> None:
        if not self._failed:
            self._queue.put(piece)

    def finish(self) -> DeflatedFile | None:
        """The deflated document, once the thread has done; None when it failed."""
        self._queue.put(None)
        self._thread.join()
        if not self._failed:
            try:
                return self._out.done()
            except OSError:
                pass
        self._out.close()
        return None

    def abandon(self) -> None:
        """Stop the thread and drop its file (the document it was given failed)."""
        self._failed = True
        self._queue.put(None)  # the thread drops what it is given from now on
        self._thread.join()
        self._out.close()

    def _work(self) -> None:
        deflater = zlib.compressobj(LEVEL)
        ended = False
        try:
            while (piece := self._queue.get()) is not None:
                if not self._failed:
                    self._out.write(deflater.compress(piece))
            ended = True
            if not self._failed:
                self._out.write(deflater.flush())
        except Exception:  # no room for the file, no memory: the document goes undeflated
            self._failed = True
            while not ended and self._queue.get() is not None:  # let the writer finish
                pass
