//! catalogd's side of docs/contract.md section 14 over the real binaries: strict list options, a
//! cursor that does not decode is a 400, an HTML 404 under `/ui`, the page after schema
//! evolution (statistics and preview in the latest schema), the page's counts, chart and
//! inference line, and the login form that lets a person's browser open the page when read
//! tokens are on.

use lakehouse_testkit::{Trio, multipart_content_type, multipart_file};
use serde_json::Value;

async fn ingest(trio: &Trio, query: &str, csv: &str) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/ingest?{query}", trio.ingestd.url()))
        .header("content-type", multipart_content_type())
        .body(multipart_file("file", csv.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn page(url: String) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    (status, response.text().await.unwrap())
}

async fn get_json(url: String) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The text of the `<tr>` of `table` whose first cell is `first`.
fn row<'a>(html: &'a str, table: &str, first: &str) -> &'a str {
    let table = &html[html.find(&format!("id=\"{table}\"")).expect(table)..];
    let table = &table[..table.find("</table>").unwrap()];
    let cell = table
        .find(&format!(">{first}</td>"))
        .unwrap_or_else(|| panic!("{first} in {table}"));
    let start = table[..cell].rfind("<tr").unwrap();
    let end = cell + table[cell..].find("</tr>").unwrap();
    &table[start..end]
}

#[tokio::test]
async fn list_options_are_strict_and_a_cursor_must_be_one_handed_out() {
    let trio = Trio::start(&[]).expect("trio starts");
    for name in ["alpha", "beta", "gamma"] {
        ingest(&trio, &format!("name={name}"), "a\n1\n").await;
    }
    let base = trio.catalogd.url();
    let (status, body) = get_json(format!("{base}/datasets?prefx=al")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["message"],
        "unknown option `prefx`; did you mean `prefix`?"
    );
    // A lookup takes no options: `?version=` is not time travel, and says so.
    let (status, body) = get_json(format!("{base}/datasets/alpha?version=1")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["message"],
        "unknown option `version`; this takes no options"
    );
    let (status, body) = get_json(format!("{base}/datasets?cursor=zzz")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_option");
    // The cursors handed out page through every dataset.
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor.map_or(String::new(), |c| format!("&cursor={c}"));
        let (status, page) = get_json(format!("{base}/datasets?limit=1{query}")).await;
        assert_eq!(status, 200, "{page}");
        names.extend(
            page["datasets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["name"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    // The page too: an HTML 400 for a made-up cursor, an HTML 404 for a page that is not.
    let (status, html) = page(format!("{base}/ui?cursor=zzz")).await;
    assert_eq!(status, 400, "{html}");
    let (status, html) = page(format!("{base}/ui?limit=1")).await;
    assert_eq!(status, 200);
    let next = html
        .split("href=\"")
        .find_map(|h| h.strip_prefix("/ui?"))
        .unwrap();
    let next = &next[..next.find('"').unwrap()].replace("&amp;", "&");
    let (status, html) = page(format!("{base}/ui?{next}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("/ui/datasets/beta"), "{html}");
    let (status, html) = page(format!("{base}/ui/nothing")).await;
    assert_eq!(status, 404);
    assert!(html.contains("no page at /ui/nothing"), "{html}");
    let (status, html) = page(format!("{base}/ui/datasets/alpha?verison=1")).await;
    assert_eq!(status, 400);
    assert!(html.contains("did you mean `version`?"), "{html}");
}

#[tokio::test]
async fn the_page_after_schema_evolution_shows_the_latest_schema() {
    let trio = Trio::start(&[]).expect("trio starts");
    let mut csv = String::from("id,amount\n");
    for i in 0..1500 {
        csv.push_str(&format!("{i},{}.5\n", i % 100));
    }
    ingest(&trio, "name=sales", &csv).await;
    ingest(
        &trio,
        "name=sales&mode=append&schema_evolution=add_columns",
        "id,amount,currency\n9000,1.5,EUR\n9001,2.5,USD\n",
    )
    .await;
    let base = trio.catalogd.url();
    let (status, html) = page(format!("{base}/ui/datasets/sales")).await;
    assert_eq!(status, 200);
    assert!(!html.contains("statistics unavailable"), "{html}");
    // The new column: the first object's 1,500 rows count as its nulls; min and max read.
    let currency = row(&html, "schema", "currency");
    assert!(currency.contains("1,500 nulls of 1,502"), "{currency}");
    assert!(
        currency.contains("EUR") && currency.contains("USD"),
        "{currency}"
    );
    let amount = row(&html, "schema", "amount");
    assert!(
        amount.contains(">0.5<") && amount.contains(">99.5<"),
        "{amount}"
    );
    // The preview is in the latest schema: the older object's rows show null for it.
    let preview = &html[html.find("id=\"preview\"").unwrap()..];
    let preview = &preview[..preview.find("</table>").unwrap()];
    assert!(preview.contains("<th>currency</th>"), "{preview}");
    assert!(
        preview.contains(r#"<td class="null">null</td>"#),
        "{preview}"
    );
    // Thousands separators, and the encoding in the inference line.
    let facts = &html[html.find("id=\"facts\"").unwrap()..];
    assert!(facts.contains("1,502"), "{facts}");
    assert!(facts.contains("encoding <code>utf-8</code>"), "{facts}");
    // The small version stays visible beside the large one: every bar at least 2 high.
    let chart = &html[html.find("id=\"chart\"").unwrap()..];
    let chart = &chart[..chart.find("</svg>").unwrap()];
    for height in chart
        .split("height=\"")
        .skip(2)
        .map(|h| &h[..h.find('"').unwrap()])
    {
        let height: f64 = height.parse().unwrap();
        assert!(height >= 2.0, "{chart}");
    }
    // A 0-row dataset's chart says 0 rows.
    ingest(&trio, "name=empty", "a,b\n").await;
    let (_, html) = page(format!("{base}/ui/datasets/empty")).await;
    assert!(html.contains(">0 rows</text>"), "{html}");
    assert!(!html.contains("1 rows"), "{html}");
}

#[tokio::test]
async fn a_browser_signs_in_once_with_a_read_token() {
    let trio = Trio::start(&[
        ("LAKEHOUSE_CATALOGD__READ_TOKENS", "[\"reader\"]".into()),
        ("LAKEHOUSE_CATALOGD__WRITE_TOKENS", "[\"writer\"]".into()),
    ])
    .expect("trio starts");
    let base = trio.catalogd.url();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Refused, with the way in.
    let (status, html) = page(format!("{base}/ui")).await;
    assert_eq!(status, 401);
    assert!(html.contains(r#"href="/ui/login""#), "{html}");
    let (status, html) = page(format!("{base}/ui/login")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"<form method="post" action="/ui/login">"#),
        "{html}"
    );
    assert!(html.contains(r#"type="password" name="token""#), "{html}");
    // A wrong token: the form again, 401, no cookie.
    let wrong = http
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    // The read token: a session cookie only the page's requests carry, then the page.
    let signed = http
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=reader")
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    assert_eq!(signed.headers()["location"], "/ui");
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in [
        "lakehouse_token=reader",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/ui",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap();
    let opened = http
        .get(format!("{base}/ui"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    // The cookie is for the page only: the JSON API still wants the header.
    let api = http
        .get(format!("{base}/datasets"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
}
