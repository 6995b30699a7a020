"""`<program> --version`, asked once per program per process, and read.

A backend states the oldest version whose flags and output shapes it relies on;
`CliBackend.check` compares. The answer is cached by the program's resolved path,
so `plait agents`, the pre-run check and every attempt share one probe.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class VersionProbe:
    """What `<program> --version` printed, once per resolved path."""

    text: str
    version: tuple[int, ...] | None
    failure: str | None = None


_probes: dict[str, VersionProbe] = {}
_probes_lock = threading.Lock()


def parse_version(text: str) -> tuple[int, ...] | None:
    """The first dotted version number in `text` (``2026.01.28-fd13201`` → (2026, 1, 28))."""
    match = _VERSION.search(text)
    if not match:
        return None
    return tuple(int(g) for g in match.groups() if g is not None)


def probe_version(path: str) -> VersionProbe:
    """Run `<path> --version` once per process and remember the answer."""
    with _probes_lock:
        cached = _probes.get(path)
    if cached is not None:
        return cached
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [path, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
        text = (done.stdout.strip() or done.stderr.strip()).splitlines()
        first = text[0] if text else ""
        failure = None if done.returncode == 0 else f"exit code {done.returncode}: {first}"
        probe = VersionProbe(first, parse_version(first), failure)
    except (OSError, subprocess.TimeoutExpired) as exc:
        probe = VersionProbe("", None, str(exc))
    with _probes_lock:
        _probes[path] = probe
    return probe


def forget_versions() -> None:
    """Drop the cached `--version` answers (after an upgrade, and in tests)."""
    with _probes_lock:
        _probes.clear()


def dotted(version: Sequence[int]) -> str:
    return ".".join(str(v) for v in version)
