//! `list`: every LXC domain on the connection, with its live state.

use crate::container::{self, Row};
use crate::context::Context;
use anyhow::Result;

pub fn list(ctx: &Context) -> Result<Vec<Row>> {
    container::with_real_env(ctx, &*ctx.ui, container::list)
}
