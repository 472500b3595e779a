"""The one home of every classification rule: production, revert, reverted reference, hotfix, bot.

Connectors record facts (titles, bodies, branch names, labels, logins, a provider's own "this
is a bot" flag); the core classifies them with the functions here, so a fix is classified the
same way whether it came from GitHub, GitLab, plain git or a trunk commit. Each pattern is a
documented option where it is used (a source's ``production``, ``hotfix`` and ``bots`` keys,
the metrics' ``bot_pattern`` and ``hotfix_pattern``); these are the defaults.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: A production environment's name (case-insensitive).
PRODUCTION_PATTERN = r"(?i)^prod(?:uction)?$"

#: A hotfix: matched on titles, branch names and labels.
HOTFIX_PATTERN = r"(?i)\bhot[-_ ]?fix"

#: A bot author: matched on logins, usernames, names and emails. GitHub apps end in ``[bot]``;
#: GitLab project and group access tokens act as ``project_N_bot`` / ``group_N_bot``.
BOT_PATTERN = (
    r"(?i)(?:\[bot\]$|^dependabot|^renovate|^github-actions|^snyk-bot"
    r"|^project_\d+_bot|^group_\d+_bot|-bot$)"
)

#: A release version, with or without "v": ``1.2``, ``v1.2.3``, ``2.0.0rc1``, ``3.0.0-beta.1``,
#: ``0.13.0.dev0``, ``1.0.0+build.5``. Not archive markers (``0.x``, ``0.12.x``), moving tags
#: (``v1``, ``latest``, ``nightly``) or other names. The git connector's default tag pattern.
RELEASE_VERSION = (
    r"(?i)^v?\d+\.\d+(?:\.\d+)*"
    r"(?:[-._]?(?:a|b|c|rc|alpha|beta|pre|preview|dev|post)(?:[-._]?\d+)*)*"
    r"(?:\+[0-9a-z.-]+)?$"
)

#: The release line of a version-like name: its major.minor (``v2.3.1`` and ``2.3.x``: 2.3).
RELEASE_LINE = r"(?i)^v?(\d+)\.(\d+)(?!\d)"
RELEASE_LINE_RE = re.compile(RELEASE_LINE)

#: The title GitHub's and GitLab's "Revert" buttons and ``git revert`` write: ``Revert "..."``.
REVERT_TITLE = r'(?i)^\s*revert\s+"'

# What a revert names as reverted, most explicit first. Each has one group: a change number or
# a commit sha. GitHub writes "Reverts owner/repo#123", GitLab "reverts merge request !12",
# ``git revert`` "This reverts commit <sha>"; a reverted merge's own title carries its number.
_REVERTED_CHANGE = r"(?i)\breverts\s+(?:[\w.-]+/[\w.-]+)?#(\d+)"
_REVERTED_MERGE_REQUEST = r"(?i)\breverts\s+merge\s+request\s+(?:[\w./-]+)?!(\d+)"
_REVERTED_SHA = r"(?i)\breverts\s+commit\s+([0-9a-f]{7,64})\b"
_REVERTED_TITLE_NUMBER = r'(?i)^\s*revert\s+".*?(?:\(#|pull request #|!)(\d+)'
_REFERENCES = (_REVERTED_CHANGE, _REVERTED_MERGE_REQUEST, _REVERTED_SHA)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A rule's regex, compiled once (``re.error`` for a bad one: the config reports it)."""
    return re.compile(pattern)


# --- one value at a time (connectors that build rows as dicts) ------------------------------


def is_production(
    environment: str | None, pattern: re.Pattern[str] | str = PRODUCTION_PATTERN
) -> bool:
    """Whether an environment name is production under ``pattern``."""
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    return bool(environment and compiled.search(environment))


def is_revert(title: str | None, body: str | None = None) -> bool:
    """A change that undoes another: a ``Revert "..."`` title or an explicit reference."""
    return bool(re.search(REVERT_TITLE, title or "")) or reverted_reference(title, body) is not None


def reverted_reference(title: str | None, body: str | None = None) -> str | None:
    """What a revert names as reverted: a change number (``"123"``) or a commit sha.

    An explicit change reference in the body wins over a sha; a number in a
    ``Revert "... (#12)"`` title is the last resort.
    """
    text = body or ""
    for pattern in _REFERENCES:
        if match := re.search(pattern, text):
            return match.group(1)
    if match := re.search(_REVERTED_TITLE_NUMBER, title or ""):
        return match.group(1)
    return None


def is_hotfix(
    pattern: re.Pattern[str] | str,
    title: str | None,
    head_ref: str | None = None,
    labels: Iterable[str] | None = None,
) -> bool:
    """A hotfix: ``pattern`` found in the title, the branch name or a label."""
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    text = " ".join([title or "", head_ref or "", *(labels or ())])
    return bool(compiled.search(text))


