"""Training runs: the run top to bottom (:mod:`.run`), its neural phases (:mod:`.neural`,
:mod:`.phase`, :mod:`.callbacks`, :mod:`.state`) and the run directory (:mod:`.rundir`)."""

from ncf.train.run import RunResult, resume_run, train

__all__ = ["RunResult", "resume_run", "train"]
