"""TF Serving's answer to ``GET /v1/models/NAME[/versions/V]/metadata``, field for field.

TF Serving's ``GetModelMetadata`` puts every SignatureDef of the loaded MetaGraphDef, the
``__saved_model_init_op`` one included, into a ``SignatureDefMap`` packed in the response's
``metadata["signature_def"]`` (``servables/tensorflow/get_model_metadata_impl.cc``), and its
REST layer (``model_servers/http_rest_api_util.cc``, ``ToJsonString``) renders the
``ModelSpec`` and the unpacked ``SignatureDefMap`` with protobuf's JSON printer, options
``always_print_fields_with_no_presence`` and ``preserve_proto_field_names``, as
``{"model_spec": ..., "metadata": {"signature_def": ...}}``. So every field is there, set or
not: a dimension reads ``{"size": "-1", "name": ""}``, a shape has ``"unknown_rank": false``,
a signature ``"defaults": {}``; int64 values are strings (``"version": "1"``).

:func:`model_metadata` builds the same messages from the ``tensorflow-serving-api`` protos and
renders them with :mod:`google.protobuf.json_format` under the same options.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# json_format.MessageToDict's names for TF Serving's JsonPrintOptions.
PRINT_OPTIONS = {"always_print_fields_with_no_presence": True, "preserving_proto_field_name": True}


def model_metadata(name: str, version: int, signature_defs: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON TF Serving answers for model ``name`` at ``version`` whose MetaGraphDef holds
    ``signature_defs`` (``tensorflow.SignatureDef`` messages by key, all of them)."""
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

    spec = model_pb2.ModelSpec(name=name)
    spec.version.value = int(version)
    defs = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in signature_defs.items():
        defs.signature_def[key].CopyFrom(signature)
    return {
        "model_spec": json_format.MessageToDict(spec, **PRINT_OPTIONS),
        "metadata": {"signature_def": json_format.MessageToDict(defs, **PRINT_OPTIONS)},
    }
