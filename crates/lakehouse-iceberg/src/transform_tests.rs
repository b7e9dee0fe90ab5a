use super::*;
use chrono::{Datelike, NaiveDate};
use lakehouse_api::Field;
use proptest::prelude::*;

const DAY_2017_11_16: i32 = 17_486;
const TS_2017_11_16_223108: i64 = 1_510_871_468_000_000;

/// Iceberg spec, "Appendix B: 32-bit Hash Requirements", the test value column.
#[test]
fn hashes_match_the_spec_test_vectors() {
    // int 34 and long 34L: both hashLong
    assert_eq!(hash_i64(i64::from(34i32)), 2_017_239_379);
    assert_eq!(hash_i64(34), 2_017_239_379);
    // date 2017-11-16: its day count, hashed as a long
    assert_eq!(hash_i64(i64::from(DAY_2017_11_16)), -653_330_422);
    // time 22:31:08: microseconds since midnight
    assert_eq!(hash_i64(81_068_000_000), -662_762_989);
    // timestamp 2017-11-16T22:31:08 and .000001
    assert_eq!(hash_i64(TS_2017_11_16_223108), -2_047_944_441);
    assert_eq!(hash_i64(TS_2017_11_16_223108 + 1), -1_207_196_810);
    // timestamptz 2017-11-16T14:31:08-08:00: the same instant
    let tz = chrono::DateTime::parse_from_rfc3339("2017-11-16T14:31:08-08:00").unwrap();
    assert_eq!(tz.timestamp_micros(), TS_2017_11_16_223108);
    assert_eq!(hash_i64(tz.timestamp_micros()), -2_047_944_441);
    // string
    assert_eq!(hash_str("iceberg"), 1_210_000_089);
    // decimal 14.20 (unscaled 1420, minimal big-endian), uuid, fixed and binary: hashBytes
    assert_eq!(hash_bytes(&[0x05, 0x8c]), -500_754_589);
    let uuid = [
        0xF7, 0x9C, 0x3E, 0x09, 0x67, 0x7C, 0x4B, 0xBD, 0xA4, 0x79, 0x3F, 0x34, 0x9C, 0xB7, 0x85,
        0xE7,
    ];
    assert_eq!(hash_bytes(&uuid), 1_488_055_340);
    assert_eq!(hash_bytes(&[0, 1, 2, 3]), -188_683_207);
    // the table of types not valid for bucketing: boolean true is hashInt(1), 1.0D its bits
    assert_eq!(hash_i64(1), 1_392_991_556);
    assert_eq!(hash_i64(1.0f64.to_bits() as i64), -142_385_009);
    assert_eq!(hash_i64(0), 1_669_671_676);
}

#[test]
fn buckets_follow_from_the_spec_hashes() {
    // (hash & i32::MAX) % 16, computed by hand from the hashes above
    assert_eq!(bucket_i64(34, 16), 3);
    assert_eq!(bucket_i64(i64::from(DAY_2017_11_16), 16), 10);
    assert_eq!(bucket_i64(81_068_000_000, 16), 3);
    assert_eq!(bucket_i64(TS_2017_11_16_223108, 16), 7);
    assert_eq!(bucket_i64(TS_2017_11_16_223108 + 1, 16), 6);
    assert_eq!(bucket_str("iceberg", 16), 9);
    assert_eq!(bucket_str("iceberg", 100), 89);
    assert_eq!(bucket_i64(TS_2017_11_16_223108, 100), 7);
    assert_eq!(bucket_i64(34, 1), 0);
    // through the transform, per source kind
    let b16 = Transform::Bucket(16);
    assert_eq!(b16.apply_i64(34), PartitionValue::Int(3));
    assert_eq!(
        b16.apply_date(DAY_2017_11_16),
        Some(PartitionValue::Int(10))
    );
    assert_eq!(b16.apply_str("iceberg"), Some(PartitionValue::Int(9)));
}

