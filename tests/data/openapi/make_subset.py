"""Regenerates ``api.github.com.subset.json``: the part of GitHub's REST description
(npm `@octokit/openapi`, ``generated/api.github.com.json``) that the sim's routes need: each
route's operation and its 2xx response schemas, with every component schema they reference,
converted from OpenAPI 3.0 (``nullable``) to plain JSON Schema so ``jsonschema`` can validate.

    cd /tmp && npm pack @octokit/openapi && tar xzf octokit-openapi-*.tgz
    python3 tests/data/openapi/make_subset.py /tmp/package/generated/api.github.com.json

Run from the repository root (it imports ``sim.rest`` for the list of routes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

import sim.server  # noqa: E402, F401 - the server imports every module that registers routes
from sim.rest import ROUTES  # noqa: E402

# Where the description contradicts itself, the component schema wins: GET /app/installations
# inlines `account` as allOf[simple-user, enterprise] (an account would have to be both), while
# its own `installation` component says anyOf, and real answers (githubkit parses them) are users.
KNOWN_FIXES: dict[tuple[str, str, str], Any] = {
    ("GET", "/app/installations", "200"): {
        "type": "array",
        "items": {"$ref": "#/components/schemas/installation"},
    },
}


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: ``nullable: true`` becomes ``anyOf [.., null]``."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        key: to_json_schema(value)
        for key, value in node.items()
        if key not in {"nullable", "example", "examples", "description", "x-github"}
    }
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def refs_in(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            refs_in(value, found)
    elif isinstance(node, list):
        for item in node:
            refs_in(item, found)


def main(source: Path) -> None:
    description = json.loads(source.read_text())
    components = description["components"]
    paths: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    wanted: set[str] = set()
    for route in ROUTES:
        operation = description["paths"].get(route.path, {}).get(route.method.lower())
        if operation is None:
            missing.append(f"{route.method} {route.path}")
            continue
        responses: dict[str, Any] = {}
        for status, response in operation["responses"].items():
            if not status.startswith("2"):
                continue
            if "$ref" in response:
                response = components["responses"][response["$ref"].rsplit("/", 1)[1]]
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            schema = KNOWN_FIXES.get((route.method, route.path, status), schema)
            responses[status] = to_json_schema(schema) if schema is not None else None
            refs_in(schema, wanted)
        paths.setdefault(route.path, {})[route.method.lower()] = {
            "operationId": operation.get("operationId"),
            "responses": responses,
        }
    schemas: dict[str, Any] = {}
    pending = set(wanted)
    while pending:
        name = pending.pop()
        if name in schemas:
            continue
        schema = components["schemas"][name]
        schemas[name] = to_json_schema(schema)
        more: set[str] = set()
        refs_in(schema, more)
        pending |= more - set(schemas)
    subset = {
        "source": f"@octokit/openapi {description['info'].get('version', '?')}: generated/api.github.com.json",
        "openapi": description["openapi"],
        "missing": sorted(missing),
        "paths": paths,
        "components": {"schemas": dict(sorted(schemas.items()))},
    }
    out = HERE / "api.github.com.subset.json"
    out.write_text(json.dumps(subset, indent=1, sort_keys=True) + "\n")
    print(f"{out}: {len(paths)} paths, {len(schemas)} schemas, missing {missing}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
