"""docs/INTEGRATIONS.md's Python SDK snippets run as written, against a real server.

Each block is taken from the page by its `<!-- test: NAME -->` marker (the Rust test
`every_code_block_of_the_page_is_run_by_a_test` checks that every block is run by exactly one
test, and looks for its name in quotes here). The one change made to a snippet is the address:
the documented `127.0.0.1:3000` becomes the test server's.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

from conftest import BINARY, ROOT, Server, Viewer, check_pairs, run_async

PAGE = ROOT / "docs" / "INTEGRATIONS.md"


def snippets() -> Dict[str, str]:
    found: Dict[str, str] = {}
    lines = iter(PAGE.read_text().splitlines())
    marker = None
    for line in lines:
        if line.startswith("<!-- test: ") and line.endswith(" -->"):
            marker = line[len("<!-- test: "):-len(" -->")]
        elif line.startswith("```") and marker:
            body = []
            for inner in lines:
                if inner == "```":
                    break
                body.append(inner)
            found[marker] = "\n".join(body) + "\n"
            marker = None
    return found


def shell_env(server: Server) -> Dict[str, str]:
    """The `lantern` binary and this interpreter's environment first on PATH; the server's data
    dir as the binary's."""
    path = f"{BINARY.parent}:{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "LANTERN_DATA_DIR": server.data_dir,
            "RUST_LOG": "warn"}


def localize(code: str, server: Server) -> str:
    return code.replace("127.0.0.1:3000", f"127.0.0.1:{server.port}")


async def start_script(server: Server, tmp_path: Path, name: str,
                       source: str) -> Tuple[asyncio.subprocess.Process, str]:
    """Save `source` as `name` and run it as the page says: in a shell with the page's variables
    (`env`, `sdk-env`: a new external workflow). The running script and its workflow's id."""
    (tmp_path / name).write_text(localize(source, server))
    code = snippets()
    script = "\n".join([localize(code["env"], server), code["sdk-env"],
                        'echo "$WORKFLOW_ID"', f"exec python {name}"])
    agent = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script, cwd=tmp_path, env=shell_env(server),
        stdout=asyncio.subprocess.PIPE)
    assert agent.stdout is not None
    workflow = (await asyncio.wait_for(agent.stdout.readline(), 30)).decode().strip()
    assert workflow.startswith("wf_"), workflow
    return agent, workflow


@run_async
async def test_the_sdk_snippets_install_it_and_run_an_agent_a_person_approves(
        server: Server, tmp_path: Path):
    code = snippets()
    installed = subprocess.run(["bash", "-euc", code["sdk-install"]], cwd=ROOT,
                               env=shell_env(server), capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr

    agent, workflow = await start_script(server, tmp_path, "weather.py", code["sdk-agent"])

    async with Viewer(server, workflow) as viewer:
        question = await viewer.until(lambda e: e["type"] == "interrupt")
        assert question["reason"] == "tool_approval"
        call = next(e for e in viewer.events if e["type"] == "tool_executing")
        assert question["call_id"] == call["call_id"]
        await server.answer(workflow, question["interrupt_id"], {"approved": True})
        assert await asyncio.wait_for(agent.wait(), 30) == 0

    log = await server.log(workflow)
    check_pairs(log)
    answer = next(e for e in log if e["type"] == "agent_response")
    assert answer["content"] == "Sunny and 21 degrees."
    assert log[-1]["type"] == "workflow_status" and log[-1]["status"] == "completed"


@run_async
async def test_the_langgraph_snippet_runs_a_graph_a_person_approves(server: Server,
                                                                   tmp_path: Path):
    code = snippets()
    agent, workflow = await start_script(server, tmp_path, "forecast_graph.py",
                                         code["sdk-langgraph"])

    async with Viewer(server, workflow) as viewer:
        question = await viewer.until(lambda e: e["type"] == "interrupt")
        assert question["reason"] == "tool_approval"
        assert question["message"] == ("Post this forecast? "
                                       "Sunny and 21 degrees in Paris today.")
        # Nothing was posted before the person said so.
        assert not any(e["type"] == "tool_executing" for e in viewer.events)
        await server.answer(workflow, question["interrupt_id"], {"approved": True})
        printed = await asyncio.wait_for(agent.stdout.read(), 30)
        assert await asyncio.wait_for(agent.wait(), 30) == 0
    assert printed.decode().strip() == "posted"

    log = await server.log(workflow)
    check_pairs(log)
    steps = [(e["node"], e["status"]) for e in log if e["type"] == "node_update"]
    assert steps == [("write", "executing"), ("write", "completed"),
                     ("review", "executing"), ("review", "completed")]
    answer = next(e for e in log if e["type"] == "agent_response")
    streamed = [e["delta"] for e in log if e["type"] == "text_delta"]
    assert len(streamed) > 1 and "".join(streamed) == answer["content"]
    assert answer["content"] == "Sunny and 21 degrees in Paris today."
    tool = next(e for e in log if e["type"] == "tool_completed")
    assert (tool["tool"], tool["ok"], tool["output"]) == ("post_to_team", True, "posted")
    assert log[-1]["type"] == "workflow_status" and log[-1]["status"] == "completed"
