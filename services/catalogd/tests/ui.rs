//! The catalog page (`GET /ui`, `GET /ui/datasets/{name}`) served by the real
//! binaries: datasets ingested through ingestd, the HTML checked for what a reader sees
//! (names, types, statistics, versions, preview rows), escaping, errors and tokens.

use lakehouse_testkit::{Trio, multipart_content_type, multipart_file};

async fn ingest(trio: &Trio, query: &str, csv: &str) {
    let response = reqwest::Client::new()
        .post(format!("{}/ingest?{query}", trio.ingestd.url()))
        .header("content-type", multipart_content_type())
        .body(multipart_file("file", csv.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn page(url: String, cookie: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn the_pages_show_datasets_schema_stats_versions_and_preview() {
    let trio = Trio::start(&[]).expect("trio starts");
    ingest(
        &trio,
        "name=trips&null_values=NA",
        "id,city,fare,day\n1,Oslo,10.5,2024-01-02\n2,NA,7.25,2024-01-03\n3,Bergen,NA,2024-01-01\n",
    )
    .await;
    ingest(
        &trio,
        "name=trips&mode=append",
        "id,city,fare,day\n4,Tromsø,99.5,2024-02-01\n",
    )
    .await;
    ingest(
        &trio,
        "name=nasty",
        "\"a<b&c \"\"q\"\" 'x'\",plain\n<script>alert(1)</script>,1\n",
    )
    .await;
    let base = trio.catalogd.url();
    the_list_is_filtered_and_paginated(&base).await;
    the_dataset_page_shows_schema_stats_versions_and_preview(&base, &trio.storaged.url()).await;
    versions_escaping_and_errors(&base).await;
}

/// `GET /ui`: both datasets linked, no script, the prefix filter, one a page with a next link.
async fn the_list_is_filtered_and_paginated(base: &str) {
    let (status, list) = page(format!("{base}/ui"), None).await;
    assert_eq!(status, 200);
    assert!(
        list.contains(r#"<a href="/ui/datasets/trips">trips</a>"#),
        "{list}"
    );
    assert!(
        list.contains(r#"<a href="/ui/datasets/nasty">nasty</a>"#),
        "{list}"
    );
    assert!(!list.contains("<script"), "no script at all: {list}");
    let (_, filtered) = page(format!("{base}/ui?prefix=tr"), None).await;
    assert!(filtered.contains("/ui/datasets/trips"));
    assert!(!filtered.contains("/ui/datasets/nasty"));
    // Paginated: one a page, a next link to the rest.
    let (_, first) = page(format!("{base}/ui?limit=1"), None).await;
    assert!(first.contains("/ui/datasets/nasty"), "{first}");
    assert!(!first.contains("/ui/datasets/trips"), "{first}");
    assert!(
        // The cursor is opaque: the hex of the last name shown (`nasty`).
        first.contains(r#"<a href="/ui?cursor=6e61737479&amp;limit=1" rel="next">"#),
        "{first}"
    );
    let (_, second) = page(format!("{base}/ui?cursor=6e61737479&limit=1"), None).await;
    assert!(second.contains("/ui/datasets/trips"), "{second}");
    assert!(!second.contains(r#"rel="next""#), "{second}");
    let (status, _) = page(format!("{base}/ui?limit=0"), None).await;
    assert_eq!(status, 400);
}

/// `GET /ui/datasets/trips`: names and types, statistics over both objects, versions, the
/// chart, the preview and download links to `storaged`.
async fn the_dataset_page_shows_schema_stats_versions_and_preview(base: &str, storaged: &str) {
    let (status, trips) = page(format!("{base}/ui/datasets/trips"), None).await;
    assert_eq!(status, 200, "{trips}");
    for (column, kind) in [
        ("id", "int64"),
        ("city", "utf8"),
        ("fare", "float64"),
        ("day", "date32"),
    ] {
        assert!(
            trips.contains(&format!(
                r#"<td class="column">{column}</td><td class="type mono">{kind}</td>"#
            )),
            "{column}: {trips}"
        );
    }
    // Statistics from the footers: min and max over both objects, null shares.
    assert!(
        trips.contains("<td>2024-01-01</td><td>2024-02-01</td>"),
        "{trips}"
    );
    assert!(trips.contains("<td>7.25</td><td>99.5</td>"), "{trips}");
    assert!(trips.contains("25.0%"), "one null city of 4 rows: {trips}");
    // Versions with time travel links, the chart, the preview rows, download links.
    assert!(trips.contains(r#"href="/ui/datasets/trips?version=1">v1</a>"#));
    assert!(trips.contains(r#"href="/ui/datasets/trips?version=2">v2</a>"#));
    assert!(trips.contains("<svg id=\"chart\""));
    assert!(trips.contains("version 2: 4 rows"));
    assert!(trips.contains("<td>Oslo</td>"), "{trips}");
    assert!(trips.contains("<td>Bergen</td>"), "{trips}");
    assert!(trips.contains(&format!(r#"href="{}/objects/datasets/trips/"#, storaged)));
}

/// Time travel, escaping of hostile names and values, and the error pages.
async fn versions_escaping_and_errors(base: &str) {
    let (status, v1) = page(format!("{base}/ui/datasets/trips?version=1"), None).await;
    assert_eq!(status, 200);
    assert!(v1.contains("You are looking at version 1 of 2"), "{v1}");
    assert!(!v1.contains("<td>Tromsø</td>"), "{v1}");

    let (status, nasty) = page(format!("{base}/ui/datasets/nasty"), None).await;
    assert_eq!(status, 200);
    assert!(
        nasty.contains("a&lt;b&amp;c &quot;q&quot; 'x'"),
        "escaped column name: {nasty}"
    );
    assert!(
        nasty.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{nasty}"
    );
    assert!(!nasty.contains("<script"), "{nasty}");

    let (status, _) = page(format!("{base}/ui/datasets/nope"), None).await;
    assert_eq!(status, 404);
    let (status, _) = page(format!("{base}/ui/datasets/trips?version=9"), None).await;
    assert_eq!(status, 404);
    let (status, _) = page(format!("{base}/ui/datasets/trips?version=x"), None).await;
    assert_eq!(status, 400);
    let (status, _) = page(format!("{base}/ui/datasets/bad%20name"), None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn read_tokens_apply_by_header_or_cookie() {
    let trio = Trio::start(&[
        ("LAKEHOUSE_CATALOGD__READ_TOKENS", "[\"reader\"]".into()),
        ("LAKEHOUSE_CATALOGD__SERVICE_TOKEN", "svc".into()),
        ("LAKEHOUSE_INGESTD__SERVICE_TOKEN", "svc".into()),
        ("LAKEHOUSE_STORAGED__SERVICE_TOKEN", "svc".into()),
    ])
    .expect("trio starts");
    let url = format!("{}/ui", trio.catalogd.url());
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    // A page a browser shows, saying how to present a token.
    let (status, body) = page(url.clone(), None).await;
    assert_eq!(status, 401);
    assert!(body.contains("lakehouse_token"), "{body}");
    let status = reqwest::Client::new()
        .get(&url)
        .header("cookie", "lakehouse_token=wrong")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let (status, _) = page(url.clone(), Some("theme=dark; lakehouse_token=reader")).await;
    assert_eq!(status, 200);
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth("reader")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn odd_input_to_the_pages_is_a_4xx_page_never_a_500() {
    let trio = Trio::start(&[]).expect("trio starts");
    ingest(&trio, "name=trips", "id,city\n1,Oslo\n2,Bergen\n").await;
    let base = trio.catalogd.url();
    let long = "a".repeat(200);
    for (query, expected) in [
        // A huge limit is clamped, not refused; a limit that is not a count is refused.
        ("/ui?limit=1000000", 200),
        ("/ui?limit=abc", 400),
        ("/ui?limit=-1", 400),
        ("/ui?limit=99999999999999999999999", 400),
        // A cursor the page did not hand out (docs/contract.md section 14).
        ("/ui?cursor=zzz", 400),
        ("/ui?cursor=%00%01", 400),
        ("/ui?prefix=%F0%9F%A6%80", 200),
        // Bytes that are not UTF-8 are read as U+FFFD (the query decoder is lossy).
        ("/ui?prefix=%FF%FE", 200),
        ("/ui/datasets/trips?version=0", 404),
        ("/ui/datasets/trips?version=-1", 400),
        ("/ui/datasets/trips?version=abc", 400),
        ("/ui/datasets/trips?version=18446744073709551615", 404),
        ("/ui/datasets/trips?version=18446744073709551616", 400),
        ("/ui/datasets/trips?version=1&version=2", 400),
        ("/ui/datasets/..x", 400),
        ("/ui/datasets/-x", 400),
        ("/ui/datasets/a%2Fb", 400),
        ("/ui/datasets/.hidden", 400),
        ("/ui/datasets/caf%C3%A9", 400),
        ("/ui/datasets/nope", 404),
    ] {
        let (status, body) = page(format!("{base}{query}"), None).await;
        assert_eq!(status, expected, "{query}: {body}");
        assert!(body.contains("lakehouse catalog"), "{query}: an HTML page");
    }
    let (status, body) = page(format!("{base}/ui/datasets/{long}"), None).await;
    assert_eq!(status, 400, "{body}");
    // A prefix is shown back escaped, in the filter box and in the "no datasets" line.
    let (status, body) = page(format!("{base}/ui?prefix=%3Cb%3E%26%22"), None).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"value="&lt;b&gt;&amp;&quot;""#), "{body}");
    assert!(body.contains("<code>&lt;b&gt;&amp;&quot;</code>"), "{body}");
    assert!(!body.contains("<b>"), "{body}");
    // The clamped page still lists the dataset.
    let (_, body) = page(format!("{base}/ui?limit=1000000"), None).await;
    assert!(body.contains("/ui/datasets/trips"), "{body}");
}

/// An evolved schema and records set aside (docs/contract.md section 3) show on the page: the new
/// column in the schema, and a download link to the rejects object on its data object.
#[tokio::test]
async fn the_page_shows_an_added_column_and_the_records_set_aside() {
    let trio = Trio::start(&[]).expect("trio starts");
    ingest(&trio, "name=grow", "id,city\n1,Oslo\n").await;
    ingest(
        &trio,
        "name=grow&mode=append&schema_evolution=add_columns&max_rejects=1",
        "id,city,zone\n2,Bergen,w\nragged\n",
    )
    .await;
    let base = trio.catalogd.url();
    let (status, html) = page(format!("{base}/ui/datasets/grow"), None).await;
    assert_eq!(status, 200);
    assert!(html.contains("zone"), "{html}");
    assert!(html.contains("/objects/datasets/grow/_rejects/"), "{html}");
    assert!(html.contains("1 records</a>"), "{html}");
}
