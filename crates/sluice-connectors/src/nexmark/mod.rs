//! Nexmark: the online-auction benchmark's event generator and source, ported from Flink's
//! nexmark (`com.github.nexmark.flink.generator`, itself derived from Apache Beam's).
//!
//! - **[`NexmarkConfig`]**: the generator's parameters, with Flink's option keys
//!   ([`NexmarkConfig::from_options`]) and defaults.
//! - **[`model`]**: [`Person`], [`Auction`], [`Bid`] and [`Event`].
//! - **[`generator`]**: [`NexmarkGenerator`], event `n` as a pure function of `n`.
//! - **[`source`]**: [`NexmarkSource`], subtask `i` of `p` reading events `i, i + p, ...`,
//!   and [`SubtaskEventNumbers`] for code that builds batches without the source.
//!
//! Invariant others rely on: event `n` (its kind, ids, strings and time) depends only on the
//! configuration and `n`, never on which subtask generates it, the parallelism, or earlier
//! calls; so a restored or rescaled reader regenerates exactly the same events.
//!
//! ```
//! use sluice_connectors::nexmark::{Event, NexmarkConfig, NexmarkGenerator};
//! let generator = NexmarkGenerator::new(NexmarkConfig::default())?;
//! assert!(matches!(generator.event(0), Event::Person(_)));
//! assert_eq!(generator.timestamp_ms(10_000) - generator.timestamp_ms(0), 1_000);
//! # Ok::<(), sluice_connectors::Error>(())
//! ```

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::error::Error;

pub mod csv;
pub mod generator;
pub mod model;
mod random;
pub mod source;

pub use generator::{BidView, NexmarkGenerator};
pub use model::{Auction, Bid, Event, EventKind, Person};
pub use source::{NexmarkEventNumbers, NexmarkSource, SubtaskEventNumbers};

/// The id of the first person; person ids count up from here.
pub const FIRST_PERSON_ID: i64 = 1000;
/// The id of the first auction; auction ids count up from here.
pub const FIRST_AUCTION_ID: i64 = 1000;
/// The first category; auctions have categories `10..=14`.
pub const FIRST_CATEGORY_ID: i64 = 10;
/// The default `base-time`: 2015-07-15T00:00:00Z, a fixed instant so that runs repeat.
pub const DEFAULT_BASE_TIME_MS: i64 = 1_436_918_400_000;

/// The option keys [`NexmarkConfig::from_options`] accepts (besides `connector`).
pub const OPTION_KEYS: &[&str] = &[
    "rate.shape",
    "rate.period",
    "rate.limited",
    "first-event.rate",
    "next-event.rate",
    "person.avg-size",
    "auction.avg-size",
    "bid.avg-size",
    "person.proportion",
    "auction.proportion",
    "bid.proportion",
    "bid.hot-ratio.auctions",
    "bid.hot-ratio.bidders",
    "auction.hot-ratio.sellers",
    "events.num",
    "base-time",
    "person.active.num",
    "auction.in-flight.num",
];

/// Shape of the event-rate curve (`rate.shape`). Accepted for compatibility: as in Flink's
/// generator, only `first-event.rate` sets the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateShape {
    /// `SQUARE` (Flink's default).
    #[default]
    Square,
    /// `SINE`.
    Sine,
}