def is_bot(pattern: re.Pattern[str] | str, *names: str | None, flagged: bool = False) -> bool:
    """A bot: the provider says so (``flagged``), or ``pattern`` matches one of its names."""
    if flagged:
        return True
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    return any(name and compiled.search(name) for name in names)


# --- whole columns (the core, the metrics) --------------------------------------------------


def _text(column: Any, index: pd.Index) -> pd.Series:
    if column is None:
        return pd.Series("", index=index, dtype="string")
    return pd.Series(column, index=index).astype("string").fillna("")


def production_flags(environments: pd.Series, pattern: str = PRODUCTION_PATTERN) -> pd.Series:
    """Whether each environment name is production (missing names are not)."""
    names = environments.astype("string")
    return names.str.contains(pattern, regex=True).fillna(False).astype(bool)


def revert_flags(title: pd.Series, body: pd.Series | None = None) -> tuple[pd.Series, pd.Series]:
    """Per row: is it a revert (``boolean``), and what it reverts (``string``, may be missing)."""
    index = title.index
    titles, bodies = _text(title, index), _text(body, index)
    reference = pd.Series(pd.NA, index=index, dtype="string")
    for pattern in _REFERENCES:
        found = bodies.str.extract(pattern, expand=False).astype("string")
        reference = reference.fillna(found)
    reference = reference.fillna(
        titles.str.extract(_REVERTED_TITLE_NUMBER, expand=False).astype("string")
    )
    flagged = titles.str.contains(REVERT_TITLE, regex=True) | reference.notna()
    return flagged.astype("boolean"), reference


def hotfix_flags(
    pattern: str,
    title: pd.Series,
    head_ref: pd.Series | None = None,
    labels: pd.Series | None = None,
) -> pd.Series:
    """Per row: ``pattern`` found in the title, the branch name or a label (``boolean``)."""
    index = title.index
    found = _text(title, index).str.contains(pattern, regex=True)
    found |= _text(head_ref, index).str.contains(pattern, regex=True)
    if labels is not None:
        found |= _joined(labels, index).str.contains(pattern, regex=True)
    return found.fillna(False).astype("boolean")


def bot_flags(pattern: str, author: pd.Series, flagged: pd.Series | None = None) -> pd.Series:
    """Per row: the provider flagged a bot, or ``pattern`` matches the author (``boolean``)."""
    found = _text(author, author.index).str.contains(pattern, regex=True).fillna(False)
    if flagged is not None:
        found |= pd.Series(flagged, index=author.index).astype("boolean").fillna(False)
    return found.astype("boolean")


#: What a connector records in ``deployments.started_by``: the provider says a pipeline, a
#: workflow or an app started the deployment, or a person created it by hand.
AUTOMATION, PERSON = "automation", "person"


def automated_flags(
    started_by: pd.Series, creator: pd.Series | None = None, bots: str = BOT_PATTERN
) -> pd.Series:
    """Per deployment: started by automation (``True``), by a person (``False``) or unknown
    (``NA``, ``boolean``).

    Automation when the provider says so (``started_by == "automation"``: a GitHub Actions
    workflow or app, a GitLab pipeline job) or when the creator is a bot under ``bots`` (a
    machine user such as ``deploy-bot`` is a person to the provider but automation here); a
    person when the provider says a person created it; unknown otherwise (plain git tags).
    """
    index = started_by.index
    said = started_by.astype("string").str.strip().str.lower()
    result = pd.Series(pd.NA, index=index, dtype="boolean")
    result[said == PERSON] = False
    result[said == AUTOMATION] = True
    if creator is not None:
        result[bot_flags(bots, creator).fillna(False).to_numpy(dtype=bool)] = True
    return result


#: Fact columns a connector may add to ``changes`` rows for :func:`classify_changes`; they are
#: used to classify and then dropped (they are not stored).
FACT_COLUMNS = ("body", "author_is_bot")


