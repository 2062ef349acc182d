//! WebSocket/SSE frames between browsers and ws-gateway (built in the ws-gateway issue).
