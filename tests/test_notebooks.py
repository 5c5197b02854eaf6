"""The Colab notebooks: each runs top to bottom in small mode, and is committed without outputs.

Small mode (MOBILEIQA_NOTEBOOK_SMALL=1, which each notebook's parameter cell
reads) trains and exports tiny models on 64-px images, so a notebook takes
about a minute; any failing cell fails the test with its traceback.
"""

import os
import sys

import nbclient
import nbformat
import pytest

from tests.conftest import END_TO_END, REPO, TEST_XLA_FLAGS

NOTEBOOKS = sorted((REPO / "colab").glob("*.ipynb"))


def _code_cells(notebook):
  return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_three_notebooks_exist():
  assert {p.name for p in NOTEBOOKS} >= {
    "quickstart.ipynb",
    "finetune.ipynb",
    "export_tflite.ipynb",
  }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_and_with_a_parameter_cell(path):
  notebook = nbformat.read(path, as_version=4)
  nbformat.validate(notebook)
  for cell in _code_cells(notebook):
    assert cell.outputs == [] and cell.execution_count is None, (
      f"{path.name} holds outputs; clear them before committing (cell: {cell.source[:60]!r})"
    )
  # papermill's convention: the first code cell, tagged, holds the parameters.
  first = _code_cells(notebook)[0]
  assert "parameters" in first.metadata.get("tags", []) and "SMALL" in first.source


@pytest.mark.slow
@pytest.mark.parametrize(
  "path",
  # The quickstart trains the end-to-end tests' teacher run: it runs among them.
  [pytest.param(p, marks=END_TO_END if p.name == "quickstart.ipynb" else ()) for p in NOTEBOOKS],
  ids=lambda p: p.name,
)
def test_runs_top_to_bottom_in_small_mode(path, monkeypatch):
  monkeypatch.setenv("MOBILEIQA_NOTEBOOK_SMALL", "1")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  # One CPU device and the end-to-end tests' flags: their compiled programs are shared.
  monkeypatch.setenv("XLA_FLAGS", TEST_XLA_FLAGS)
  monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
  # The kernel spec names "python"; make that this interpreter, with the package.
  monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
  notebook = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(
    notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
  )
  client.execute()  # raises CellExecutionError with the failing cell's traceback
  pictures = [
    o for cell in _code_cells(notebook) for o in cell.outputs if "image/png" in o.get("data", {})
  ]
  assert pictures, f"{path.name} drew no picture"
