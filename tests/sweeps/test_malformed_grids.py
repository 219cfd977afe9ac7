"""68 malformed grids: each exits 2 with one `error:` line per problem (file:line or override, key path,
message), in file order, and never a traceback. Run in-process through `scaling.sweep.main --dry-run` (plus a
few through the real CLI), so the corpus stays fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scaling.sweep import main

REPO = Path(__file__).resolve().parents[2]
GOOD = """name: t
out: {tmp}/out
base:
  data: {pool_size: 512}
  batch_size: 32
  samples_seen: 1024
axes:
  model: [w32-l1]
  method: [clip, drrho]
methods:
  drrho:
    reference:
      train: {model: w32-l1, data: {seed: 1}}
executor: {kind: local}
"""
ALIAS_BOMB = "    a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"    {b}: &{b} [*{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def edit(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


# (id, file content: str edited from GOOD, or bytes; overrides; one expected fragment per error line, in order)
CASES: list[tuple[str, str | bytes, list[str], list[str]]] = [
    # -- the file itself
    ("empty", "", [], ["name: Field required", "out: Field required"]),
    ("top-level-list", "- name: t\n", [], [":1: expected a mapping (name, out, base, axes, ...) at the top level"]),
    ("top-level-scalar", "just words\n", [], [":1: expected a mapping"]),
    ("not-utf8", GOOD.encode().replace(b"name: t", b"name: t\xff\xfe"), [], [":1: not UTF-8 text (byte 0xff)"]),
    ("latin-1", GOOD.replace("name: t", "name: caf\u00e9").encode("latin-1"), [], [":1: not UTF-8 text (byte 0xe9)"]),
    ("nul-byte", GOOD.replace("batch_size: 32", "batch_size: 3\x002"), [], [":5: contains a NUL byte"]),
    ("png-bytes", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), [], [":1: not UTF-8 text (byte 0x89)"]),
    ("utf16", GOOD.encode("utf-16"), [], [":1: not UTF-8 text (byte 0xff)"]),
    ("unclosed-bracket", edit("[w32-l1]", "[w32-l1"), [], [": not valid YAML ("]),
    ("tab-indent", edit("  batch_size: 32", "\tbatch_size: 32"), [], [":5: not valid YAML (found character '\\t'"]),
    ("two-documents", GOOD + "---\nname: u\n", [], [":15: not valid YAML (but found another document)"]),
    ("python-tag", edit("name: t", "name: !!python/object/apply:os.system [echo hi]"), [], [":1: not valid YAML ("]),
    ("unknown-tag", edit("batch_size: 32", "batch_size: !big 32"), [], [":5: not valid YAML ("]),
    ("unhashable-key", edit("name: t", "name: t\n? [a, b]\n: 1"), [], [": not valid YAML (found unhashable key"]),
    ("deep-nesting", "name: t\nout: o\nbase: " + "[" * 5000 + "]" * 5000 + "\n", [], ["not valid YAML"]),
    (
        "alias-bomb",
        "analysis:\n  options:\n" + ALIAS_BOMB + GOOD.replace("[w32-l1]", "[*i]"),
        [],
        [":1: analysis: unknown fit option 'a' (choose ci, config,"],  # named at once, never expanded
    ),
    # -- duplicate keys (PyYAML lets the last win)
    ("duplicate-top-key", GOOD + "name: u\n", [], [":15: name: duplicate key (first given at line 1); keep one"]),
    (
        "duplicate-nested-key",
        edit("  batch_size: 32", "  batch_size: 32\n  batch_size: 64"),
        [],
        [":6: base.batch_size: duplicate key (first given at line 5)"],
    ),
    (
        "duplicate-flow-key",
        edit("{pool_size: 512}", "{pool_size: 512, pool_size: 256}"),
        [],
        [":4: base.data.pool_size: duplicate key"],
    ),
    (
        "duplicate-axis",
        edit("  method: [clip, drrho]", "  method: [clip, drrho]\n  model: [w48-l2]"),
        [],
        [":10: axes.model: duplicate key (first given at line 8)"],
    ),
    # -- the grid's own schema
    ("missing-name", edit("name: t\n", ""), [], ["name: Field required"]),
    ("missing-out", edit("out: {tmp}/out\n", ""), [], ["out: Field required"]),
    ("name-with-slash", edit("name: t", "name: a/b"), [], [":1: name: String should match pattern"]),
    ("unknown-top-key", edit("axes:", "axis:"), [], [":7: axis: unknown key; did you mean 'axes'?"]),
    (
        "base-not-mapping",
        edit("base:\n  data: {pool_size: 512}\n  batch_size: 32\n  samples_seen: 1024", "base: [1, 2]"),
        [],
        [":3: base: Input should be a valid dictionary"],
    ),
    (
        "axes-not-mapping",
        edit("axes:\n  model: [w32-l1]\n  method: [clip, drrho]", "axes: 3"),
        [],
        [":7: axes: Input should be a valid dictionary"],
    ),
    (
        "axis-not-a-list",
        edit("  model: [w32-l1]", "  model: w32-l1"),
        [],
        [":8: axes.model: Input should be a valid list"],
    ),
    ("axis-empty", edit("  model: [w32-l1]", "  model: []"), [], [":8: axes.model: List should have at least 1 item"]),
    (
        "unknown-axis",
        edit("  model: [w32-l1]", "  modle: [w32-l1]"),
        [],
        [":8: axes.modle: unknown key; did you mean 'model'?"],
    ),
    (
        "axis-in-axes-and-zip",
        GOOD + "zip:\n  - {model: [w48-l2]}\n",
        [],
        [":16: zip[0].model: axis model is also varied"],
    ),
    (
        "zip-lengths",
        GOOD + "zip:\n  - {seed: [0, 1], optim.lr: [1.0e-3]}\n",
        [],
        [":16: zip[0]: zipped axes need lists of one length (got [1, 2])"],
    ),
    ("unknown-model-axis", edit("[w32-l1]", "[w32-l9]"), [], [":8: axes.model[0]: model: unknown model 'w32-l9'"]),
    ("unknown-model-block", GOOD + "models:\n  w99: {batch_size: 16}\n", [], [":16: models.w99: unknown model"]),
    (
        "unknown-method-axis",
        edit("[clip, drrho]", "[clip, dhrro]"),
        [],
        [":9: axes.method[1]: method: Input should be"],
    ),
    ("unknown-method-block", edit("  drrho:\n", "  drho:\n"), [], [":11: methods.drho: Input should be"]),
    (
        "drrho-without-reference",
        edit("methods:\n  drrho:\n    reference:\n      train: {model: w32-l1, data: {seed: 1}}\n", ""),
        [],
        [":9: axes.method[1]: method drrho needs a reference: set reference or methods.drrho.reference"],
    ),
    (
        "reference-two-sources",
        edit("      train: {model: w32-l1, data: {seed: 1}}", "      train: {model: w32-l1}\n      pretrained: openai"),
        [],
        [":12: methods.drrho.reference: give exactly one of train, checkpoint, pretrained (got train, pretrained)"],
    ),
    (
        "reference-on-clip",
        GOOD.replace("  drrho:\n", "  clip:\n    reference: {checkpoint: x}\n  drrho:\n", 1),
        [],
        [
            ":12: methods.clip.reference: method clip takes no reference",
            "methods.clip.reference.checkpoint: x does not",
        ],
    ),
    (
        "reference-checkpoint-missing",
        edit("      train: {model: w32-l1, data: {seed: 1}}", "      checkpoint: /no/such.pt"),
        [],
        [":13: methods.drrho.reference.checkpoint: /no/such.pt does not exist"],
    ),
    (
        "reference-train-typo",
        edit("data: {seed: 1}}", "dta: {seed: 1}}"),
        [],
        [":13: methods.drrho.reference.train.dta: unknown key; did you mean 'data'?"],
    ),
    (
        "reference-axis-on-clip",
        edit("  method: [clip, drrho]\n", "  method: [clip, drrho]\n  methods.clip.reference.samples_seen: [1]\n"),
        [],
        [":10: axes.methods.clip.reference.samples_seen: method clip takes no reference"],
    ),
    (
        "reference-axis-typo",
        edit("  method: [clip, drrho]\n", "  method: [clip, drrho]\n  methods.drrho.reference.train.data.sed: [1]\n"),
        [],
        [":10: axes.methods.drrho.reference.train.data.sed: a reference's unknown key; did you mean 'train.data.seed'"],
    ),
    (
        "reference-axis-bad-value",
        edit(
            "  method: [clip, drrho]\n",
            "  method: [clip, drrho]\n  methods.drrho.reference.train.samples_seen: [64, 16]\n",
        ),
        [],
        [":10: axes.methods.drrho.reference.train.samples_seen[1]: samples_seen 16 is smaller than one step (32)"],
    ),
    (
        "reference-axis-two-sources",
        edit("  method: [clip, drrho]\n", "  method: [clip, drrho]\n  methods.drrho.reference.pretrained: [openai]\n"),
        [],
        [":10: axes.methods.drrho.reference.pretrained[0]: give exactly one of train, checkpoint, pretrained"],
    ),
    (
        "shared-reference-axis-shadowed",
        edit("  method: [clip, drrho]\n", "  method: [clip, drrho]\n  reference.mode: [cache, online]\n"),
        [],
        [":10: axes.reference.mode: methods.drrho.reference replaces the shared reference this axis varies"],
    ),
    (
        "shared-reference-without-a-source",
        edit(
            "methods:\n  drrho:\n    reference:\n      train: {model: w32-l1, data: {seed: 1}}\n",
            "reference: {mode: online}\n",
        ),
        [],
        [":10: reference: give exactly one of train, checkpoint, pretrained (got none)"],
    ),
    (
        "base-typo",
        edit("  batch_size: 32", "  batchsize: 32"),
        [],
        [":5: base.batchsize: unknown key; did you mean 'batch_size'?"],
    ),
    ("base-data-typo", edit("{pool_size: 512}", "{pool_sise: 512}"), [], [":4: base.data.pool_sise: unknown key"]),
    (
        "base-reference",
        edit("  batch_size: 32", "  batch_size: 32\n  reference: {checkpoint: x}"),
        [],
        [":6: base.reference: set a reference in the top-level reference or methods.<method>.reference"],
    ),
    # -- values
    (
        "batch-over-pool",
        edit("batch_size: 32", "batch_size: 1024"),
        [],
        [":5: base.batch_size: batch_size 1024 is larger"],
    ),
    (
        "samples-under-batch",
        edit("samples_seen: 1024", "samples_seen: 16"),
        [],
        [":6: base.samples_seen: samples_seen 16 is"],
    ),
    (
        "lr-negative",
        edit("  samples_seen: 1024", "  samples_seen: 1024\n  optim: {lr: -1.0e-3}"),
        [],
        [":7: base.optim.lr: optim.lr: Input should be greater than 0"],
    ),
    (
        "lr-inf",
        edit("  samples_seen: 1024", "  samples_seen: 1024\n  optim: {lr: .inf}"),
        [],
        [":7: base.optim.lr: optim.lr: Input should be a finite number"],
    ),
    (
        "lr-word",
        edit("  samples_seen: 1024", "  samples_seen: 1024\n  optim: {lr: fast}"),
        [],
        [":7: base.optim.lr: optim.lr: Input should be a valid number"],
    ),
    (
        "seed-1e23",
        edit("  samples_seen: 1024", "  samples_seen: 1024\n  seed: 1.0e+23"),
        [],
        [":7: base.seed: seed: Unable to parse input string as an integer, exceeded maximum size (got 1e+23)"],
    ),
    (
        "batch-zero",
        edit("batch_size: 32", "batch_size: 0"),
        [],
        [":5: base.batch_size: batch_size: Input should be greater than 1"],
    ),
    (
        "noise-over-one",
        edit("{pool_size: 512}", "{pool_size: 512, caption_noise: 1.5}"),
        [],
        [":4: base.data.caption_noise: data.caption_noise: Input should be less than 1"],
    ),
    (
        "webdataset-without-path",
        edit("{pool_size: 512}", "{pool_size: 512, source: webdataset}"),
        [],
        [":4: base.data: data: data.path is required for source 'webdataset'"],
    ),  # the reference's too: said once
    (
        "executor-timeout",
        edit("{kind: local}", "{kind: local, timeout_min: 0}"),
        [],
        [":14: executor.timeout_min: Input should be greater than or equal to 1"],
    ),
    ("executor-typo", edit("{kind: local}", "{kind: local, timeout: 5}"), [], [":14: executor.timeout: unknown key"]),
    (
        "evaluation-points-zero",
        GOOD + "evaluation: {points: 0}\n",
        [],
        [":15: evaluation.points: Input should be greater"],
    ),
    # -- where it would write, and how big it is
    (
        "out-is-a-file",
        edit("out: {tmp}/out", "out: {tmp}/file"),
        [],
        [":2: out: {tmp}/file exists and is not a directory"],
    ),
    ("out-under-a-file", edit("out: {tmp}/out", "out: {tmp}/file/sub"), [], [":2: out: {tmp}/file is a file, so"]),
    (  # 2 × 1000 × 100 × 500 points: expanding them first would take hours, so the count must come first
        "too-many-runs",
        edit(
            "  method: [clip, drrho]",
            "  method: [clip, drrho]\n  seed: [" + ", ".join(map(str, range(1000))) + "]\n"
            "  optim.lr: [" + ", ".join(f"{i + 1}.0e-4" for i in range(100)) + "]\n"
            "  optim.weight_decay: [" + ", ".join(f"{i + 1}.0e-3" for i in range(500)) + "]",
        ),
        [],
        [":7: axes: the grid has 100,000,000 runs, more than max_runs 100,000 (raise max_runs)"],
    ),
    (
        "batch-beyond-memory",
        edit("  samples_seen: 1024", "  samples_seen: 1024000000000\n  data: {pool_size: 100000000000}")
        .replace("  data: {pool_size: 512}\n", "")
        .replace("batch_size: 32", "batch_size: 10000000000"),
        [],
        ["error: batch_size: 10000000000 is too large: a w32-l1 run needs at least"],
    ),
    # -- several problems in one file: every one, in file order
    (
        "three-problems",
        edit("name: t", "name: a b").replace("batch_size: 32", "batch_sise: 32") + "evaluation: {points: 0}\n",
        [],
        [
            ":1: name: String should match",
            ":5: base.batch_sise: unknown key",
            ":15: evaluation.points: Input should be",
        ],
    ),
    (
        "problems-in-blocks",
        edit("  batch_size: 32", "  batchsize: 32").replace("[w32-l1]", "[w32-l1]\n  sed: [1]")
        + "models:\n  w99: {}\n",
        [],
        [":5: base.batchsize: unknown key", ":9: axes.sed: unknown key", ":17: models.w99: unknown model"],
    ),
    (
        "duplicate-and-typo",
        GOOD + "name: u\nanalysis: {why: 1}\n",
        [],
        [":15: name: duplicate key", ":16: analysis.why: unknown key"],
    ),
    # -- overrides: named by the override, not the file
    ("override-open-bracket", GOOD, ["axes.seed=["], ["override axes.seed=[: not valid YAML ("]),
    (
        "override-seed-1e23",
        GOOD,
        ["base.seed=1.0e+23"],
        ["error: override base.seed=1.0e+23: base.seed: seed: Unable to parse input string as an integer"],
    ),
    ("override-no-equals", GOOD, ["batch_size"], ["override 'batch_size': expected key=value"]),
    ("override-into-scalar", GOOD, ["name.x=1"], ["override name.x=1: name is not a mapping"]),
]


@pytest.mark.parametrize(("content", "overrides", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_malformed_grid_exits_2_with_one_line_per_problem(tmp_path, capsys, content, overrides, expected):
    (tmp_path / "file").write_text("not a directory")
    grid = tmp_path / "grid.yaml"
    if isinstance(content, bytes):
        grid.write_bytes(content)
    else:
        grid.write_text(content.replace("{tmp}", str(tmp_path)))
    with pytest.raises(SystemExit) as exited:
        main([str(grid), *overrides, "--dry-run", "--executor", "local"])
    lines = capsys.readouterr().err.splitlines()
    assert exited.value.code == 2, lines
    assert len(lines) == len(expected), lines
    for line, fragment in zip(lines, expected, strict=True):
        fragment = fragment.replace("{tmp}", str(tmp_path))
        assert line.startswith("error: ") and fragment in line, (line, fragment)
    assert not (tmp_path / "out").exists()


def test_the_corpus_has_68_grid_files_and_more_overrides():
    files = [case for case in CASES if not case[2]]
    assert len(files) == 68 and len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", ["not-utf8", "override-open-bracket", "three-problems"])
def test_through_the_cli_no_traceback(tmp_path, case):
    _, content, overrides, expected = next(c for c in CASES if c[0] == case)
    grid = tmp_path / "grid.yaml"
    grid.write_bytes(content if isinstance(content, bytes) else content.replace("{tmp}", str(tmp_path)).encode())
    proc = subprocess.run(
        [sys.executable, "-m", "scaling.sweep", str(grid), *overrides, "--dry-run", "--executor", "local"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == len(expected) and proc.stdout == ""


def test_an_out_on_a_read_only_file_system_is_refused(tmp_path, capsys):
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    try:
        grid = tmp_path / "grid.yaml"
        grid.write_text(GOOD.replace("out: {tmp}/out", f"out: {mount}/out"))
        with pytest.raises(SystemExit) as exited:
            main([str(grid), "--executor", "local"])
        assert exited.value.code == 2
        assert capsys.readouterr().err.splitlines() == [f"error: {grid}:2: out: {mount} is not writable"]
    finally:
        subprocess.run(["umount", str(mount)], check=True)
