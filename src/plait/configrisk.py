"""Which changes to a repository's git config are harmless, and may stay during a run.

plait puts back whatever an agent changes in git's own files (`gitguard`): config
can name programs git runs (`core.fsmonitor`, `core.pager`, `alias.*`, filters,
`include.path`, ...). But the user goes on working while a run does, and everyday
commands write the same file: `git remote add`, `git push -u`, `git checkout -b x
origin/x`, `git submodule init`. A change confined to the keys those commands write,
none of which makes git run anything, is not put back and fails no attempt (an agent
may push anyway: a remote it adds gives it nothing it did not have).
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter

#: Keys (as `git config --list` prints them: section and name lower case) that name
#: where to fetch and push and how branches track, and nothing git would run. Not
#: `remote.*.uploadpack`/`receivepack`/`vcs`, `branch.*.mergeoptions` or
#: `submodule.*.update`: each can make git run a program.
HARMLESS_KEYS = re.compile(
    r"remote\.[^\n]+\.(url|pushurl|fetch|push|tagopt|prune|prunetags|mirror|skipdefaultupdate"
    r"|skipfetchall)"
    r"|branch\.[^\n]+\.(remote|pushremote|merge|rebase|description)"
    r"|submodule\.[^\n]+\.(url|active|branch)"
    r"|user\.(name|email|signingkey)"
)


def harmless_change(before: bytes, after: bytes) -> bool:
    """True if the config `after` differs from `before` only in `HARMLESS_KEYS` (and
    in layout: comments, order of sections). False if either cannot be read."""
    old, new = _entries(before), _entries(after)
    if old is None or new is None:
        return False
    return _risky(old) == _risky(new)


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


def _risky(pairs: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    return Counter({pair: n for pair, n in pairs.items() if not HARMLESS_KEYS.fullmatch(pair[0])})
