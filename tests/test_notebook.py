"""notebooks/quickstart.ipynb runs top to bottom, and is stored without outputs.

Executed as a user runs it (no ``TF_CPP_MIN_LOG_LEVEL`` in the kernel's environment), it
must show its plots (learning curves, the comparison chart, a film's neighbourhood), write
nothing on standard error (no TensorFlow start-up lines) and use only the public API
(``import ncf``; no ``ncf.<module>`` paths).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_notebook_uses_only_the_public_api():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert re.findall(r"^\s*(?:from|import) ncf\.\w+", source, flags=re.M) == []
    assert re.findall(r"\bncf\.(?:config|data|train|serve|report|models)\.", source) == []
    assert "import ncf" in source


@pytest.mark.slow
def test_notebook_runs(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    for name in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    stderr = [o.get("text", "") for o in outputs if o.get("name") == "stderr"]
    assert stderr == [], stderr  # no TensorFlow start-up lines, no warnings
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # learning curves, comparison chart, the film's neighbourhood
    text = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "recommendations for user" in text and "most popular items" in text
    assert "itemknn" in text and "NDCG@10" in text
    assert "the export's similar_items agrees: True" in text
    assert "'explain'" in text and "'recommend_from_history'" in text  # the six signatures
    assert list((tmp_path / "exports" / "quickstart").glob("1/saved_model.pb"))
    assert os.listdir(tmp_path / "runs")
