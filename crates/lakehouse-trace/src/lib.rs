//! The request context that follows one request across the trio (docs/contract.md section 9, "One
//! request id across the trio"): set by the servers (`lakehouse-server`'s `common_layers`),
//! read by the clients (`lakehouse-client`), so neither depends on the other.
//!
//! Each service's shared layers build a [`TraceContext`] from the incoming `x-request-id`
//! and W3C `traceparent` headers and run the handler inside [`scope`]; every request the
//! clients send from inside that scope carries the same `x-request-id` and a `traceparent`
//! with the same trace id (this hop's span id as the parent). Work moved to a blocking
//! thread or a spawned task keeps the context (and the tracing span, so its log lines still
//! carry the id) through [`bind`] and [`bind_future`].
//!
//! Not here: HTTP types (the header names are plain strings), the layers themselves.

use std::future::Future;
use tracing::Instrument;

/// Header of the request id (kept from the client, else made by the first service).
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Header of the W3C Trace Context (`traceparent`, version `00`).
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The request id and W3C trace context of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The `x-request-id` of the request (a UUID when the client sent none).
    pub request_id: String,
    /// 32 lowercase hex digits: the client's trace id when its `traceparent` was valid, else
    /// a new random one.
    pub trace_id: String,
    /// 16 lowercase hex digits: this hop's span id, new for every request served; sent as
    /// the parent id of the requests made on its behalf.
    pub span_id: String,
    /// The trace flags (bit 0: sampled), kept from the client's `traceparent`, else `01`.
    pub flags: u8,
}

impl TraceContext {
    /// The context of a request with `request_id` and the `traceparent` header's value:
    /// a valid `traceparent` keeps its trace id and flags; a missing or invalid one (W3C
    /// Trace Context, section 3.2: version `ff`, all-zero ids, wrong lengths or non-hex)
    /// starts a new trace. The span id is always new.
    pub fn new(request_id: &str, traceparent: Option<&str>) -> Self {
        let (trace_id, flags) = traceparent
            .and_then(parse_traceparent)
            .unwrap_or_else(|| (random_hex(32), 0x01));
        TraceContext {
            request_id: request_id.to_owned(),
            trace_id,
            span_id: random_hex(16),
            flags,
        }
    }

    /// The `traceparent` value to send on requests made on this one's behalf:
    /// `00-<trace_id>-<span_id>-<flags>`.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags)
    }
}

/// `(trace_id, flags)` of a valid `traceparent`, else `None`.
fn parse_traceparent(value: &str) -> Option<(String, u8)> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent_id = parts.next()?;
    let flags = parts.next()?;
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    // Version 00 has exactly four fields; a later version may append more.
    let fields_ok = version != "00" || parts.next().is_none();
    let valid = lower_hex(version, 2)
        && version != "ff"
        && fields_ok
        && lower_hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && lower_hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && lower_hex(flags, 2);
    if !valid {
        return None;
    }
    Some((trace_id.to_owned(), u8::from_str_radix(flags, 16).ok()?))
}

/// `len` (at most 32) random lowercase hex digits, never all zeros in practice (a v4 UUID has
/// fixed non-zero version bits).
fn random_hex(len: usize) -> String {
    let mut hex = uuid::Uuid::new_v4().simple().to_string();
    hex.truncate(len);
    if hex.bytes().all(|b| b == b'0') {
        hex.replace_range(..1, "1");
    }
    hex
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The context of the request being served on this task or thread, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `future` with `context` as the [`current`] one.
pub async fn scope<F: Future>(context: TraceContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// Wraps `f` (for `spawn_blocking` or a thread) so that it runs with the caller's
/// [`current`] context and inside the caller's tracing span.
pub fn bind<R>(f: impl FnOnce() -> R) -> impl FnOnce() -> R {
    let context = current();
    let span = tracing::Span::current();
    move || within(context, &span, f)
}

/// Runs `f` with `context` as the [`current`] one (none: as it is) inside `span`: for work
/// that starts requests from a thread of its own on behalf of a request whose context and
/// span were taken earlier ([`current`], `tracing::Span::current`).
pub fn within<R>(context: Option<TraceContext>, span: &tracing::Span, f: impl FnOnce() -> R) -> R {
    span.in_scope(|| match context {
        Some(context) => CURRENT.sync_scope(context, f),
        None => f(),
    })
}

/// Wraps `future` (for `tokio::spawn`) so that it runs with the caller's [`current`]
/// context and inside the caller's tracing span.
pub fn bind_future<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let context = current();
    let future = future.in_current_span();
    async move {
        match context {
            Some(context) => CURRENT.scope(context, future).await,
            None => future.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_keeps_its_trace_id_and_flags() {
        let context = TraceContext::new(
            "r1",
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        );
        assert_eq!(context.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.flags, 0);
        assert_ne!(context.span_id, "00f067aa0ba902b7");
        let sent = context.traceparent();
        assert!(
            sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{sent}"
        );
        assert!(sent.ends_with("-00"), "{sent}");
        assert_eq!(sent.len(), 55);
    }

    #[test]
    fn an_invalid_or_missing_traceparent_starts_a_new_trace() {
        for bad in [
            None,
            Some(""),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            Some("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"),
            Some("00-4bf92f-00f067aa0ba902b7-01"),
        ] {
            let context = TraceContext::new("r", bad);
            assert_eq!(context.trace_id.len(), 32, "{bad:?}");
            assert_ne!(
                context.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad:?}"
            );
            assert_eq!(context.flags, 1);
            assert!(parse_traceparent(&context.traceparent()).is_some());
        }
    }

    #[tokio::test]
    async fn bound_work_sees_the_context() {
        let context = TraceContext::new("r2", None);
        let seen = scope(context.clone(), async {
            tokio::task::spawn_blocking(bind(current)).await.unwrap()
        })
        .await;
        assert_eq!(seen, Some(context.clone()));
        let seen = scope(context.clone(), async {
            tokio::spawn(bind_future(async { current() }))
                .await
                .unwrap()
        })
        .await;
        assert_eq!(seen, Some(context));
        assert_eq!(current(), None);
    }
}
