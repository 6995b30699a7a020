"""A child's environment: what plait passes on to the programs it starts, and what never.

Agents get an environment built from an allowlist (DESIGN §6), the variables their
backend needs, the plan's `env`, and plait's own variables; never what would point
git somewhere else or let an agent forge the marker that finds its escaped processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from plait.procsweep import MARKER_VAR

#: Variables copied from plait's own environment into every child's.
ENV_ALLOWLIST: tuple[str, ...] = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "TMPDIR",
    "USER",
    "LOGNAME",
    "TZ",
    "SHELL",
    # Behind a corporate proxy an agent reaches its vendor's API only through these; the
    # lower-case spellings are the ones curl and many CLIs read first.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    # A proxy that inspects TLS signs with its own CA: without the bundle that trusts
    # it, OpenSSL (SSL_*), Node (the npm-installed CLIs), Python requests/httpx and
    # curl all refuse the connection.
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)

#: Variables that point git somewhere else or inject configuration: never passed on,
#: from any source, or an agent could reach the main repository from its worktree.
GIT_SCRUBBED: frozenset[str] = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_QUARANTINE_PATH",
    }
)
_GIT_SCRUBBED_PREFIXES = ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")

_EMPTY: Mapping[str, str] = MappingProxyType({})


def scrubbed(name: str) -> bool:
    """True for a variable `child_env` never passes on (git redirection, the marker)."""
    return name in GIT_SCRUBBED or name.startswith(_GIT_SCRUBBED_PREFIXES) or name == MARKER_VAR


def child_env(
    plait_vars: Mapping[str, str],
    extra: Mapping[str, str] = _EMPTY,
    passthrough: Iterable[str] = (),
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A child's whole, minimal environment.

    The `ENV_ALLOWLIST` names and the `passthrough` names (what a backend needs, e.g.
    ANTHROPIC_API_KEY; ``ANTHROPIC_*`` is a prefix) that are set in `base` (default:
    `os.environ`), then `extra` (the plan's `env`, which may override those), then
    `plait_vars`, which nothing overrides. `GIT_SCRUBBED` variables and `PLAIT_MARKER`
    are dropped from every source (`run_process` sets the marker itself).
    """
    source: Mapping[str, str] = os.environ if base is None else base
    env: dict[str, str] = {}
    names = [*ENV_ALLOWLIST]
    for wanted in passthrough:
        if wanted.endswith("*"):
            names.extend(sorted(n for n in source if n.startswith(wanted[:-1])))
        else:
            names.append(wanted)
    for name in names:
        value = source.get(name)
        if value is not None and not scrubbed(name):
            env[name] = value
    for mapping in (extra, plait_vars):
        for name, value in mapping.items():
            if not scrubbed(name):
                env[name] = value
    return env
