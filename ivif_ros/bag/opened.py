"""``with bag:`` for the bag reader and writers: ``open()`` on the way in, ``close()`` on the way out."""

from __future__ import annotations


class OpenedInWith:
    """Mixin for a class with ``open()`` and ``close()``; exceptions pass through."""

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False