#[test]
fn truncate_follows_the_spec_examples() {
    assert_eq!(truncate_i64(1, 10), 0);
    assert_eq!(truncate_i64(-1, 10), -10);
    assert_eq!(truncate_i64(0, 10), 0);
    assert_eq!(truncate_i64(10, 10), 10);
    assert_eq!(truncate_i64(-10, 10), -10);
    assert_eq!(truncate_i64(-11, 10), -20);
    assert_eq!(truncate_i64(19, 10), 10);
    assert_eq!(truncate_i64(7, 1), 7);
    assert_eq!(truncate_i64(i64::MAX, 2), i64::MAX - 1);
    assert_eq!(truncate_str("iceberg", 3), "ice");
    assert_eq!(truncate_str("ice", 3), "ice");
    assert_eq!(truncate_str("ic", 3), "ic");
    assert_eq!(truncate_str("", 3), "");
    // code points, not bytes
    assert_eq!(truncate_str("ñandú", 2), "ña");
    assert_eq!(truncate_str("日本語テキスト", 3), "日本語");
    assert_eq!(truncate_str("😀😃x", 1), "😀");
    assert_eq!(truncate_str("é", 1), "é");
    let t = Transform::Truncate(10);
    assert_eq!(t.apply_i64(-1), PartitionValue::Long(-10));
    assert_eq!(
        Transform::Truncate(3).apply_str("iceberg"),
        Some(PartitionValue::Str("ice"))
    );
    assert_eq!(t.apply_date(5), None);
}

#[test]
fn time_transforms_floor_before_1970() {
    // 1969-12-31T23:59:59.999999
    assert_eq!(micros_to_day(-1), -1);
    assert_eq!(micros_to_hour(-1), -1);
    assert_eq!(micros_to_month(-1), -1);
    assert_eq!(micros_to_year(-1), -1);
    // 1970-01-01T00:00
    assert_eq!(micros_to_day(0), 0);
    assert_eq!(micros_to_hour(0), 0);
    assert_eq!(micros_to_month(0), 0);
    assert_eq!(micros_to_year(0), 0);
    // 1969-12-31T23:00 exactly is hour -1, 22:59:59.999999 is hour -2
    assert_eq!(micros_to_hour(-3_600_000_000), -1);
    assert_eq!(micros_to_hour(-3_600_000_001), -2);
    assert_eq!(micros_to_day(-86_400_000_000), -1);
    assert_eq!(micros_to_day(-86_400_000_001), -2);
    // dates: 1969-12-31 and 1970-01-01
    assert_eq!(days_to_year(-1), -1);
    assert_eq!(days_to_month(-1), -1);
    assert_eq!(days_to_year(0), 0);
    assert_eq!(days_to_month(0), 0);
    // 1969-01-01 (day -365) is still year -1, 1968-12-31 year -2
    assert_eq!(days_to_year(-365), -1);
    assert_eq!(days_to_month(-365), -12);
    assert_eq!(days_to_year(-366), -2);
    // 1900-01-01 (a century, not leap)
    assert_eq!(days_to_year(-25_567), -70);
    assert_eq!(days_to_month(-25_567), -840);
    // 2000-02-29 and 2000-03-01
    assert_eq!(days_to_month(11_016), 30 * 12 + 1);
    assert_eq!(days_to_month(11_017), 30 * 12 + 2);
    // 2017-11-16T22:31:08
    let ts = TS_2017_11_16_223108;
    assert_eq!(micros_to_year(ts), 47);
    assert_eq!(micros_to_month(ts), 47 * 12 + 10);
    assert_eq!(micros_to_day(ts), DAY_2017_11_16);
    assert_eq!(micros_to_hour(ts), DAY_2017_11_16 * 24 + 22);
    // through the transform
    assert_eq!(Transform::Day.apply_i64(-1), PartitionValue::Date(-1));
    assert_eq!(Transform::Hour.apply_i64(-1), PartitionValue::Int(-1));
    assert_eq!(
        Transform::Year.apply_date(-1),
        Some(PartitionValue::Int(-1))
    );
    assert_eq!(
        Transform::Month.apply_date(-1),
        Some(PartitionValue::Int(-1))
    );
    assert_eq!(
        Transform::Day.apply_date(-1),
        Some(PartitionValue::Date(-1))
    );
    assert_eq!(Transform::Hour.apply_date(-1), None);
    assert_eq!(Transform::Year.apply_str("x"), None);
    assert_eq!(Transform::Identity.apply_i64(-7), PartitionValue::Long(-7));
    assert_eq!(
        Transform::Identity.apply_str("x"),
        Some(PartitionValue::Str("x"))
    );
    // the extremes do not panic
    for v in [i64::MIN, i64::MAX] {
        for t in [
            Transform::Year,
            Transform::Month,
            Transform::Day,
            Transform::Hour,
        ] {
            let _ = t.apply_i64(v);
        }
    }
    for d in [i32::MIN, i32::MAX] {
        let _ = days_to_year(d);
        let _ = days_to_month(d);
    }
}

