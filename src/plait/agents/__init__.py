"""Agent backends: one module per backend, all behind `base.Backend`.

A backend named ``x`` is the module ``plait.agents.x`` holding a module-level
``BACKEND`` object that satisfies `base.Backend`. Adding a backend is adding that
module (and its name to `plait.model.BACKENDS`, which plan validation accepts);
nothing here lists the modules. They are imported lazily, on first use, so a plan
that only uses ``command`` never imports the others.

A backend may declare ``PASSTHROUGH_ENV: tuple[str, ...]``: the names of variables
its program needs from plait's environment (``ANTHROPIC_*`` is a prefix); see
`env_passthrough` and `plait.proc.child_env`.

``fake`` (`plait.agents.fake`) is a scripted in-process backend for tests. It is
not in `BACKEND_NAMES`, so a plan file cannot name it, but `get_backend("fake")`
returns it for plans built in Python.
"""

from __future__ import annotations

import importlib

from plait.agents.base import Backend
from plait.model import BACKENDS, INTERNAL_BACKENDS

#: The backends a plan may name.
BACKEND_NAMES: tuple[str, ...] = BACKENDS

#: Backends that only tests (and Python-built plans) use.


class UnknownBackend(ValueError):
    """No backend of that name exists (or its module is not installed)."""


def get_backend(name: str) -> Backend:
    """The backend called `name`: `plait.agents.<name>.BACKEND`, imported on first use.

    Raises `UnknownBackend` (a ValueError) for a name that is not a backend.
    """
    if name not in BACKEND_NAMES and name not in INTERNAL_BACKENDS:
        known = ", ".join(BACKEND_NAMES)
        raise UnknownBackend(f"unknown backend {name!r}; known backends: {known}")
    module_name = f"{__name__}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the backend exists but one of its own imports is missing
        raise UnknownBackend(f"backend {name!r} is not available in this plait") from exc
    backend: Backend | None = getattr(module, "BACKEND", None)
    if backend is None:
        raise UnknownBackend(f"{module_name} defines no BACKEND")
    return backend


def env_passthrough(backend: Backend) -> tuple[str, ...]:
    """The variable names (or ``PREFIX_*`` patterns) `backend` needs from plait's env."""
    names: tuple[str, ...] = getattr(backend, "PASSTHROUGH_ENV", ())
    return names


__all__ = [
    "BACKEND_NAMES",
    "INTERNAL_BACKENDS",
    "Backend",
    "UnknownBackend",
    "env_passthrough",
    "get_backend",
]
