"""ncf: neural collaborative filtering, trained from a config file.

The pieces, in the order data flows through them (see ``docs/`` and ``DESIGN.md``):
``ncf.config`` -> ``ncf.data`` -> ``ncf.models`` / ``ncf.baselines`` (found through
``ncf.registry``) -> ``ncf.evaluation`` -> ``ncf.train`` -> ``ncf.serve`` / ``ncf.report``.

``import ncf`` keeps TensorFlow's start-up lines off standard error (:mod:`ncf.startup_noise`).
"""

from ncf.startup_noise import install as _quiet_tensorflow_import

__version__ = "0.1.0"

_quiet_tensorflow_import()
