"""The SDK against a real server: what an agent author writes, and what the log then holds."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

import pytest

import lantern
from conftest import Proxy, Server, Viewer, check_pairs, run_async

FAST = lantern.Backoff(base=0.05, cap=0.5, stable_after=5)


def kinds(events: List[Dict[str, Any]]) -> List[str]:
    return [e["type"] for e in events]


def deltas(events: List[Dict[str, Any]]) -> List[str]:
    return [e["delta"] for e in events if e["type"] == "text_delta"]


@run_async
async def test_a_tool_and_its_agent_are_closed_when_the_code_inside_raises(server: Server):
    workflow = await server.create()
    with pytest.raises(ValueError, match="the index is gone"):
        async with lantern.connect(server.url, server.agent_token, workflow) as run:
            async with run.agent("researcher", task="look it up") as agent:
                async with agent.tool("search", {"q": "lantern"}) as call:
                    await call.progress(0.5, "halfway")
                    raise ValueError("the index is gone")
    log = await server.log(workflow)
    check_pairs(log)
    assert kinds(log) == ["workflow_status", "agent_started", "tool_executing", "tool_update",
                          "tool_completed", "agent_completed", "workflow_status"]
    tool, agent, end = log[4], log[5], log[6]
    assert (tool["ok"], tool["error"]) == (False, "ValueError: the index is gone")
    assert (agent["ok"], agent["summary"]) == (False, "ValueError: the index is gone")
    assert (end["status"], end["detail"]) == ("failed", "ValueError: the index is gone")


@run_async
async def test_a_block_that_ends_well_completes_its_tool_agent_and_workflow(server: Server):
    workflow = await server.create()
    async with lantern.connect(server.url, server.agent_token, workflow) as run:
        async with run.node("search"):
            async with run.agent("researcher") as agent:
                async with agent.tool("search", {"q": "lantern"}) as call:
                    call.output = {"hits": 2}
                agent.summary = "two hits"
        await run.report("# Done")
    log = await server.log(workflow)
    check_pairs(log)
    assert kinds(log) == ["workflow_status", "node_update", "agent_started", "tool_executing",
                          "tool_completed", "agent_completed", "node_update", "final_report",
                          "workflow_status"]
    assert (log[4]["ok"], log[4]["output"]) == (True, {"hits": 2})
    assert log[5]["summary"] == "two hits"
    assert log[-1]["status"] == "completed"


async def publish_burst(run: lantern.Run, count: int, at: int, interruption) -> None:
    """Stream `count` numbered deltas, pipelined; once delta `at` is acked, `interruption(its
    seq)` runs beside the burst, which goes on publishing meanwhile."""
    async with run.agent("streamer") as agent:
        message = agent.message()
        beside = None
        for n in range(count):
            sent = await message.add(f"{n} ")
            if n == at:
                assert sent is not None
                beside = asyncio.create_task(interruption(await run.settled(sent)))
        await message.close()
        assert beside is not None
        await beside


def assert_burst_logged_once_in_order(log: List[Dict[str, Any]], count: int) -> None:
    assert deltas(log) == [f"{n} " for n in range(count)]
    seqs = [e["seq"] for e in log]
    assert seqs == list(range(1, len(log) + 1))
    closing = [e for e in log if e["type"] == "agent_response"]
    assert len(closing) == 1 and closing[0]["content"] == "".join(f"{n} " for n in range(count))
    check_pairs(log)


@run_async
async def test_a_burst_is_logged_exactly_once_across_a_cut_connection(server: Server):
    """The proxy first stops passing the server's acks on, waits until the server has logged
    events the agent never heard back about, then cuts: those are sent again after the
    reconnect and must not be logged twice; the ones still in flight must not be lost."""
    workflow = await server.create()
    async with Proxy(server.port) as proxy, Viewer(server, workflow) as viewer:
        async def cut_with_acks_in_flight(acked: int) -> None:
            proxy.mute()
            # Logged, but their acks are lost: the events after the mute.
            await viewer.until(lambda e: e["seq"] >= acked + 100)
            proxy.cut()

        async with lantern.connect(proxy.url, server.agent_token, workflow,
                                   backoff=FAST) as run:
            await publish_burst(run, 2000, 600, cut_with_acks_in_flight)
        assert proxy.accepted >= 2, "the agent reconnected"
    assert_burst_logged_once_in_order(await server.log(workflow), 2000)


@run_async
async def test_a_burst_is_logged_exactly_once_across_a_server_restart(server: Server):
    workflow = await server.create()

    async def crash_and_restart(acked: int) -> None:
        await asyncio.get_running_loop().run_in_executor(None, server.restart)

    async with lantern.connect(server.url, server.agent_token, workflow, backoff=FAST) as run:
        await publish_burst(run, 1500, 400, crash_and_restart)
    log = await server.log(workflow)
    assert_burst_logged_once_in_order(log, 1500)
    assert log[-1]["status"] == "completed"


@run_async
async def test_streamed_text_reaches_a_viewer_and_the_log_holds_it_whole(server: Server):
    workflow = await server.create()
    words = [f"word{n} " for n in range(100)]

    async def tokens():
        for word in words:
            yield word

    async with Viewer(server, workflow) as viewer:
        async with lantern.connect(server.url, server.agent_token, workflow) as run:
            async with run.agent("writer") as agent:
                text = await agent.stream_text(tokens())
                await agent.stream_thinking(["first ", "this"])
        closing = await viewer.until(lambda e: e["type"] == "agent_response")
        assert text == "".join(words) == closing["content"]
        assert deltas(viewer.events) == words
        thought = await viewer.until(lambda e: e["type"] == "agent_thinking")
        assert thought["content"] == "first this"


@run_async
async def test_ask_waits_for_a_persons_answer_and_returns_it(server: Server):
    workflow = await server.create()
    schema = {"type": "object", "properties": {"length": {"type": "string",
                                                           "enum": ["short", "long"]}}}
    async with Viewer(server, workflow) as viewer:
        async with lantern.connect(server.url, server.agent_token, workflow) as run:
            async with run.agent("researcher") as agent:
                asked = asyncio.create_task(agent.ask("How long?", schema=schema))
                question = await viewer.until(lambda e: e["type"] == "interrupt")
                assert question["response_schema"] == schema
                await viewer.until(lambda e: e.get("status") == "waiting_input")
                await server.answer(workflow, question["interrupt_id"], {"length": "long"})
                assert await asked == {"length": "long"}
    log = await server.log(workflow)
    assert [e.get("status") for e in log if e["type"] == "workflow_status"] == [
        "running", "waiting_input", "running", "completed"]
    assert [e["user"] for e in log if e["type"] == "interrupt_resolved"] == ["admin"]


@run_async
async def test_an_answer_given_while_the_agent_was_away_reaches_it_once(server: Server):
    workflow = await server.create()
    async with Proxy(server.port) as proxy, Viewer(server, workflow) as viewer:
        async with lantern.connect(proxy.url, server.agent_token, workflow,
                                   backoff=FAST) as run:
            async with run.agent("researcher") as agent:
                asked = asyncio.create_task(agent.ask("Approve?", reason="tool_approval"))
                question = await viewer.until(lambda e: e["type"] == "interrupt")
                await viewer.until(lambda e: e.get("status") == "waiting_input")
                proxy.refuse = True
                proxy.cut()
                await server.answer(workflow, question["interrupt_id"], {"approved": True})
                await server.say(workflow, "and one more thing", "m1")
                assert not asked.done()
                proxy.refuse = False
                assert await asked == {"approved": True}
                said = await run.inputs().__anext__()
                assert (said.content, said.user, said.client_msg_id) == (
                    "and one more thing", "admin", "m1")
    assert proxy.accepted >= 2


@run_async
async def test_inputs_arrive_in_order_each_once_and_end_with_the_workflow(server: Server):
    workflow = await server.create()
    heard: List[str] = []
    async with lantern.connect(server.url, server.agent_token, workflow) as run:
        async with run.agent("echo") as agent:
            for n in range(3):
                await server.say(workflow, f"message {n}", f"m{n}")
            async for message in run.inputs():
                heard.append(message.content)
                await agent.say(f"heard {message.content}")
                if len(heard) == 3:
                    break
    assert heard == ["message 0", "message 1", "message 2"]


@run_async
async def test_a_persons_cancel_reaches_the_agent_and_ends_its_question(server: Server):
    workflow = await server.create()
    async with Viewer(server, workflow) as viewer:
        async with lantern.connect(server.url, server.agent_token, workflow) as run:
            async with run.agent("researcher") as agent:
                asked = asyncio.create_task(agent.ask("Go on?"))
                await viewer.until(lambda e: e["type"] == "interrupt")
                await server.cancel(workflow)
                with pytest.raises(lantern.Cancelled):
                    await asked
                assert run.cancelled
                with pytest.raises(lantern.Cancelled):
                    await agent.say("too late")
                raise lantern.Cancelled("stop here")  # what a cancelled agent's code does
        assert run.cancelled  # the block ended quietly, publishing nothing more
    log = await server.log(workflow)
    check_pairs(log)
    assert log[-1]["type"] == "workflow_status" and log[-1]["status"] == "cancelled"
    assert sum(1 for e in log if e["type"] == "workflow_status" and
               e["status"] in ("completed", "failed", "cancelled")) == 1


@run_async
async def test_refusals_raise_the_exception_of_their_code_naming_the_event(server: Server):
    workflow = await server.create()
    with pytest.raises(lantern.Unauthorized):
        async with lantern.connect(server.url, "lantern_not_a_token", workflow):
            pass
    with pytest.raises(lantern.Forbidden):  # a user token is not an agent token
        async with lantern.connect(server.url, server.user_token, workflow):
            pass
    with pytest.raises(lantern.NotFound):
        async with lantern.connect(server.url, server.agent_token, "wf_nobody"):
            pass
    async with lantern.connect(server.url, server.agent_token, workflow) as run:
        with pytest.raises(lantern.Conflict) as refused:
            await run.publish({"type": "tool_completed", "agent": "a", "tool": "t",
                               "call_id": "never-opened", "ok": True, "duration_ms": 1,
                               "id": "close-1"})
        assert "tool_completed (id close-1)" in str(refused.value)
        with pytest.raises(lantern.BadRequest):
            await run.publish({"type": "agent_started"})
        with pytest.raises(lantern.Forbidden):
            await run.publish({"type": "interrupt_resolved", "interrupt_id": "x",
                               "status": "resolved"})
        with pytest.raises(lantern.TooLarge):
            await run.publish({"type": "final_report", "content": "x" * (2 << 20)})
        # The run goes on after refusals.
        await run.report("still here")
    log = await server.log(workflow)
    assert kinds(log) == ["workflow_status", "final_report", "workflow_status"]


@run_async
async def test_publishing_over_http_is_exactly_once_and_refuses_only_the_faulty_event(
        server: Server):
    workflow = await server.create()
    async with lantern.connect(server.url, server.agent_token, workflow,
                               transport="http") as run:
        async with run.agent("poster") as agent:
            sent = [await run.send({"type": "agent_thinking", "agent": "poster",
                                    "content": f"step {n}"}) for n in range(300)]
            bad = await run.send({"type": "agent_completed", "agent": "nobody", "ok": True})
            after = await run.send({"type": "agent_thinking", "agent": "poster",
                                    "content": "after the refusal"})
            seqs = [await run.settled(f) for f in sent]
            with pytest.raises(lantern.Conflict):
                await run.settled(bad)
            await run.settled(after)
            await agent.say("done")
    log = await server.log(workflow)
    thoughts = [e["content"] for e in log if e["type"] == "agent_thinking"]
    assert thoughts == [f"step {n}" for n in range(300)] + ["after the refusal"]
    assert seqs == list(range(seqs[0], seqs[0] + 300))
    check_pairs(log)
    assert log[-1]["status"] == "completed"


def test_the_sync_wrapper_publishes_the_same_way(server: Server):
    from lantern.sync import connect

    workflow = asyncio.run(server.create())
    with connect(server.url, server.agent_token, workflow) as run:
        with run.agent("script") as agent:
            with agent.tool("add", {"a": 1, "b": 2}) as call:
                call.output = 3
            assert agent.stream_text(["one ", "two"]) == "one two"
    log = asyncio.run(server.log(workflow))
    check_pairs(log)
    assert kinds(log) == ["workflow_status", "agent_started", "tool_executing", "tool_completed",
                          "text_delta", "text_delta", "agent_response", "agent_completed",
                          "workflow_status"]
    assert log[3]["output"] == 3 and log[6]["content"] == "one two"
