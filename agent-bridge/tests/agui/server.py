"""A real AG-UI server with no LLM, for agent-bridge's relay tests.

pydantic-ai's AGUIAdapter serves a scripted FunctionModel, so every run is
deterministic. What the script does depends on the last user message:

- contains "explode": calls the `explode` tool, which raises;
- contains "slow": streams 200 tokens, 100 ms apart (for cancel tests);
- anything else: calls `create_task` (arguments in two chunks), then streams
  a reply word by word.

Usage: python3 server.py --port N
"""

import argparse
import asyncio
import json

import uvicorn
from pydantic_ai import Agent
from pydantic_ai.messages import ModelRequest, ToolReturnPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel
from pydantic_ai.ui.ag_ui import AGUIAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


def last_user_text(messages) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelRequest):
            for part in reversed(message.parts):
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    return part.content
    return ""


def has_tool_return(messages) -> bool:
    last = messages[-1]
    return isinstance(last, ModelRequest) and any(
        isinstance(part, ToolReturnPart) for part in last.parts
    )


async def script(messages, info: AgentInfo):
    text = last_user_text(messages).lower()
    if has_tool_return(messages):
        for word in ["Created", " the", " task", " for", " you."]:
            yield word
        return
    if "slow" in text:
        for i in range(200):
            await asyncio.sleep(0.1)
            yield f"tick{i} "
        return
    if "explode" in text:
        yield {0: DeltaToolCall(name="explode", json_args='{"reason": "test"}')}
        return
    yield {0: DeltaToolCall(name="create_task", json_args='{"title": "Login page",')}
    yield {0: DeltaToolCall(json_args=' "priority": "high"}')}


agent = Agent(FunctionModel(stream_function=script))


@agent.tool_plain
def create_task(title: str, priority: str) -> dict:
    """Create a task on the board."""
    return {"id": "task-1", "title": title, "priority": priority}


@agent.tool_plain
def explode(reason: str) -> str:
    """A tool that always fails."""
    raise RuntimeError(f"explode tool failed: {reason}")


async def run(request: Request):
    return await AGUIAdapter.dispatch_request(request, agent=agent)


async def health(_request: Request):
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/", run, methods=["POST"]), Route("/health", health)])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