/// Parameters of the Nexmark generator. Defaults are Flink's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexmarkConfig {
    /// `first-event.rate`: events per second over all subtasks (default 10 000). Sets event
    /// time: event `n` happens `n / rate` seconds after `base-time`. Paces the source only
    /// when `rate_limited`.
    pub first_event_rate: u32,
    /// `next-event.rate` (default 10 000). Accepted and kept, but, as in Flink's generator,
    /// unused.
    pub next_event_rate: u32,
    /// `rate.shape` (default `SQUARE`); unused, as in Flink's generator.
    pub rate_shape: RateShape,
    /// `rate.period` in seconds (default 600); unused, as in Flink's generator.
    pub rate_period_sec: u32,
    /// `rate.limited` (default `false`): when set, each subtask emits an event only once
    /// its event time (relative to the first event it emits) has passed on the job's
    /// clock, so the job receives `first-event.rate` events per second. Off, the source
    /// generates as fast as it can (what throughput benchmarks want).
    pub rate_limited: bool,
    /// `events.num`: how many events to generate; `0` (the default) is unbounded.
    pub events_num: u64,
    /// `person.proportion` (default 1): persons per `person + auction + bid` events.
    pub person_proportion: u32,
    /// `auction.proportion` (default 3).
    pub auction_proportion: u32,
    /// `bid.proportion` (default 46).
    pub bid_proportion: u32,
    /// `person.avg-size` in bytes (default 200): `extra` pads persons to this average.
    pub avg_person_byte_size: u32,
    /// `auction.avg-size` in bytes (default 500).
    pub avg_auction_byte_size: u32,
    /// `bid.avg-size` in bytes (default 100).
    pub avg_bid_byte_size: u32,
    /// `bid.hot-ratio.auctions` (default 2): a bid is for a hot auction with probability
    /// `1 - 1/ratio`.
    pub hot_auction_ratio: u32,
    /// `bid.hot-ratio.bidders` (default 4): a bid is by a hot bidder with probability
    /// `1 - 1/ratio`.
    pub hot_bidders_ratio: u32,
    /// `auction.hot-ratio.sellers` (default 4): an auction is by a hot seller with
    /// probability `1 - 1/ratio`.
    pub hot_sellers_ratio: u32,
    /// `person.active.num` (Sluice's key; Flink's `numActivePeople`, default 1000): cold
    /// sellers and bidders are drawn among the newest this many persons (plus a few not
    /// yet created).
    pub num_active_people: u32,
    /// `auction.in-flight.num` (Sluice's key; Flink's `numInFlightAuctions`, default 100):
    /// cold bids go to the newest this many auctions (plus a few not yet created), and
    /// auctions last on average as long as it takes to open this many more.
    pub num_in_flight_auctions: u32,
    /// `base-time`: the event time of event 0, in milliseconds since the Unix epoch
    /// (default [`DEFAULT_BASE_TIME_MS`]; Flink uses the time the table is created).
    pub base_time_ms: i64,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        NexmarkConfig {
            first_event_rate: 10_000,
            next_event_rate: 10_000,
            rate_shape: RateShape::Square,
            rate_period_sec: 600,
            rate_limited: false,
            events_num: 0,
            person_proportion: 1,
            auction_proportion: 3,
            bid_proportion: 46,
            avg_person_byte_size: 200,
            avg_auction_byte_size: 500,
            avg_bid_byte_size: 100,
            hot_auction_ratio: 2,
            hot_bidders_ratio: 4,
            hot_sellers_ratio: 4,
            num_active_people: 1000,
            num_in_flight_auctions: 100,
            base_time_ms: DEFAULT_BASE_TIME_MS,
        }
    }
}

