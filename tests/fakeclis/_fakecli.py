"""Shared body of the fake agent CLIs in this folder (stdlib only).

Each fake (``claude``, ``codex``, ...) is a tiny script that calls `main` with the
lines it prints per mode. A fake:

- answers ``--version`` with ``$FAKECLI_VERSION`` (else its default version);
- records its argv, standard input (base64, byte-exact), working directory and whole
  environment as JSON into the file named by ``$FAKECLI_RECORD``; aider's fake also
  records the content of its ``--message-file``;
- prints the output of mode ``$FAKECLI_MODE`` (``success`` by default): ``success``,
  ``error`` (an error result, exit 0 unless the mode table says otherwise),
  ``ratelimit``, ``malformed`` (junk lines around a success), ``long`` (a final
  message over 64 KiB), ``hang`` (sleeps until killed);
- writes the canary file named by ``$FAKECLI_CANARY`` never: a test checks that
  nothing ran the prompt's ``$(touch ...)`` either.

Knobs for run-level tests (all optional; unset, the fakes behave as above):

- ``$FAKECLI_MODES``: comma-separated modes, one per invocation in turn (the last one
  repeats), counted in the file ``$FAKECLI_COUNTER`` (``ratelimit,success``: refused
  once, then fine); the record then also holds ``invocation`` (0-based);
- ``$FAKECLI_WRITE``: ``:``-separated paths (relative to the cwd) the fake writes,
  with ``$FAKECLI_WRITE_TEXT`` (default: who wrote it, and which attempt);
- ``$FAKECLI_SLEEP``: seconds to wait before printing;
- ``$FAKECLI_RESULT``: the final message (default ``FINAL: done``);
- ``$FAKECLI_COST``: the cost a fake that reports one reports;
- ``$FAKECLI_RESET_S``: how soon the rate-limit output says to try again.

A fake may also have a `gate`: what its real program checks before doing any work (a
workspace it must be told to trust, its own upgrade, root). A gate that refuses prints
what the real program prints and exits with its code, after recording, before writing.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Callable, Mapping

#: mode → (stdout lines, stderr lines, exit code)
Script = tuple[list[str], list[str], int]


def record(extra: Mapping[str, object] | None = None, invocation: int = 0) -> None:
    data = sys.stdin.buffer.read()
    path = os.environ.get("FAKECLI_RECORD")
    if not path:
        return
    doc: dict[str, object] = {
        "argv": sys.argv[1:],
        "stdin_b64": base64.b64encode(data).decode("ascii"),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "invocation": invocation,
        "pid": os.getpid(),
    }
    doc.update(extra or {})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)


def j(obj: object) -> str:
    """One JSON line, non-ASCII left as UTF-8 the way Node's JSON.stringify prints it."""
    return json.dumps(obj, ensure_ascii=False)


def final_text() -> str:
    """The final message a successful fake reports."""
    return os.environ.get("FAKECLI_RESULT", "FINAL: done")


def cost(default: float) -> float:
    """The cost a fake reports (``$FAKECLI_COST`` overrides its canned figure)."""
    return float(os.environ.get("FAKECLI_COST", default))


def reset_s() -> float | None:
    """``$FAKECLI_RESET_S``: seconds until the announced rate-limit reset, if set."""
    value = os.environ.get("FAKECLI_RESET_S")
    return float(value) if value else None


def _invocation() -> int:
    """This invocation's number (0-based), counted in ``$FAKECLI_COUNTER``."""
    path = os.environ.get("FAKECLI_COUNTER")
    if not path:
        return 0
    try:
        with open(path, encoding="utf-8") as f:
            n = int(f.read().strip() or 0)
    except FileNotFoundError:
        n = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(str(n + 1))
    return n


def _mode(invocation: int) -> str:
    modes = [m.strip() for m in os.environ.get("FAKECLI_MODES", "").split(",") if m.strip()]
    if modes:
        return modes[min(invocation, len(modes) - 1)]
    return os.environ.get("FAKECLI_MODE", "success")


def _write_files() -> None:
    names = [n for n in os.environ.get("FAKECLI_WRITE", "").split(":") if n]
    who = os.path.basename(sys.argv[0])
    text = os.environ.get(
        "FAKECLI_WRITE_TEXT", f"written by {who}, attempt {os.environ.get('PLAIT_ATTEMPT')}\n"
    )
    for name in names:
        path = os.path.join(os.getcwd(), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def long_text() -> str:
    """A final message well past proc's 64 KiB line split, with multi-byte text."""
    return "FINAL: " + " ".join(["long answer é€ 🙂"] * 9000)


def _emit(script: Script) -> None:
    out, err, code = script
    for line in out:  # bytes: the output must not depend on the child's locale
        sys.stdout.buffer.write(line.encode("utf-8") + b"\n")
        sys.stdout.buffer.flush()
    for line in err:
        sys.stderr.buffer.write(line.encode("utf-8") + b"\n")
    sys.stderr.buffer.flush()
    sys.exit(code)


def main(
    default_version: str,
    scripts: Callable[[str], Script],
    extra: Callable[[], Mapping[str, object]] | None = None,
    gate: Callable[[], Script | None] | None = None,
) -> None:
    if "--version" in sys.argv[1:]:
        print(os.environ.get("FAKECLI_VERSION", default_version))
        return
    invocation = _invocation()
    record(extra() if extra else None, invocation)
    refused = gate() if gate else None
    if refused is not None:
        _emit(refused)
    mode = _mode(invocation)
    _write_files()
    if os.environ.get("FAKECLI_SLEEP"):
        time.sleep(float(os.environ["FAKECLI_SLEEP"]))
    if mode == "hang":
        time.sleep(600)
        return
    _emit(scripts(mode))
