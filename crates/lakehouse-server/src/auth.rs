//! Bearer-token authentication shared by the three services (docs/decisions.md, "Hostile world").
//!
//! A service is configured with a list of tokens, each with a [`Scope`]. A request to a
//! protected route must carry `Authorization: Bearer <token>` with a token whose scope covers
//! the route's; tokens are compared in constant time (`subtle`). With no token configured the
//! routes are open (keep such a service on loopback). `/healthz` and `/readyz` are never
//! protected.

use crate::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lakehouse_api::ErrorCode;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// A configured secret (a bearer token): deserialized from a plain string, never printed by
/// `Debug` (config structs are logged at start).
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for sending or comparing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret, or `None` when it is empty (not configured).
    pub fn configured(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.clone())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        })
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Lookups (`GET`, `HEAD`).
    Read,
    /// Lookups and writes.
    Write,
}

/// The tokens a service accepts. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    // SHA-256 of each token, so the comparison runs over fixed-length values and the length
    // of a configured token does not leak through timing either.
    accepted: Arc<Vec<([u8; 32], Scope)>>,
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Tokens {
    /// Accepts `read` tokens for [`Scope::Read`] and `write` tokens for both scopes. Empty
    /// strings are ignored.
    pub fn new<'a>(
        read: impl IntoIterator<Item = &'a Secret>,
        write: impl IntoIterator<Item = &'a Secret>,
    ) -> Self {
        let mut accepted = Vec::new();
        for (tokens, scope) in [
            (read.into_iter().collect::<Vec<_>>(), Scope::Read),
            (write.into_iter().collect::<Vec<_>>(), Scope::Write),
        ] {
            for token in tokens.into_iter().filter(|t| !t.0.is_empty()) {
                accepted.push((digest(token.0.as_bytes()), scope));
            }
        }
        Tokens {
            accepted: Arc::new(accepted),
        }
    }

    /// True when no token is configured: every request is let through.
    pub fn is_open(&self) -> bool {
        self.accepted.is_empty()
    }

    /// The best scope `presented` grants, or `None` when it matches no token. Every
    /// configured token is compared, in constant time, whatever matches.
    pub fn scope_of(&self, presented: &[u8]) -> Option<Scope> {
        let presented = digest(presented);
        let mut best = None;
        for (accepted, scope) in self.accepted.iter() {
            if bool::from(accepted.ct_eq(&presented)) {
                best = best.max(Some(*scope));
            }
        }
        best
    }

    /// Checks the `Authorization` header of a request needing `needed`.
    ///
    /// # Errors
    /// [`AuthError::Unauthorized`] when the header is missing, not a bearer token, or no
    /// configured token; [`AuthError::Forbidden`] when the token lacks the scope.
    pub fn check(
        &self,
        authorization: Option<&HeaderValue>,
        needed: Scope,
    ) -> Result<(), AuthError> {
        if self.is_open() {
            return Ok(());
        }
        let token = authorization
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .map(|t| t.trim_ascii());
        match token.and_then(|t| self.scope_of(t)) {
            Some(scope) if scope >= needed => Ok(()),
            Some(_) => Err(AuthError::Forbidden),
            None => Err(AuthError::Unauthorized),
        }
    }
}

/// Why a request was refused by [`Tokens::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No valid bearer token (401 `unauthorized`, `WWW-Authenticate: Bearer`).
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// A valid token without the needed scope (403 `forbidden`).
    #[error("this token may not make this request")]
    Forbidden,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let code = match self {
            AuthError::Unauthorized => ErrorCode::Unauthorized,
            AuthError::Forbidden => ErrorCode::Forbidden,
        };
        let mut response = ApiError::new(code, self.to_string()).into_response();
        if self == AuthError::Unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Middleware (for `axum::middleware::from_fn_with_state`) that requires a token of
/// [`Scope::Read`] for `GET`/`HEAD` requests and [`Scope::Write`] for every other method.
pub async fn require_token(State(tokens): State<Tokens>, request: Request, next: Next) -> Response {
    let needed = if request.method() == axum::http::Method::GET
        || request.method() == axum::http::Method::HEAD
    {
        Scope::Read
    } else {
        Scope::Write
    };
    match tokens.check(request.headers().get(header::AUTHORIZATION), needed) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    #[test]
    fn secrets_are_not_printed() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "<redacted>");
        assert_eq!(format!("{:?}", Secret::default()), "<empty>");
    }

    #[test]
    fn no_tokens_means_open() {
        let tokens = Tokens::default();
        assert!(tokens.check(None, Scope::Write).is_ok());
    }

    #[test]
    fn scopes_are_enforced_and_failures_do_not_say_why() {
        let read = vec![Secret::new("r-token")];
        let write = vec![Secret::new("w-token"), Secret::default()];
        let tokens = Tokens::new(&read, &write);
        assert!(
            tokens
                .check(Some(&header("Bearer w-token")), Scope::Write)
                .is_ok()
        );
        assert!(
            tokens
                .check(Some(&header("Bearer r-token")), Scope::Read)
                .is_ok()
        );
        let forbidden = tokens
            .check(Some(&header("Bearer r-token")), Scope::Write)
            .unwrap_err();
        assert_eq!(forbidden, AuthError::Forbidden);
        assert_eq!(forbidden.into_response().status(), 403);
        for bad in [
            None,
            Some(header("Bearer w-toke")),
            Some(header("w-token")),
            Some(header("Bearer ")),
        ] {
            let response = tokens
                .check(bad.as_ref(), Scope::Read)
                .unwrap_err()
                .into_response();
            assert_eq!(response.status(), 401);
            assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        }
    }
}
