"""Shared command-line plumbing: JSON cleaning and the one-line parser error."""

import json
import math

import numpy as np

from analysis.cli import Parser, clean, run


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
