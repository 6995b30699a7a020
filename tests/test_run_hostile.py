"""Hostile agents and hostile prompts through a real `plait run`.

Agents that fail, crash, hang, ignore SIGTERM, escape their process group, flood
stdout or do nothing each end with the right outcome and attempt count; their
dependants are skipped; no process of the run survives it. Prompts full of shell
syntax reach the agent byte for byte and never a shell.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult, PlaitProc, agent_cmd, write_plan
from gitrepo import GitRepo
from plait.proc import DEFAULT_LOG_CAP, MARKER_VAR, kill_marked

Cli = Callable[..., CliResult]


def marked_processes(run_id: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose environment carries the run's marker."""
    needle = f"\0{MARKER_VAR}={run_id}/".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = b"\0" + f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in environ:
            found.append((int(name), cmdline))
    return found


def assert_no_survivors(run_id: str) -> None:
    """No process of the run is alive (a short wait lets SIGKILLed ones be reaped)."""
    deadline = time.monotonic() + 2.0
    while (left := marked_processes(run_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], f"processes of run {run_id} survived it: {left}"


def test_the_survivor_scan_sees_a_marked_process() -> None:
    """The scan the tests below rely on finds a live process by its marker prefix."""
    import subprocess

    env = {**os.environ, MARKER_VAR: "20990101-000000-test/t/1"}
    sleeper = subprocess.Popen(["sleep", "30"], env=env, start_new_session=True)
    try:
        assert [pid for pid, _ in marked_processes("20990101-000000-test")] == [sleeper.pid]
        assert marked_processes("20990101-000000-tes") == []  # a prefix ends with "/"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert marked_processes("20990101-000000-test") == []


@pytest.fixture
def sweep_runs() -> Iterator[list[str]]:
    """Run ids to clean up after the test, so a failing test leaks no sleepers."""
    run_ids: list[str] = []
    yield run_ids
    for run_id in run_ids:
        kill_marked(f"{run_id}/", prefix=True)


def status_json(cli: Cli, cwd: Path, run_id: str | None = None) -> dict[str, Any]:
    result = cli("status", *([run_id] if run_id else []), "--json", cwd=cwd)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def tasks_of(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in status["tasks"]}


def agents_yaml(agents: dict[str, list[str]]) -> str:
    lines = ["agents:"]
    for name, argv in agents.items():
        lines += [f"  {name}:", "    backend: command", f"    command: {json.dumps(argv)}"]
    return "\n".join(lines) + "\n"


HOSTILE_AGENTS = {
    "exit3": agent_cmd("hostile.py", "exit", "3"),
    "segv": agent_cmd("hostile.py", "signal"),
    "hang": agent_cmd("hostile.py", "hang"),
    "noterm": agent_cmd("hostile.py", "ignore-term"),
    "escape": agent_cmd("escape.py"),
    "flood": agent_cmd("hostile.py", "flood", "50"),
    "nothing": agent_cmd("hostile.py", "nothing"),
    "writer": agent_cmd("stamp.py"),
}


def hostile_plan(rec: Path, isolation: str) -> str:
    failing = {
        "exits": "agent: exit3\n    retries: 2",
        "crashes": "agent: segv\n    retries: 1",
        "hangs": "agent: hang\n    timeout: 2s",
        "stubborn": "agent: noterm\n    timeout: 2s",
    }
    tasks = ["tasks:"]
    for task, body in failing.items():
        tasks += [f"  {task}:", f"    {body}", "    prompt: misbehave"]
        tasks += [
            f"  after-{task}:",
            "    agent: writer",
            f"    needs: {task}",
            "    prompt: write a file",
            f'    env: {{REC_DIR: "{rec}"}}',
        ]
    tasks += [
        "  escapes: {agent: escape, prompt: leave sleepers behind}",
        "  floods: {agent: flood, prompt: talk a lot, timeout: 60s}",
        "  idle: {agent: nothing, prompt: do nothing}",
        "  after-idle:",
        "    agent: writer",
        "    needs: idle",
        "    prompt: write a file",
        f'    env: {{REC_DIR: "{rec}"}}',
    ]
    return (
        f"version: 1\nname: hostile\nisolation: {isolation}\njobs: 8\n"
        + agents_yaml(HOSTILE_AGENTS)
        + "\n".join(tasks)
        + "\n"
    )


def check_hostile_outcomes(status: dict[str, Any], home: Path, worktree: bool) -> None:
    tasks = tasks_of(status)
    expected = {
        "exits": ("failed", 3),  # 1 + retries 2
        "crashes": ("failed", 2),  # 1 + retries 1
        "hangs": ("failed", 1),
        "stubborn": ("failed", 1),
        "escapes": ("succeeded", 1),
        "floods": ("succeeded", 1),
        "idle": ("succeeded", 1),
        "after-idle": ("succeeded", 1),
        "after-exits": ("skipped", 0),
        "after-crashes": ("skipped", 0),
        "after-hangs": ("skipped", 0),
        "after-stubborn": ("skipped", 0),
    }
    got = {t: (tasks[t]["status"], tasks[t]["attempts"]) for t in expected}
    assert got == expected
    assert "code 3" in tasks["exits"]["error"]
    assert "SIGSEGV" in tasks["crashes"]["error"]
    assert "timed out after 2s" in tasks["hangs"]["error"]
    assert "timed out after 2s" in tasks["stubborn"]["error"]
    assert "SIGKILL" in tasks["stubborn"]["error"]  # SIGTERM was ignored
    for skipped in ("after-exits", "after-crashes", "after-hangs", "after-stubborn"):
        assert tasks[skipped]["started_at"] is None
    # Doing nothing succeeds with nothing to merge.
    for quiet in ("idle", "escapes", "floods"):
        assert tasks[quiet]["merged"] is False and tasks[quiet]["commit"] is None
        assert tasks[quiet]["changed_files"] == []
    if worktree:
        assert tasks["after-idle"]["merged"] is True
        assert tasks["after-idle"]["changed_files"] == ["after-idle.txt"]
    # The flood: the log is capped, the task's output (stdout) is capped too.
    log = home / "runs" / status["run"] / "floods.1.log"
    size = log.stat().st_size
    assert DEFAULT_LOG_CAP <= size <= DEFAULT_LOG_CAP + 4096, size
    assert b"log truncated" in log.read_bytes()[-200:]
    flood = tasks["floods"]["output"]  # its first MiB, and a note that it was cut
    assert flood.endswith("[plait: the output was cut here, at its first 1 MiB]")
    assert len(flood) <= 1024 * 1024 + 100


@pytest.mark.slow
def test_hostile_agents_in_worktrees(
    repo: GitRepo,
    cli: Cli,
    plait_proc: PlaitProc,
    plait_home: Path,
    tmp_path: Path,
    sweep_runs: list[str],
) -> None:
    rec = tmp_path / "rec"
    write_plan(repo.path / "plait.yaml", hostile_plan(rec, "worktree"))
    repo.commit("plan")
    base = repo.head()
    started = time.monotonic()
    done = plait_proc("run", "--json", cwd=repo.path, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    status = json.loads(done.stdout)
    sweep_runs.append(status["run"])
    assert status["status"] == "failed"
    check_hostile_outcomes(status_json(cli, repo.path), plait_home, worktree=True)
    assert_no_survivors(status["run"])
    # Only after-idle's file reached the integration branch; the user's branch is untouched.
    branch = status["branch"]
    assert repo.git("diff", "--name-only", base, branch).split() == ["after-idle.txt"]
    assert repo.head("main") == base
    # SIGTERM-ignoring agent: 2 s timeout + 5 s grace; everything ran side by side.
    assert elapsed < 60


def test_hostile_agents_in_place(
    tmp_path: Path,
    cli: Cli,
    plait_proc: PlaitProc,
    plait_home: Path,
    sweep_runs: list[str],
) -> None:
    """isolation: none, outside any git repository: the same kills and caps apply."""
    work = tmp_path / "plain"
    work.mkdir()
    agents = {k: HOSTILE_AGENTS[k] for k in ("hang", "escape", "flood", "exit3", "writer")}
    text = (
        "version: 1\nname: hostile-in-place\nisolation: none\njobs: 4\n"
        + agents_yaml(agents)
        + "tasks:\n"
        "  hangs: {agent: hang, prompt: hang, timeout: 2s}\n"
        "  escapes: {agent: escape, prompt: escape}\n"
        "  floods: {agent: flood, prompt: flood, timeout: 60s}\n"
        "  exits: {agent: exit3, prompt: fail, retries: 1}\n"
        "  after: {agent: writer, prompt: x, needs: [hangs, exits],"
        f' env: {{REC_DIR: "{tmp_path}"}}}}\n'
    )
    write_plan(work / "plait.yaml", text)
    done = plait_proc("run", "--json", cwd=work, timeout=90)
    assert done.returncode == 1, done.stderr
    status = json.loads(done.stdout)
    sweep_runs.append(status["run"])
    tasks = tasks_of(status)
    got = {t: (v["status"], v["attempts"]) for t, v in tasks.items()}
    assert got == {
        "hangs": ("failed", 1),
        "escapes": ("succeeded", 1),
        "floods": ("succeeded", 1),
        "exits": ("failed", 2),
        "after": ("skipped", 0),
    }
    assert "timed out" in tasks["hangs"]["error"]
    assert_no_survivors(status["run"])
    log = plait_home / "runs" / status["run"] / "floods.1.log"
    assert log.stat().st_size <= DEFAULT_LOG_CAP + 4096
    assert not (work / ".git").exists()
    assert sorted(p.name for p in work.iterdir()) == ["plait.yaml"]


# --- fail-fast and continue_on_error --------------------------------------------------


def test_fail_fast_cancels_the_rest(
    repo: GitRepo, cli: Cli, tmp_path: Path, sweep_runs: list[str]
) -> None:
    rec = tmp_path / "rec"
    text = (
        "version: 1\nname: ff\n"
        + agents_yaml({"bad": agent_cmd("hostile.py", "exit", "1"), "w": agent_cmd("stamp.py")})
        + "tasks:\n"
        f'  slow: {{agent: w, prompt: x, env: {{SLEEP: "1.5", REC_DIR: "{rec}"}}}}\n'
        "  bad: {agent: bad, prompt: x}\n"
        f'  after-slow: {{agent: w, prompt: x, needs: slow, env: {{REC_DIR: "{rec}"}}}}\n'
        f'  queued: {{agent: w, prompt: x, env: {{REC_DIR: "{rec}"}}}}\n'
        f'  after-bad: {{agent: w, prompt: x, needs: bad, env: {{REC_DIR: "{rec}"}}}}\n'
    )
    write_plan(repo.path / "plait.yaml", text)
    repo.commit("plan")
    # -j 2: slow and bad start (highest critical path first), queued waits for a slot.
    result = cli("run", "-j", "2", "--fail-fast", "--json", cwd=repo.path)
    assert result.code == 1, result.err
    status = json.loads(result.out)
    sweep_runs.append(status["run"])
    got = {t["id"]: (t["status"], t["attempts"]) for t in status["tasks"]}
    assert got["bad"] == ("failed", 1)
    # Not yet started when bad failed: cancelled (its dependant too), never run.
    assert got["after-slow"] == ("cancelled", 0)
    assert got["queued"] == ("cancelled", 0)
    queued = next(t for t in status["tasks"] if t["id"] == "queued")
    assert queued["error"] == "not started: a task failed, and --fail-fast stops the run"
    assert got["after-bad"][0] in ("skipped", "cancelled") and got["after-bad"][1] == 0
    # The task already running when the failure came is cancelled too (DESIGN §4.10
    # "cancels the rest"): its agent is stopped as on a timeout, nothing more starts.
    assert got["slow"] == ("cancelled", 1)
    assert not {"queued.json", "after-slow.json"} & {p.name for p in rec.glob("*")}
    assert status["status"] == "failed"

    # Without --fail-fast the same plan runs everything the failure does not block.
    again = cli("run", "-j", "2", "--json", cwd=repo.path)
    assert again.code == 1
    later = {t["id"]: t["status"] for t in json.loads(again.out)["tasks"]}
    assert later == {
        "slow": "succeeded",
        "bad": "failed",
        "after-slow": "succeeded",
        "queued": "succeeded",
        "after-bad": "skipped",
    }


def test_continue_on_error_does_not_fail_the_run(repo: GitRepo, cli: Cli, tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    text = (
        "version: 1\nname: coe\n"
        + agents_yaml({"bad": agent_cmd("hostile.py", "exit", "2"), "w": agent_cmd("stamp.py")})
        + "tasks:\n"
        "  optional: {agent: bad, prompt: x, continue_on_error: true, retries: 1}\n"
        f'  needs-optional: {{agent: w, prompt: x, needs: optional, env: {{REC_DIR: "{rec}"}}}}\n'
        f'  fine: {{agent: w, prompt: x, env: {{REC_DIR: "{rec}"}}}}\n'
    )
    write_plan(repo.path / "plait.yaml", text)
    repo.commit("plan")
    result = cli("run", "--json", cwd=repo.path)
    assert result.code == 0, result.out + result.err
    status = json.loads(result.out)
    assert status["status"] == "succeeded"
    got = {t["id"]: (t["status"], t["attempts"]) for t in status["tasks"]}
    assert got == {
        "optional": ("failed", 2),
        "needs-optional": ("skipped", 0),
        "fine": ("succeeded", 1),
    }
    assert sorted(p.name for p in rec.iterdir()) == ["fine.json"]


# --- hostile prompt text --------------------------------------------------------------


def hostile_prompt(canary: Path) -> str:
    """Shell syntax of every kind, quotes, newlines, a leading dash, non-ASCII, 200 KB."""
    c = str(canary)
    head = (
        f"--help -rf / $(touch {c}.dollar) `touch {c}.backtick` ; touch {c}.semicolon\n"
        f"&& touch {c}.and || touch {c}.or | tee {c}.pipe > {c}.redirect < /etc/passwd\n"
        f'\'single\' "double" \\"escaped\\" \\n \\ ${{HOME}} $HOME %s %d {{}} {{0}}\n'
        f"\"$(touch {c}.quoted)\" '$(touch {c}.single)' <(touch {c}.procsub) !! ~ * ?\n"
        "\ttab, CRLF next\r\n lone CR\r and a form feed \x0c and ESC \x1b[31m red\n"
        "non-ASCII: é ü ß 日本語 Ελληνικά עברית 🙂 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u200b zero-width\n"
        'JSON {"a": [1, {"b": null}]} and a lone { brace\n'
    )
    filler = "".join(
        f"line {i}: $(touch {c}.{i}) `id` ; rm -rf ~ && echo 'x' \"y\" é\n" for i in range(3000)
    )
    return head + filler


def test_hostile_prompt_reaches_the_agent_byte_exact(
    repo: GitRepo, cli: Cli, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    prompt = hostile_prompt(canary)
    assert len(prompt.encode()) > 200_000
    received = tmp_path / "received.bin"
    received_ip = tmp_path / "received-in-place.bin"
    # JSON is valid YAML: a double-quoted scalar with escapes keeps every byte.
    text = (
        "version: 1\nname: quoting\n" + agents_yaml({"tee": agent_cmd("tee_stdin.py")}) + "tasks:\n"
        f"  hostile:\n    agent: tee\n    prompt: {json.dumps(prompt, ensure_ascii=False)}\n"
        f'    env: {{DEST: "{received}"}}\n'
    )
    write_plan(repo.path / "plait.yaml", text)
    repo.commit("plan")
    result = cli("run", "--json", cwd=repo.path)
    assert result.code == 0, result.err
    expected = prompt.encode()
    assert received.read_bytes() == expected
    assert list(tmp_path.glob("canary*")) == []
    assert not list(repo.path.glob("canary*"))

    # The same in place, outside git, with the prompt in a prompt_file.
    plain = tmp_path / "plain"
    (plain / "prompts").mkdir(parents=True)
    (plain / "prompts" / "hostile.md").write_bytes(prompt.encode())
    text_ip = (
        "version: 1\nname: quoting-in-place\nisolation: none\n"
        + agents_yaml({"tee": agent_cmd("tee_stdin.py")})
        + "tasks:\n"
        "  hostile:\n    agent: tee\n    prompt_file: prompts/hostile.md\n"
        f'    env: {{DEST: "{received_ip}"}}\n'
    )
    write_plan(plain / "plait.yaml", text_ip)
    result = cli("run", "--json", cwd=plain)
    assert result.code == 0, result.err
    assert received_ip.read_bytes() == expected
    assert list(tmp_path.glob("canary*")) == []


def test_template_output_is_substituted_and_stays_data(
    repo: GitRepo, cli: Cli, tmp_path: Path
) -> None:
    """An upstream output full of shell and template syntax lands in the prompt verbatim."""
    canary = tmp_path / "canary"
    upstream_output = f"$(touch {canary}) `touch {canary}` {{{{ tasks.up.output }}}} ; done"
    got = tmp_path / "down.bin"
    text = (
        "version: 1\nname: tmpl\n" + agents_yaml({"tee": agent_cmd("tee_stdin.py")}) + "tasks:\n"
        f'  up: {{agent: tee, prompt: x, env: {{DEST: "{tmp_path / "up.bin"}", '
        f"SAY: {json.dumps(upstream_output)}}}}}\n"
        "  down:\n    agent: tee\n"
        '    prompt: "before\\n{{ tasks.up.output }}\\nafter {{ run.id }} {{ plan.name }} '
        '{% raw %}{{ literal }} {% if %}{% endraw %}"\n'
        f'    env: {{DEST: "{got}"}}\n'
    )
    write_plan(repo.path / "plait.yaml", text)
    repo.commit("plan")
    planned = json.loads(cli("plan", "--json", cwd=repo.path).out)
    assert {"from": "up", "to": "down", "reason": "template"} in [
        {k: e[k] for k in ("from", "to", "reason")} for e in planned["edges"]
    ]
    result = cli("run", "--json", cwd=repo.path)
    assert result.code == 0, result.err
    status = json.loads(result.out)
    assert got.read_text() == (
        f"before\n{upstream_output}\nafter {status['run']} tmpl {{{{ literal }}}} {{% if %}}"
    )
    assert not canary.exists()
