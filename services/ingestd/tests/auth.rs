//! Bearer-token auth across the trio (docs/decisions.md, "Hostile world"): the real binaries with tokens
//! configured through `LAKEHOUSE_<SECTION>__<KEY>` variables.

use lakehouse_testkit::{Trio, multipart_content_type, multipart_file};
use serde_json::Value;

async fn send(request: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    (
        status,
        challenge,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn tokens_guard_every_service_and_the_trio_works_with_its_service_token() {
    let envs = [
        ("LAKEHOUSE_STORAGED__SERVICE_TOKEN", "svc-secret".to_owned()),
        (
            "LAKEHOUSE_STORAGED__READ_TOKENS",
            r#"["object-reader"]"#.to_owned(),
        ),
        ("LAKEHOUSE_CATALOGD__SERVICE_TOKEN", "svc-secret".to_owned()),
        (
            "LAKEHOUSE_CATALOGD__READ_TOKENS",
            r#"["catalog-reader"]"#.to_owned(),
        ),
        ("LAKEHOUSE_INGESTD__SERVICE_TOKEN", "svc-secret".to_owned()),
        ("LAKEHOUSE_INGESTD__TOKENS", r#"["uploader"]"#.to_owned()),
    ];
    let trio = Trio::start(&envs).expect("trio starts");
    let http = reqwest::Client::new();
    let ingest = |token: Option<&str>| {
        let mut request = http
            .post(format!("{}/ingest?name=guarded", trio.ingestd.url()))
            .header("content-type", multipart_content_type())
            .body(multipart_file("file", b"a,b\n1,x\n"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
    };

    for token in [
        None,
        Some("wrong"),
        Some("svc-secre"),
        Some("catalog-reader"),
    ] {
        let (status, challenge, body) = send(ingest(token)).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert_eq!(challenge.as_deref(), Some("Bearer"));
        assert_eq!(body["error"]["code"], "unauthorized");
        // The message never says which part was wrong.
        assert_eq!(body["error"]["message"], "missing or invalid bearer token");
    }
    let (status, _, body) = send(ingest(Some("uploader"))).await;
    assert_eq!(status, 200, "{body}");
    let key = body["parquet_key"].as_str().unwrap().to_owned();

    // catalogd: lookups need a read token, registers a write token.
    let catalog = format!("{}/datasets/guarded", trio.catalogd.url());
    let (status, _, _) = send(http.get(&catalog)).await;
    assert_eq!(status, 401);
    let (status, _, manifest) = send(http.get(&catalog).bearer_auth("catalog-reader")).await;
    assert_eq!(status, 200);
    assert_eq!(manifest, body["manifest"]);
    let register = http
        .post(format!("{catalog}/versions"))
        .bearer_auth("catalog-reader")
        .json(&serde_json::json!({}));
    let (status, _, refused) = send(register).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "forbidden");

    // Garbage collection deletes objects: write scope only.
    let gc = format!("{}/admin/gc?dry_run=true", trio.catalogd.url());
    let (status, _, _) = send(http.post(&gc)).await;
    assert_eq!(status, 401);
    let (status, _, _) = send(http.post(&gc).bearer_auth("catalog-reader")).await;
    assert_eq!(status, 403);
    let (status, _, report) = send(http.post(&gc).bearer_auth("svc-secret")).await;
    assert_eq!(status, 200, "{report}");

    // storaged: objects need the service token or a read token; writes the service token.
    let object = format!("{}/objects/{key}", trio.storaged.url());
    let (status, _, _) = send(http.get(&object)).await;
    assert_eq!(status, 401);
    let response = http
        .get(&object)
        .bearer_auth("object-reader")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(&response.bytes().await.unwrap()[..4], b"PAR1");
    let (status, _, _) = send(
        http.put(format!("{}/objects/x", trio.storaged.url()))
            .bearer_auth("object-reader")
            .body("x"),
    )
    .await;
    assert_eq!(status, 403);

    // Health endpoints stay open.
    for service in [&trio.storaged, &trio.catalogd, &trio.ingestd] {
        let (status, _, _) = send(http.get(format!("{}/readyz", service.url()))).await;
        assert_eq!(status, 200, "{} readyz", service.name);
    }
}
