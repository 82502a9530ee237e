"""``python -m ncf.cli ...``: the ``ncf`` command, as the console script runs it."""

from ncf.cli import run

if __name__ == "__main__":
    run()
