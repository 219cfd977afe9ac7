"""Random access into a CSV of (image path, caption), with open_clip's defaults (tab separated,
columns `filepath` and `title`); comma-separated files with the same columns work too. Relative image paths
resolve against the CSV's folder, so a dataset directory can move as a whole. Global index = row number.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scaling.data.base import one_line
from scaling.errors import ConfigError

IMAGE_COLUMN, CAPTION_COLUMN = "filepath", "title"


def read_table(path: Path, field: str) -> pd.DataFrame:
    """The CSV with its two columns as strings; the separator is a tab if the header has one, else a comma."""
    try:
        with open(path, encoding="utf-8") as f:
            header = f.readline()
        table = pd.read_csv(path, sep="\t" if "\t" in header else ",", dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ConfigError(f"{field}: cannot read CSV {path} ({one_line(err)})") from None
    missing = [c for c in (IMAGE_COLUMN, CAPTION_COLUMN) if c not in table.columns]
    if missing:
        found = ", ".join(map(str, table.columns)) or "none"
        raise ConfigError(f"{field}: CSV {path} lacks column(s) {', '.join(missing)} (found: {found})")
    if table.empty:
        raise ConfigError(f"{field}: CSV {path} has no rows")
    return table


class TableIndex:
    """Every row of a CSV; images are read from their files only when asked for."""

    def __init__(self, path: str, field: str) -> None:
        self.field = field
        self.path = Path(path)
        table = read_table(self.path, field)
        self.images = [self.path.parent / p for p in table[IMAGE_COLUMN]]
        self.captions = list(table[CAPTION_COLUMN])

    def __len__(self) -> int:
        return len(self.captions)

    def name(self, i: int) -> str:
        return str(self.images[i])

    def image_bytes(self, i: int) -> bytes:
        try:
            return self.images[i].read_bytes()
        except OSError as err:
            raise ConfigError(f"{self.field}: cannot read image of row {i} of {self.path} ({one_line(err)})") from None

    def caption(self, i: int) -> str:
        return self.captions[i]

    def files(self) -> list[dict]:
        return [{"path": str(self.path.resolve()), "bytes": self.path.stat().st_size}]
