"""Module-level memo caches: keyed by our own registry (bounded), or by the client (grows)."""

from importlib import import_module

from fastapi import APIRouter

router = APIRouter()
_REGISTRY = {"csv": ("csv", "writer"), "json": ("json", "dumps")}
_CLASSES: dict[str, object] = {}  # ok: at most one entry per registry key
_GREETINGS: dict[str, str] = {}  # expect: FSA305


def exporter(kind: str):
    if kind in _CLASSES:
        return _CLASSES[kind]
    entry = _REGISTRY.get(kind)
    if entry is None:
        return None
    module, attr = entry
    found = getattr(import_module(module), attr)
    _CLASSES[kind] = found
    return found


@router.get("/export/{kind}")
def export(kind: str):
    return {"exporter": repr(exporter(_REGISTRY_KEYS.get(kind, "csv")))}


_REGISTRY_KEYS = {"csv": "csv", "json": "json"}


@router.get("/greet/{name}")
def greet(name: str):
    if name in _GREETINGS:
        return {"text": _GREETINGS[name]}
    _GREETINGS[name] = f"Hello {name}"
    return {"text": _GREETINGS[name]}
