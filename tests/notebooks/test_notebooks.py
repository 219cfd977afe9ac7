"""The notebooks run headless top to bottom (nbclient, kernel python3, cwd notebooks/), the sweep notebooks on
a small synthetic sweep the test writes (no training); the committed notebooks carry no outputs.

Bootstrap draws in the notebooks come from BOOTSTRAP_DRAWS (200 here, 1000 by default in the notebooks).
"""

import importlib.util
import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.analysis.common import REPO
from tests.analysis.synthetic_records import write_baselines_sweep, write_pool_sweep, write_sweep

NOTEBOOKS = REPO / "notebooks"
PAPER, CPU_STUDY, TEMPLATE = "01_paper_figures.ipynb", "02_cpu_study.ipynb", "03_your_sweep_template.ipynb"
BASELINES, DATA_EFFICIENCY = "04_baselines.ipynb", "05_data_efficiency.ipynb"
ALL = (PAPER, CPU_STUDY, TEMPLATE, BASELINES)
SWEEP_NOTEBOOKS = (CPU_STUDY, TEMPLATE)
DRAWS = os.environ.get("NOTEBOOK_TEST_DRAWS", "200")
CELL_TIMEOUT = 300


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    return write_sweep(tmp_path_factory.mktemp("notebook-records") / "sweep").root


def execute(name: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> nbformat.NotebookNode:
    """Run a notebook in memory (the committed file is never written) with `env` in the kernel's
    environment: the kernel is started after os.environ is set, and inherits it."""
    monkeypatch.delenv("STUDY_OUT", raising=False)  # a notebook under test writes nothing
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def markdown_outputs(nb: nbformat.NotebookNode) -> str:
    return "\n".join(out.get("data", {}).get("text/markdown", "") for out in outputs(nb))


@pytest.mark.parametrize("name", (PAPER, CPU_STUDY, TEMPLATE))
def test_notebook_runs_headless(name, sweep_dir, monkeypatch):
    env = {"BOOTSTRAP_DRAWS": DRAWS}
    if name in SWEEP_NOTEBOOKS:
        env["SWEEP_DIR"] = str(sweep_dir)
    nb = execute(name, monkeypatch, **env)
    produced = outputs(nb)
    assert not [out for out in produced if out.output_type == "error"]
    assert sum("image/png" in out.get("data", {}) for out in produced) >= 3  # figures were drawn inline
    if name in SWEEP_NOTEBOOKS:  # the verdict follows the synthetic truth: drrho's law is lower and steeper
        text = markdown_outputs(nb)
        assert "drrho reaches error" in text and "drrho's exponent is steeper" in text


def test_baselines_notebook_draws_the_table_of_a_synthetic_baselines_sweep(tmp_path, monkeypatch):
    sweep = write_baselines_sweep(tmp_path / "sweep")
    nb = execute(BASELINES, monkeypatch, SWEEP_DIR=str(sweep.root), BOOTSTRAP_DRAWS=DRAWS)
    produced = outputs(nb)
    assert not [out for out in produced if out.output_type == "error"]
    assert sum("image/png" in out.get("data", {}) for out in produced) >= 2  # the table's figure, the curves
    table = markdown_outputs(nb)
    assert "| JEST (Top-k) |" in table and "| DRRho-CLIP (w/ Distill.) |" in table and "Matched samples seen" in table


@pytest.mark.slow
@pytest.mark.skipif(
    not any((REPO / "results" / "cpu_study").rglob("record.json")), reason="results/cpu_study has no records yet"
)
def test_cpu_study_notebook_on_the_real_sweep(monkeypatch):
    monkeypatch.delenv("SWEEP_DIR", raising=False)  # the notebook's own default, ../results/cpu_study
    execute(CPU_STUDY, monkeypatch, BOOTSTRAP_DRAWS=DRAWS)


def test_data_efficiency_notebook_reads_the_known_slopes_of_a_pool_sweep(tmp_path, monkeypatch):
    """On records whose n*(m) is known (CLIP: m, DRRho-CLIP: 30·√m at w32-l1), the computed verdict says so."""
    sweep = write_pool_sweep(tmp_path / "sweep", models=("w32-l1", "w48-l2"))
    # each run's early-stopped error, against each reference's final one (the notebook's default reads them so
    # from val_loss); one evaluation per run here, so the same as its final error
    env = {"SWEEP_DIR": str(sweep), "DATA_Y": "zeroshot_error.colour_shape.best", "DATA_LAW": "power"}
    nb = execute(DATA_EFFICIENCY, monkeypatch, BOOTSTRAP_DRAWS=DRAWS, LENGTH_DIR=str(sweep), **env)
    produced = outputs(nb)
    assert not [out for out in produced if out.output_type == "error"]
    tables = "\n".join(out.get("data", {}).get("text/plain", "") for out in produced)
    assert "no longer run" in tables  # the length check: one length per pool here, so none is checked
    assert sum("image/png" in out.get("data", {}) for out in produced) >= 3  # curves, n*(m), isoData
    text = markdown_outputs(nb)
    assert "clip at w32-l1: slope 1.00" in text and "consistent with the paper's 1.0" in text
    assert "drrho at w32-l1: slope 0.50" in text and "consistent with the paper's 0.5" in text


@pytest.mark.slow
@pytest.mark.skipif(
    not any((REPO / "results" / "cpu_data_efficiency").rglob("record.json")),
    reason="results/cpu_data_efficiency has no records yet",
)
def test_data_efficiency_notebook_on_the_real_sweep(monkeypatch):
    monkeypatch.delenv("SWEEP_DIR", raising=False)  # the notebook's own default, ../results/cpu_data_efficiency
    nb = execute(DATA_EFFICIENCY, monkeypatch, BOOTSTRAP_DRAWS=DRAWS)
    assert not [out for out in outputs(nb) if out.output_type == "error"]


@pytest.mark.slow
@pytest.mark.skipif(
    not any((REPO / "results" / "cpu_baselines").rglob("record.json")), reason="results/cpu_baselines has no records"
)
def test_baselines_notebook_on_the_real_sweep(monkeypatch):
    monkeypatch.delenv("SWEEP_DIR", raising=False)  # the notebook's own default, ../results/cpu_baselines
    nb = execute(BASELINES, monkeypatch, BOOTSTRAP_DRAWS=DRAWS)
    assert not [out for out in outputs(nb) if out.output_type == "error"]


@pytest.mark.parametrize("name", (*ALL, DATA_EFFICIENCY))
def test_committed_notebooks_carry_no_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_strip_outputs_clears_an_executed_notebook(tmp_path):
    spec = importlib.util.spec_from_file_location("strip_outputs", NOTEBOOKS / "strip_outputs.py")
    strip_outputs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(strip_outputs)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    nb.cells[0].execution_count = 1
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    assert strip_outputs.main([str(path), "--check"]) == 1
    assert strip_outputs.main([str(path)]) == 0
    assert strip_outputs.main([str(path), "--check"]) == 0
    assert not strip_outputs.has_outputs(nbformat.read(path, as_version=4))
