"""Which changes to a repository's git config are harmless, and may stay during a run.

plait puts back whatever an agent changes in git's own files (`gitguard`): config
can name programs git runs (`core.fsmonitor`, `core.pager`, `alias.*`, filters,
`include.path`, ...). But the user goes on working while a run does, and everyday
commands write the same file: `git remote add` and `remove`, `git push -u`, `git
checkout -b x origin/x`, `git config user.email`. A change confined to what those
commands write, none of which makes git run anything or fetch and push differently
with a remote that was there, is not put back and fails no attempt (an agent may push
anyway: a remote it adds gives it nothing it did not have).
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter

#: Keys (as `git config --list` prints them: section and name lower case) that only say
#: which upstream a branch tracks, or who commits: nothing git would run or fetch with.
TRACKING_KEYS = re.compile(
    r"branch\.[^\n]+\.(remote|pushremote|merge|rebase|description)|user\.(name|email|signingkey)"
)
_REMOTE_KEY = re.compile(r"remote\.(?P<name>[^\n]+)\.(?P<var>[^.\n]+)")


def harmless_change(before: bytes, after: bytes) -> bool:
    """True if the config `after` differs from `before` only in what everyday commands
    write: upstreams and `user.*` (`TRACKING_KEYS`), a remote added as `git remote
    add` adds it (its url and the standard fetch refspec), or a remote removed whole.
    A changed url, refspec, `mirror` or `prune` of an existing remote is not harmless:
    a fetch or push would then delete branches or send them elsewhere. False if either
    side cannot be read."""
    old, new = _entries(before), _entries(after)
    if old is None or new is None:
        return False
    added = _remotes(new) - _remotes(old)
    removed = _remotes(old) - _remotes(new)
    return _risky(old, removed, {}) == _risky(new, set(), {n: _standard(n) for n in added})


def _remotes(pairs: Counter[tuple[str, str]]) -> set[str]:
    return {m["name"] for key, _ in pairs if (m := _REMOTE_KEY.fullmatch(key))}


def _standard(name: str) -> str:
    """The fetch refspec `git remote add <name>` writes."""
    return f"+refs/heads/*:refs/remotes/{name}/*"


def _risky(
    pairs: Counter[tuple[str, str]], gone: set[str], added: dict[str, str]
) -> Counter[tuple[str, str]]:
    """The pairs that are not harmless: `gone` remotes count not at all, `added` ones
    only beyond their url and standard refspec."""

    def harmless(key: str, value: str) -> bool:
        if TRACKING_KEYS.fullmatch(key):
            return True
        remote = _REMOTE_KEY.fullmatch(key)
        if remote is None:
            return False
        name, var = remote["name"], remote["var"]
        return name in gone or (
            name in added and (var == "url" or (var == "fetch" and value == added[name]))
        )

    return Counter({pair: n for pair, n in pairs.items() if not harmless(*pair)})


def _entries(config: bytes) -> Counter[tuple[str, str]] | None:
    """The config's (key, value) pairs as git reads them; None if git cannot."""
    try:
        listed = subprocess.run(
            ["git", "config", "--file", "-", "--list", "--null"],
            input=config,
            capture_output=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:
        return None
    pairs: Counter[tuple[str, str]] = Counter()
    for item in listed.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if item:
            key, _, value = item.partition("\n")
            pairs[(key, value)] += 1
    return pairs
