"""Progress bars on a terminal: ``n/N`` with a known total from the first update.

Each command runs in a pseudo-terminal (stdout and stderr a tty, as in a shell), and the
bytes it wrote are searched for the bars: Keras' epoch bar of ``ncf train`` (the steps per
epoch are known before the epoch starts, so never ``32/Unknown``), the trial bar of ``ncf
tune`` and the user bar of ``ncf recommend --all``. Off a terminal the same commands print
no bar (tests/test_startup_noise.py: standard error stays empty).
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest
from conftest import QUICKSTART, TINY, set_args

NCF = [sys.executable, "-m", "ncf.cli"]


def in_a_terminal(*args: str, timeout: float = 600) -> str:
    """What ``ncf ARGS`` writes to its terminal (stdout and stderr), without colour codes."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 x 40
    env = {**os.environ, "TERM": "xterm"}
    proc = subprocess.Popen(
        [*NCF, *args], stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    chunks = []
    try:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError as exc:  # EIO: the child closed the terminal
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
        code = proc.wait(timeout)
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))
    assert code == 0, text[-3000:]
    return text


@pytest.mark.slow
def test_train_bar_shows_steps_of_the_epoch_from_the_first_step(tmp_path):
    sets = set_args(f"run.dir={tmp_path / 'runs'}", *TINY, "train.epochs=2", "train.batch_size=64")
    text = in_a_terminal("train", str(QUICKSTART), *sets)
    assert "Unknown" not in text
    first_epoch = text.split("epoch   1 ")[0]
    shown = [(int(n), int(total)) for n, total in re.findall(r"(\d+)/(\d+) ━", first_epoch)]
    assert shown, first_epoch[-2000:]
    totals = {total for _, total in shown}
    assert len(totals) == 1, shown  # one total, known from the first update on
    (total,) = totals
    assert total > 32 and shown[0] == (32, total)  # the first execution of 32 steps: 32/N
    assert shown[-1] == (total, total) and all(n <= total for n, _ in shown)


@pytest.mark.slow
def test_recommend_all_and_tune_show_a_bar_with_a_total(tmp_path):
    sets = set_args(f"run.dir={tmp_path / 'runs'}", *TINY, "model.type=itemknn")
    study = tmp_path / "study"
    text = in_a_terminal("tune", str(QUICKSTART), *sets, "--trials", "2", "--study-dir", str(study))
    assert re.search(r"trials:\s+\d+%\|[^|]*\| 1/2 ", text), text[-3000:]
    assert "trial   0 complete" in text and "trial   1 complete" in text  # log lines kept
    assert (study / "leaderboard.md").is_file()

    export = tmp_path / "export"
    (refit,) = study.glob("best-trial-*")
    subprocess.run(
        [*NCF, "export", str(refit), "--out", str(export)], check=True, capture_output=True
    )
    out = tmp_path / "recs.csv"
    text = in_a_terminal("recommend", str(export), "--all", "--out", str(out), "--batch-size", "50")
    counts = {int(n) for n in re.findall(r"\| *(\d+)/300 \[", text)}
    assert 0 in counts and any(0 < n <= 300 for n in counts), text[-2000:]  # n/300 users
    assert out.is_file()
