//! Nexmark events as CSV files, one per event kind (`person.csv`, `auction.csv`,
//! `bid.csv`), columns in the order of the Nexmark views and timestamps as
//! `yyyy-MM-dd HH:mm:ss.SSS`: the input of the benchmark's CSV mode
//! (`sql/nexmark/ddl_csv.sql`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::{Event, NexmarkGenerator};

/// `ms` since the epoch as `yyyy-MM-dd HH:mm:ss.SSS` (UTC).
pub fn format_timestamp_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Writes events `0..events` of `generator` into `dir`; returns the number of persons,
/// auctions and bids written.
///
/// # Errors
/// When a file cannot be created or written.
pub fn write_csv_files(
    generator: &NexmarkGenerator,
    events: u64,
    dir: &Path,
) -> std::io::Result<[u64; 3]> {
    std::fs::create_dir_all(dir)?;
    let open =
        |name: &str| File::create(dir.join(name)).map(|f| BufWriter::with_capacity(1 << 20, f));
    let (mut persons, mut auctions, mut bids) =
        (open("person.csv")?, open("auction.csv")?, open("bid.csv")?);
    let mut counts = [0u64; 3];
    for n in 0..events {
        match generator.event(n) {
            Event::Person(p) => {
                counts[0] += 1;
                writeln!(
                    persons,
                    "{},{},{},{},{},{},{},{}",
                    p.id,
                    p.name,
                    p.email_address,
                    p.credit_card,
                    p.city,
                    p.state,
                    format_timestamp_ms(p.date_time),
                    p.extra
                )?;
            }
            Event::Auction(a) => {
                counts[1] += 1;
                writeln!(
                    auctions,
                    "{},{},{},{},{},{},{},{},{},{}",
                    a.id,
                    a.item_name,
                    a.description,
                    a.initial_bid,
                    a.reserve,
                    format_timestamp_ms(a.date_time),
                    format_timestamp_ms(a.expires),
                    a.seller,
                    a.category,
                    a.extra
                )?;
            }
            Event::Bid(b) => {
                counts[2] += 1;
                writeln!(
                    bids,
                    "{},{},{},{},{},{},{}",
                    b.auction,
                    b.bidder,
                    b.price,
                    b.channel,
                    b.url,
                    format_timestamp_ms(b.date_time),
                    b.extra
                )?;
            }
        }
    }
    for mut f in [persons, auctions, bids] {
        f.flush()?;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps_like_flink_sql() {
        assert_eq!(format_timestamp_ms(0), "1970-01-01 00:00:00.000");
        assert_eq!(
            format_timestamp_ms(1_436_918_400_123),
            "2015-07-15 00:00:00.123"
        );
        assert_eq!(
            format_timestamp_ms(951_782_400_000 + 3_723_004),
            "2000-02-29 01:02:03.004"
        );
        assert_eq!(format_timestamp_ms(-1), "1969-12-31 23:59:59.999");
    }
}
