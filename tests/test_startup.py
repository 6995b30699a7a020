"""Start-up: what `plait run --json` and the engine's modules import, in a fresh process.

Each check runs a new interpreter, so what was imported is exactly what the code path
needs (the test process itself has everything loaded).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("jinja2", "rich", "pydantic", "statistics")

PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded(body: str, cwd: Path, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    code = PROBE.format(body=body, heavy=heavy)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_the_engine_imports_no_template_display_or_model_library(tmp_path: Path) -> None:
    assert _loaded("import plait.cli, plait.session, plait.resume", tmp_path) == []


def test_run_json_without_templates_needs_neither_jinja_nor_rich(tmp_path: Path) -> None:
    plan = tmp_path / "plait.yaml"
    plan.write_text(
        "version: 1\nisolation: none\nagents:\n  t:\n    backend: command\n"
        f"    command: [{json.dumps(sys.executable)}, -c, 'pass']\n"
        "tasks:\n  a:\n    agent: t\n    prompt: go\n  b:\n    agent: t\n    prompt: go\n"
        "    needs: a\n",
        encoding="utf-8",
    )
    body = (
        "import os, plait.cli\n"
        f"os.environ['PLAIT_HOME'] = {str(tmp_path / 'home')!r}\n"
        "code = plait.cli.main(['run', 'plait.yaml', '--json'])\n"
        "assert code == 0, code\n"
    )
    # pydantic reads the plan; Jinja and rich stay out.
    assert _loaded(body, tmp_path) == ["pydantic"]


def test_plan_with_no_state_yet_opens_no_database(tmp_path: Path) -> None:
    plan = tmp_path / "plait.yaml"
    plan.write_text(
        "version: 1\nagents:\n  t:\n    backend: command\n    command: ['true']\n"
        "tasks:\n  a:\n    agent: t\n    prompt: go\n",
        encoding="utf-8",
    )
    body = (
        "import os, plait.cli\n"
        f"os.environ['PLAIT_HOME'] = {str(tmp_path / 'home')!r}\n"
        "assert plait.cli.main(['plan', 'plait.yaml', '--json']) == 0\n"
    )
    assert _loaded(body, tmp_path, ("sqlite3", "plait.store")) == []
