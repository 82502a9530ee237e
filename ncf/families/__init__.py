"""The neural model families, one module each: what :mod:`ncf.registry` needs to know.

Each module declares ``FAMILIES`` (:class:`ncf.family.Family`): its config section, how its
Keras model (in :mod:`ncf.models`) is built from a config and fed (its training stream), its
memory estimate and default search space. The modules import without TensorFlow; the
classical baselines declare their families in their own modules (:mod:`ncf.baselines`).
"""
