//! The role check every root field carries: the principal the handler put
//! into the request data must hold the reader role (admins hold it too).

use async_graphql::{Context, ErrorExtensions, Guard};
use tollgate_auth::{Principal, Role};

/// Lets the field run only for callers holding `reader`.
pub struct Reader;

impl Guard for Reader {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        match ctx.data_opt::<Principal>() {
            Some(principal) if principal.has(Role::Reader) => Ok(()),
            _ => Err(async_graphql::Error::new("forbidden: this field needs the reader role")
                .extend_with(|_, ext| ext.set("code", "FORBIDDEN"))),
        }
    }
}
