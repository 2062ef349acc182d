use std::collections::HashMap;

use chrono::DateTime;
use protocol::chat_frames::{Approval, ToolExecution, ToolStatus};
use sqlx::{Row, types::Json};
use uuid::Uuid;

use super::Store;

impl Store {
    /// Saves the latest state of a tool call.
    pub async fn upsert_tool(
        &self,
        run_id: Uuid,
        session_id: &str,
        tool: &ToolExecution,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO chat_tool_executions
                (run_id, tool_call_id, session_id, tool, status, input, output, error, started_at, ended_at, approval)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (run_id, tool_call_id) DO UPDATE SET
                tool = EXCLUDED.tool, status = EXCLUDED.status, input = EXCLUDED.input,
                output = EXCLUDED.output, error = EXCLUDED.error, ended_at = EXCLUDED.ended_at,
                approval = EXCLUDED.approval",
        )
        .bind(run_id)
        .bind(&tool.id)
        .bind(session_id)
        .bind(&tool.tool)
        .bind(tool.status.as_str())
        .bind(Json(&tool.input))
        .bind(tool.output.as_ref().map(Json))
        .bind(&tool.error)
        .bind(DateTime::from_timestamp_millis(tool.start_time))
        .bind(tool.end_time.and_then(DateTime::from_timestamp_millis))
        .bind(tool.approval.as_ref().map(Json))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Appends the audit record of a finished tool call; `outcome` is
    /// `completed`, `failed` or `cancelled`.
    pub async fn audit_tool(
        &self,
        run_id: Uuid,
        session_id: &str,
        tool: &ToolExecution,
        outcome: &str,
    ) -> sqlx::Result<()> {
        let duration_ms = tool.end_time.unwrap_or(tool.start_time) - tool.start_time;
        let approval = tool.approval.as_deref();
        sqlx::query(
            "INSERT INTO chat_tool_audit
                (session_id, run_id, tool_call_id, tool, input, outcome, error, duration_ms,
                 approved, approved_by, approved_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(session_id)
        .bind(run_id)
        .bind(&tool.id)
        .bind(&tool.tool)
        .bind(Json(&tool.input))
        .bind(outcome)
        .bind(&tool.error)
        .bind(duration_ms.max(0))
        .bind(approval.and_then(|a| a.approved))
        .bind(approval.and_then(|a| a.decided_by.as_deref()))
        .bind(
            approval
                .and_then(|a| a.decided_at)
                .and_then(DateTime::from_timestamp_millis),
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every tool execution of the session, grouped by run, in call order.
    pub async fn tool_executions(
        &self,
        session_id: &str,
    ) -> sqlx::Result<HashMap<Uuid, Vec<ToolExecution>>> {
        let rows = sqlx::query(&format!(
            "{TOOL_COLUMNS} WHERE session_id = $1 ORDER BY position"
        ))
        .bind(session_id)
        .fetch_all(self.pool())
        .await?;
        let mut by_run: HashMap<Uuid, Vec<ToolExecution>> = HashMap::new();
        for row in rows {
            by_run
                .entry(row.try_get("run_id")?)
                .or_default()
                .push(tool_from_row(&row)?);
        }
        Ok(by_run)
    }

    /// The run's tool executions, in call order.
    pub async fn run_tool_executions(&self, run_id: Uuid) -> sqlx::Result<Vec<ToolExecution>> {
        let rows = sqlx::query(&format!(
            "{TOOL_COLUMNS} WHERE run_id = $1 ORDER BY position"
        ))
        .bind(run_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(tool_from_row).collect()
    }
}

const TOOL_COLUMNS: &str =
    "SELECT run_id, tool_call_id, tool, status, input, output, error, started_at, ended_at, approval
     FROM chat_tool_executions";

fn tool_from_row(row: &sqlx::postgres::PgRow) -> sqlx::Result<ToolExecution> {
    let status = match row.try_get::<String, _>("status")?.as_str() {
        "started" => ToolStatus::Started,
        "awaiting_approval" => ToolStatus::AwaitingApproval,
        "running" => ToolStatus::Running,
        "completed" => ToolStatus::Completed,
        _ => ToolStatus::Failed,
    };
    let started: DateTime<chrono::Utc> = row.try_get("started_at")?;
    let ended: Option<DateTime<chrono::Utc>> = row.try_get("ended_at")?;
    Ok(ToolExecution {
        id: row.try_get("tool_call_id")?,
        tool: row.try_get("tool")?,
        status,
        input: row.try_get::<Json<serde_json::Value>, _>("input")?.0,
        output: row
            .try_get::<Option<Json<serde_json::Value>>, _>("output")?
            .map(|j| j.0),
        error: row.try_get("error")?,
        progress: None,
        start_time: started.timestamp_millis(),
        end_time: ended.map(|t| t.timestamp_millis()),
        approval: row
            .try_get::<Option<Json<Box<Approval>>>, _>("approval")?
            .map(|j| j.0),
    })
}
