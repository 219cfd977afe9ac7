"""Strip outputs from notebooks in place, so committed notebooks carry no stale numbers and diff cleanly.

    python notebooks/strip_outputs.py              # every notebook in notebooks/
    python notebooks/strip_outputs.py NB.ipynb ...  # these
    python notebooks/strip_outputs.py --check      # exit 1 (and name them) if any notebook has outputs

Clears code-cell outputs and execution counts, and the per-cell execution timings and widget state that
Jupyter adds; the cells' sources are untouched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")
VOLATILE_METADATA = ("widgets", "papermill")


def has_outputs(nb: nbformat.NotebookNode) -> bool:
    """Whether any code cell carries outputs or an execution count."""
    return any(c.get("outputs") or c.get("execution_count") is not None for c in nb.cells if c.cell_type == "code")


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook without outputs, execution counts and volatile metadata (modified in place)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
    for key in VOLATILE_METADATA:
        nb.metadata.pop(key, None)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    parser.add_argument("--check", action="store_true", help="only report notebooks that have outputs")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(HERE.glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if has_outputs(nb):
            dirty.append(path)
        if not args.check:
            nbformat.write(strip(nb), path)
    if args.check and dirty:
        print("notebooks with outputs: " + ", ".join(map(str, dirty)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