/// The calendar arithmetic agrees with chrono's over about ±2,700 years.
#[test]
fn calendar_matches_chrono() {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    for days in (-1_000_000..1_000_000).step_by(7) {
        let date = epoch + chrono::Duration::days(i64::from(days));
        let year = date.year() - 1970;
        assert_eq!(days_to_year(days), year, "day {days}");
        assert_eq!(
            days_to_month(days),
            year * 12 + date.month0() as i32,
            "day {days}"
        );
    }
}

#[test]
fn parse_gives_the_canonical_form() {
    let spec = PartitionBy::parse(" day( ts ) ,bucket( 16 , id ),  region,identity(x y)").unwrap();
    assert_eq!(
        spec.fields,
        vec![
            PartitionField {
                source: "ts".into(),
                transform: Transform::Day
            },
            PartitionField {
                source: "id".into(),
                transform: Transform::Bucket(16)
            },
            PartitionField {
                source: "region".into(),
                transform: Transform::Identity
            },
            PartitionField {
                source: "x y".into(),
                transform: Transform::Identity
            },
        ]
    );
    assert_eq!(spec.to_string(), "day(ts),bucket(16,id),region,x y");
    for text in [
        "day(ts),bucket(16,id)",
        "year(a),month(b),day(c),hour(d),bucket(2147483647,e),truncate(1,f),g",
        "côté,truncate(4,nom é)",
    ] {
        let parsed: PartitionBy = text.parse().unwrap();
        assert_eq!(parsed.to_string(), text);
        assert_eq!(PartitionBy::parse(&parsed.to_string()).unwrap(), parsed);
    }
    assert_eq!(Transform::Bucket(16).to_string(), "bucket[16]");
    assert_eq!(Transform::Truncate(4).to_string(), "truncate[4]");
    assert_eq!(Transform::Day.to_string(), "day");
}

fn syntax_error(text: &str) -> (String, usize, usize, String) {
    match PartitionBy::parse(text) {
        Err(IcebergError::PartitionSyntax {
            item,
            number,
            offset,
            reason,
        }) => (item, number, offset, reason),
        other => panic!("{text:?}: expected a syntax error, got {other:?}"),
    }
}

#[test]
fn parse_errors_name_the_item_and_where() {
    let (item, number, offset, reason) = syntax_error("ts,  bucket(0,id)");
    assert_eq!((item.as_str(), number, offset), ("bucket(0,id)", 2, 5));
    assert!(reason.contains("bucket count N `0`"), "{reason}");
    let message = PartitionBy::parse("ts,  bucket(0,id)")
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "partition_by item 2 `bucket(0,id)` (byte 5): bucket count N `0` is not an integer \
         from 1 to 2147483647"
    );
    assert!(syntax_error("truncate(0,x)").3.contains("width W `0`"));
    for bad in [
        "bucket(2147483648,id)",
        "bucket(-1,id)",
        "bucket(+1,id)",
        "bucket(x,id)",
    ] {
        assert!(syntax_error(bad).3.contains("is not an integer"), "{bad}");
    }
    assert_eq!(syntax_error("").3, "empty item");
    assert_eq!(syntax_error("  ").3, "empty item");
    let (item, number, offset, reason) = syntax_error("a,,b");
    assert_eq!(
        (item.as_str(), number, offset, reason.as_str()),
        ("", 2, 2, "empty item")
    );
    assert_eq!(syntax_error("a,").1, 2);
    assert!(syntax_error("bucket(16)").3.contains("two arguments"));
    assert!(syntax_error("truncate(1,2,x)").3.contains("two arguments"));
    assert!(syntax_error("day(ts,x)").3.contains("one argument"));
    assert_eq!(syntax_error("day()").3, "empty column name");
    assert_eq!(syntax_error("bucket(4, )").3, "empty column name");
    assert!(syntax_error("foo(x)").3.contains("unknown transform `foo`"));
    assert!(syntax_error("Day(x)").3.contains("unknown transform `Day`"));
    assert!(syntax_error("(x)").3.contains("missing transform name"));
    assert!(syntax_error("day(ts").3.contains("expected `)`"));
    assert!(syntax_error("day(ts)x").3.contains("expected `)`"));
    assert!(syntax_error("a)").3.contains("without `(`"));
    assert!(syntax_error("day((ts))").3.contains("parenthesis"));
    // an unclosed parenthesis swallows the rest: one item
    let (item, number, _, _) = syntax_error("x, day(ts, bucket(4,id)");
    assert_eq!((item.as_str(), number), ("day(ts, bucket(4,id)", 2));
}

