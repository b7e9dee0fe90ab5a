//! The request timeout every service puts on its non-streaming routes.

use crate::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lakehouse_api::ErrorCode;
use std::time::Duration;

/// Middleware (for `axum::middleware::from_fn_with_state(limit, request_timeout)`) that
/// answers 503 `unavailable` with `Retry-After: 1` and details `{"timeout_ms": <limit>}` when
/// the inner service has not produced its response head within `limit`. Only the head is
/// timed: a body that streams afterwards (a storaged GET) runs as long as it needs. Routes
/// that receive a streamed upload stay outside it.
pub async fn request_timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let timeout_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
            ApiError::with_details(
                ErrorCode::Unavailable,
                format!("request did not finish within {timeout_ms} ms"),
                serde_json::json!({ "timeout_ms": timeout_ms }),
            )
            .retry_after(1)
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn slow_requests_get_a_503_json_answer() {
        let limit = Duration::from_millis(20);
        let app = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            })
            .route_layer(axum::middleware::from_fn_with_state(limit, request_timeout)),
        );
        let request = axum::http::Request::get("/slow")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(
            response.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(response.headers()["retry-after"], "1");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "unavailable");
        assert_eq!(body["error"]["details"]["timeout_ms"], 20);
    }
}
