"""Structure checks of one Make blueprint for ``rabt validate``: what Make imports but
then runs wrongly.

- Module ids must be unique, and every ``{{N.field}}`` must name a module of the
  blueprint, otherwise Make maps an empty value.
- Every ``{{`` needs its ``}}``, with no ``{{`` inside an open expression.
- A JSON body (``http:MakeRequest`` with ``inputMethod: jsonString``) must be JSON once
  each ``{{...}}`` is replaced by a value.
- Function names inside ``{{ }}`` must be Make built-ins (``make-functions.yaml``).
- An HTTP method must be one of GET, POST, PUT, PATCH, DELETE, HEAD and OPTIONS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from generator.resources import load_data

FUNCTIONS_DATA = "ipaas/make-functions"
EXPRESSION = re.compile(r"\{\{.*?\}\}(?!\})", re.S)
# A quoted text inside a formula, such as a regular expression: no calls or references.
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
CALL = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)\s*\(")
# A mapped output such as 12.body or 3.`Deal Name` or 4.properties[].
REFERENCE = re.compile(r"(?<![\w.])(\d+)\.(?=[A-Za-z_`\[])")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
REQUEST_MODULE = "http:MakeRequest"


@cache
def known_functions() -> frozenset[str]:
    """Return the IML function and operator names of ``make-functions.yaml``."""
    data: dict[str, list[str]] = load_data(FUNCTIONS_DATA)
    return frozenset(name for names in data.values() for name in names)


def modules(flow: Any) -> Iterator[dict[str, Any]]:
    """Yield every module of ``flow``, with those on routes and error handler routes."""
    for module in flow if isinstance(flow, list) else []:
        if not isinstance(module, dict):
            continue
        yield module
        for route in module.get("routes") or []:
            if isinstance(route, dict):
                yield from modules(route.get("flow"))
        yield from modules(module.get("onerror"))


def structure_findings(blueprint: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Yield ``(message, fix, fields)`` for every structure problem of ``blueprint``."""
    found = list(modules(blueprint.get("flow")))
    ids: set[Any] = set()
    for module in found:
        if module.get("id") in ids:
            yield "ipaas_make_duplicate_id", "ipaas_make_duplicate_id_fix", _context(module)
        ids.add(module.get("id"))
    for module in found:
        yield from _module_findings(module, {str(item) for item in ids})


def _context(module: dict[str, Any]) -> dict[str, Any]:
    metadata = module.get("metadata")
    designer = metadata.get("designer") if isinstance(metadata, dict) else None
    label = designer.get("name", "") if isinstance(designer, dict) else ""
    return {"id": module.get("id"), "label": label}


def _module_findings(module: dict[str, Any],
                     ids: set[str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    context = _context(module)
    for where, text in _strings({"mapper": module.get("mapper"),
                                 "filter": module.get("filter")}, ""):
        json_text = where == "mapper.jsonStringBodyContent"
        yield from _text_findings(text, {**context, "part": where}, ids, json_text)
    mapper = module.get("mapper")
    if module.get("module") != REQUEST_MODULE or not isinstance(mapper, dict):
        return
    method = mapper.get("method")
    if isinstance(method, str) and method.upper() not in HTTP_METHODS:
        yield ("ipaas_make_method", "ipaas_make_method_fix",
               {**context, "value": method, "allowed": ", ".join(HTTP_METHODS)})
    body = mapper.get("jsonStringBodyContent")
    if mapper.get("inputMethod") == "jsonString" and isinstance(body, str) \
            and _balanced(body, json_text=True):
        try:
            json.loads(_without_formulas(body))
        except ValueError as error:
            yield ("ipaas_make_json_body", "ipaas_make_json_body_fix",
                   {**context, "error": str(error)})


def _without_formulas(body: str) -> str:
    """Return a JSON body with each ``{{...}}`` replaced by what it writes in that place.

    A formula at the start of the body, after ``:`` or ``[``, or between two commas or a
    comma and ``]`` stands for a value and becomes ``0``. Any other formula is dropped:
    inside a string it leaves the string valid, and after ``{`` or a field it writes a
    whole optional field (``"key": "value",``) or nothing, as an omitted field does.
    """
    parts: list[str] = []
    end = 0
    for found in EXPRESSION.finditer(body):
        before = body[:found.start()].rstrip()[-1:]
        after = body[found.end():].lstrip()[:1]
        value = before in ("", ":", "[") or (before == "," and after in (",", "]"))
        parts.append(body[end:found.start()] + ("0" if value else ""))
        end = found.end()
    return "".join(parts) + body[end:]


def _balanced(text: str, json_text: bool = False) -> bool:
    """Return whether every ``{{`` of ``text`` closes before the next one opens.

    In a JSON body a ``}}`` outside the expressions closes two objects, so only an
    unclosed ``{{`` counts there. A stray ``}}`` in a body usually breaks its JSON,
    which the JSON check reports.
    """
    expressions = EXPRESSION.findall(text)
    if any("{{" in expression[2:] for expression in expressions):
        return False
    rest = EXPRESSION.sub("", text)
    return "{{" not in rest and (json_text or "}}" not in rest)


def _text_findings(text: str, context: dict[str, Any], ids: set[str],
                   json_text: bool) -> Iterator[tuple[str, str, dict[str, Any]]]:
    if not _balanced(text, json_text):
        yield "ipaas_make_braces", "ipaas_make_braces_fix", context
        return
    functions = known_functions()
    for expression in EXPRESSION.findall(text):
        formula = QUOTED.sub('""', expression[2:-2])
        for name in sorted(set(CALL.findall(formula)) - functions):
            yield ("ipaas_make_function", "ipaas_make_function_fix",
                   {**context, "value": name})
        for module_id in sorted(set(REFERENCE.findall(formula)) - ids, key=int):
            yield ("ipaas_make_reference", "ipaas_make_reference_fix",
                   {**context, "value": module_id})


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
