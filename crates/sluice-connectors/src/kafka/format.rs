//! Record formats of the Kafka connector: values as JSON or as one CSV line, turned into
//! and from any `serde` type (raw bytes and text are `KafkaSource::records` and
//! `KafkaSource::strings`).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::record::KafkaRecord;

/// Reads the value of `record` as a JSON document.
///
/// # Errors
/// When the value is missing or not a JSON form of `T` (the message says where).
pub fn from_json<T: DeserializeOwned>(record: &KafkaRecord) -> Result<T, String> {
    let value = record.value.as_deref().ok_or("the record has no value")?;
    serde_json::from_slice(value).map_err(|e| format!("invalid JSON: {e}"))
}

/// Writes `value` as a JSON document.
///
/// # Errors
/// When `T` cannot be written as JSON (a map with non-text keys, for example).
pub fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("cannot write JSON: {e}"))
}

/// Reads the value of `record` as one CSV line (no header) into the fields of `T`.
///
/// # Errors
/// When the value is missing, empty, or its fields do not fit `T`.
pub fn from_csv<T: DeserializeOwned>(record: &KafkaRecord) -> Result<T, String> {
    let value = record.value.as_deref().ok_or("the record has no value")?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(value);
    match reader.deserialize().next() {
        Some(row) => row.map_err(|e| format!("invalid CSV: {e}")),
        None => Err("the value is empty, not a CSV line".into()),
    }
}

/// Writes the fields of `value` as one CSV line (no header, no line end).
///
/// # Errors
/// When `T` is not a flat record of fields.
pub fn to_csv<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    writer
        .serialize(value)
        .map_err(|e| format!("cannot write CSV: {e}"))?;
    let mut bytes = writer
        .into_inner()
        .map_err(|e| format!("cannot write CSV: {e}"))?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Bid {
        auction: u64,
        bidder: String,
        price: f64,
    }

    fn record(value: &[u8]) -> KafkaRecord {
        KafkaRecord {
            topic: "t".into(),
            partition: 0,
            offset: 7,
            timestamp_ms: None,
            key: None,
            value: Some(value.to_vec()),
            headers: Vec::new(),
        }
    }

    #[test]
    fn json_and_csv_round_trip_and_reject_what_does_not_fit() {
        let bid = Bid {
            auction: 3,
            bidder: "ann, the \"first\"".into(),
            price: 9.5,
        };
        let json = to_json(&bid).unwrap();
        assert_eq!(from_json::<Bid>(&record(&json)).unwrap(), bid);
        let csv = to_csv(&bid).unwrap();
        assert_eq!(
            String::from_utf8(csv.clone()).unwrap(),
            "3,\"ann, the \"\"first\"\"\",9.5"
        );
        assert_eq!(from_csv::<Bid>(&record(&csv)).unwrap(), bid);
        let bad = from_json::<Bid>(&record(b"{\"auction\": \"x\"}")).unwrap_err();
        assert!(bad.contains("invalid JSON"), "{bad}");
        let bad = from_csv::<Bid>(&record(b"3,ann")).unwrap_err();
        assert!(bad.contains("invalid CSV"), "{bad}");
        assert!(from_csv::<Bid>(&record(b"")).is_err());
    }
}
