"""The OpenAPI 3.1 description of ``ncf serve`` (``GET /openapi.json``).

Built from the loaded model's SignatureDefs, so the signature names and their inputs in the
description are those of the export being served. The request and response schemas are TF
Serving's JSON forms (:mod:`ncf.serve.rest`); every error is ``{"error": string}``.
"""

from __future__ import annotations

from typing import Any

from ncf.serve.limits import Limits

ERROR = {"$ref": "#/components/schemas/Error"}
JSON_ERROR = {"application/json": {"schema": ERROR}}


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    found: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": ok}}}
    reasons = {
        400: "bad request (TF Serving's wording)",
        404: "unknown model, version or path",
        408: "the request did not arrive in time",
        413: "request body too large",
        503: "busy (too many requests waiting) or shutting down",
    }
    for code in codes:
        found[str(code)] = {"description": reasons[code], "content": JSON_ERROR}
    return found


def openapi(model_name: str, signature_defs: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """The description of the server for ``model_name`` with these SignatureDefs."""
    signatures = {
        name: {key: "int32" if info.dtype == 3 else "string" for key, info in sig.inputs.items()}
        for name, sig in signature_defs.items()
    }
    described = "; ".join(
        f"{name}({', '.join(f'{k}: [batch] {t}' for k, t in sorted(inputs.items()))})"
        for name, inputs in sorted(signatures.items())
    )
    name_param = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    version_param = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
    status = {"schema": {"$ref": "#/components/schemas/ModelStatus"}}
    meta = {"schema": {"type": "object", "required": ["model_spec", "metadata"]}}
    predict = {
        "summary": "Run a signature (TF Serving :predict)",
        "description": f"Signatures: {described}. At most {limits.max_rows} rows, k at most "
        f"{limits.max_k}, rows x k at most {limits.max_results}, bodies up to "
        f"{limits.max_body_bytes} bytes.",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
            },
        },
        "responses": _responses(
            {"schema": {"$ref": "#/components/schemas/PredictResponse"}}, 400, 404, 408, 413, 503
        ),
    }
    paths: dict[str, Any] = {}
    for prefix, params in (
        ("/v1/models/{name}", [name_param]),
        ("/v1/models/{name}/versions/{version}", [name_param, version_param]),
    ):
        paths[prefix] = {
            "get": {"summary": "Model status", "responses": _responses(status, 404)},
            "parameters": params,
        }
        paths[prefix + "/metadata"] = {
            "get": {"summary": "SignatureDefs", "responses": _responses(meta, 404)},
            "parameters": params,
        }
        paths[prefix + ":predict"] = {"post": predict, "parameters": params}
    plain = {"schema": {"type": "object"}}
    paths["/healthz"] = {"get": {"summary": "Alive", "responses": _responses(plain)}}
    paths["/readyz"] = {"get": {"summary": "Ready", "responses": _responses(plain, 503)}}
    paths["/openapi.json"] = {"get": {"summary": "This document", "responses": _responses(plain)}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"ncf serve: {model_name}", "version": "1"},
        "paths": paths,
        "components": {"schemas": _schemas()},
    }


def _schemas() -> dict[str, Any]:
    value: dict[str, Any] = {
        "anyOf": [
            {"type": ["string", "number", "boolean"]},
            {"type": "array"},
            {"type": "object", "required": ["b64"], "properties": {"b64": {"type": "string"}}},
        ]
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "PredictRequest": {
            "type": "object",
            "properties": {
                "signature_name": {"type": "string"},
                "instances": {"type": "array", "minItems": 1},
                "inputs": {"anyOf": [{"type": "object", "additionalProperties": value}, value]},
            },
            "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
        },
        "PredictResponse": {
            "oneOf": [
                {"type": "object", "required": ["predictions"]},
                {"type": "object", "required": ["outputs"]},
            ]
        },
        "ModelStatus": {
            "type": "object",
            "required": ["model_version_status"],
            "properties": {"model_version_status": {"type": "array"}},
        },
    }