impl NexmarkConfig {
    /// Reads Flink's nexmark table options (`'first-event.rate' = '10000'`, `'events.num'
    /// = '100000000'`, ...; see [`OPTION_KEYS`]) over the defaults. Sizes take Flink's
    /// memory syntax (`200b`, `1kb`, a bare number of bytes), `rate.period` its duration
    /// syntax (`600s`, `10 min`, a bare number of milliseconds). A `connector` key is
    /// ignored.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the key and value that cannot be used,
    /// [`Error::UnsupportedOption`] for an unknown key.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, Error> {
        let mut config = NexmarkConfig::default();
        for (key, value) in options {
            let v = value.trim();
            match key.as_str() {
                "connector" => {}
                "rate.shape" => config.rate_shape = parse_rate_shape(key, v)?,
                "rate.period" => config.rate_period_sec = parse_duration_sec(key, v)?,
                "rate.limited" => config.rate_limited = parse_bool(key, v)?,
                "first-event.rate" => config.first_event_rate = parse_number(key, v)?,
                "next-event.rate" => config.next_event_rate = parse_number(key, v)?,
                "person.avg-size" => config.avg_person_byte_size = parse_memory(key, v)?,
                "auction.avg-size" => config.avg_auction_byte_size = parse_memory(key, v)?,
                "bid.avg-size" => config.avg_bid_byte_size = parse_memory(key, v)?,
                "person.proportion" => config.person_proportion = parse_number(key, v)?,
                "auction.proportion" => config.auction_proportion = parse_number(key, v)?,
                "bid.proportion" => config.bid_proportion = parse_number(key, v)?,
                "bid.hot-ratio.auctions" => config.hot_auction_ratio = parse_number(key, v)?,
                "bid.hot-ratio.bidders" => config.hot_bidders_ratio = parse_number(key, v)?,
                "auction.hot-ratio.sellers" => config.hot_sellers_ratio = parse_number(key, v)?,
                "events.num" => config.events_num = parse_number(key, v)?,
                "base-time" => config.base_time_ms = parse_number(key, v)?,
                "person.active.num" => config.num_active_people = parse_number(key, v)?,
                "auction.in-flight.num" => config.num_in_flight_auctions = parse_number(key, v)?,
                _ => {
                    return Err(Error::UnsupportedOption {
                        key: key.clone(),
                        connector: "nexmark".into(),
                        supported: OPTION_KEYS.join(", "),
                    })
                }
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the values the generator divides by or draws below.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the option (by its Flink key) that is out of range.
    pub fn validate(&self) -> Result<(), Error> {
        let at_least_one = [
            ("first-event.rate", self.first_event_rate),
            ("person.proportion", self.person_proportion),
            ("auction.proportion", self.auction_proportion),
            ("bid.hot-ratio.auctions", self.hot_auction_ratio),
            ("bid.hot-ratio.bidders", self.hot_bidders_ratio),
            ("auction.hot-ratio.sellers", self.hot_sellers_ratio),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                let reason = if key.ends_with("proportion") {
                    "must be at least 1: bids and auctions refer to persons and auctions"
                } else {
                    "must be at least 1"
                };
                return Err(invalid(key, "0", reason));
            }
        }
        Ok(())
    }

    /// `person + auction + bid` proportions: the length of the cycle of event kinds.
    pub fn total_proportion(&self) -> u64 {
        u64::from(self.person_proportion)
            + u64::from(self.auction_proportion)
            + u64::from(self.bid_proportion)
    }
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidOption {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn parse_number<T: FromStr>(key: &str, value: &str) -> Result<T, Error> {
    value.parse().map_err(|_| {
        let what = if value.starts_with('-') && key != "base-time" {
            "expected a whole number, not negative"
        } else {
            "expected a whole number in range"
        };
        invalid(key, value, what)
    })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, Error> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "expected `true` or `false`")),
    }
}

fn parse_rate_shape(key: &str, value: &str) -> Result<RateShape, Error> {
    match value.to_ascii_uppercase().as_str() {
        "SQUARE" => Ok(RateShape::Square),
        "SINE" => Ok(RateShape::Sine),
        _ => Err(invalid(key, value, "expected `SQUARE` or `SINE`")),
    }
}

/// Splits `"10 min"` into `(10, "min")`.
fn split_unit(value: &str) -> Option<(u64, String)> {
    let digits = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let number = value[..digits].parse().ok()?;
    Some((number, value[digits..].trim().to_ascii_lowercase()))
}

/// Flink's `MemorySize` syntax: a number of bytes, optionally with a binary unit.
fn parse_memory(key: &str, value: &str) -> Result<u32, Error> {
    let reason = "expected a size such as `200b`, `1kb` or `200` (bytes) below 4 GiB";
    let (number, unit) = split_unit(value).ok_or_else(|| invalid(key, value, reason))?;
    let scale: u64 = match unit.as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kibibytes" => 1 << 10,
        "m" | "mb" | "mebibytes" => 1 << 20,
        "g" | "gb" | "gibibytes" => 1 << 30,
        _ => return Err(invalid(key, value, reason)),
    };
    number
        .checked_mul(scale)
        .and_then(|bytes| u32::try_from(bytes).ok())
        .ok_or_else(|| invalid(key, value, reason))
}

