//! One upload on many threads (docs/contract.md section 13), against the real binaries: a
//! trio with `convert_threads = 1` and one with 8 take the same large CSVs (quoted line
//! breaks, a type refuted past the first 4 MiB) and store Parquet under the same content
//! address with the same inference report; a malformed CSV is refused with the same error,
//! line and column included.

use lakehouse_testkit::Harness;
use serde_json::Value;

/// About `mib` MiB of CSV: ids, amounts, days, flags and quoted text with line breaks and
/// doubled quotes; `late` adds, past the first 4 MiB, a value that makes `amount` a float.
fn big_csv(mib: usize, late: bool) -> Vec<u8> {
    let mut csv = b"id,amount,day,flag,note\n".to_vec();
    let mut i = 0u64;
    while csv.len() < mib * 1024 * 1024 {
        let amount = if late && i == 90_000 {
            "12.5".to_owned()
        } else {
            (i % 10_007).to_string()
        };
        let note = match i % 5 {
            0 => String::new(),
            1 => format!("\"two\nlines {i}\""),
            2 => format!("\"say \"\"{i}\"\"\""),
            _ => format!("n{}", i % 97),
        };
        let line = format!(
            "{i},{amount},2024-{:02}-{:02},{},{note}\n",
            i % 12 + 1,
            i % 28 + 1,
            i.is_multiple_of(3)
        );
        csv.extend_from_slice(line.as_bytes());
        i += 1;
    }
    csv
}

/// What a client keeps of a 200: the object stored (its content address and size), the rows,
/// the schema, the inference report and the warnings.
fn stored(body: &Value) -> Value {
    let keep = [
        "parquet_key",
        "parquet_size",
        "row_count",
        "schema",
        "columns",
        "warnings",
    ];
    keep.iter()
        .map(|k| (k.to_string(), body[k].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_threads_store_what_one_stores_and_refuse_what_it_refuses() {
    let one = Harness::start(&[("LAKEHOUSE_INGESTD__CONVERT_THREADS", "1".into())]);
    let eight = Harness::start(&[("LAKEHOUSE_INGESTD__CONVERT_THREADS", "8".into())]);
    for (name, csv) in [("clean", big_csv(9, false)), ("late", big_csv(9, true))] {
        let query = format!("name={name}");
        let (status_one, body_one) = one.ingest(&query, &csv).await;
        let (status_eight, body_eight) = eight.ingest(&query, &csv).await;
        assert_eq!(
            (status_one, status_eight),
            (200, 200),
            "{body_one} {body_eight}"
        );
        assert_eq!(stored(&body_one), stored(&body_eight), "{name}");
        let types: Vec<&str> = body_one["schema"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["type"].as_str().unwrap_or_default())
            .collect();
        let amount = if name == "late" { "float64" } else { "int64" };
        assert_eq!(
            types,
            ["int64", amount, "date32", "bool", "utf8"],
            "{body_one}"
        );
    }
    // A ragged record near the end, in the last chunk; then a quote left open at the end.
    let mut ragged = big_csv(9, false);
    ragged.extend_from_slice(b"1,2,2024-01-01\n");
    let mut open = big_csv(9, false);
    open.extend_from_slice(b"1,2,2024-01-01,true,\"never closed\n");
    for csv in [ragged, open] {
        let (status_one, body_one) = one.ingest("name=bad", &csv).await;
        let (status_eight, body_eight) = eight.ingest("name=bad", &csv).await;
        assert_eq!((status_one, status_eight), (400, 400), "{body_one}");
        assert_eq!(body_one["error"], body_eight["error"]);
        let line = body_one["error"]["details"]["line"].as_u64();
        assert!(line.is_some_and(|l| l > 100_000), "{body_one}");
    }
}
