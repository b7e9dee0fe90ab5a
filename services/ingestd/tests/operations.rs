//! Operating the trio (docs/contract.md section 9): one request id and trace id across the three
//! services' logs, `GET /metrics` on each (counting what was done, behind the read tokens),
//! and JSON 405 answers for a wrong method. The real binaries on port 0.

use lakehouse_testkit::{Service, Trio, multipart_content_type, multipart_file};
use serde_json::Value;

async fn ingest(
    http: &reqwest::Client,
    trio: &Trio,
    query: &str,
    csv: &[u8],
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Value) {
    let mut request = http
        .post(format!("{}/ingest?{query}", trio.ingestd.url()))
        .header("content-type", multipart_content_type())
        .body(multipart_file("file", csv));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("ingestd answers");
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().expect("ascii").to_owned());
    (status, request_id, response.json().await.expect("JSON"))
}

/// The log lines of `log` that contain `needle`.
fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|line| line.contains(needle)).collect()
}

/// The lines of `log` that hold `event`, each of which must carry `field`.
fn assert_event_carries(service: &str, log: &str, event: &str, field: &str) {
    let lines = lines_with(log, event);
    assert!(!lines.is_empty(), "{service} logged no {event:?}:\n{log}");
    for line in lines {
        assert!(line.contains(field), "{service}: {line:?} lacks {field}");
    }
}

#[tokio::test]
async fn one_ingest_is_followed_by_its_request_id_and_trace_id_through_all_three_logs() {
    let trio = Trio::start(&[]).expect("trio starts");
    let http = reqwest::Client::new();

    // A client-supplied request id and traceparent.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let (status, echoed, body) = ingest(
        &http,
        &trio,
        "name=traced",
        b"a,b\n1,x\n2,y\n",
        &[
            ("x-request-id", "client-chosen-id-1"),
            ("traceparent", &traceparent),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(echoed.as_deref(), Some("client-chosen-id-1"));
    let request_id = "request_id=client-chosen-id-1";
    let trace = format!("trace_id={trace_id}");
    for field in [request_id, trace.as_str()] {
        assert_event_carries(
            "ingestd",
            &trio.ingestd.log_once_a_line_holds(&["ingest complete"]),
            "ingest complete",
            field,
        );
        assert_event_carries(
            "storaged",
            &trio
                .storaged
                .log_once_a_line_holds(&["content-addressed object stored"]),
            "content-addressed object stored",
            field,
        );
        assert_event_carries(
            "catalogd",
            &trio.catalogd.log_once_a_line_holds(&["version registered"]),
            "version registered",
            field,
        );
        // The writes catalogd makes for the register (the version record, the Iceberg
        // metadata) are part of the same request, and say so in storaged's log.
        for written in [
            "_catalog/datasets/traced/",
            "datasets/traced/metadata/v1.metadata.json",
        ] {
            let log = trio
                .storaged
                .log_once_a_line_holds(&["object stored", written]);
            let lines: Vec<&str> = lines_with(&log, written)
                .into_iter()
                .filter(|line| line.contains("object stored"))
                .collect();
            assert!(!lines.is_empty(), "storaged never stored {written}");
            for line in lines {
                assert!(line.contains(field), "storaged: {line:?} lacks {field}");
            }
        }
    }

    // No id from the client: ingestd makes one, answers it, and passes it on; the trace id
    // is new and the same in all three.
    let (status, made, body) = ingest(&http, &trio, "name=untraced", b"c\n1\n", &[]).await;
    assert_eq!(status, 200, "{body}");
    let made = made.expect("ingestd answers an x-request-id");
    assert_ne!(made, "client-chosen-id-1");
    let field = format!("request_id={made}");
    let ingestd_log = trio
        .ingestd
        .log_once_a_line_holds(&[&field, "ingest complete"]);
    let complete = lines_with(&ingestd_log, &field);
    let complete = complete
        .iter()
        .find(|line| line.contains("ingest complete"))
        .expect("ingestd's ingest complete line carries the made id");
    let new_trace = complete
        .split("trace_id=")
        .nth(1)
        .and_then(|rest| rest.get(..32))
        .expect("a trace id");
    assert_ne!(new_trace, trace_id);
    let new_trace = format!("trace_id={new_trace}");
    for (service, log) in [
        (
            "storaged",
            trio.storaged
                .log_once_a_line_holds(&[&field, "content-addressed object stored"]),
        ),
        (
            "catalogd",
            trio.catalogd
                .log_once_a_line_holds(&[&field, "version registered"]),
        ),
    ] {
        let lines = lines_with(&log, &field);
        assert!(!lines.is_empty(), "{service} never logged {field}:\n{log}");
        for line in lines {
            assert!(
                line.contains(&new_trace),
                "{service}: {line:?} lacks {new_trace}"
            );
        }
    }
}

/// The value of the sample `name` (with its labels, as rendered) in a Prometheus text page.
/// Panics when the page lacks it: every series asserted on here must be exported (the
/// unlabelled counters from the start, at 0), and a missing one is what a dashboard would
/// show as "no data".
fn sample(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == name).then(|| value.parse::<f64>().expect("a number"))
        })
        .unwrap_or_else(|| panic!("no sample {name} on the page:\n{page}"))
}