fn schema(extra: &[(&str, ColumnType)]) -> Schema {
    let mut fields = vec![
        Field::new("id", ColumnType::Int64),
        Field::new("ts", ColumnType::Timestamp),
        Field::new("tz", ColumnType::TimestampUtc),
        Field::new("d", ColumnType::Date32),
        Field::new("t", ColumnType::Time64),
        Field::new("name", ColumnType::Utf8),
        Field::new("price", ColumnType::Float64),
        Field::new("flag", ColumnType::Bool),
    ];
    fields.extend(extra.iter().map(|(n, t)| Field::new(*n, *t)));
    Schema { fields }
}

fn bind(text: &str) -> Result<Vec<SpecField>> {
    PartitionBy::parse(text).unwrap().bind(&schema(&[]))
}

#[test]
fn bind_gives_iceberg_spec_fields() {
    let spec = bind("day(ts),bucket(16,id),truncate(4,name),price,hour(tz),year(d),month(tz),flag")
        .unwrap();
    let summary: Vec<(i32, i32, &str, String, &str)> = spec
        .iter()
        .map(|f| {
            (
                f.source_id,
                f.field_id,
                f.name.as_str(),
                f.transform.to_string(),
                f.result_type,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, 1000, "ts_day", "day".to_string(), "date"),
            (1, 1001, "id_bucket", "bucket[16]".to_string(), "int"),
            (6, 1002, "name_trunc", "truncate[4]".to_string(), "string"),
            (7, 1003, "price", "identity".to_string(), "double"),
            (3, 1004, "tz_hour", "hour".to_string(), "int"),
            (4, 1005, "d_year", "year".to_string(), "int"),
            (3, 1006, "tz_month", "month".to_string(), "int"),
            (8, 1007, "flag", "identity".to_string(), "boolean"),
        ]
    );
    assert_eq!(
        serde_json::to_string(&spec[1]).unwrap(),
        r#"{"source-id":1,"field-id":1001,"name":"id_bucket","transform":"bucket[16]"}"#
    );
    assert_eq!(bind("truncate(10,id)").unwrap()[0].result_type, "long");
    assert_eq!(
        bind("bucket(4,t),bucket(4,d),bucket(4,tz),bucket(4,name)")
            .unwrap()
            .len(),
        4
    );
    // two time transforms of one column are accepted
    assert_eq!(bind("year(ts),day(ts)").unwrap().len(), 2);
}

