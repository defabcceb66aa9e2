"""Code-motion fingerprint of a PR at one head SHA (issue 14): what it touches and how it moves code.

``fingerprint(head_sha, files, title, head_ref) -> CodeMotion``, pure and deterministic:

- **surfaces**: the touched paths, with counters (digit runs) and the PR's distinguishing tokens
  (the words of its title and branch that carry a counter, e.g. ``s085``) normalised, so
  ``app/actions/s085_ack.py`` and ``app/actions/s086_ack.py`` are one surface;
- **skeleton**: the added and removed lines of every patch, tokenised by the Pygments lexer for the
  file's name, with identifiers, strings and numbers replaced by placeholders (``N``, ``S``, ``0``);
  keywords, operators, punctuation and builtins stay, so a renamed copy has the same skeleton and
  genuinely different code does not;
- **minhash**: a MinHash (datasketch) of the skeleton's token shingles, for "similar above a
  threshold" when skeletons are not identical.

The ledger caches one :class:`CodeMotion` per head SHA (``ledger/families.py``);
``policies/families.py`` groups PRs by it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text
from pygments.token import _TokenType as TokenType
from pygments.util import ClassNotFound

if TYPE_CHECKING:  # datasketch takes seconds to import: loaded on first use
    from datasketch import MinHash

FINGERPRINT_VERSION = 1  # bump when the skeleton rules change: cached fingerprints are recomputed
NUM_PERM = 64
MINHASH_SEED = 14
MINHASH_SCHEME = "affine32"
SHINGLE_SIZE = 4

IDENTIFIER = "N"
STRING = "S"
NUMBER = "0"
SLOT = "<slot>"
COUNTER = "#"

_DIGITS = re.compile(r"\d+")
_WORDS = re.compile(r"[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class PullFile:
    """One entry of ``GET /repos/{o}/{r}/pulls/{n}/files``."""

    filename: str
    status: str = "modified"
    additions: int = 0
    deletions: int = 0
    patch: str | None = None  # absent for binary or very large files

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PullFile:
        return cls(
            filename=str(data["filename"]),
            status=str(data.get("status") or "modified"),
            additions=int(data.get("additions") or 0),
            deletions=int(data.get("deletions") or 0),
            patch=data.get("patch") if isinstance(data.get("patch"), str) else None,
        )


@dataclass(frozen=True, slots=True)
class CodeMotion:
    """A PR's code-motion fingerprint at ``head_sha``."""

    head_sha: str
    surfaces: tuple[str, ...]  # normalised touched paths, sorted
    skeleton: tuple[str, ...]  # one line per changed line: "<surface> +|- tokens"
    skeleton_hash: str
    minhash: tuple[int, ...]
    slot_tokens: tuple[str, ...] = ()  # the PR's distinguishing tokens that were normalised
    version: int = FINGERPRINT_VERSION

    @property
    def empty(self) -> bool:
        """No patch text at all (binary files, or nothing read): never a family member."""
        return not self.skeleton

    def similarity(self, other: CodeMotion) -> float:
        """1.0 for identical skeletons, else the MinHash estimate of the shingles' Jaccard."""
        if self.skeleton_hash == other.skeleton_hash:
            return 1.0
        if not self.minhash or not other.minhash or len(self.minhash) != len(other.minhash):
            return 0.0
        return float(_minhash(self.minhash).jaccard(_minhash(other.minhash)))

    def to_json(self) -> dict[str, Any]:
        return {
            "head_sha": self.head_sha,
            "surfaces": list(self.surfaces),
            "skeleton": list(self.skeleton),
            "skeleton_hash": self.skeleton_hash,
            "minhash": list(self.minhash),
            "slot_tokens": list(self.slot_tokens),
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CodeMotion:
        return cls(
            head_sha=str(data["head_sha"]),
            surfaces=tuple(str(s) for s in data.get("surfaces", ())),
            skeleton=tuple(str(s) for s in data.get("skeleton", ())),
            skeleton_hash=str(data.get("skeleton_hash", "")),
            minhash=tuple(int(v) for v in data.get("minhash", ())),
            slot_tokens=tuple(str(s) for s in data.get("slot_tokens", ())),
            version=int(data.get("version", 0)),
        )


def _minhash(values: Sequence[int]) -> MinHash:
    from datasketch import MinHash

    return MinHash(
        num_perm=len(values), seed=MINHASH_SEED, hashvalues=list(values), scheme=MINHASH_SCHEME
    )


# --- surfaces -----------------------------------------------------------------------------------


def slot_tokens(*texts: str) -> tuple[str, ...]:
    """The distinguishing tokens of a PR: words of its title / branch that carry a counter
    (``S085``, ``s085_receipt``, ``v2``), longest first so a longer one is replaced before a part."""
    found = {w.lower() for text in texts for w in _WORDS.findall(text) if _DIGITS.search(w)}
    return tuple(sorted(found, key=lambda w: (-len(w), w)))


def normalise_path(path: str, tokens: Iterable[str] = ()) -> str:
    """A touched path with the PR's distinguishing tokens and every counter normalised."""
    lowered = path.lower()
    for token in tokens:
        lowered = lowered.replace(token, SLOT)
    return _DIGITS.sub(COUNTER, lowered)


# --- skeleton -----------------------------------------------------------------------------------


def _lexer_for(filename: str) -> Lexer:
    """The Pygments lexer for a file name (text when unknown), memoised by its extension."""
    name = filename.rsplit("/", 1)[-1]
    suffix = name[name.rfind(".") :] if "." in name else name
    return _lexer_for_suffix(suffix if "." in name else name)


@lru_cache(maxsize=512)
def _lexer_for_suffix(name: str) -> Lexer:
    pattern = f"x{name}" if name.startswith(".") else name
    try:
        return get_lexer_for_filename(pattern, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


def _placeholder(token_type: TokenType, value: str) -> str | None:
    """What one token contributes to the skeleton (None: nothing)."""
    if token_type in Comment:
        return None
    if token_type in String:
        return STRING
    if token_type in Number:
        return NUMBER
    if token_type in Name.Builtin or token_type in Keyword:
        return value
    if token_type in Name:
        return IDENTIFIER
    if token_type in Operator or token_type in Punctuation:
        return value
    stripped = value.strip()
    if not stripped:
        return None
    if token_type in Text:  # plain text (unknown file kinds): words and numbers by shape
        if stripped.isdigit():
            return NUMBER
        return IDENTIFIER if any(ch.isalnum() for ch in stripped) else stripped
    return stripped


def _text_words(value: str) -> list[str]:
    return value.split()


def tokenise(filename: str, lines: Sequence[str]) -> list[list[str]]:
    """The placeholders of each line, lexed together (so multi-line constructs lex right)."""
    if not lines:
        return []
    out: list[list[str]] = [[]]
    previous: str | None = None
    for token_type, value in _lexer_for(filename).get_tokens("\n".join(lines) + "\n"):
        parts = value.split("\n")
        for index, part in enumerate(parts):
            if index > 0:
                out.append([])
                previous = None
            chunks = _text_words(part) if token_type in Text and part.strip() else [part]
            for chunk in chunks:
                placeholder = _placeholder(token_type, chunk)
                if placeholder is None:
                    continue
                if placeholder == STRING and previous == STRING:
                    continue  # one string literal, however many tokens the lexer made of it
                out[-1].append(placeholder)
                previous = placeholder
    return out[: len(lines)]


def changed_lines(patch: str) -> tuple[list[str], list[str]]:
    """The added and removed lines of a unified-diff patch (hunk headers left out)."""
    added: list[str] = []
    removed: list[str] = []
    for line in patch.splitlines():
        if line.startswith(("+++", "---", "@@", "\\")):
            continue
        if line.startswith("+"):
            added.append(line[1:])
        elif line.startswith("-"):
            removed.append(line[1:])
    return added, removed


def skeleton_lines(files: Sequence[PullFile], tokens: Sequence[str]) -> list[str]:
    """``<surface> +|- tokens`` per non-blank changed line, files in surface order."""
    out: list[str] = []
    for file in sorted(files, key=lambda f: (normalise_path(f.filename, tokens), f.filename)):
        if not file.patch:
            continue
        surface = normalise_path(file.filename, tokens)
        added, removed = changed_lines(file.patch)
        for sign, lines in (("-", removed), ("+", added)):
            for placeholders in tokenise(file.filename, lines):
                if placeholders:
                    out.append(f"{surface} {sign} {' '.join(placeholders)}")
    return out


def shingles(skeleton: Sequence[str], size: int = SHINGLE_SIZE) -> set[bytes]:
    """Overlapping runs of ``size`` skeleton tokens (line breaks kept as a token)."""
    stream: list[str] = []
    for line in skeleton:
        stream += line.split(" ")
        stream.append("\u23ce")
    if len(stream) <= size:
        return {" ".join(stream).encode()} if stream else set()
    return {" ".join(stream[i : i + size]).encode() for i in range(len(stream) - size + 1)}


def fingerprint(
    head_sha: str, files: Sequence[PullFile], title: str = "", head_ref: str = ""
) -> CodeMotion:
    """The code-motion fingerprint of a PR's files at ``head_sha``. Same input, same value."""
    tokens = slot_tokens(title, head_ref)
    surfaces = tuple(sorted({normalise_path(f.filename, tokens) for f in files}))
    skeleton = tuple(skeleton_lines(files, tokens))
    digest = hashlib.sha256("\n".join(skeleton).encode()).hexdigest()[:32]
    minhash: tuple[int, ...] = ()
    grams = shingles(skeleton)
    if grams:
        from datasketch import MinHash

        sketch = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED, scheme=MINHASH_SCHEME)
        sketch.update_batch(sorted(grams))
        minhash = tuple(int(v) for v in sketch.hashvalues)
    return CodeMotion(head_sha, surfaces, skeleton, digest, minhash, tokens)
