//! UTC time stamps as text: the one place certlab formats and parses RFC 3339.
//!
//! Times are `chrono::DateTime<Utc>` everywhere in the crate; this module owns
//! how they are written. Two forms are on the record, and both must keep
//! their bytes (signatures, and `certlab verify`'s recomputed marking, rest on
//! them):
//!
//! - [`record`]: report.json, measurements.csv and the signed statement:
//!   always six fractional digits (whole microseconds), `Z`; with
//!   [`serde_record`] (and [`serde_record_opt`]) for fields.
//! - [`document`]: the trust documents and every message that names a time
//!   (a marking's reasons, `certlab authority`): as few fractional digits as
//!   the time needs (none, 3, 6 or 9), `Z`. It is chrono's own serde form, in
//!   which the trust documents' fields are written.
//!
//! It must not import any other module of the crate, and it does not read a
//! clock (`time` and `run` do).

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

/// A time as report.json, measurements.csv and the signed statement write it:
/// `2026-11-22T20:15:00.123456Z` (sub-microseconds are cut, not rounded).
pub fn record(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A time as the trust documents and messages write it:
/// `2027-01-31T00:00:00Z`, `2026-11-22T20:15:00.500Z`.
pub fn document(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `t` cut to whole microseconds: what [`record`] keeps of it, so that a time
/// held in memory equals the one read back from the record.
pub fn whole_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Parse an RFC 3339 time with any offset, as UTC.
pub fn parse(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// `#[serde(with = "crate::timestamp::serde_record")]`: a field written as
/// [`record`] writes it, read from any RFC 3339 time.
pub mod serde_record {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::record(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        parse_field(&String::deserialize(d)?)
    }

    /// A field's text as a time, or an error that names the text.
    pub(super) fn parse_field<E: serde::de::Error>(text: &str) -> Result<DateTime<Utc>, E> {
        super::parse(text).map_err(|e| E::custom(format!("{text:?} is not an RFC 3339 time: {e}")))
    }
}

/// [`serde_record`] for an optional field (`null` when absent).
pub mod serde_record_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&super::record(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| super::serde_record::parse_field(&text))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse(s).unwrap()
    }

    #[test]
    fn the_record_has_whole_microseconds_always() {
        for (given, written) in [
            ("2026-11-22T20:15:00Z", "2026-11-22T20:15:00.000000Z"),
            ("2026-11-22T21:15:00.5+01:00", "2026-11-22T20:15:00.500000Z"),
            // Cut, not rounded.
            (
                "2026-11-22T20:15:00.123456789Z",
                "2026-11-22T20:15:00.123456Z",
            ),
        ] {
            assert_eq!(record(t(given)), written);
            assert_eq!(parse(written).unwrap(), whole_micros(t(given)));
        }
    }

    #[test]
    fn documents_have_as_few_digits_as_the_time_needs() {
        for (given, written) in [
            ("2027-01-31T00:00:00.000Z", "2027-01-31T00:00:00Z"),
            ("2026-11-22T20:15:00.5Z", "2026-11-22T20:15:00.500Z"),
            ("2026-11-22T20:15:00.123456Z", "2026-11-22T20:15:00.123456Z"),
        ] {
            assert_eq!(document(t(given)), written);
        }
    }

    /// The trust documents' fields are written by chrono's serde: the same
    /// text as `document`.
    #[test]
    fn chrono_serde_writes_the_document_form() {
        for s in [
            "2027-01-31T00:00:00Z",
            "2026-11-22T20:15:00.5Z",
            "2026-11-22T20:15:00.123456Z",
            "2026-11-22T20:15:00.123456789Z",
        ] {
            let v = t(s);
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", document(v))
            );
        }
    }

    #[test]
    fn fields_round_trip_and_refuse_what_is_not_a_time() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct F {
            #[serde(with = "serde_record")]
            at: DateTime<Utc>,
            #[serde(with = "serde_record_opt")]
            maybe: Option<DateTime<Utc>>,
        }
        let f = F {
            at: t("2026-11-22T20:15:00.000001Z"),
            maybe: None,
        };
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(text, r#"{"at":"2026-11-22T20:15:00.000001Z","maybe":null}"#);
        assert_eq!(serde_json::from_str::<F>(&text).unwrap(), f);
        let g: F =
            serde_json::from_str(r#"{"at":"2026-11-22T20:15:00Z","maybe":"2026-11-22T20:15:01Z"}"#)
                .unwrap();
        assert_eq!(g.maybe, Some(t("2026-11-22T20:15:01Z")));
        let bad = serde_json::from_str::<F>(r#"{"at":"yesterday","maybe":null}"#);
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("not an RFC 3339 time"));
    }
}