def classify_changes(
    frame: pd.DataFrame, *, hotfix: str = HOTFIX_PATTERN, bots: str = BOT_PATTERN
) -> pd.DataFrame:
    """``changes`` rows with ``is_revert``, ``reverts``, ``is_hotfix`` and ``is_bot`` decided
    from their facts (``title``, ``body``, ``head_ref``, ``labels``, ``author``,
    ``author_is_bot``), the fact-only columns dropped.

    A connector that knows more than the text (git resolves a reverted sha to its change
    through the graph) may fill ``reverts`` or set ``is_revert``; what it set is kept.
    """
    if frame.empty:
        return frame.drop(columns=[c for c in FACT_COLUMNS if c in frame.columns])
    out = frame.copy()
    index = out.index
    title = out["title"] if "title" in out else pd.Series(pd.NA, index=index, dtype="string")
    flagged, reference = revert_flags(title, out.get("body"))
    given_reverts = out["reverts"].astype("string") if "reverts" in out else None
    given_revert = out["is_revert"].astype("boolean") if "is_revert" in out else None
    out["reverts"] = reference if given_reverts is None else given_reverts.fillna(reference)
    out["is_revert"] = (flagged | out["reverts"].notna()).astype("boolean")
    if given_revert is not None:
        out["is_revert"] = (out["is_revert"] | given_revert.fillna(False)).astype("boolean")
    out["is_hotfix"] = hotfix_flags(hotfix, title, out.get("head_ref"), out.get("labels"))
    if "author" in out:
        out["is_bot"] = bot_flags(bots, out["author"], out.get("author_is_bot"))
    return out.drop(columns=[c for c in FACT_COLUMNS if c in out.columns])


def release_lines(names: pd.Series) -> pd.Series:
    """Per name (a deployment's ref): its release line, ``"MAJOR.MINOR"`` (:data:`RELEASE_LINE`),
    or missing when the name is no version."""
    codes, uniques = pd.factorize(names.astype("string"))  # refs repeat: parse each once
    if len(uniques) == 0:
        return pd.Series(pd.NA, index=names.index, dtype="string")
    parts = pd.Series(uniques, dtype="string").str.extract(RELEASE_LINE)
    major = parts[0].str.lstrip("0").replace("", "0")
    minor = parts[1].str.lstrip("0").replace("", "0")
    lines = (major + "." + minor).astype("string").to_numpy()
    picked = pd.array(lines.take(np.maximum(codes, 0)), dtype="string")
    return pd.Series(picked, index=names.index).where(codes >= 0)


_RELEASE_NUMBERS = re.compile(r"(?i)^v?(\d+(?:\.\d+)*)(.*)$")


def release_order(names: pd.Series) -> pd.Series:
    """Per name: the rank of its release version among ``names`` (``Int64``; equal versions
    share a rank), or missing when it is no version. Versions compare by their numbers, and a
    name with anything after the numbers (``2.0.0rc1``, ``1.0.0.dev0``) ranks below the same
    numbers alone (``2.0.0``); two such suffixes of the same numbers rank alike."""
    codes, uniques = pd.factorize(names.astype("string"))
    keys: list[tuple[tuple[int, ...], int] | None] = []
    for name in uniques:
        match = _RELEASE_NUMBERS.match(str(name)) if RELEASE_LINE_RE.match(str(name)) else None
        if match is None:
            keys.append(None)
            continue
        numbers = tuple(int(part) for part in match[1].split("."))
        while len(numbers) > 1 and numbers[-1] == 0:  # 1.2 == 1.2.0
            numbers = numbers[:-1]
        keys.append((numbers, 0 if match[2] else 1))
    known = sorted({key for key in keys if key is not None})
    rank = {key: position for position, key in enumerate(known)}
    ranks = np.array([rank[key] if key is not None else -1 for key in keys] or [-1], np.int64)
    picked = np.where(codes >= 0, ranks[np.maximum(codes, 0)], -1)
    return pd.Series(pd.array(picked, dtype="Int64"), index=names.index).where(picked >= 0)


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def _joined(labels: pd.Series, index: pd.Index) -> pd.Series:
    """Each row's labels joined by spaces ("" for none): in arrow for an Arrow-backed list
    column (what a loaded dataset holds), value by value for Python lists (a frame by hand)."""
    if isinstance(labels.dtype, pd.ArrowDtype) and pa.types.is_list(labels.dtype.pyarrow_dtype):
        lists = pa.array(labels.array)
        if not pa.types.is_string(lists.type.value_type):
            lists = lists.cast(pa.list_(pa.string()))
        text = pc.binary_join(lists, " ")
        return pd.Series(pd.array(text, dtype="string"), index=index).fillna("")
    return pd.Series(
        [" ".join(map(str, value)) if _is_list(value) else "" for value in labels],
        index=index,
        dtype="string",
    )


__all__ = [
    "AUTOMATION",
    "BOT_PATTERN",
    "FACT_COLUMNS",
    "HOTFIX_PATTERN",
    "PERSON",
    "PRODUCTION_PATTERN",
    "RELEASE_LINE",
    "RELEASE_VERSION",
    "REVERT_TITLE",
    "automated_flags",
    "bot_flags",
    "classify_changes",
    "compile_pattern",
    "hotfix_flags",
    "is_bot",
    "is_hotfix",
    "is_production",
    "is_revert",
    "production_flags",
    "release_lines",
    "release_order",
    "revert_flags",
    "reverted_reference",
]