#[test]
fn bind_errors_name_the_column_type_and_transform() {
    match bind("day(ts),hour(d)") {
        Err(IcebergError::PartitionType {
            item,
            column,
            column_type,
            transform,
        }) => {
            assert_eq!(item, "hour(d)");
            assert_eq!(column, "d");
            assert_eq!(column_type, ColumnType::Date32);
            assert_eq!(transform, "hour");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        bind("bucket(4,price)").unwrap_err().to_string(),
        "partition_by item `bucket(4,price)`: bucket does not apply to column `price` of type \
         float64"
    );
    for bad in [
        "bucket(4,flag)",
        "truncate(4,ts)",
        "truncate(4,d)",
        "truncate(4,price)",
        "year(t)",
        "day(id)",
        "month(name)",
        "hour(t)",
        "year(flag)",
    ] {
        assert!(
            matches!(bind(bad), Err(IcebergError::PartitionType { .. })),
            "{bad}"
        );
    }
    assert_eq!(
        bind("day(when)").unwrap_err().to_string(),
        "partition_by item `day(when)`: the schema has no column `when`"
    );
    assert_eq!(
        bind("day(ts), day( ts )").unwrap_err().to_string(),
        "partition_by item `day(ts)` appears twice"
    );
    assert!(matches!(
        bind("id,identity(id)"),
        Err(IcebergError::PartitionDuplicate { .. })
    ));
    assert_eq!(
        bind("bucket(16,id),bucket(8,id)").unwrap_err().to_string(),
        "partition_by item `bucket(8,id)` would be named `id_bucket`, as is the partition item \
         `bucket(16,id)`"
    );
    let with_clash = schema(&[("ts_day", ColumnType::Date32)]);
    let spec = PartitionBy::parse("day(ts)").unwrap();
    assert_eq!(
        spec.bind(&with_clash).unwrap_err().to_string(),
        "partition_by item `day(ts)` would be named `ts_day`, as is the column `ts_day`"
    );
    // identity of that column is fine: its name is the column's
    assert!(
        PartitionBy::parse("ts_day")
            .unwrap()
            .bind(&with_clash)
            .is_ok()
    );
}

proptest! {
    #[test]
    fn buckets_are_in_range(v in any::<i64>(), s in ".{0,40}", n in 1..=MAX_PARAMETER) {
        prop_assert!((0..n as i64).contains(&i64::from(bucket_i64(v, n))));
        prop_assert!((0..n as i64).contains(&i64::from(bucket_str(&s, n))));
    }

    #[test]
    fn truncate_rounds_down_to_a_multiple(
        v in (i64::MIN + i64::from(MAX_PARAMETER))..=i64::MAX,
        w in 1..=MAX_PARAMETER,
    ) {
        let t = truncate_i64(v, w);
        prop_assert!(t <= v);
        prop_assert!(v - t < i64::from(w));
        prop_assert_eq!(t.rem_euclid(i64::from(w)), 0);
    }

    #[test]
    fn truncate_str_keeps_a_prefix_of_w_code_points(s in ".{0,40}", w in 1u32..50) {
        let t = truncate_str(&s, w);
        prop_assert!(s.starts_with(t));
        prop_assert_eq!(t.chars().count(), s.chars().count().min(w as usize));
    }

    #[test]
    fn day_and_hour_floor(micros in any::<i64>()) {
        let start = i128::from(micros_to_day(micros)) * 86_400_000_000;
        prop_assert!(start <= i128::from(micros));
        prop_assert!(i128::from(micros) - start < 86_400_000_000);
    }
}

#[test]
fn the_recorded_spec_refuses_identity_of_a_float64_column() {
    let by = PartitionBy::parse("day(ts),price").unwrap();
    // Iceberg itself allows it
    assert!(by.bind(&schema(&[])).is_ok());
    assert_eq!(
        by.spec(&schema(&[])).unwrap_err().to_string(),
        "partition_by item `price`: identity of the float64 column `price` is refused: a \
         version records partition values as JSON, which has no NaN or infinity, so rows \
         holding them would land in the null partition; partition by another column, or \
         write the value as an integer (cents, say) and partition by that"
    );
    assert!(
        PartitionBy::parse("identity(price)")
            .unwrap()
            .spec(&schema(&[]))
            .is_err()
    );
    // other identities are recorded
    let spec = PartitionBy::parse("flag,t,d")
        .unwrap()
        .spec(&schema(&[]))
        .unwrap();
    let types: Vec<&str> = spec.fields.iter().map(|f| f.result_type.as_str()).collect();
    assert_eq!(types, ["boolean", "time", "date"]);
}
