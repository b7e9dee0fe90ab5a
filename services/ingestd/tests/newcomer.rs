//! What a newcomer trips over (docs/contract.md section 14), end to end over the real binaries on
//! port 0: strict options with the closest known name, a missing `name`, a second `file`
//! field, `decimal_separator` and `date_order`, the warnings that teach, the error hints of
//! likely causes, 415 for files that are not CSV, and the server's own 4xx as JSON.

use lakehouse_testkit::{BOUNDARY, Harness, OpenUpload, field_types};
use serde_json::Value;
use std::time::Duration;

/// How long an answer that needs no body may take; far beyond a healthy one.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

fn warnings(body: &Value) -> Vec<String> {
    body["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn an_unknown_option_names_the_closest_known_one_before_the_body_is_read() {
    let h = Harness::start_unpooled(&[]);
    let cases = [
        ("name=typo&null_value=NA", "null_value", Some("null_values")),
        ("nme=sales", "nme", Some("name")),
        ("name=typo&delimter=;", "delimter", Some("delimiter")),
        ("name=typo&decimal=,", "decimal", Some("decimal_separator")),
        ("name=typo&zzzzzzzz=1", "zzzzzzzz", None),
    ];
    for (query, option, suggestion) in cases {
        // The upload stays open: an answer while it is open was made before the body.
        let (upload, body) = OpenUpload::new(b"a,b\n1,NA\n");
        let (status, body) = tokio::time::timeout(ANSWER_WITHIN, h.ingest_body(query, body))
            .await
            .unwrap_or_else(|_| panic!("{query}: no answer while the body is open"));
        drop(upload);
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_option", "{query}: {body}");
        assert_eq!(
            body["error"]["details"]["option"], option,
            "{query}: {body}"
        );
        match suggestion {
            Some(known) => {
                assert_eq!(
                    message(&body),
                    format!("unknown option `{option}`; did you mean `{known}`?"),
                    "{query}"
                );
                assert_eq!(body["error"]["details"]["did_you_mean"], known);
            }
            None => {
                assert!(message(&body).contains("known options: `name`"), "{body}");
                assert_eq!(body["error"]["details"]["did_you_mean"], Value::Null);
            }
        }
    }
    // Nothing was made: the typo did not fix a dataset's types.
    let (status, _) = h.catalog("/datasets/typo").await;
    assert_eq!(status, 404);
    assert!(h.stored_objects().await.is_empty());
}

#[tokio::test]
async fn a_missing_name_says_so_and_a_second_file_is_refused() {
    let h = Harness::start(&[]);
    let (status, body) = h.ingest("mode=append", b"a\n1\n").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_name");
    assert!(
        message(&body).starts_with("missing query parameter `name`"),
        "{body}"
    );

    let part = |name: &str, text: &str| {
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; \
             filename=\"{name}.csv\"\r\nContent-Type: text/csv\r\n\r\n{text}\r\n"
        )
    };
    let two = format!(
        "{}{}{}--{BOUNDARY}--\r\n",
        part("file", "a\n1\n"),
        part("note", "ignored"),
        part("file", "a\n2\n")
    );
    let (status, body) = h.ingest_body("name=two", two.into()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
    assert!(
        message(&body).contains("second field named `file`"),
        "{body}"
    );
    let (status, _) = h.catalog("/datasets/two").await;
    assert_eq!(status, 404, "nothing registered");
    assert!(h.stored_objects().await.is_empty(), "nothing stored");
    assert!(h.spool_files().is_empty(), "spool cleaned");

    // Other fields after the one `file` are still fine.
    let one = format!(
        "{}{}--{BOUNDARY}--\r\n",
        part("file", "a\n1\n"),
        part("note", "ignored")
    );
    let (status, body) = h.ingest_body("name=one", one.into()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn decimal_commas_and_a_date_order_are_read_recorded_and_reused() {
    let h = Harness::start(&[]);
    let csv = b"day;amount;label\n01/02/2024;1234,56;a\n03/04/2024;-0,5;b\n05/06/2024;7;c\n";
    let (status, body) = h
        .ingest("name=eu&decimal_separator=,&date_order=DMY", csv)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        field_types(&body),
        ["day:date32", "amount:float64", "label:utf8"]
    );
    assert_eq!(
        warnings(&body),
        Vec::<String>::new(),
        "nothing left to teach"
    );
    let options = &body["manifest"]["options"];
    assert_eq!(options["decimal_separator"], ",", "{options}");
    assert_eq!(options["date_order"], "DMY", "{options}");
    assert_eq!(options["date_orders"]["day"], "DMY", "{options}");
    let day = &body["columns"][0];
    assert_eq!(day["order"], "DMY", "{day}");

    // A later upload reads with the recorded options, given no options of its own.
    let (status, later) = h
        .ingest(
            "name=eu&mode=append",
            b"day;amount;label\n13/02/2024;5,5;d\n",
        )
        .await;
    assert_eq!(status, 200, "{later}");
    assert_eq!(later["manifest"]["version"], 2);
    assert_eq!(later["manifest"]["row_count"], 4);
    // `1.5` is not a float with a decimal comma: a refused value, as any other.
    let (status, refused) = h
        .ingest(
            "name=eu&mode=append",
            b"day;amount;label\n14/02/2024;1.5;e\n",
        )
        .await;
    assert_eq!(status, 409, "{refused}");

    // With the option, a value that is not a real date in that order makes the column utf8.
    let (status, body) = h
        .ingest("name=mdy&date_order=MDY", b"d\n01/02/2024\n13/02/2024\n")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(field_types(&body), ["d:utf8"]);
    // Bad values of the options: 400 invalid_option naming them.
    for (query, option) in [
        ("name=x&decimal_separator=;", "decimal_separator"),
        ("name=x&date_order=YMD", "date_order"),
    ] {
        let (status, body) = h.ingest(query, b"a\n1\n").await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["details"]["option"], option);
    }
}

#[tokio::test]
async fn warnings_teach_the_option_that_would_have_typed_a_column() {
    let h = Harness::start(&[]);
    // A `;` export with decimal commas and day-first dates, both ambiguous and sure.
    let csv = "city;price;day;when\nLyon;5,5;01/02/2024;13/02/2024\n\
               Paris;-0,5;03/04/2024;14/02/2024\nNice;12;;\n";
    let (status, body) = h.ingest("name=export", csv.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        field_types(&body),
        ["city:utf8", "price:utf8", "day:utf8", "when:date32"]
    );
    let taught = warnings(&body);
    assert_eq!(taught.len(), 2, "{taught:?}");
    assert!(
        taught[0].contains("\"price\"")
            && taught[0].contains("decimal_separator=,")
            && taught[0].contains("float64"),
        "{taught:?}"
    );
    assert!(
        taught[1].contains("\"day\"")
            && taught[1].contains("date_order=DMY")
            && taught[1].contains("date32"),
        "{taught:?}"
    );
    // The same on a dry run, and the warning is followed: float64 and date32.
    let (status, dry) = h.ingest("name=export2&dry_run=true", csv.as_bytes()).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(warnings(&dry), taught);
    let (status, followed) = h
        .ingest(
            "name=export2&decimal_separator=,&date_order=DMY",
            csv.as_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{followed}");
    assert_eq!(
        field_types(&followed),
        ["city:utf8", "price:float64", "day:date32", "when:date32"]
    );

    // A header-only first upload fixes every column as utf8: said so.
    let (status, empty) = h.ingest("name=empty", b"a,b\n").await;
    assert_eq!(status, 200, "{empty}");
    let taught = warnings(&empty);
    assert!(
        taught.iter().any(|w| w.contains("no data rows")),
        "{taught:?}"
    );
    // Plain text columns teach nothing.
    let (status, plain) = h.ingest("name=plain", b"a,b\nx,1\ny,2\n").await;
    assert_eq!(status, 200, "{plain}");
    assert!(warnings(&plain).is_empty(), "{plain}");
}

#[tokio::test]
async fn errors_with_a_likely_cause_say_it() {
    let h = Harness::start(&[]);
    // Windows-1252 (`é` is 0xE9) read as UTF-8.
    let (status, body) = h.ingest("name=cp", b"city\nCr\xe9teil\n").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "malformed_csv");
    assert!(
        message(&body).contains("add `encoding=windows-1252`"),
        "{body}"
    );
    // UTF-16LE without a byte order mark.
    let utf16: Vec<u8> = "name,qty\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let (status, body) = h.ingest("name=u16", &utf16).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_header");
    assert!(message(&body).contains("add `encoding=utf-16le`"), "{body}");
    // ... and the suggestion works.
    let (status, body) = h.ingest("name=u16&encoding=utf-16le", &utf16).await;
    assert_eq!(status, 200, "{body}");
    // Files that are not CSV at all: 415 naming the format.
    let cases: [(&[u8], &str); 4] = [
        (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", "xlsx"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        (b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02", "Parquet"),
    ];
    for (bytes, format) in cases {
        let (status, body) = h.ingest("name=notcsv", bytes).await;
        assert_eq!(status, 415, "{format}: {body}");
        assert_eq!(body["error"]["code"], "unsupported_media_type");
        assert!(message(&body).contains(format), "{format}: {body}");
    }
    // A CSV whose first column is called PAR1 is still a CSV.
    let (status, body) = h.ingest("name=par1", b"PAR1,b\n1,2\n").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = h.catalog("/datasets/notcsv").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_servers_own_4xx_have_the_json_body() {
    let h = Harness::start(&[]);
    let base = h.trio.ingestd.url();
    let json = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON body");
        (status, body)
    };
    // 200 request headers.
    let mut request = h.http.get(format!("{base}/healthz"));
    for i in 0..200 {
        request = request.header(format!("x-extra-{i}"), "1");
    }
    let (status, body) = json(request.send().await.expect("answers")).await;
    assert_eq!(status, 431, "{body}");
    assert_eq!(body["error"]["code"], "headers_too_large");
    // A 20 KiB URL.
    let long = "a".repeat(20 * 1024);
    let (status, body) = json(
        h.http
            .get(format!("{base}/healthz?{long}"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 414, "{body}");
    assert_eq!(body["error"]["code"], "uri_too_long");
    // A known route with another method, and an unknown route.
    let (status, body) = json(
        h.http
            .get(format!("{base}/ingest"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let (status, body) = json(
        h.http
            .get(format!("{base}/nothing"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    // Headers within the limits still pass.
    let (status, _) = h.get(format!("{base}/healthz")).await;
    assert_eq!(status, 200);
}
