//! HTTP handlers, one module per resource (docs/contract.md section 6): parse the request, call the
//! [`Store`](crate::store::Store), map the error.

pub mod health;
pub mod objects;
mod range;
