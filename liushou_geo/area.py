"""The area a page shows: the city, one county, or one township."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from .boundaries import LEVEL_PREFIX


@dataclass(frozen=True)
class Area:
    county: str | None = None      # 12-digit county code
    township: str | None = None    # 12-digit township code (inside county)

    @property
    def level_in_view(self) -> str:
        """Townships city-wide; villages inside a chosen county or township."""
        return "village" if (self.county or self.township) else "township"

    @property
    def prefix(self) -> str:
        """Code prefix of the area ('' for the whole city)."""
        if self.township:
            return self.township[:9]
        return self.county[:6] if self.county else ""


def rollup(villages: pl.DataFrame, level: str, sum_cols: list[str]) -> pl.DataFrame:
    """Sum village rows (with a ``code`` column) to a level by code prefix; the
    result's ``code`` is the 12-digit code of the unit."""
    n = LEVEL_PREFIX[level]
    return (villages.with_columns(pl.col("code").str.slice(0, n).str.pad_end(12, "0").alias("code"))
            .group_by("code").agg([pl.col(c).sum() for c in sum_cols]).sort("code"))
