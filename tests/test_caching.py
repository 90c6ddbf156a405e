"""CacheScope: what a run caches is uncached newest first, early or when the scope ends, even on an error."""

import pytest

from growth_revenue.caching import CacheScope


class Frame:
    """Stands in for a DataFrame: records when it is cached and uncached."""

    def __init__(self, name: str, log: list[str]):
        self.name, self._log = name, log

    def persist(self) -> "Frame":
        self._log.append(f"persist {self.name}")
        return self

    def unpersist(self) -> "Frame":
        self._log.append(f"unpersist {self.name}")
        return self


def test_leaving_the_scope_uncaches_every_frame_newest_first():
    log: list[str] = []
    with CacheScope() as caches:
        for name in ("profiles", "counted", "report"):
            caches.persist(Frame(name, log))
    assert log == [
        "persist profiles",
        "persist counted",
        "persist report",
        "unpersist report",
        "unpersist counted",
        "unpersist profiles",
    ]


def test_released_frames_go_at_once_newest_first_and_not_again_at_the_end():
    log: list[str] = []
    with CacheScope() as caches:
        _profiles, current, staged, _changes, report = (
            caches.persist(Frame(name, log), reads="mart" if name in ("current", "staged") else None)
            for name in ("profiles", "current", "staged", "changes", "report")
        )
        assert caches.reading("mart") == (staged, current)
        log.clear()
        caches.release(current, report, staged)  # in any order
        assert log == ["unpersist report", "unpersist staged", "unpersist current"]
        assert caches.reading("mart") == ()
        log.clear()
    assert log == ["unpersist changes", "unpersist profiles"]


def test_an_error_inside_the_scope_still_uncaches_and_is_not_swallowed():
    log: list[str] = []
    with pytest.raises(RuntimeError, match="stage failed"), CacheScope() as caches:
        caches.persist(Frame("profiles", log))
        raise RuntimeError("stage failed")
    assert log == ["persist profiles", "unpersist profiles"]


def test_releasing_a_frame_the_scope_does_not_hold_is_an_error():
    log: list[str] = []
    with CacheScope() as caches:
        held = caches.persist(Frame("held", log))
        with pytest.raises(ValueError, match="not cached in this scope"):
            caches.release(held, Frame("stranger", log))
        assert log == ["persist held"]  # nothing released
