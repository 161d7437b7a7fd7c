//! The role check every root field carries: the principal the handler put
//! into the request data must hold the field's role (admins hold every
//! role). Raw log events are the auditor's, like the audit stream.

use async_graphql::{Context, ErrorExtensions, Guard};
use tollgate_auth::{Principal, Role};

/// Lets the field run only for callers holding `reader`.
pub struct Reader;

/// Lets the field run only for callers holding `auditor`.
pub struct Auditor;

impl Guard for Reader {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        require(ctx, Role::Reader)
    }
}

impl Guard for Auditor {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        require(ctx, Role::Auditor)
    }
}

fn require(ctx: &Context<'_>, role: Role) -> async_graphql::Result<()> {
    match ctx.data_opt::<Principal>() {
        Some(principal) if principal.has(role) => Ok(()),
        principal => {
            let who = principal.map(Principal::identity).unwrap_or_default();
            tracing::warn!(principal = %who, field = ?ctx.path_node.as_ref().map(|n| n.field_name().to_owned()), "access denied: needs {role}");
            Err(async_graphql::Error::new(format!("forbidden: this field needs the {role} role"))
                .extend_with(|_, ext| ext.set("code", "FORBIDDEN")))
        }
    }
}
