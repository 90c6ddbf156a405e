"""The frames a run caches, with a visible lifetime: a scope, not fields of domain objects.

`CacheScope` is a context manager. `persist` caches a frame and registers it; `release` uncaches
some early (the frames over a table the run is about to commit to); leaving the scope, published,
failed or raised, uncaches whatever remains, so a long-lived session (a notebook, Databricks) does
not keep a run's caches.

Newest first, always: uncaching a frame that later caches were built on makes Spark re-plan each
of those still cached (re-running Delta's file listing of the tables they read), which cost more
than the run's own queries. Released newest first, no cache outlives the frames it was built on.
"""

from __future__ import annotations

from pyspark.sql import DataFrame


class CacheScope:
    """The frames cached in one `with` block, uncached newest first when it ends."""

    def __init__(self) -> None:
        self._frames: list[tuple[DataFrame, str | None]] = []  # (frame, output table it reads), oldest first

    def __enter__(self) -> CacheScope:
        return self

    def __exit__(self, *_exc) -> None:
        frames, self._frames = self._frames, []
        for frame, _reads in reversed(frames):
            frame.unpersist()

    def persist(self, df: DataFrame, reads: str | None = None) -> DataFrame:
        """`df` cached (the same frame, as DataFrame.persist returns it) until released or the scope ends.

        `reads`: the job's output table the frame is read from, if any (see `reading`).
        """
        cached = df.persist()
        self._frames.append((cached, reads))
        return cached

    def reading(self, table: str) -> tuple[DataFrame, ...]:
        """The frames still cached that were registered as read from `table`, newest first."""
        return tuple(frame for frame, reads in reversed(self._frames) if reads == table)

    def release(self, *frames: DataFrame) -> None:
        """Uncaches `frames` now, newest first whatever their order here; the scope's end skips them."""
        if not all(any(frame is held for held, _ in self._frames) for frame in frames):
            raise ValueError("release: a frame that is not cached in this scope")
        for index in reversed(range(len(self._frames))):
            frame, _reads = self._frames[index]
            if any(frame is released for released in frames):
                del self._frames[index]
                frame.unpersist()
