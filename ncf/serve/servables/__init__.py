"""The serving graph: one servable per serving form, written as a SavedModel.

Each closed serving form of :mod:`ncf.scorer` has one servable class in a module of its
own; what they share, and the signatures every export answers, are in
:mod:`ncf.serve.servables.base`. A servable class is named by a reference string
``"module:Class"`` (:data:`SERVABLES`, :func:`load_servable_class`), so a form's module is
imported only when a model of that form is exported.

:func:`servable_for` builds the servable of a scorer's ``serving_form()``;
:func:`write_saved_model` writes it through Keras' ``ExportArchive``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ncf.scorer import Factors, ItemPrior, ItemToItem, KerasModel, PooledHistory, UserToUser
from ncf.serve.servables.base import Servable

SERVABLES: dict[type, str] = {
    KerasModel: "ncf.serve.servables.neural:NeuralServable",
    PooledHistory: "ncf.serve.servables.pooled_history:PooledHistoryServable",
    ItemToItem: "ncf.serve.servables.item_to_item:ItemToItemServable",
    UserToUser: "ncf.serve.servables.user_to_user:UserToUserServable",
    Factors: "ncf.serve.servables.factors:FactorsServable",
    ItemPrior: "ncf.serve.servables.item_prior:ItemPriorServable",
}


def load_servable_class(ref: str) -> type[Servable]:
    """The :class:`Servable` subclass that ``ref`` (``"package.module:ClassName"``) names.

    A malformed reference, or one naming something that is not a servable class, is a
    ``ValueError``; a module that cannot be imported raises its ``ImportError``.
    """
    module_name, colon, class_name = ref.partition(":")
    if not colon or not module_name or not class_name.isidentifier():
        raise ValueError(f"servable reference {ref!r}: expected 'package.module:ClassName'")
    found = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(found, type) and issubclass(found, Servable)):
        raise ValueError(f"servable reference {ref!r} does not name a Servable subclass")
    return found


def servable_for(form: Any, **common: Any) -> Servable:
    """The servable of a scorer's ``serving_form()``; ``common`` as :class:`Servable` takes."""
    return load_servable_class(SERVABLES[type(form)])(form, **common)


def write_saved_model(servable: Servable, path: str) -> list[str]:
    """Write ``servable`` as a SavedModel through Keras' ``ExportArchive``; its signature names."""
    import keras

    archive = keras.export.ExportArchive()
    for resource in servable.resources():
        archive.track(resource)
    endpoints = servable.endpoints()
    for name, endpoint in endpoints.items():
        archive.add_endpoint(name, endpoint.fn, endpoint.specs)
    archive.write_out(path, verbose=False)
    return sorted([*endpoints, "serving_default"])
