//! The MCP server itself: tools filtered by the caller's grants, one
//! resource per board, and subscriptions to those resources.

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
        Resource, ResourceContents, ResourceTemplate, ResourceUpdatedNotificationParam,
        ServerCapabilities, ServerConfig, SubscribeRequestParams, SubscriptionFilter,
        UnsubscribeRequestParams,
    },
    service::{RequestContext, SubscriptionContext},
};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{
    board::BoardClient,
    tools,
    view::{BOARD_URI_PREFIX, SnapshotView, board_of_uri, board_uri},
};
use crate::http::Caller;

const INSTRUCTIONS: &str = "Boardwire's Kanban boards. list_boards shows the boards; get_board \
     reads one with its lanes and tasks (ids, versions). Change tasks with create_task, \
     update_task, move_task and delete_task, lanes with create_lane and update_lane, sprints with \
     list_sprints, create_sprint, start_sprint and complete_sprint. Every change \
     shows live to everyone watching the board. Each board is also a resource \
     (boardwire://boards/{slug}); subscribe to it to hear about every change people make.";

/// One MCP session's server. Over HTTP the caller comes with each request
/// (the `/mcp` auth layer puts it there); over stdio it is fixed.
pub struct BoardwireMcp {
    board: BoardClient,
    /// The stdio caller; `None` over HTTP.
    fixed: Option<Caller>,
    /// Live resource subscriptions by URI; dropping the session ends them.
    subscriptions: Arc<Mutex<HashMap<String, DropGuard>>>,
}

impl BoardwireMcp {
    /// A session whose callers arrive with each HTTP request.
    pub fn for_http(board: BoardClient) -> Self {
        Self {
            board,
            fixed: None,
            subscriptions: Arc::default(),
        }
    }

    /// A session acting for one caller throughout (stdio).
    pub fn for_caller(board: BoardClient, caller: Caller) -> Self {
        Self {
            fixed: Some(caller),
            ..Self::for_http(board)
        }
    }

    /// Who sent the request: the HTTP layer's caller, else the fixed one.
    /// The `/mcp` layer gives every HTTP request one, so a request without
    /// is a bug, answered as an internal error rather than served.
    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .or(self.fixed.as_ref())
            .cloned()
            .ok_or_else(|| {
                tracing::error!("an MCP request reached the handler without a caller");
                McpError::internal_error("internal error", None)
            })
    }

    fn board_for(&self, caller: &Caller) -> BoardClient {
        self.board.with_bearer(caller.token.as_deref())
    }

    /// The snapshot behind a board resource, or the protocol error to answer.
    async fn snapshot(
        &self,
        caller: &Caller,
        uri: &str,
    ) -> Result<protocol::v1::BoardSnapshot, McpError> {
        let Some(board) = board_of_uri(uri) else {
            return Err(McpError::resource_not_found(
                format!("{uri} is not a board resource: they look like {BOARD_URI_PREFIX}{{slug}}"),
                None,
            ));
        };
        self.board_for(caller)
            .get_board(board)
            .await
            .map_err(|error| match error.code {
                protocol::board_frames::ErrorCode::NotFound => McpError::resource_not_found(
                    format!(
                        "{}; list_boards or resources/list shows the boards",
                        error.message
                    ),
                    None,
                ),
                _ => McpError::invalid_request(error.explain(None), None),
            })
    }

    /// Starts watching `uri` for this session, replacing an earlier watch.
    fn start_watch<F, Fut>(&self, caller: &Caller, uri: String, after: u64, notify: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let board_ref = board_of_uri(&uri).unwrap_or_default().to_owned();
        tokio::spawn(super::watch::watch_board(
            self.board_for(caller),
            board_ref,
            after,
            stop.clone(),
            notify,
        ));
        let mut subscriptions = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        subscriptions.insert(uri, stop.drop_guard());
    }
}

