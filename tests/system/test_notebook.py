"""notebooks/retraining.ipynb runs top to bottom on a small generated base, writing only
inside its working folder, and is kept in the repository without outputs."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "retraining.ipynb"


def test_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.slow
def test_notebook_runs_top_to_bottom_inside_its_working_folder(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    work, cwd = tmp_path / "work", tmp_path / "cwd"
    cwd.mkdir()
    # the kernel inherits the environment: point the notebook and MLflow at nothing outside tmp_path
    monkeypatch.setenv("RETAIN_NOTEBOOK_DIR", str(work))
    monkeypatch.setenv("RETAIN_NOTEBOOK_CUSTOMERS", "4000")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RETAIN_HOME", raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    repository_before = _tree(NOTEBOOK.parent)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # the plots were drawn
    text = "".join(o.get("text", "") for o in outputs)
    assert "retain-clv@champion: version" in text and "charts" in text
    assert (work / "report.html").exists() and (work / "scores.parquet").exists()
    assert (work / "home" / "mlflow.db").exists()
    assert list(cwd.iterdir()) == []  # nothing written to the working directory
    assert _tree(NOTEBOOK.parent) == repository_before  # nor beside the notebook


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts)
