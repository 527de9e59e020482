"""The plug-in registry behind label strategies and trainers.

A plug-in is a dataclass whose fields are its parameters, with class attributes ``name`` (what
model specs call it) and ``task`` (``"classification"`` or ``"regression"``). ``register`` is a
class decorator that files it under its name; ``make`` instantiates one from a spec's parameters,
where an unknown name or an unknown parameter is an error naming what exists.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")
C = TypeVar("C", bound=type)

#: ``coerce(key, value, field_type)``: turns a spec's value into the field's type or raises.
Coerce = Callable[[str, Any, Any], Any]


class Registry(Generic[T]):
    """Plug-ins of one kind (``T`` is their base class), registered by ``name``.

    ``kind`` and ``param_word`` shape the error messages (``"unknown trainer 'x'"``, ``"trainer 'x'
    has no hyperparameter(s) ..."``); ``coerce``, when given, converts each parameter to its
    field's declared type before the plug-in is built.
    """

    def __init__(self, kind: str, param_word: str = "parameter", coerce: Coerce | None = None):
        self.kind = kind
        self.param_word = param_word
        self.coerce = coerce
        self._entries: dict[str, type[T]] = {}

    def register(self, cls: C) -> C:
        """Class decorator: make ``cls`` available under ``cls.name``."""
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{self.kind} {cls.__name__} must be a dataclass")
        if getattr(cls, "task", None) not in ("classification", "regression"):
            raise TypeError(f"{self.kind} {cls.__name__} needs task 'classification' or 'regression'")
        self._entries[cls.name] = cls  # type: ignore[attr-defined]
        return cls

    def all(self) -> dict[str, type[T]]:
        """A copy of the registered plug-ins by name, in registration order."""
        return dict(self._entries)

    def make(self, name: str, params: dict[str, Any] | None = None) -> T:
        """Instantiate a registered plug-in; unknown names or parameters are errors."""
        try:
            cls = self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {sorted(self._entries)}") from None
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(params or {}) - set(fields)
        if unknown:
            raise ValueError(
                f"{self.kind} {name!r} has no {self.param_word}(s) {sorted(unknown)}; it takes {sorted(fields)}"
            )
        if self.coerce is None:
            return cls(**(params or {}))
        coerce = self.coerce
        return cls(**{key: coerce(key, value, fields[key].type) for key, value in (params or {}).items()})
