"""Where a table lives: a path or a catalog name, validated before anything reads or writes it.

A location is either a path (anything with a '/' or a URI scheme) or a catalog table name
(`table`, `schema.table` or `catalog.schema.table`). Names are validated and quoted, never
pasted into SQL as they came; a path never carries credentials.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger("growth_revenue")


_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_TABLE_NAME = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER}){{0,2}}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_USERINFO = re.compile(r"://[^/@:]*:[^/@]*@")  # user:secret@ (abfss://container@account is fine)


@dataclass(frozen=True)
class Location:
    """Where a table lives: a filesystem/object-store path or a catalog name."""

    path: str | None = None
    name: str | None = None

    @staticmethod
    def parse(text: str) -> Location:
        text = text.strip()
        if _CONTROL.search(text):
            raise ValueError(f"a table path or name must not contain control characters: {text!r}")
        if "/" in text or ":" in text or text.startswith("."):
            if _USERINFO.search(text):
                # A key in the URI would end up in logs and Spark's plans: credentials come from the
                # environment or the platform instead (README "Credentials").
                raise ValueError(f"a table path must not carry credentials: {_USERINFO.sub('://***@', text)}")
            return Location(path=text)
        if not _TABLE_NAME.match(text):
            raise ValueError(f"not a table path or catalog.schema.table name: {text!r}")
        return Location(name=text)

    def child(self, table: str) -> Location:
        """The output table `table` inside this directory or schema."""
        if self.path is not None:
            return Location(path=f"{self.path.rstrip('/')}/{table}")
        return Location(name=f"{self.name}.{table}")

    @property
    def quoted_name(self) -> str:
        if self.name is None:
            raise ValueError(f"{self} is a path, not a catalog table name")
        return ".".join(f"`{part}`" for part in self.name.split("."))

    @property
    def file_path(self) -> str:
        """The path of a path location (what Spark's and Delta's path APIs take)."""
        if self.path is None:
            raise ValueError(f"{self} is a catalog table name, not a path")
        return self.path

    def __str__(self) -> str:
        return self.path if self.path is not None else str(self.name)
