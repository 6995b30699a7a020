"""A scripted agent for the end-to-end tests: it does what its prompt's `do:` lines say.

Run as `python e2e_agent.py TASK` with the prompt on standard input (plait's
`command` backend). Every prompt line that starts with `do: ` is one step, split
like a shell would (shlex, nothing is run through a shell); other lines (such as
plait's notes after a conflict) are ignored. In every argument `@` becomes the
attempt number. Steps:

    write PATH TEXT        write TEXT and a newline to PATH (folders made; may be ../x);
                           a backslash-n in TEXT is a line break
    append PATH TEXT       add TEXT and a newline to PATH
    delete PATH            remove PATH
    replace PATH OLD NEW   replace OLD by NEW in PATH (fails if OLD is missing)
    addlist PATH NAME      add NAME to the `ITEMS = [...]` line of PATH, keeping the rest
    setline PATH PREFIX V  make the line starting with PREFIX read `PREFIX V`
    sleep SECONDS
    see PATH               note PATH's content now (written to the stamp file)
    stamp DIR              at exit, write DIR/TASK-ATTEMPT.json: start, end, seen files
    flag DIR NAME          create DIR/NAME
    waitflag DIR NAME      wait (up to 30 s) until DIR/NAME exists
    waittip PATH TEXT      wait (up to 30 s) until PATH on plait/<run> contains TEXT
    git ARGS...            run git in the workspace (hooks off: only plait is on trial)
    hook NAME CANARY       write an executable hook NAME into the shared git dir's hooks
    rmdotgit               delete the workspace's .git file
    fail                   exit 1
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

WAIT_S = 30.0
STARTED = time.time()


def git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def wait_for(check: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def tip_has(path: str, text: str) -> bool:
    result = subprocess.run(
        ["git", "show", f"plait/{os.environ['PLAIT_RUN_ID']}:{path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0 and text in result.stdout


def write(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def step(words: list[str], seen: dict[str, str | None], stamps: list[str]) -> None:
    op, args = words[0], words[1:]
    text = " ".join(args[1:]).replace("\\n", "\n")
    if op == "write":
        write(args[0], text + "\n")
    elif op == "append":
        with open(args[0], "a", encoding="utf-8") as f:
            f.write(text + "\n")
    elif op == "delete":
        Path(args[0]).unlink()
    elif op == "replace":
        text = Path(args[0]).read_text(encoding="utf-8")
        if args[1] not in text:
            raise SystemExit(f"{args[0]} does not contain {args[1]!r}")
        write(args[0], text.replace(args[1], args[2]))
    elif op == "addlist":
        text = Path(args[0]).read_text(encoding="utf-8")
        found = re.search(r"^ITEMS = \[(.*)\]$", text, flags=re.MULTILINE)
        if found is None:
            raise SystemExit(f"{args[0]} has no ITEMS line")
        names = [n.strip().strip('"') for n in found.group(1).split(",") if n.strip()]
        names += [] if args[1] in names else [args[1]]
        line = "ITEMS = [" + ", ".join(f'"{n}"' for n in names) + "]"
        write(args[0], text[: found.start()] + line + text[found.end() :])
    elif op == "setline":
        lines = Path(args[0]).read_text(encoding="utf-8").splitlines()
        lines = [f"{args[1]} {args[2]}" if ln.startswith(args[1]) else ln for ln in lines]
        write(args[0], "\n".join(lines) + "\n")
    elif op == "sleep":
        time.sleep(float(args[0]))
    elif op == "see":
        path = Path(args[0])
        seen[args[0]] = path.read_text(encoding="utf-8") if path.exists() else None
    elif op == "stamp":
        stamps.append(args[0])
    elif op == "flag":
        Path(args[0], args[1]).touch()
    elif op == "waitflag":
        wait_for(lambda: Path(args[0], args[1]).exists(), f"flag {args[1]}")
    elif op == "waittip":
        wait_for(lambda: tip_has(args[0], args[1]), f"{args[1]!r} in {args[0]}")
    elif op == "git":
        git(*args)
    elif op == "hook":
        common = Path(git("rev-parse", "--path-format=absolute", "--git-common-dir").strip())
        hook = common / "hooks" / args[0]
        hook.parent.mkdir(exist_ok=True)
        hook.write_text(f"#!/bin/sh\necho evil >> {shlex.quote(args[1])}\n")
        hook.chmod(0o755)
    elif op == "rmdotgit":
        Path(".git").unlink()
    elif op == "fail":
        raise SystemExit(1)
    else:
        raise SystemExit(f"e2e agent: unknown step {op!r}")


def main() -> int:
    task = sys.argv[1]
    attempt = os.environ.get("PLAIT_ATTEMPT", "0")
    seen: dict[str, str | None] = {}
    stamps: list[str] = []
    for line in sys.stdin.read().splitlines():
        if line.startswith("do: "):
            words = [w.replace("@", attempt) for w in shlex.split(line[4:])]
            step(words, seen, stamps)
    record = {"task": task, "attempt": int(attempt), "start": STARTED, "end": time.time()}
    for folder in stamps:
        Path(folder, f"{task}-{attempt}.json").write_text(json.dumps({**record, "seen": seen}))
    print(f"{task} done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
