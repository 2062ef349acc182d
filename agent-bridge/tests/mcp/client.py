"""A real MCP client for the agent-bridge MCP tests, on the official Python SDK.

    client.py SCENARIO URL [--token T] [--board B] [--mode auto|legacy]

Each scenario prints one JSON object per line on stdout: what the client
saw. `subscribe` and `listen` print {"ready": ...} once subscribed, then
one {"step": "updated"} per notification: `subscribe` until --count of
them, `listen` until it has read the board version given on stdin.
For `stdio`, URL is the command to launch, the other positional arguments
its arguments, and each --env KEY=VALUE goes into its environment.
"""

import argparse
import asyncio
import json
import sys
import warnings
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

PATIENCE = 30

# resources/subscribe is what this test exercises, on protocol versions that have it.
warnings.filterwarnings("ignore", message="resources/subscribe")


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def http(url: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300))
    return streamable_http_client(url, http_client=client)


def result(r: types.CallToolResult) -> dict[str, Any]:
    text = "".join(getattr(c, "text", "") for c in r.content)
    return {"is_error": bool(r.is_error), "text": text, "structured": r.structured_content}


async def tools(client: Client, args) -> None:
    listed = await client.list_tools()
    say(
        protocol=client.session.protocol_version if hasattr(client.session, "protocol_version") else None,
        tools=[t.name for t in listed.tools],
        schemas={t.name: t.input_schema for t in listed.tools},
        descriptions={t.name: t.description for t in listed.tools},
    )


async def create_move(client: Client, args) -> None:
    created = result(
        await client.call_tool(
            "create_task",
            {"board_id": args.board, "title": "Write the MCP docs", "lane": "todo", "priority": "high", "kind": "story"},
        )
    )
    say(step="create_task", **created)
    task = created["structured"]
    moved = result(
        await client.call_tool(
            "move_task",
            {"task_id": task["id"], "lane": "in_progress", "expected_version": task["version"]},
        )
    )
    say(step="move_task", **moved)


async def sprints(client: Client, args) -> None:
    """Plans a sprint, puts a new task in it and starts it."""
    bad = await client.call_tool(
        "create_sprint",
        {"board_id": args.board, "name": "Sprint 1", "starts_at": "next monday", "ends_at": "2026-12-14"},
    )
    say(step="bad_time", **result(bad))
    created = result(
        await client.call_tool(
            "create_sprint",
            {"board_id": args.board, "name": "Sprint 1", "goal": "Log in", "starts_at": "2026-12-01",
             "ends_at": "2026-12-14T17:00:00Z"},
        )
    )
    say(step="create_sprint", **created)
    sprint = created["structured"]
    task = result(
        await client.call_tool(
            "create_task", {"board_id": args.board, "title": "Login form", "sprint_id": sprint["id"]}
        )
    )
    say(step="create_task", **task)
    started = result(
        await client.call_tool("start_sprint", {"sprint_id": sprint["id"], "expected_version": sprint["version"]})
    )
    say(step="start_sprint", **started)
    listed = result(await client.call_tool("list_sprints", {"board_id": args.board}))
    say(step="list_sprints", **listed)


async def errors(client: Client, args) -> None:
    """The refusals a model must be able to act on."""
    created = result(await client.call_tool("create_task", {"board_id": args.board, "title": "Refusals"}))
    task = created["structured"]
    stale = await client.call_tool(
        "move_task", {"task_id": task["id"], "lane": "done", "expected_version": task["version"] + 5}
    )
    say(step="stale_version", **result(stale))
    unknown = await client.call_tool("move_task", {"task_id": task["id"], "lane": "nowhere"})
    say(step="unknown_lane", **result(unknown))
    lane = result(await client.call_tool("create_lane", {"board_id": args.board, "key": "review", "wip_limit": 1}))
    say(step="create_lane", **lane)
    first = await client.call_tool("move_task", {"task_id": task["id"], "lane": "review"})
    say(step="fill_lane", **result(first))
    other = result(await client.call_tool("create_task", {"board_id": args.board, "title": "One too many"}))
    full = await client.call_tool("move_task", {"task_id": other["structured"]["id"], "lane": "review"})
    say(step="full_lane", **result(full))
    bad = await client.call_tool("create_task", {"board_id": args.board, "title": 7})
    say(step="bad_argument", **result(bad))


