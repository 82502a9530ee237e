"""Signatures run the way TensorFlow Serving runs them: the TF1 session loader
(``tf.compat.v1.saved_model.loader.load``, what ``saved_model_cli run`` uses too), in a fresh
process that imports TensorFlow alone, never ncf.

:func:`run_signatures` sends every export's calls to one child process and returns each
call's outputs as numpy arrays, strings decoded to ``str``, so the tests compare them with
what the same signature gives through ``tf.saved_model.load`` or the model itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

# The child: argv[1] is {export path: [[signature, {input: [dtype, value]}], ...]}.
_CHILD = """
import json, sys
import numpy as np
import tensorflow as tf

def plain(value):
    if value.dtype == object:
        return ["object", np.vectorize(lambda b: b.decode(), otypes=[object])(value).tolist()]
    return [str(value.dtype), value.tolist()]

out = {}
for path, calls in json.loads(sys.argv[1]).items():
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        results = []
        for name, inputs in calls:
            if name not in meta.signature_def:
                results.append(None)
                continue
            sig = meta.signature_def[name]
            keys = sorted(sig.outputs)
            feeds = {sig.inputs[k].name: np.array(v, object if t == "object" else t)
                     for k, (t, v) in inputs.items()}
            values = sess.run([sig.outputs[k].name for k in keys], feeds)
            results.append({k: plain(v) for k, v in zip(keys, values)})
        out[path] = {"signatures": sorted(meta.signature_def), "results": results}
print(json.dumps(out))
"""

Call = tuple[str, dict[str, Any]]


def _wire(value: Any) -> list[Any]:
    array = np.asarray(value)
    if array.dtype.kind in "OUS":
        return ["object", array.astype(str).tolist()]
    return [str(array.dtype), array.tolist()]


def _array(dtype: str, value: Any) -> np.ndarray:
    return np.array(value, object if dtype == "object" else dtype)


def run_signatures(
    jobs: dict[str | Path, list[Call]], cwd: Path | None = None
) -> dict[str, dict[str, Any]]:
    """Run each export's ``(signature, inputs)`` calls in the TF1 session loader.

    Inputs are arrays or lists (strings for ids, ``np.int32`` for ``k``, ``np.float32`` for
    features: pass them typed). Returns ``{path: {"signatures": [...], "results": [...]}}``
    with one result per call: ``{output: array}``, or None where the export lacks that
    signature.
    """
    wire = {
        str(path): [[name, {k: _wire(v) for k, v in inputs.items()}] for name, inputs in calls]
        for path, calls in jobs.items()
    }
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(wire)],
        cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        path: {
            "signatures": entry["signatures"],
            "results": [
                None if r is None else {k: _array(t, v) for k, (t, v) in r.items()}
                for r in entry["results"]
            ],
        }
        for path, entry in found.items()
    }
