"""What a scikit-learn artifact may hold: skops files are checked against a type allowlist before
skops constructs anything from them, and pickle is never used.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np


#: A skops artifact may only hold types from these modules (besides the plain containers and
#: scalars skops trusts by itself: dict, list, tuple, str, int, float, None, OrderedDict, ...).
SKOPS_TRUSTED_PREFIXES: tuple[str, ...] = ("sklearn.", "numpy.", "scipy.")
#: Exact builtins allowed on top of skops' own defaults. skops 0.16 reports none for the
#: trainers' pipelines (it trusts the containers and scalars they hold), so this stays empty; add a
#: name here only after checking what ``skops.io.get_untrusted_types`` reports and why.
SKOPS_TRUSTED_BUILTINS: frozenset[str] = frozenset()

_SKOPS_FORMAT = "alevor.sklearn/1"


def _skops_type_allowed(name: str) -> bool:
    """An allowlisted module prefix, and the name must resolve to a class: skops can also call a
    named *function* as a constructor, so ``numpy.load`` or ``scipy.io.loadmat`` would otherwise
    pass the prefix test. ``numpy.memmap`` (opens or creates files) is refused as well."""
    if name in SKOPS_TRUSTED_BUILTINS:
        return True
    if not name.startswith(SKOPS_TRUSTED_PREFIXES):
        return False
    module, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError, TypeError):
        return False
    return isinstance(obj, type) and not issubclass(obj, np.memmap)


def check_skops_file(path: Path) -> list[str]:
    """The types in a skops file that skops does not trust by default, after checking each one
    against the allowlist; raises ``ValueError`` naming the refused ones."""
    import skops.io as sio

    untrusted = [str(t) for t in sio.get_untrusted_types(file=path)]
    refused = sorted(t for t in untrusted if not _skops_type_allowed(t))
    if refused:
        raise ValueError(
            f"{path}: refusing to load a skops artifact holding type(s) outside the allowlist "
            f"(classes from {', '.join(SKOPS_TRUSTED_PREFIXES)} modules, builtins "
            f"{sorted(SKOPS_TRUSTED_BUILTINS)}): {refused}"
        )
    return untrusted