impl ServerHandler for BoardwireMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(
            Implementation::new("boardwire", env!("CARGO_PKG_VERSION")).with_title("Boardwire"),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
        .with_instructions(INSTRUCTIONS)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = self.caller(&context)?;
        let writes = caller.access.can_write_any();
        let tools = tools::TOOLS
            .iter()
            .filter(|tool| writes || !tools::is_write(&tool.name))
            .cloned()
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = self.caller(&context)?;
        let name = request.name.as_ref();
        if !tools::TOOLS.iter().any(|t| t.name == name) {
            return Err(McpError::invalid_params(
                format!("there is no tool named {name:?}; tools/list shows the tools"),
                None,
            ));
        }
        if tools::is_write(name) && !caller.access.can_write_any() {
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "{name} changes the board, and this token is read-only (it has no write claim): \
                 only list_boards, get_board and list_sprints are available. Ask for a token with write \
                 access to change boards."
            ))])
            .into());
        }
        let arguments = request.arguments.unwrap_or_default();
        let result = tools::call(&self.board_for(&caller), name, arguments).await;
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let caller = self.caller(&context)?;
        let boards = self
            .board_for(&caller)
            .list_boards()
            .await
            .map_err(|error| McpError::internal_error(error.explain(None), None))?;
        let resources = boards
            .iter()
            .map(|board| {
                Resource::new(board_uri(&board.slug), board.slug.clone())
                    .with_title(board.name.clone())
                    .with_description(format!(
                        "Board {:?}: its lanes and tasks as JSON, at version {}",
                        board.name, board.version
                    ))
                    .with_mime_type("application/json")
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(format!("{BOARD_URI_PREFIX}{{slug}}"), "board")
                .with_title("A Boardwire board")
                .with_description("A board's lanes and tasks as JSON, by its slug or id")
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = self.caller(&context)?;
        let snapshot = self.snapshot(&caller, &request.uri).await?;
        let text = serde_json::to_string(&SnapshotView::from(&snapshot))
            .map_err(|e| McpError::internal_error(e.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri).with_mime_type("application/json"),
        ])
        .into())
    }

    /// Protocol versions up to 2025-11-25: one watch per subscribed URI for
    /// the session, notifying on its standalone stream.
    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let caller = self.caller(&context)?;
        let snapshot = self.snapshot(&caller, &request.uri).await?;
        let peer = context.peer.clone();
        let uri = request.uri.clone();
        self.start_watch(&caller, request.uri, snapshot.version, move || {
            let peer = peer.clone();
            let uri = uri.clone();
            async move {
                peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                    .await
                    .is_ok()
            }
        });
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let mut subscriptions = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        subscriptions.remove(&request.uri);
        Ok(())
    }

    /// 2026-07-28's subscriptions/listen: the board resources asked for.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let boards: Vec<String> = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|uri| board_of_uri(uri).is_some())
            .cloned()
            .collect();
        Some(
            SubscriptionFilter::builder()
                .resource_subscriptions(boards)
                .build(),
        )
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let caller = self.caller(context.request_context())?;
        let uris = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        let stop = CancellationToken::new();
        let _stop_on_return = stop.clone().drop_guard();
        let sink = context.sink().clone();
        for uri in &uris {
            let uri = uri.clone();
            let snapshot = self.snapshot(&caller, &uri).await?;
            let sink = sink.clone();
            let board_ref = board_of_uri(&uri).unwrap_or_default().to_owned();
            tokio::spawn(super::watch::watch_board(
                self.board_for(&caller),
                board_ref,
                snapshot.version,
                stop.clone(),
                move || {
                    let sink = sink.clone();
                    let uri = uri.clone();
                    async move { sink.notify_resource_updated(uri).await.is_ok() }
                },
            ));
        }
        // rmcp acknowledges the listen before calling this, so a change
        // made between the two is in no watch: one notification now has the
        // client read each board after the watches began, and none is lost.
        for uri in uris {
            if sink.notify_resource_updated(uri).await.is_err() {
                return Ok(());
            }
        }
        context.cancelled().await;
        Ok(())
    }
}
