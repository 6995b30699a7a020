"""How plait starts one git process: fixed options, a scrubbed environment, argv only.

Every git command plait runs goes through `run_git`, which fixes the things that
must never vary: hooks and fsmonitor are off (a repository's hooks are code that
an agent may have written), automatic gc is off (it would prune objects that
parallel workspaces are still writing), the environment is scrubbed of the
variables that redirect git to another repository or index, and arguments are
an argv list, never a shell line. The typed commands and the repository's write
lock live in `plait.git`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from plait.errors import GitError

#: Options on every git command plait runs. Hooks run nothing (`/dev/null` is not
#: a directory), fsmonitor starts no daemon, gc and maintenance never start on
#: their own, and paths are printed verbatim.
GIT_OPTIONS: tuple[str, ...] = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "gc.auto=0",
    "-c",
    "maintenance.auto=false",
    "-c",
    "core.quotePath=false",
)

#: Variables that point git at another repository, index, object store or config,
#: or change how pathspecs and refs are read. A hook or alias that starts plait
#: (or an agent) inherits them from its own git, so they are always removed.
_SCRUBBED = frozenset(
    {
        "GIT_DIR",
        "GIT_INDEX_FILE",
        "GIT_WORK_TREE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_CEILING_DIRECTORIES",
        "GIT_DISCOVERY_ACROSS_FILESYSTEM",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_GRAFT_FILE",
        "GIT_SHALLOW_FILE",
        "GIT_REPLACE_REF_BASE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_QUARANTINE_PATH",
        "GIT_INDEX_VERSION",
        "GIT_LITERAL_PATHSPECS",
        "GIT_GLOB_PATHSPECS",
        "GIT_NOGLOB_PATHSPECS",
        "GIT_ICASE_PATHSPECS",
        "GIT_OPTIONAL_LOCKS",
        "GIT_EXTERNAL_DIFF",
        "GIT_DIFF_OPTS",
        "GIT_EDITOR",
        "GIT_SEQUENCE_EDITOR",
        "GIT_PAGER",
        "GIT_REFLOG_ACTION",
        "GIT_ATTR_SOURCE",
    }
)
_SCRUBBED_PREFIXES = ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_", "GIT_TRACE")


def scrubbed_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) without git's redirecting variables."""
    source = os.environ if base is None else base
    return {
        key: value
        for key, value in source.items()
        if key not in _SCRUBBED and not key.startswith(_SCRUBBED_PREFIXES)
    }


@dataclass(frozen=True)
class GitResult:
    """What one git command printed, and how it ended."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _decode(data: bytes) -> str:
    # surrogateescape: a path that is not UTF-8 survives the round trip to argv
    return data.decode("utf-8", errors="surrogateescape")


async def run_git(
    *args: str,
    cwd: Path,
    input: bytes | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    readonly: bool = False,
) -> GitResult:
    """Run `git <args>` in `cwd` and wait for it.

    `env` adds to the scrubbed environment (it may set GIT_INDEX_FILE on
    purpose). `readonly` sets GIT_OPTIONAL_LOCKS=0 so queries such as
    `status` never take the index lock or rewrite the index. With `check`,
    a non-zero exit raises GitError.
    """
    child_env = scrubbed_env()
    child_env["GIT_TERMINAL_PROMPT"] = "0"
    # `refs/replace/` (an agent can write it) must not swap the objects plait
    # merges for others. The variable, because merge-tree ignores
    # `-c core.useReplaceRefs=false`.
    child_env["GIT_NO_REPLACE_OBJECTS"] = "1"
    if readonly:
        child_env["GIT_OPTIONAL_LOCKS"] = "0"
    if env:
        child_env.update(env)
    argv = ["git", *GIT_OPTIONS, *args]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=child_env,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(input)
    assert proc.returncode is not None
    result = GitResult(proc.returncode, _decode(out), _decode(err))
    if check and not result.ok:
        raise GitError(list(args), result.returncode, result.stderr)
    return result
