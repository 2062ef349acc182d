"""A real LangGraph AG-UI server with no LLM, for agent-bridge's relay tests.

ag-ui-langgraph's FastAPI endpoint serves a graph of a scripted chat model
and a ToolNode with one `create_task` tool, checkpointed in memory per
thread. The model decides by looking at the conversation, never a counter:

- the last message is a tool result: it says "Created the task.";
- the last message is the user's and no assistant has spoken yet: it calls
  `create_task` with {"title": "Login page"};
- the last message is the user's on a later turn: it says "You're welcome.".

Two extra routes let a test look behind the relay:

- GET /received: every RunAgentInput body POSTed to /, as sent;
- GET /state/{thread_id}: the checkpoint's messages, as [{id, type, ...}].

Usage: python3 server.py --port N
"""

import argparse
import json
import uuid
from typing import Any, Iterator

import uvicorn
from ag_ui_langgraph import LangGraphAgent, add_langgraph_fastapi_endpoint
from fastapi import FastAPI
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import MemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import interrupt


class ScriptedChatModel(BaseChatModel):
    """A chat model whose answer follows from the messages it is given."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _chunks(self, messages: list[BaseMessage]) -> list[AIMessageChunk]:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return [AIMessageChunk(content=w) for w in ["Created", " the", " task."]]
        if isinstance(last, HumanMessage) and any(isinstance(m, AIMessage) for m in messages):
            return [AIMessageChunk(content=w) for w in ["You're", " welcome."]]
        # Streamed as OpenAI does: the name first, then the arguments in
        # fragments (ag-ui-langgraph drops arguments sent with the name).
        call_id = f"call_{uuid.uuid4().hex[:12]}"
        fragments = [("create_task", call_id, ""), (None, None, '{"title": '), (None, None, '"Login page"}')]
        return [
            AIMessageChunk(
                content="",
                tool_call_chunks=[{"index": 0, "id": id_, "name": name, "args": args}],
            )
            for name, id_, args in fragments
        ]

    def _stream(self, messages, stop=None, run_manager=None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages):
            if run_manager and isinstance(chunk.content, str) and chunk.content:
                run_manager.on_llm_new_token(chunk.content, chunk=ChatGenerationChunk(message=chunk))
            yield ChatGenerationChunk(message=chunk)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        whole = self._chunks(messages)
        message = whole[0]
        for chunk in whole[1:]:
            message = message + chunk
        return ChatResult(generations=[ChatGeneration(message=AIMessage(
            content=message.content, tool_calls=message.tool_calls))])


@tool
def create_task(title: str) -> dict:
    """Create a task on the board."""
    return {"id": "task-1", "title": title}


model = ScriptedChatModel()


async def call_model(state: MessagesState):
    return {"messages": [await model.ainvoke(state["messages"])]}


builder = StateGraph(MessagesState)
builder.add_node("model", call_model)
builder.add_node("tools", ToolNode([create_task]))
builder.add_edge(START, "model")
builder.add_conditional_edges("model", tools_condition)
builder.add_edge("tools", "model")
graph = builder.compile(checkpointer=MemorySaver())

# A second graph, served at /approval, that asks before it acts: its node
# calls LangGraph's interrupt(), which ag-ui-langgraph ends the run with as
# an AG-UI `interrupt` outcome; the run that resumes it gets the answer.
def ask_first(state: MessagesState):
    answer = interrupt({"message": 'Delete the task "Old plan"', "reason": "tool_approval"})
    approved = isinstance(answer, dict) and answer.get("approved") is True
    return {"messages": [AIMessage(content="Deleted." if approved else "Left it alone.")]}


approval_builder = StateGraph(MessagesState)
approval_builder.add_node("ask_first", ask_first)
approval_builder.add_edge(START, "ask_first")
approval_builder.add_edge("ask_first", END)
approval_graph = approval_builder.compile(checkpointer=MemorySaver())

received: list[Any] = []


class RecordRunInputs:
    """ASGI middleware: keeps each body POSTed to an agent before the endpoint reads it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            received.append(json.loads(body))
        except ValueError:
            received.append({"unparsable": body.decode("utf-8", "replace")})
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


app = FastAPI()
# Also registers GET /health.
add_langgraph_fastapi_endpoint(app, LangGraphAgent(name="boardwire", graph=graph), "/")
add_langgraph_fastapi_endpoint(
    app,
    LangGraphAgent(name="approval", graph=approval_graph, emit_interrupt_outcome=True),
    "/approval",
)


@app.get("/received")
def get_received():
    return received


@app.get("/state/{thread_id}")
async def get_state(thread_id: str, graph_name: str = "boardwire"):
    which = approval_graph if graph_name == "approval" else graph
    state = await which.aget_state({"configurable": {"thread_id": thread_id}})
    return [
        {"id": m.id, "type": m.type, "content": m.content}
        for m in (state.values or {}).get("messages", [])
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(RecordRunInputs(app), host="127.0.0.1", port=args.port, log_level="warning")
