//! Which tool calls need a person's yes before they run (`AGENT_APPROVALS`),
//! and how long the agent waits for it (`AGENT_APPROVAL_TIMEOUT`).

use std::time::Duration;

/// `AGENT_APPROVALS`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApprovalMode {
    /// Every tool runs at once.
    Off,
    /// Deleting a task or a lane, and moving or deleting more than one task
    /// in one request, wait for a yes.
    #[default]
    Destructive,
    /// Every tool call waits for a yes.
    All,
}

/// The approval policy of the built-in agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approvals {
    pub mode: ApprovalMode,
    /// No answer in this long counts as a rejection.
    pub timeout: Duration,
}

impl Default for Approvals {
    fn default() -> Self {
        Self {
            mode: ApprovalMode::Destructive,
            timeout: Duration::from_secs(600),
        }
    }
}

impl Approvals {
    /// Whether `tool`, acting on `tasks` tasks, must wait for a yes.
    pub fn needed(&self, tool: &str, tasks: usize) -> bool {
        match self.mode {
            ApprovalMode::Off => false,
            ApprovalMode::All => true,
            ApprovalMode::Destructive => {
                matches!(tool, "delete_task" | "delete_lane")
                    || (matches!(tool, "move_task" | "move_tasks") && tasks > 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destructive_asks_for_deletes_and_bulk_moves_only() {
        let policy = |mode| Approvals {
            mode,
            timeout: Duration::from_secs(1),
        };
        let destructive = policy(ApprovalMode::Destructive);
        assert!(destructive.needed("delete_task", 1));
        assert!(destructive.needed("delete_lane", 1));
        assert!(destructive.needed("move_task", 2));
        assert!(!destructive.needed("move_task", 1));
        assert!(!destructive.needed("create_task", 1));
        assert!(policy(ApprovalMode::All).needed("list_tasks", 1));
        assert!(!policy(ApprovalMode::Off).needed("delete_task", 5));
    }
}
