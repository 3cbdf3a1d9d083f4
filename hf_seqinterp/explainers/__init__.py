"""Explanation methods. Every module in this package registers its explainers on import, so adding a
method means adding a module here with a class decorated by `@register_explainer("name")`."""

import importlib
import pkgutil

from ..method_table import DEFAULT_METHOD
from .base import (
    Explainer,
    RowResult,
    applicable_explainers,
    describe_methods,
    explain_with,
    get_explainer,
    list_methods,
    register_explainer,
)

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "DEFAULT_METHOD",
    "Explainer",
    "RowResult",
    "applicable_explainers",
    "describe_methods",
    "explain_with",
    "get_explainer",
    "list_methods",
    "register_explainer",
]
