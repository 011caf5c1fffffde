"""ASL sources with named fragments, expanded in the one place that reads a definition.

A state machine's source (``statemachines/*.asl.json``) writes a policy once and names it
wherever it applies:

- ``{"$ref": "policies.json#/retry/connector"}`` stands for the value at that JSON pointer
  (RFC 6901) of that file in the fragments folder (``statemachines/``, wherever the source
  is); ``{"$ref": "#/..."}`` points into the file the reference is written in. This is JSON
  Reference's syntax; a reference has no other keys.
- ``{"$lineage": {field: value, ...}}`` stands for a lineage row's DynamoDB item, built by
  ``aios.lineage.LineageRecord.asl_item`` from the record model every function writes with,
  so a row written by a service integration has the same keys and field names.

``WorkflowSpec.read_definition`` returns the expansion, so CDK, the local mode, statelint and
the ASL policy check all read the same plain ASL; no other key may start with ``$``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from aios.lineage import LineageRecord

REF = "$ref"
LINEAGE = "$lineage"


class FragmentError(ValueError):
    """A reference that does not resolve, or a ``$`` key that is not a fragment."""


def expand_file(path: Path, fragments: Path | None = None) -> dict[str, Any]:
    """The ASL at ``path`` with every fragment expanded; named files are read from
    ``fragments`` (default: the source's own folder)."""
    expanded = _Expander(fragments or path.parent).expand(_load(path), path, ())
    if not isinstance(expanded, dict):
        raise FragmentError(f"{path.name}: a state machine definition is a JSON object")
    return expanded


def expand_text(path: Path, fragments: Path | None = None) -> str:
    """``expand_file`` as the JSON text every renderer reads (2-space indent)."""
    return json.dumps(expand_file(path, fragments), indent=2, ensure_ascii=False) + "\n"


@cache
def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


class _Expander:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def expand(self, value: Any, document: Path, seen: tuple[str, ...]) -> Any:
        if isinstance(value, list):
            return [self.expand(item, document, seen) for item in value]
        if not isinstance(value, Mapping):
            return value
        if REF in value:
            if len(value) != 1:
                raise FragmentError(f"{document.name}: a {REF} object has no other keys: {sorted(value)}")
            return self._resolve(value[REF], document, seen)
        if LINEAGE in value:
            if len(value) != 1:
                raise FragmentError(f"{document.name}: a {LINEAGE} object has no other keys: {sorted(value)}")
            return LineageRecord.asl_item(self.expand(value[LINEAGE], document, seen))
        stray = [key for key in value if key.startswith("$")]
        if stray:
            raise FragmentError(f"{document.name}: unknown fragment keys {stray} (known: {REF}, {LINEAGE})")
        return {key: self.expand(item, document, seen) for key, item in value.items()}

    def _resolve(self, reference: Any, document: Path, seen: tuple[str, ...]) -> Any:
        if not isinstance(reference, str) or "#" not in reference:
            raise FragmentError(
                f"{document.name}: {REF} is 'file.json#/pointer' or '#/pointer': {reference!r}"
            )
        file_name, pointer = reference.split("#", 1)
        target = (self._directory / file_name) if file_name else document
        if not target.is_file():
            raise FragmentError(f"{document.name}: {reference!r} names a file that is not there: {target}")
        key = f"{target.name}#{pointer}"
        if key in seen:
            raise FragmentError(
                f"{document.name}: {reference!r} refers to itself: {' -> '.join((*seen, key))}"
            )
        return self.expand(_point(_load(target), pointer, key), target, (*seen, key))


def _point(document: Any, pointer: str, where: str) -> Any:
    if pointer and not pointer.startswith("/"):
        raise FragmentError(f"{where}: a JSON pointer starts with '/'")
    value = document
    for token in pointer.split("/")[1:] if pointer else ():
        name = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, Mapping) and name in value:
            value = value[name]
        elif isinstance(value, list) and name.isdigit() and int(name) < len(value):
            value = value[int(name)]
        else:
            raise FragmentError(f"{where}: nothing at {name!r}")
    return value


#: Columns a JSON value may fill on one line before the source formatter breaks it up.
SOURCE_WIDTH = 100


def format_source(value: Any) -> str:
    """The one layout of ``statemachines/*.json``: 2-space indent, and any object or array that
    fits in ``SOURCE_WIDTH`` columns on one line (a reference, an error list, a short
    ``ResultSelector``) written on that line. ``python -m infrastructure.asl_source`` applies it."""
    return _format(value, 0, 0) + "\n"


def _format(value: Any, column: int, level: int) -> str:
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or not value or column + len(flat) <= SOURCE_WIDTH:
        return flat
    inner = "  " * (level + 1)
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            head = f"{inner}{json.dumps(key, ensure_ascii=False)}: "
            lines.append(head + _format(item, len(head) + 1, level + 1))
    else:
        lines = [inner + _format(item, len(inner) + 1, level + 1) for item in value]
    return (
        ("{" if isinstance(value, dict) else "[")
        + "\n"
        + ",\n".join(lines)
        + "\n"
        + "  " * level
        + ("}" if isinstance(value, dict) else "]")
    )
