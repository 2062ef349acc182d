//! WebSocket frames between the PM chat UI and agent-bridge (built in the agent-bridge issue).
