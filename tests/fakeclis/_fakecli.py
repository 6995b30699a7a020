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


def record(extra: Mapping[str, object] | None = None) -> None:
    data = sys.stdin.buffer.read()
    path = os.environ.get("FAKECLI_RECORD")
    if not path:
        return
    doc: dict[str, object] = {
        "argv": sys.argv[1:],
        "stdin_b64": base64.b64encode(data).decode("ascii"),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
    }
    doc.update(extra or {})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)


def j(obj: object) -> str:
    """One JSON line, non-ASCII left as UTF-8 the way Node's JSON.stringify prints it."""
    return json.dumps(obj, ensure_ascii=False)


def long_text() -> str:
    """A final message well past proc's 64 KiB line split, with multi-byte text."""
    return "FINAL: " + " ".join(["long answer é€ 🙂"] * 9000)


def main(
    default_version: str,
    scripts: Callable[[str], Script],
    extra: Callable[[], Mapping[str, object]] | None = None,
) -> None:
    if "--version" in sys.argv[1:]:
        print(os.environ.get("FAKECLI_VERSION", default_version))
        return
    record(extra() if extra else None)
    mode = os.environ.get("FAKECLI_MODE", "success")
    if mode == "hang":
        time.sleep(600)
        return
    out, err, code = scripts(mode)
    for line in out:  # bytes: the output must not depend on the child's locale
        sys.stdout.buffer.write(line.encode("utf-8") + b"\n")
        sys.stdout.buffer.flush()
    for line in err:
        sys.stderr.buffer.write(line.encode("utf-8") + b"\n")
    sys.stderr.buffer.flush()
    sys.exit(code)
