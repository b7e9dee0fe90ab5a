//! HTTP handlers, one module per resource (DESIGN.md section 6): parse the request, call the
//! [`Store`](crate::store::Store), map the error.

pub mod health;
pub mod objects;
mod range;
