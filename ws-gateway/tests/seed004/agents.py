"""Two agents written to seed 004's document (docs/websocket-server.md of
the Context-Manager): connect with ?agent_id=&session_id=, subscribe with
ids and timestamps, authenticate, publish message.new, ping, and read
{channel, event, data} deliveries, acks, pongs and {error, code} errors.
Prints one JSON line with what it saw; the Rust test judges it.

    python agents.py ws://127.0.0.1:4002
"""

import asyncio
import json
import sys
import time

import websockets


def now():
    return int(time.time() * 1000)


async def until(ws, predicate, timeout=20):
    """The first message matching predicate; fails after timeout."""
    async def read():
        while True:
            message = json.loads(await ws.recv())
            if predicate(message):
                return message
    return await asyncio.wait_for(read(), timeout)


def agent_event(event, agent_id):
    return lambda m: m.get("event") == event and m.get("data", {}).get("agent_id") == agent_id


async def main(base):
    seen = {}
    a = await websockets.connect(f"{base}/ws/agents?agent_id=backend-laravel&session_id=abc123")
    seen["connected"] = json.loads(await a.recv())
    await a.send(json.dumps({"type": "subscribe", "channel": "global", "id": "sub-1", "timestamp": now()}))
    seen["subscribe_ack"] = await until(a, lambda m: m.get("type") == "ack" and m.get("id") == "sub-1")
    await a.send(json.dumps({"type": "auth", "agent_id": "backend-laravel", "session_id": "abc123", "timestamp": now()}))
    await a.send(json.dumps({"type": "subscribe", "channel": "agents/backend-laravel", "id": "sub-2", "timestamp": now()}))
    await until(a, lambda m: m.get("type") == "ack" and m.get("id") == "sub-2")

    b = await websockets.connect(f"{base}/ws/agents?agent_id=other-agent&session_id=def456")
    await b.recv()
    seen["joined"] = await until(a, agent_event("agent.connected", "other-agent"))

    await b.send(json.dumps({
        "type": "publish",
        "channel": "agents/backend-laravel",
        "event": "message.new",
        "data": {"content": "Hello!", "ttl": 60},
        "id": "pub-1",
        "timestamp": now(),
    }))
    seen["publish_ack"] = await until(b, lambda m: m.get("type") == "ack" and m.get("id") == "pub-1")
    seen["message"] = await until(a, lambda m: m.get("event") == "message.new")

    await b.send(json.dumps({"type": "ping", "timestamp": now()}))
    seen["heartbeat"] = await until(a, agent_event("agent.heartbeat", "other-agent"))

    await a.send(json.dumps({"type": "ping", "timestamp": now()}))
    seen["pong"] = await until(a, lambda m: m.get("type") == "pong")

    await a.send(json.dumps({"type": "subscribe", "channel": "not a channel", "id": "sub-3", "timestamp": now()}))
    seen["error"] = await until(a, lambda m: "error" in m)

    await b.close()
    seen["left"] = await until(a, agent_event("agent.disconnected", "other-agent"))

    await a.send(json.dumps({"type": "subscribe", "channel": "metrics", "id": "sub-4", "timestamp": now()}))
    seen["metric"] = await until(a, lambda m: m.get("event") == "metric.update")
    await a.close()
    print(json.dumps(seen))


asyncio.run(main(sys.argv[1]))