async fn scrape(http: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = http.get(format!("{url}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    if status == 200 {
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
    }
    (status, response.text().await.expect("text"))
}

#[tokio::test]
async fn metrics_count_what_was_done_behind_the_read_tokens() {
    let envs = [
        ("LAKEHOUSE_STORAGED__SERVICE_TOKEN", "svc".to_owned()),
        (
            "LAKEHOUSE_STORAGED__READ_TOKENS",
            r#"["reader"]"#.to_owned(),
        ),
        ("LAKEHOUSE_CATALOGD__SERVICE_TOKEN", "svc".to_owned()),
        (
            "LAKEHOUSE_CATALOGD__READ_TOKENS",
            r#"["reader"]"#.to_owned(),
        ),
        ("LAKEHOUSE_INGESTD__SERVICE_TOKEN", "svc".to_owned()),
        ("LAKEHOUSE_INGESTD__TOKENS", r#"["uploader"]"#.to_owned()),
    ];
    let trio = Trio::start(&envs).expect("trio starts");
    let http = reqwest::Client::new();
    let auth = [("authorization", "Bearer uploader")];
    let csv = b"id,name\n1,a\n2,b\n3,c\n";
    assert_eq!(ingest(&http, &trio, "name=m", csv, &auth).await.0, 200);
    assert_eq!(ingest(&http, &trio, "name=m", csv, &auth).await.0, 200);
    let more = b"id,name\n4,d\n";
    assert_eq!(
        ingest(&http, &trio, "name=m&mode=append", more, &auth)
            .await
            .0,
        200
    );
    let (status, _, body) = ingest(&http, &trio, "name=m", b"other\nx\n", &auth).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(ingest(&http, &trio, "name=bad!", csv, &auth).await.0, 400);

    for (service, url, token) in [
        ("ingestd", trio.ingestd.url(), "uploader"),
        ("storaged", trio.storaged.url(), "reader"),
        ("catalogd", trio.catalogd.url(), "reader"),
    ] {
        assert_eq!(scrape(&http, &url, None).await.0, 401, "{service}");
        assert_eq!(scrape(&http, &url, Some("wrong")).await.0, 401, "{service}");
        assert_eq!(scrape(&http, &url, Some(token)).await.0, 200, "{service}");
    }

    ingestd_counts_ingests_rows_bytes_and_stages(&http, &trio, csv.len() * 2 + more.len()).await;
    catalogd_counts_versions_by_route_template(&http, &trio).await;
    storaged_counts_bytes_and_fsyncs(&http, &trio).await;
}

/// ingestd's page: 2 ok, 1 existing, 1 drift, 1 bad name; 7 rows of `csv_bytes` bytes.
async fn ingestd_counts_ingests_rows_bytes_and_stages(
    http: &reqwest::Client,
    trio: &Trio,
    csv_bytes: usize,
) {
    let (_, page) = scrape(http, &trio.ingestd.url(), Some("uploader")).await;
    let outcome = |o: &str| {
        sample(
            &page,
            &format!("lakehouse_ingestd_ingests_total{{outcome=\"{o}\"}}"),
        )
    };
    assert_eq!(outcome("ok"), 2.0, "{page}");
    assert_eq!(outcome("existing"), 1.0, "{page}");
    assert_eq!(outcome("schema_drift"), 1.0, "{page}");
    assert_eq!(outcome("invalid_name"), 1.0, "{page}");
    assert_eq!(sample(&page, "lakehouse_ingestd_ingested_rows_total"), 7.0);
    assert_eq!(
        sample(&page, "lakehouse_ingestd_ingested_csv_bytes_total"),
        csv_bytes as f64
    );
    assert_eq!(sample(&page, "lakehouse_ingestd_ingests_in_flight"), 0.0);
    assert_eq!(
        sample(
            &page,
            "lakehouse_ingestd_ingest_stage_duration_seconds_count{stage=\"register\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(
            &page,
            "lakehouse_ingestd_http_requests_total{method=\"POST\",route=\"/ingest\",status=\"200\"}"
        ),
        3.0
    );
}

/// catalogd's page: the same content again is `existing`, not a version; drift was refused
/// by ingestd's own check before any register; routes by template, never raw paths.
async fn catalogd_counts_versions_by_route_template(http: &reqwest::Client, trio: &Trio) {
    let (_, page) = scrape(http, &trio.catalogd.url(), Some("reader")).await;
    // The same content again is `existing`, not a version; drift was refused by ingestd's
    // own check before any register.
    assert_eq!(
        sample(&page, "lakehouse_catalogd_versions_committed_total"),
        2.0,
        "{page}"
    );
    assert_eq!(
        sample(&page, "lakehouse_catalogd_drift_refusals_total"),
        0.0,
        "{page}"
    );
    // Route templates, never raw paths.
    assert!(
        page.contains("route=\"/datasets/{name}/versions\""),
        "{page}"
    );
    assert!(!page.contains("/datasets/m"), "{page}");
}

/// storaged's page: bytes written and fsyncs timed.
async fn storaged_counts_bytes_and_fsyncs(http: &reqwest::Client, trio: &Trio) {
    let (_, page) = scrape(http, &trio.storaged.url(), Some("reader")).await;
    assert!(
        sample(&page, "lakehouse_storaged_written_bytes_total") > 0.0,
        "{page}"
    );
    assert!(
        sample(&page, "lakehouse_storaged_fsync_duration_seconds_count") > 0.0,
        "{page}"
    );
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405_on_every_service() {
    let trio = Trio::start(&[]).expect("trio starts");
    let http = reqwest::Client::new();
    for url in [
        format!("{}/ingest", trio.ingestd.url()),
        format!("{}/objects", trio.storaged.url()),
        format!("{}/datasets", trio.catalogd.url()),
        format!("{}/metrics", trio.catalogd.url()),
    ] {
        let response = http.delete(&url).send().await.expect("answers");
        assert_eq!(response.status().as_u16(), 405, "{url}");
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["error"]["code"], "method_not_allowed", "{url}: {body}");
    }
}

#[tokio::test]
async fn each_openapi_document_lists_every_route_and_only_real_ones() {
    let trio = Trio::start(&[]).expect("trio starts");
    let http = reqwest::Client::new();
    let shared = [
        "get /healthz",
        "get /readyz",
        "get /metrics",
        "get /openapi.json",
    ];
    for (service, own) in [
        (
            &trio.ingestd,
            vec![
                "post /ingest",
                "post /datasets/{name}/compact",
                "post /loads",
                "get /loads",
                "get /loads/{id}",
            ],
        ),
        (
            &trio.catalogd,
            vec![
                "get /datasets",
                "get /datasets/{name}",
                "delete /datasets/{name}",
                "get /datasets/{name}/versions",
                "post /datasets/{name}/versions",
                "get /datasets/{name}/versions/{version}",
                "get /datasets/{name}/loaded-files",
                "post /admin/gc",
                "get /ui",
                "get /ui/datasets/{name}",
                "get /iceberg/v1/config",
                "get /iceberg/v1/namespaces",
                "post /iceberg/v1/namespaces",
                "get /iceberg/v1/namespaces/{ns}",
                "head /iceberg/v1/namespaces/{ns}",
                "post /iceberg/v1/namespaces/{ns}",
                "delete /iceberg/v1/namespaces/{ns}",
                "post /iceberg/v1/namespaces/{ns}/properties",
                "post /iceberg/v1/namespaces/{ns}/register",
                "get /iceberg/v1/namespaces/{ns}/tables",
                "post /iceberg/v1/namespaces/{ns}/tables",
                "get /iceberg/v1/namespaces/{ns}/tables/{table}",
                "head /iceberg/v1/namespaces/{ns}/tables/{table}",
                "post /iceberg/v1/namespaces/{ns}/tables/{table}",
                "delete /iceberg/v1/namespaces/{ns}/tables/{table}",
                "post /iceberg/v1/namespaces/{ns}/tables/{table}/metrics",
                "post /iceberg/v1/tables/rename",
                "post /iceberg/v1/transactions/commit",
            ],
        ),
        (
            &trio.storaged,
            vec![
                "get /objects",
                "get /objects/{key}",
                "head /objects/{key}",
                "put /objects/{key}",
                "post /objects/{key}",
                "delete /objects/{key}",
                "get /location",
            ],
        ),
    ] {
        check_document(&http, service, &shared, &own).await;
    }
}

/// `service`'s OpenAPI document lists exactly the `shared` and its `own` operations
/// (`"<method> <path>"`), and the router serves each of them.
async fn check_document(http: &reqwest::Client, service: &Service, shared: &[&str], own: &[&str]) {
    let doc: Value = http
        .get(format!("{}/openapi.json", service.url()))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0", "{}", service.name);
    let mut documented: Vec<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            let path = path.clone();
            item.as_object()
                .expect("a path item")
                .keys()
                .map(move |method| format!("{method} {path}"))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<String> = shared.iter().chain(own).map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(documented, expected, "{}", service.name);
    // Each documented operation is served: the router knows the route and the method
    // (an unknown one would be 404 `no such route` or 405).
    for operation in &documented {
        let (method, path) = operation.split_once(' ').unwrap();
        let path = path
            .replace("{name}", "no-such-dataset")
            .replace("{version}", "1")
            .replace("{key}", "no/such/key")
            .replace("{ns}", "no-such-namespace")
            .replace("{table}", "no-such-table")
            .replace("{id}", "no-such-load");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = http
            .request(method, format!("{}{path}", service.url()))
            .send()
            .await
            .expect("answers");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{} {operation}: {body}", service.name);
        assert!(
            !body.contains("no such route"),
            "{} {operation}: {body}",
            service.name
        );
        // The `/iceberg` fallback answers an unknown GET/HEAD path 404 `NotFoundException`
        // (an unknown write is 406 like the refused ones, so only the listing above
        // catches an undocumented write route there).
        assert!(
            !body.contains("NotFoundException"),
            "{} {operation}: {body}",
            service.name
        );
    }
}
