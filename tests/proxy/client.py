"""A client of Boardwire through a TLS reverse proxy: a wss:// board
subscription with a command, and two SSE streams (a board's /events and
seed 001's /api/events). Trusts only the CA file given. Prints one JSON
line; tests/nginx_proxy.rs judges it.

    python client.py https://127.0.0.1:8443 <board id> ca.pem [https://chat]

With a fourth argument, also a chat over wss:// at that agent-bridge.
"""

import asyncio
import json
import ssl
import sys
import urllib.request

import websockets

base, board, cafile = sys.argv[1], sys.argv[2], sys.argv[3]
chat = sys.argv[4] if len(sys.argv) > 4 else None
context = ssl.create_default_context(cafile=cafile)


async def until(ws, predicate, timeout=20):
    async def read():
        while True:
            frame = json.loads(await ws.recv())
            if predicate(frame):
                return frame
    return await asyncio.wait_for(read(), timeout)


def first_event(stream, named=None):
    """The first SSE event (of type `named`, or a default one) as (event, data)."""
    event, data = None, None
    for raw in stream:
        line = raw.decode().rstrip("\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and data is not None:
            if event == named:
                return event, json.loads(data)
            event, data = None, None
    raise RuntimeError("stream ended")


async def main():
    seen = {}
    ws_url = base.replace("https://", "wss://") + "/ws"
    async with websockets.connect(ws_url, ssl=context) as ws:
        await until(ws, lambda f: f.get("type") == "connected")
        await ws.send(json.dumps({"type": "subscribe", "boardId": board}))
        sync = await until(ws, lambda f: f.get("type") == "board.sync")
        seen["sync_lanes"] = sync["data"]["laneOrder"]
        await ws.send(json.dumps({"type": "task.create", "id": "cmd-1", "boardId": board,
                                  "data": {"title": "Through the proxy", "lane": sync["data"]["laneOrder"][0]}}))
        created = await until(ws, lambda f: f.get("type") == "task.created")
        seen["created_title"] = created["data"]["title"]

    board_events = urllib.request.urlopen(f"{base}/events?boardId={board}", context=context, timeout=20)
    seen["board_sse_type"] = board_events.headers.get("content-type")
    _, sync = first_event(board_events, "board.sync")
    seen["board_sse_tasks"] = sum(len(tasks) for tasks in sync["data"]["lanes"].values())
    board_events.close()

    jobs = urllib.request.urlopen(f"{base}/api/events?channels=ai:jobs:status", context=context, timeout=20)
    publish = urllib.request.Request(
        f"{base}/api/publish",
        data=json.dumps({"channel": "ai:jobs:status", "message": {"jobId": "job_123", "status": "completed"}}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    seen["published"] = json.loads(urllib.request.urlopen(publish, context=context, timeout=20).read())
    _, message = first_event(jobs)
    seen["job_event"] = message
    jobs.close()

    if chat:
        chat_url = chat.replace("https://", "wss://") + "/ws/chat?session_id=tls-chat"
        async with websockets.connect(chat_url, ssl=context) as ws:
            connected = await until(ws, lambda f: f.get("type") == "connected")
            seen["chat_session"] = connected.get("sessionId")
            await ws.send(json.dumps({"type": "message", "data": {"content": "list tasks"}}))
            final = await until(ws, lambda f: f.get("runId") and f.get("type") in ("message", "error"))
            seen["chat_final"] = final["type"]
    print(json.dumps(seen))


asyncio.run(main())
