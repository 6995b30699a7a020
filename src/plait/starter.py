"""The commented starter plan that `plait init` writes.

It is a valid plan as it stands: its agents are small `command` scripts, so
`plait plan` and `plait run` work before any API key is set up. The comments show
how to switch each role to a real coding agent.
"""

from __future__ import annotations

import os
from pathlib import Path

from plait import errors
from plait.model import BACKENDS

__all__ = ["PROFILE_BACKENDS", "STARTER_PLAN", "check_init"]

#: The backends `plait init --backend` writes profiles for: the coding-agent CLIs.
#: `command` and `python` agents are a program or a function, defined in the plan.
PROFILE_BACKENDS = tuple(b for b in BACKENDS if b not in ("python", "command"))


def check_init(backend: str, here: Path, *, force: bool) -> None:
    """A usage error (exit 2) when `plait init` should write nothing: a backend it
    writes no profiles for, or a plan already in a folder above `here` (in the same
    repository), which plait's commands here would use, unless `force`."""
    if backend not in PROFILE_BACKENDS:
        names = ", ".join(PROFILE_BACKENDS)
        if backend == "command":
            raise errors.UsageError(
                "--backend command: init writes agent profiles for the coding-agent CLIs, "
                f"one of {names}; a command agent is a program of yours, defined in the "
                "plan under `agents:` (as the starter plan's scribe)"
            )
        if backend in BACKENDS:  # python: a callable, from the library API only
            raise errors.UsageError(
                f"--backend {backend}: init writes agent profiles for the coding-agent CLIs, "
                f"one of {names}"
            )
        raise errors.UsageError(f"--backend {backend!r} is not a backend; use one of {names}")
    from plait.planfind import find_plan

    above = find_plan(here)
    if above is not None and above.parent != here.absolute() and not force:
        # A second plan here would hide that one from every command run in this folder.
        shown = os.path.relpath(above, here)
        raise errors.UsageError(
            f"{shown} is this repository's plan already (`plait plan` and `plait run` "
            "here use it): edit that one, or use `plait init --force` to start a separate "
            "plan in this folder"
        )


STARTER_PLAN = """\
# plait.yaml: tasks for coding agents, run in parallel on this git repository.
#
#   plait plan    shows what runs side by side, what waits and why, and how long it takes
#   plait run     runs it: each task in its own git worktree, merged one by one
#   plait schema  prints every field, for your editor
#
# Task ids use lowercase letters, digits, '-' and '_'.

version: 1
name: starter
# base: main              # the ref every run starts from (default: HEAD)
jobs: 4                   # agents at once; `plait run -j N` overrides

defaults:                 # any task field, used where a task does not set it
  agent: scribe
  timeout: 10m            # 90s, 30m, 2h, 1h30m, or a number of seconds
  retries: 1              # extra attempts after a failure

# setup:                  # run in each new workspace before its agent
#   - ["npm", "ci"]
# copy: [".env"]          # untracked files copied from your checkout into each workspace

# Runs on the merged result after the last task; a string runs through /bin/sh.
verify: "test -f notes/contract.md && test -f notes/server.md && test -f notes/client.md"

agents:
  # A stand-in that needs no API key: it saves its prompt as notes/<task>.md.
  # To use a real coding agent, replace every line under `scribe:` down to `tasks:`
  # (`backend:` and the whole `command:` entry with its script) with, e.g.:
  #   backend: claude       # or codex, gemini, aider, cursor, opencode, amp
  #   model: sonnet
  #   instructions: You are a careful engineer. Keep changes small.
  # Profiles in .claude/agents/<name>.md or .plait/agents/<name>.md work too.
  scribe:
    backend: command
    command:              # an argv list; the prompt arrives on standard input
      - python3
      - -c
      - |
        import os, pathlib, sys
        note = pathlib.Path("notes", os.environ["PLAIT_TASK_ID"] + ".md")
        note.parent.mkdir(exist_ok=True)
        note.write_text(sys.stdin.read())
        print(f"wrote {note}")

tasks:
  contract:
    prompt: |
      Write the API contract for a small to-do service in notes/contract.md:
      endpoints, request and response shapes, and error codes.
    writes: ["notes/contract.md"]   # globs from the repository root; `**` crosses folders
    estimate: 5m                    # used for `plait plan` until there is run history

  # The next three start together as soon as the contract is merged.
  server:
    # {{ tasks.contract.output }} pastes the contract task's output here,
    # and makes `server` wait for `contract`.
    prompt: |
      Implement the server side of this contract:
      {{ tasks.contract.output }}
    writes: ["notes/server.md"]
    estimate: 10m

  client:
    needs: contract                 # a task id, or a list of them
    prompt: Implement a client for the contract in notes/contract.md.
    writes: ["notes/client.md"]
    reads: ["notes/contract.md"]    # reading what another task writes also orders them
    estimate: 8m

  tests:
    needs: [contract]
    prompt: Write tests for the contract in notes/contract.md.
    writes: ["notes/tests.md"]
    verify: ["test", "-s", "notes/tests.md"]  # checked in the task's workspace before merging
    timeout: 5m
    estimate: 6m
    # env: {LOG_LEVEL: debug}       # extra environment variables for the agent
    # continue_on_error: true       # a failure here does not fail the run
"""
