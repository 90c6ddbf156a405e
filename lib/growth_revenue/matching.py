"""Matching text: one normalisation for every value a rule matches on (README "Matching text").

A raw value and a configured value match when both are the same after this: Spark columns and
the config's Python strings are normalised by the same definition.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column
from pyspark.sql import functions as F

# Padding trimmed from both ends of a matched value: every Unicode White_Space character and every
# control character (category Cc). Spelled out rather than a regex, so Spark (btrim) and Python
# (str.strip, for the config's values) trim exactly the same set.
PADDING = "".join(
    [chr(c) for c in range(0x00, 0x20)]  # C0 controls: tab, newline, carriage return, ...
    + [" "]
    + [chr(c) for c in range(0x7F, 0xA0)]  # DEL and the C1 controls (NEL U+0085 among them)
    + [
        "\u00a0",
        "\u1680",
        *[chr(c) for c in range(0x2000, 0x200B)],
        "\u2028",
        "\u2029",
        "\u202f",
        "\u205f",
        "\u3000",
    ]  # no-break, ogham, en/em/thin/hair..., line and paragraph separators, ideographic
)


def matching_text(value: Column) -> Column:
    """`value` as rules match it: padding (PADDING) trimmed at both ends, then lower-cased."""
    return F.lower(F.btrim(value, F.lit(PADDING)))


def email_domain(email: Column) -> Column:
    """The text after an e-mail's last '@' as matching_text, without one trailing dot (a fully
    qualified `example.com.` is `example.com`); null when the e-mail has no '@'."""
    domain = matching_text(F.substring_index(email, "@", -1))
    return F.when(email.contains("@"), F.regexp_replace(domain, r"\.\z", ""))


def normalised_text(value: str) -> str:
    """A configured value as matching_text makes it, for comparing with the data."""
    return value.strip(PADDING).lower()


def normalised_domain(value: str) -> str:
    """A configured domain as email_domain makes it."""
    text = normalised_text(value)
    return text[:-1] if text.endswith(".") else text


def _normalised(values: Iterable[str]) -> list[str]:
    return sorted({normalised_text(v) for v in values})


def _normalised_domains(values: Iterable[str]) -> list[str]:
    return sorted({normalised_domain(v) for v in values})
