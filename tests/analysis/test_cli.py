"""Shared command-line plumbing: JSON cleaning and the one-line parser error."""

import json
import math
import os
import subprocess
import sys

import numpy as np

from analysis.cli import Parser, clean, run

from .common import REPO


def test_clean_makes_json_without_nan():
    text = json.dumps(clean({"a": np.float64(1.5), "b": [math.nan, np.int64(2)], 3: (np.inf,)}))
    assert json.loads(text) == {"a": 1.5, "b": [None, 2], "3": [None]}


def test_parser_error_is_one_line_and_run_returns_its_status(capsys):
    def main(argv):
        parser = Parser(prog="prog")
        parser.add_argument("--n", type=int, required=True)
        parser.parse_args(argv)
        return 0

    assert run(main, "prog", ["--n", "x"]) == 2
    assert capsys.readouterr().err == "prog: error: argument --n: invalid int value: 'x'\n"
    assert run(main, "prog", ["--n", "3"]) == 0


def test_a_reader_that_leaves_early_ends_an_analysis_command_quietly(tmp_path):
    """`python -m analysis.fit data.csv ... | head`: no BrokenPipeError traceback, the shell's SIGPIPE code (141)."""
    table = tmp_path / "data.csv"
    table.write_text("compute,error\n" + "".join(f"{c:g},{2 * c**-0.1:g}\n" for c in np.geomspace(1e12, 1e16, 8)))
    read, write = os.pipe()
    subprocess.run(["head", "-n", "0"], stdin=read, check=True)  # a reader that has left before anything is written
    os.close(read)
    try:
        command = [
            sys.executable,
            "-m",
            "analysis.fit",
            str(table),
            "--x",
            "compute",
            "--y",
            "error",
            "--bootstrap",
            "20",
        ]
        result = subprocess.run(command, stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, cwd=REPO)
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (141, "")
