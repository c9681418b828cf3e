"""``@frozen``: the authorization server's value types, immutable for the type checker and cheap to build.

A ``@dataclass(frozen=True)`` enforces immutability at run time by overriding ``__setattr__``, so its generated
``__init__`` must store every field through ``object.__setattr__``: on CPython 3.11 a call through a slot wrapper with
an argument tuple and a type lookup, about 1,400 instructions a field against a few dozen for a plain slot store. The
token endpoint builds about fifteen such objects (some seventy fields) per exchange; counted with callgrind, freezing
them at run time cost 5 % of an exchange (docs/performance.md, step 23).

A ``@frozen`` class is a slotted dataclass that type checkers treat as frozen (PEP 681 ``frozen_default``): mypy
--strict, which ``make test`` runs on all of ``src/``, rejects any assignment to a field, and that is where the
guarantee is worth having. Equality, hashing (by field values) and pickling are a frozen dataclass's. The types
handed to users of the libraries (``tokensmith.resource``, ``tokensmith.client``) stay frozen at run time too.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any, TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def frozen(cls: type[_T]) -> type[_T]:
    # unsafe_hash: the __hash__ a frozen dataclass gets (by fields); "unsafe" only because nothing stops a
    # mutation at run time, and the type checker does.
    made = dataclass(slots=True, unsafe_hash=True)(cls)
    # What dataclasses gives a frozen slotted class, so that pickle's protocols 0 and 1 take it as well (2 and up
    # need nothing: worker_processes.py hands its spec to spawned processes that way).
    for name, method in (("__getstate__", _getstate), ("__setstate__", _setstate)):
        if name not in vars(made):
            setattr(made, name, method)
    return made


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, each.name) for each in fields(self)]


def _setstate(self: Any, state: list[Any]) -> None:
    for each, value in zip(fields(self), state, strict=True):
        object.__setattr__(self, each.name, value)
