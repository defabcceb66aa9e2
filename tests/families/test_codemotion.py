"""Code-motion fingerprints: renamed copies share a skeleton, different code does not; deterministic."""

from __future__ import annotations

import pytest

from policies.codemotion import (
    PullFile,
    changed_lines,
    fingerprint,
    normalise_path,
    slot_tokens,
    tokenise,
)
from sim.families import counter_title_controls, different_code_controls, same_shape_family


def fp_of(spec: dict) -> object:
    files = [PullFile.from_json(f) for f in spec["files"]]
    return fingerprint("a" * 40, files, spec["title"], spec.get("head_ref", ""))


@pytest.mark.parametrize(
    ("filename", "line", "expected"),
    [
        ("a.py", 'x = foo("s", 85)', ["N", "=", "N", "(", "S", ",", "0", ")"]),
        ("a.py", "return len(items)  # count", ["return", "len", "(", "N", ")"]),
        ("a.js", "const total = 3;", ["const", "N", "=", "0", ";"]),
        ("notes.unknownext", "ship 12 widgets", ["N", "0", "N"]),
    ],
    ids=[
        "python names, string, number -> placeholders",
        "python builtin and keyword kept, comment dropped",
        "javascript by extension -> its lexer",
        "unknown extension -> words and numbers by shape",
    ],
)
def test_tokenise_replaces_identifiers_strings_numbers(
    filename: str, line: str, expected: list[str]
) -> None:
    assert tokenise(filename, [line]) == [expected]


def test_changed_lines_skip_headers_and_context() -> None:
    patch = "@@ -1,3 +1,3 @@ ctx\n context\n-old = 1\n+new = 2\n\\ No newline at end of file\n"
    assert changed_lines(patch) == (["new = 2"], ["old = 1"])


def test_surfaces_normalise_counters_and_slot_tokens() -> None:
    tokens = slot_tokens("S085: add thing", "lane/s085")
    assert tokens == ("s085",)
    assert normalise_path("app/actions/s085_ack.py", tokens) == "app/actions/<slot>_ack.py"
    assert normalise_path("app/v2/file10.py") == "app/v#/file#.py"


def test_renamed_family_members_share_skeleton_and_surfaces() -> None:
    family = [fp_of(p) for p in same_shape_family(1, count=20)]
    assert len({f.skeleton_hash for f in family}) == 1
    assert len({f.surfaces for f in family}) == 1
    assert family[0].similarity(family[-1]) == 1.0


def test_different_code_on_same_files_differs() -> None:
    controls = [fp_of(p) for p in different_code_controls(1, count=20)]
    assert len({f.skeleton_hash for f in controls}) == 20
    assert len({f.surfaces for f in controls}) == 1
    worst = max(a.similarity(b) for i, a in enumerate(controls) for b in controls[i + 1 :])
    assert worst < 0.85


def test_fingerprint_is_deterministic_and_round_trips_json() -> None:
    spec = counter_title_controls(1, count=1)[0]
    first, second = fp_of(spec), fp_of(spec)
    assert first == second
    assert type(first).from_json(first.to_json()) == first
    assert len(first.minhash) == 64


def test_no_patch_gives_an_empty_fingerprint() -> None:
    empty = fingerprint("a" * 40, [PullFile("logo.png", "added")])
    assert empty.empty and empty.surfaces == ("logo.png",) and empty.minhash == ()
