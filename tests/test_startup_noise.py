"""A CPU-only ``ncf`` run says nothing about CUDA on standard error, and still says its errors.

Each command runs in its own process with the environment a user has (no
``TF_CPP_MIN_LOG_LEVEL``), as ``ncf train configs/quickstart.yaml 2>&1 >/dev/null | wc -l``
would: standard error must be empty. The filter (:mod:`ncf.startup_noise`) covers only the
first ``import tensorflow``: ncf's one-line errors, before and after it, and anything else
written during it, still reach standard error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUICKSTART, TINY, set_args

from ncf.startup_noise import is_noise, without_noise

NCF = [sys.executable, "-m", "ncf.cli"]
ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")
}

# What TensorFlow 2.21 printed on the project machine (no GPU) before the filter.
MEASURED = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796170860.115961   25095 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796170860.117068   25095 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1796170918.222897   25714 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX_VNNI FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1796170869.043049   25095 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""


def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([*NCF, *args], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == expect, f"ncf {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


def test_the_measured_lines_are_noise_and_nothing_else_is():
    assert all(is_noise(line) for line in MEASURED.splitlines())
    kept = [
        "ncf: error: configs/x.yaml: config file not found",
        "Traceback (most recent call last):",
        "E0000 00:00:1796170869.043049   25095 some_kernel.cc:52] a real TensorFlow error",
        "W0000 00:00:1796170869.043049   25095 port.cc:99] something else port.cc says",
        "UserWarning: oneDNN custom operations are on.",
    ]
    assert [line for line in kept if is_noise(line)] == []
    mixed = MEASURED + "\n".join(kept) + "\n"
    assert without_noise(mixed) == "\n".join(kept) + "\n"


def test_only_the_import_is_filtered_and_other_lines_pass(tmp_path):
    """Lines before, during (not noise) and after the filtered window all reach stderr, in
    order; the noise written during it does not."""
    script = (
        "import os, sys\n"
        "import ncf\n"
        "from ncf.startup_noise import filtered_stderr\n"
        "os.write(2, b'before\\n')\n"
        "with filtered_stderr():\n"
        f"    os.write(2, {MEASURED.encode()!r})\n"
        "    print('during, from Python', file=sys.stderr)\n"
        "    os.write(2, b'Traceback (most recent call last):\\n')\n"
        "import tensorflow\n"
        "os.write(2, b'after\\n')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "before\nduring, from Python\nTraceback (most recent call last):\nafter\n"
    )


def test_a_failing_import_keeps_its_traceback(tmp_path):
    """Anything a broken import writes that is not start-up noise survives the filter."""
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import os\nos.write(2, b'I0000 00:00:1.5   7 port.cc:153] oneDNN custom operations are on. x\\n')\n"
        "raise RuntimeError('broken build')\n"
    )
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", "import ncf\nimport tensorflow"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "RuntimeError: broken build" in done.stderr and "Traceback" in done.stderr
    assert "oneDNN" not in done.stderr


@pytest.mark.slow
def test_train_evaluate_export_recommend_and_serve_write_nothing_on_stderr(tmp_path):
    sets = set_args(f"run.dir={tmp_path / 'runs'}", *TINY, "train.epochs=1")
    done = run("train", str(QUICKSTART), *sets)
    assert done.stderr == "" and "test metrics" in done.stdout
    (run_dir,) = (tmp_path / "runs" / "quickstart").iterdir()
    assert run("evaluate", str(run_dir)).stderr == ""
    export = tmp_path / "exports" / "quickstart"
    assert run("export", str(run_dir), "--out", str(export)).stderr == ""
    assert run("recommend", str(export), "--user", "7", "--k", "3").stderr == ""
    out = tmp_path / "recs.parquet"
    assert run("recommend", str(export), "--all", "--out", str(out)).stderr == ""
    assert _serve_start_up_stderr(export) == ""
    # ncf's own errors still reach stderr, one line, before and after TensorFlow's import
    error = run("train", str(tmp_path / "missing.yaml"), expect=2).stderr
    assert error.startswith("ncf: error: ") and error.count("\n") == 1
    error = run("evaluate", str(run_dir), "--k", "100000", expect=2).stderr
    assert error.startswith("ncf: error: --k 100000") and error.count("\n") == 1


def _serve_start_up_stderr(export: Path) -> str:
    proc = subprocess.Popen(
        [*NCF, "serve", str(export), "--port", "0"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "serving version 1 at http://..." once it is ready
        assert "serving version" in line, line
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    return err