/// Flink's duration syntax: a number of milliseconds, optionally with a unit; whole seconds.
fn parse_duration_sec(key: &str, value: &str) -> Result<u32, Error> {
    let reason = "expected a duration such as `600s`, `10 min` or `600000` (milliseconds)";
    let (number, unit) = split_unit(value).ok_or_else(|| invalid(key, value, reason))?;
    let seconds = match unit.as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => Some(number / 1000),
        "s" | "sec" | "secs" | "second" | "seconds" => Some(number),
        "m" | "min" | "mins" | "minute" | "minutes" => number.checked_mul(60),
        "h" | "hour" | "hours" => number.checked_mul(3600),
        "d" | "day" | "days" => number.checked_mul(86_400),
        _ => return Err(invalid(key, value, reason)),
    };
    seconds
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| invalid(key, value, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_flinks() {
        let c = NexmarkConfig::default();
        assert_eq!(
            (c.person_proportion, c.auction_proportion, c.bid_proportion),
            (1, 3, 46)
        );
        assert_eq!((c.first_event_rate, c.next_event_rate), (10_000, 10_000));
        assert_eq!(
            (
                c.avg_person_byte_size,
                c.avg_auction_byte_size,
                c.avg_bid_byte_size
            ),
            (200, 500, 100)
        );
        assert_eq!(
            (
                c.hot_auction_ratio,
                c.hot_bidders_ratio,
                c.hot_sellers_ratio
            ),
            (2, 4, 4)
        );
        assert_eq!((c.num_active_people, c.num_in_flight_auctions), (1000, 100));
        assert_eq!(c.events_num, 0);
        assert!(!c.rate_limited);
        assert_eq!(NexmarkConfig::from_options(&BTreeMap::new()).unwrap(), c);
    }

    #[test]
    fn from_options_parses_flink_keys() {
        let c = NexmarkConfig::from_options(&options(&[
            ("connector", "nexmark"),
            ("first-event.rate", "1000000"),
            ("next-event.rate", " 20 "),
            ("events.num", "100000000"),
            ("rate.limited", "TRUE"),
            ("rate.shape", "sine"),
            ("rate.period", "10 min"),
            ("person.avg-size", "1kb"),
            ("auction.avg-size", "600b"),
            ("bid.avg-size", "150"),
            ("person.proportion", "2"),
            ("auction.proportion", "6"),
            ("bid.proportion", "92"),
            ("bid.hot-ratio.auctions", "3"),
            ("bid.hot-ratio.bidders", "5"),
            ("auction.hot-ratio.sellers", "6"),
            ("base-time", "-5"),
            ("person.active.num", "7"),
            ("auction.in-flight.num", "8"),
        ]))
        .unwrap();
        assert_eq!(c.first_event_rate, 1_000_000);
        assert_eq!(c.next_event_rate, 20);
        assert_eq!(c.events_num, 100_000_000);
        assert!(c.rate_limited);
        assert_eq!(c.rate_shape, RateShape::Sine);
        assert_eq!(c.rate_period_sec, 600);
        assert_eq!(
            (
                c.avg_person_byte_size,
                c.avg_auction_byte_size,
                c.avg_bid_byte_size
            ),
            (1024, 600, 150)
        );
        assert_eq!(c.total_proportion(), 100);
        assert_eq!(
            (
                c.hot_auction_ratio,
                c.hot_bidders_ratio,
                c.hot_sellers_ratio
            ),
            (3, 5, 6)
        );
        assert_eq!(c.base_time_ms, -5);
        assert_eq!((c.num_active_people, c.num_in_flight_auctions), (7, 8));
    }

    #[test]
    fn durations_follow_flinks_units() {
        for (text, seconds) in [("600000", 600), ("90s", 90), ("2h", 7200), ("1 d", 86_400)] {
            assert_eq!(parse_duration_sec("rate.period", text).unwrap(), seconds);
        }
        assert!(parse_duration_sec("rate.period", "5 fortnights").is_err());
    }

    fn error_text(pairs: &[(&str, &str)]) -> String {
        NexmarkConfig::from_options(&options(pairs))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn from_options_names_the_bad_key_and_value() {
        let text = error_text(&[("first-event.rate", "fast")]);
        assert!(
            text.contains("`first-event.rate`") && text.contains("`fast`"),
            "{text}"
        );
        let text = error_text(&[("events.num", "-1")]);
        assert!(
            text.contains("`events.num`") && text.contains("not negative"),
            "{text}"
        );
        let text = error_text(&[("bid.avg-size", "10 parsecs")]);
        assert!(
            text.contains("`bid.avg-size`") && text.contains("200b"),
            "{text}"
        );
        let text = error_text(&[("rate.limited", "yes")]);
        assert!(text.contains("`true` or `false`"), "{text}");
        let text = error_text(&[("first-event.rate", "0")]);
        assert!(text.contains("`first-event.rate` = `0`"), "{text}");
        let text = error_text(&[("bid.hot-ratio.bidders", "0")]);
        assert!(text.contains("at least 1"), "{text}");
        let text = error_text(&[("auction.proportion", "0")]);
        assert!(text.contains("refer to persons and auctions"), "{text}");
    }

    #[test]
    fn from_options_rejects_unknown_keys() {
        let text = error_text(&[("evnets.num", "10")]);
        assert!(
            text.contains("`evnets.num`") && text.contains("events.num"),
            "{text}"
        );
    }
}
