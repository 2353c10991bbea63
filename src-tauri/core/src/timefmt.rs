//! Timestamps: stored as unix microseconds (UTC), shown as RFC 3339.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Now, as unix microseconds.
pub fn now_micros() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64
}

/// `2026-11-28T07:08:26.123456Z`: fixed width, so strings sort like the instants.
pub fn format_micros(micros: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    ))
    .unwrap_or_default()
}

/// Parses an RFC 3339 instant (any offset) into unix microseconds.
pub fn parse_rfc3339_micros(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    Some((at.unix_timestamp_nanos() / 1_000) as i64)
}

/// A human form of an RFC 3339 instant that keeps its offset:
/// `2021-10-05T15:00:00+00:00` becomes `2021-10-05 15:00 UTC`.
pub fn human_instant(text: &str) -> Option<String> {
    let at = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    let local = at
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]"))
        .ok()?;
    if at.offset() == UtcOffset::UTC {
        Some(format!("{local} UTC"))
    } else {
        let offset = at
            .offset()
            .format(format_description!(
                "[offset_hour sign:mandatory]:[offset_minute]"
            ))
            .ok()?;
        Some(format!("{local} {offset}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_through_rfc3339() {
        let text = "2026-09-27T20:16:27.123456Z";
        let micros = parse_rfc3339_micros(text).expect("a valid RFC 3339 instant parses");
        assert_eq!(format_micros(micros), text, "formatting inverts parsing");
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        assert_eq!(
            parse_rfc3339_micros("2021-10-05T17:00:00+02:00"),
            parse_rfc3339_micros("2021-10-05T15:00:00Z"),
            "the same instant in two offsets is one instant"
        );
    }

    #[test]
    fn human_instant_names_utc_and_keeps_other_offsets() {
        assert_eq!(
            human_instant("2021-10-05T15:00:00+00:00").as_deref(),
            Some("2021-10-05 15:00 UTC")
        );
        assert_eq!(
            human_instant("2021-10-05T15:00:00-03:00").as_deref(),
            Some("2021-10-05 15:00 -03:00")
        );
        assert_eq!(
            human_instant("yesterday"),
            None,
            "non-dates are not invented"
        );
    }
}
