"""An AG-UI agent built with Pydantic AI, to put behind Lantern (`--agui-agent NAME=URL`).

    python examples/agui_agent.py 8000     # AG-UI endpoint: POST http://127.0.0.1:8000/

Every event on the wire comes from Pydantic AI's own AG-UI adapter (`AGUIAdapter`); only the
"model" is scripted — Pydantic AI's `FunctionModel`, streaming — so it runs with no LLM and no
network, the same way every time (Lantern's tests use it):

* a message                 -> a streamed answer: "You said: <it> (message N of this conversation)"
* a message with "weather"  -> a call of the tool `get_weather(city)` (its arguments streamed in
                               two pieces), then a streamed answer quoting its result
* a message with "approve"  -> a call of `perform_action(action)`, a tool that needs a person's
                               approval: the run ends with an AG-UI interrupt, and the next run
                               (with `resume`) runs the tool or tells the model it was denied

Swap the `FunctionModel` for a real one (`Agent('openai:gpt-4o', ...)`) and nothing else changes.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator

import uvicorn
from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, ToolReturnPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel
from pydantic_ai.ui.ag_ui import AGUIAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


def pieces(text: str, n: int = 4) -> list[str]:
    """`text` in about `n` pieces, split between words: a streamed answer."""
    words = text.split(' ')
    size = max(1, -(-len(words) // n))
    parts = [' '.join(words[i : i + size]) for i in range(0, len(words), size)]
    return [p if i == len(parts) - 1 else p + ' ' for i, p in enumerate(parts)]


def prompt_text(part: UserPromptPart) -> str:
    if isinstance(part.content, str):
        return part.content
    return ' '.join(c for c in part.content if isinstance(c, str))


def city_in(text: str) -> str:
    found = re.search(r'\bin ([A-Za-z][A-Za-z \-]*)', text)
    return found.group(1).strip().rstrip('?.!').strip() if found else 'Paris'


async def scripted_model(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str | DeltaToolCalls]:
    # Tool call ids unique in the conversation: one per model response so far.
    call_id = f'call_{sum(isinstance(m, ModelResponse) for m in messages)}'
    last = messages[-1]
    assert isinstance(last, ModelRequest)

    # After a tool ran (or was denied): say what came of it.
    returns = [p for p in last.parts if isinstance(p, ToolReturnPart)]
    if returns:
        result = returns[-1]
        if result.tool_name == 'get_weather':
            text = f'The weather report is {result.model_response_str()}. Have a nice day!'
        elif result.outcome == 'denied':
            text = f'The action was denied: {result.model_response_str()}'
        else:
            text = f'The user approved; action result: {result.model_response_str()}'
        for piece in pieces(text):
            yield piece
        return

    # A person's message.
    prompts = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, UserPromptPart)]
    text = prompt_text(prompts[-1]) if prompts else ''
    if 'weather' in text.lower():
        args = json.dumps({'city': city_in(text)})
        yield {0: DeltaToolCall(name='get_weather', json_args=args[: len(args) // 2], tool_call_id=call_id)}
        yield {0: DeltaToolCall(json_args=args[len(args) // 2 :])}
        return
    if 'approve' in text.lower():
        args = json.dumps({'action': 'deploy to production'})
        yield {0: DeltaToolCall(name='perform_action', json_args=args, tool_call_id=call_id)}
        return
    for piece in pieces(f'You said: {text} (message {len(prompts)} of this conversation)'):
        yield piece


agent = Agent(
    FunctionModel(stream_function=scripted_model, model_name='scripted'),
    output_type=[str, DeferredToolRequests],
    instructions='You are a helpful assistant.',
)


@agent.tool_plain
def get_weather(city: str) -> dict[str, object]:
    """Get the current weather for a city."""
    return {'city': city, 'temperature_c': 21, 'conditions': 'sunny'}


@agent.tool_plain(requires_approval=True)
def perform_action(action: str) -> str:
    """Perform a sensitive action; a person approves it first."""
    return f'performed: {action}'


async def run(request: Request) -> Response:
    return await AGUIAdapter.dispatch_request(request, agent=agent)


async def health(request: Request) -> Response:
    return PlainTextResponse('ok')


app = Starlette(routes=[Route('/', run, methods=['POST']), Route('/health', health)])

if __name__ == '__main__':
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    uvicorn.run(app, host='127.0.0.1', port=port, log_level='warning')