async def readonly(client: Client, args) -> None:
    listed = await client.list_tools()
    say(step="list_tools", tools=[t.name for t in listed.tools])
    read = await client.call_tool("get_board", {"board_id": args.board})
    say(step="get_board", **result(read))
    write = await client.call_tool("create_task", {"board_id": args.board, "title": "Not allowed"})
    say(step="create_task", **result(write))


async def subscribe(client: Client, args, updates: asyncio.Queue) -> None:
    uri = f"boardwire://boards/{args.board}"
    listed = await client.list_resources()
    say(step="list_resources", uris=[r.uri for r in listed.resources])
    await client.subscribe_resource(uri)
    say(ready="subscribed", uri=uri)
    for _ in range(args.count):
        updated = await asyncio.wait_for(updates.get(), PATIENCE)
        snapshot = await client.read_resource(updated)
        board = json.loads(snapshot.contents[0].text)
        say(step="updated", uri=updated, version=board["version"], lanes=board["lanes"])


async def listen(client: Client, args) -> None:
    """Reads the board on every notification until it has read the version
    the test writes to stdin once its changes are made. Counting
    notifications would not do: the server may add one (see `listen` in
    agent-bridge/src/mcp/server.rs) and the SDK may deliver two changes as one."""
    uri = f"boardwire://boards/{args.board}"
    loop = asyncio.get_running_loop()
    target = loop.run_in_executor(None, sys.stdin.readline)
    events: asyncio.Queue = asyncio.Queue()
    async with client.listen(resource_subscriptions=[uri]) as sub:
        say(ready="listening", uri=uri, honored=list(sub.honored.resource_subscriptions or []))

        async def pump():
            async for event in sub:
                await events.put(event)

        pumping = asyncio.create_task(pump())
        version = -1
        try:
            while True:
                if target.done() and version >= int(target.result().strip() or 0):
                    break
                waiting = [asyncio.ensure_future(events.get())]
                if not target.done():
                    waiting.append(target)
                done, _ = await asyncio.wait(waiting, timeout=PATIENCE, return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    raise TimeoutError(f"no notification reached version {target.result() if target.done() else '?'}")
                if waiting[0] not in done:
                    waiting[0].cancel()
                    continue
                event = waiting[0].result()
                snapshot = await client.read_resource(uri, cache_mode="refresh")
                board = json.loads(snapshot.contents[0].text)
                version = board["version"]
                say(step="updated", event=type(event).__name__, version=version, lanes=board["lanes"])
        finally:
            pumping.cancel()


async def stdio(args) -> None:
    env = dict(pair.split("=", 1) for pair in args.env)
    params = StdioServerParameters(command=args.url, args=args.rest, env=env)
    async with Client(params, mode=args.mode) as client:
        listed = await client.list_tools()
        say(step="list_tools", tools=[t.name for t in listed.tools])
        boards = await client.call_tool("list_boards", {})
        say(step="list_boards", **result(boards))
        created = await client.call_tool("create_task", {"board_id": args.board, "title": "From stdio"})
        say(step="create_task", **result(created))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("url")
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--token")
    parser.add_argument("--board", default="default")
    parser.add_argument("--mode", default="auto")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the stdio server")
    args = parser.parse_args()
    if args.scenario == "stdio":
        return await stdio(args)
    updates: asyncio.Queue = asyncio.Queue()

    async def on_message(message) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            await updates.put(message.params.uri)

    async with Client(http(args.url, args.token), mode=args.mode, message_handler=on_message) as client:
        if args.scenario == "tools":
            await tools(client, args)
        elif args.scenario == "create-move":
            await create_move(client, args)
        elif args.scenario == "sprints":
            await sprints(client, args)
        elif args.scenario == "errors":
            await errors(client, args)
        elif args.scenario == "readonly":
            await readonly(client, args)
        elif args.scenario == "subscribe":
            await subscribe(client, args, updates)
        elif args.scenario == "listen":
            await listen(client, args)
        else:
            raise SystemExit(f"unknown scenario {args.scenario}")


if __name__ == "__main__":
    asyncio.run(main())
