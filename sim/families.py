"""Same-shape families for issue 14, as scenario PR specs (``pulls:`` entries with ``files``).

- :func:`same_shape_family`: ``count`` PRs (``S085`` .. ``S104``) that each add one more action to
  the same route and dashboard, differing only by renamed identifiers and a counter;
- :func:`different_code_controls`: PRs touching the same files with genuinely different code;
- :func:`counter_title_controls`: unrelated PRs whose titles and branches carry counters.

The patches are unified-diff hunks like GitHub's ``patch`` field. Deterministic for a seed.
"""

from __future__ import annotations

import random
from typing import Any

FAMILY_FILES = ("app/routes/actions.py", "app/dashboard/panels.py")


def _file(filename: str, patch: str) -> dict[str, Any]:
    lines = patch.splitlines()
    additions = sum(1 for line in lines if line.startswith("+"))
    deletions = sum(1 for line in lines if line.startswith("-"))
    return {
        "filename": filename,
        "status": "modified",
        "additions": additions,
        "deletions": deletions,
        "patch": patch,
    }


def same_shape_family(
    start_number: int,
    *,
    count: int = 20,
    first_counter: int = 85,
    author: str = "agent-lane[bot]",
    minutes_apart: int = 4,
    checks: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """``count`` PRs that each add one more action to the same route and dashboard, differing only
    by renamed identifiers and a counter (``S085`` .. ``S104``), ``minutes_apart`` apart (oldest
    first). ``checks`` e.g. ``{"build": "success", "lint": "failure"}`` gives each a trigger."""
    pulls = []
    for offset in range(count):
        counter = first_counter + offset
        slot = f"readiness_bridge_live_source_{counter:03d}_review_ack"
        route = (
            f'@@ -10,3 +10,7 @@ ROUTES = [\n+@route("/actions/{slot}")\n'
            f"+def {slot}(request):\n"
            f'+    return ack(request, "s{counter:03d}_receipt", {counter})\n+\n'
        )
        panel = f'@@ -1,2 +1,4 @@\n+PANELS.append(Panel("{slot}", order={counter}))\n+\n'
        pulls.append(
            {
                "number": start_number + offset,
                "title": f"S{counter:03d}: add {slot} action",
                "author": author,
                "head_ref": f"lane/s{counter:03d}-{slot}",
                "created": f"-{(count - offset) * minutes_apart}m",
                "checks": dict(checks or {"build": "success", "test": "success"}),
                "files": [_file(FAMILY_FILES[0], route), _file(FAMILY_FILES[1], panel)],
            }
        )
    return pulls


# Twenty genuinely different changes to one file: different statements, control flow and calls.
DIFFERENT_CODE = (
    "cache = LRU(maxsize={n})",
    "for item in queue:\n+    process(item, retries={n})",
    "if not user.is_active:\n+    raise Forbidden()",
    "logger.info('started %s', job.id)",
    "with open(path) as handle:\n+    data = json.load(handle)",
    "total = sum(x.cost for x in items) * {n}",
    "class Config(BaseModel):\n+    timeout: int = {n}",
    "async with session.get(url) as response:\n+    body = await response.text()",
    "try:\n+    conn.commit()\n+except DatabaseError:\n+    conn.rollback()\n+    raise",
    "while retries > 0 and not done:\n+    retries -= 1",
    "return {{k: v for k, v in mapping.items() if v is not None}}",
    "assert isinstance(payload, dict), 'payload must be a mapping'",
    "@dataclass(frozen=True)\n+class Point:\n+    x: float\n+    y: float",
    "lambda_ = lambda a, b=[]: a or b",
    "del registry[name]\n+registry.clear()",
    "yield from walk(tree.left)\n+yield from walk(tree.right)",
    "global COUNTER\n+COUNTER += {n}",
    "import os, sys\n+sys.path.insert(0, os.getcwd())",
    "x, *rest = sorted(values, key=len, reverse=True)",
    "match event:\n+    case {{'type': 'push'}}:\n+        handle_push(event)\n+    case _:\n+        pass",
)


def different_code_controls(
    start_number: int, *, count: int = 20, seed: int = 1, author_prefix: str = "dev"
) -> list[dict[str, Any]]:
    """Negative control: PRs touching the same files as the family, with genuinely different code
    (each a different change from :data:`DIFFERENT_CODE`, numbers varied by ``seed``)."""
    rng = random.Random(seed)
    pulls = []
    for offset in range(count):
        text = DIFFERENT_CODE[offset % len(DIFFERENT_CODE)].format(n=rng.randint(1, 999))
        pulls.append(
            {
                "number": start_number + offset,
                "title": f"Improve handling ({rng.choice(['cache', 'auth', 'io', 'jobs'])})",
                "author": f"{author_prefix}{offset}",
                "created": f"-{(count - offset) * 4}m",
                "files": [
                    _file(FAMILY_FILES[0], f"@@ -5,1 +5,2 @@\n-pass\n+{text}\n"),
                    _file(FAMILY_FILES[1], "@@ -1,1 +1,1 @@\n-PANELS = []\n+PANELS: list = []\n"),
                ],
            }
        )
    return pulls


_AREAS = ("parser", "cache", "auth", "cli", "docs", "api", "jobs", "billing", "search", "ui")


def counter_title_controls(
    start_number: int, *, count: int = 20, first_counter: int = 85, author: str = "agent-lane[bot]"
) -> list[dict[str, Any]]:
    """Negative control: unrelated PRs (different files, different code) whose titles and branches
    differ only by a counter (``S085: update``, ``S086: update`` ...)."""
    pulls = []
    for offset in range(count):
        counter = first_counter + offset
        area = _AREAS[offset % len(_AREAS)]
        code = DIFFERENT_CODE[(offset * 7) % len(DIFFERENT_CODE)].format(n=counter)
        pulls.append(
            {
                "number": start_number + offset,
                "title": f"S{counter:03d}: update",
                "author": author,
                "head_ref": f"lane/s{counter:03d}",
                "created": f"-{(count - offset) * 4}m",
                "files": [_file(f"src/{area}/module_{offset}.py", f"@@ -1,0 +1,1 @@\n+{code}\n")],
            }
        )
    return pulls
