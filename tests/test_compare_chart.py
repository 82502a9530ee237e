"""``ncf compare``'s chart names every bar uniquely, and the command needs no TensorFlow.

Two item-kNN runs of one config that differ in one setting (``model.knn.neighbours``) and a
popularity run: each bar is named by its model and the settings that differ, in both
protocols' panels.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import QUICKSTART, TINY

from ncf.config import load_config
from ncf.report.compare import bar_labels, chart, collect
from ncf.train import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    found = []
    for extra in (["model.knn.neighbours=10"], ["model.knn.neighbours=50"], []):
        kind = "itemknn" if extra else "popularity"
        config = load_config(QUICKSTART, [f"run.dir={tmp}", *TINY, f"model.type={kind}", *extra])
        found.append(train(config, verbose=0).run_dir)
    return found


def test_every_bar_is_named_by_model_and_the_settings_that_differ(runs):
    rows = collect(runs, [10])
    labels = bar_labels(rows)
    assert labels == ["itemknn\nneighbours=10", "itemknn\nneighbours=50", "popularity"]
    fig = chart(rows, 10)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == [
        "sampled protocol (test split)", "full protocol (test split)"
    ]  # fmt: skip
    shown = [t.get_text() for t in panels[0].get_yticklabels()]
    assert sorted(shown) == sorted(labels) and len(set(shown)) == len(rows)


def test_runs_that_read_the_same_get_their_folder(runs):
    rows = collect([runs[0], runs[0]], [10])
    first, second = bar_labels(rows)
    assert first == second == f"itemknn\n{rows[0]['run']}"  # the same run twice: no setting differs
    rows[1]["run"] = "quickstart/20261202-120000"
    first, second = bar_labels(rows)
    assert first != second and second.endswith("quickstart/20261202-120000")


def test_compare_command_imports_no_tensorflow(runs, tmp_path):
    script = (
        "import sys\nfrom ncf.cli import main\n"
        "code = main(['compare', *sys.argv[1:]])\n"
        "assert code == 0 and 'tensorflow' not in sys.modules, sorted(sys.modules)[:50]\n"
    )
    args = [*map(str, runs), "--out", str(tmp_path / "report")]
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report" / "comparison.png").read_bytes()[:4] == b"\x89PNG"
