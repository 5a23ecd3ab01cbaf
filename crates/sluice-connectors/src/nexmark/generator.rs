//! [`NexmarkGenerator`]: Nexmark event `n` as a pure function of `n`.
//!
//! A port of Flink's (and Beam's) `NexmarkGenerator`, `PersonGenerator`,
//! `AuctionGenerator` and `BidGenerator`. Event numbers cycle through the kinds in blocks of
//! `person + auction + bid` proportions (1 person, 3 auctions, 46 bids by default); the
//! `k`-th person has id `1000 + k`, the `k`-th auction id `1000 + k`. A seller, a bidder or
//! the auction of a bid is hot with probability `1 - 1/ratio` (the hot one is the first,
//! or for bidders the second, of the newest block of 100 ids); otherwise it is drawn among
//! the active persons or in-flight auctions plus a lead of 10 ids not yet created. Event
//! `n` happens `n / first-event.rate` seconds after `base-time`.
//!
//! Invariant: [`NexmarkGenerator::event`] reads nothing but the configuration, `n` and
//! tables built from fixed seeds, so every subtask and every run agrees on event `n`.

use std::fmt;
use std::sync::Arc;

use super::model::{Auction, Bid, Event, EventKind, Person};
use super::random::{self, SplitMix64};
use super::{NexmarkConfig, FIRST_AUCTION_ID, FIRST_CATEGORY_ID, FIRST_PERSON_ID};
use crate::error::Error;

/// Persons that may be referred to before they are created.
const PERSON_ID_LEAD: u64 = 10;
/// Auctions that may be bid on before they are created.
const AUCTION_ID_LEAD: u64 = 10;
/// Hot sellers, bidders and auctions are one in each this many of the newest.
const HOT_SELLER_RATIO: i64 = 100;
const HOT_BIDDER_RATIO: i64 = 100;
const HOT_AUCTION_RATIO: i64 = 100;
/// Auctions have categories `FIRST_CATEGORY_ID..FIRST_CATEGORY_ID + NUM_CATEGORIES`.
const NUM_CATEGORIES: u64 = 5;
/// A bid comes through a hot channel with probability `1 - 1/HOT_CHANNELS_RATIO`.
const HOT_CHANNELS_RATIO: u64 = 2;
/// Other bids come through one of this many channels.
const CHANNELS_NUMBER: usize = 10_000;

const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

/// Seed of the channel and URL tables (Flink draws them once per JVM with an unseeded
/// `Random`; a fixed seed makes them the same on every worker).
const TABLE_SEED: u64 = 0x5EED_0FC4_A77E_1500;

/// Strings built once per generator so that events copy instead of format.
struct Tables {
    /// `"First Last"` for every pair, indexed `first * LAST_NAMES.len() + last`.
    names: Vec<String>,
    /// `"channel-<i>"`.
    channels: Vec<String>,
    /// The URL of each channel: a base URL, plus `&channel_id=` for nine in ten.
    channel_urls: Vec<String>,
    /// The URL of each hot channel.
    hot_urls: Vec<String>,
}

impl Tables {
    fn build() -> Self {
        let names = FIRST_NAMES
            .iter()
            .flat_map(|first| LAST_NAMES.iter().map(move |last| format!("{first} {last}")))
            .collect();
        let mut rng = SplitMix64::new(TABLE_SEED);
        let hot_urls = (0..HOT_CHANNELS.len())
            .map(|_| base_url(&mut rng))
            .collect();
        let channels = (0..CHANNELS_NUMBER)
            .map(|i| format!("channel-{i}"))
            .collect();
        let channel_urls = (0..CHANNELS_NUMBER)
            .map(|i| {
                let mut url = base_url(&mut rng);
                if rng.below(10) > 0 {
                    // Flink writes Math.abs(Integer.reverse(i)), which stays negative for
                    // i = 1 (Integer.MIN_VALUE); wrapping_abs keeps that.
                    let id = (i as i32).reverse_bits().wrapping_abs();
                    url.push_str("&channel_id=");
                    url.push_str(&id.to_string());
                }
                url
            })
            .collect();
        Tables {
            names,
            channels,
            channel_urls,
            hot_urls,
        }
    }
}

/// `https://www.nexmark.com/<a>/<b>/<c>/item.htm?query=1`, with three short random words.
fn base_url(rng: &mut SplitMix64) -> String {
    let mut url = String::with_capacity(64);
    url.push_str("https://www.nexmark.com/");
    for _ in 0..3 {
        random::push_string(rng, 5, b'_', &mut url);
        url.push('/');
    }
    url.push_str("item.htm?query=1");
    url
}

/// A bid whose strings borrow from the generator's tables, for builders of columnar
/// batches that copy the bytes anyway; see [`NexmarkGenerator::bid_view`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BidView<'a> {
    /// [`Bid::auction`].
    pub auction: i64,
    /// [`Bid::bidder`].
    pub bidder: i64,
    /// [`Bid::price`].
    pub price: i64,
    /// [`Bid::channel`].
    pub channel: &'a str,
    /// [`Bid::url`].
    pub url: &'a str,
    /// [`Bid::date_time`].
    pub date_time: i64,
}

/// Generates Nexmark events by number. Cheap to clone (the string tables are shared).
#[derive(Clone)]
pub struct NexmarkGenerator {
    config: NexmarkConfig,
    total: u64,
    persons: u64,
    auctions: u64,
    tables: Arc<Tables>,
}

impl fmt::Debug for NexmarkGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NexmarkGenerator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NexmarkGenerator {
    /// A generator for `config`; builds the channel and name tables (about a millisecond).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when [`NexmarkConfig::validate`] rejects the config.
    pub fn new(config: NexmarkConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(NexmarkGenerator {
            total: config.total_proportion(),
            persons: u64::from(config.person_proportion),
            auctions: u64::from(config.auction_proportion),
            config,
            tables: Arc::new(Tables::build()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NexmarkConfig {
        &self.config
    }

    /// The kind of event `n`, without generating it.
    pub fn event_kind(&self, n: u64) -> EventKind {
        let offset = n % self.total;
        if offset < self.persons {
            EventKind::Person
        } else if offset < self.persons + self.auctions {
            EventKind::Auction
        } else {
            EventKind::Bid
        }
    }

    /// Event `n`; the same for every call, generator and subtask with this config.
    pub fn event(&self, n: u64) -> Event {
        match self.event_kind(n) {
            EventKind::Person => Event::Person(self.person(n)),
            EventKind::Auction => Event::Auction(self.auction(n)),
            EventKind::Bid => Event::Bid(self.bid(n)),
        }
    }

    /// Microseconds from `base-time` to event `n`: `n * 10^6 / first-event.rate`, rounded
    /// down (Flink's `timestampForEvent` before its division by 1000).
    pub(crate) fn offset_us(&self, n: u64) -> u64 {
        let rate = u64::from(self.config.first_event_rate);
        match n.checked_mul(1_000_000) {
            Some(scaled) => scaled / rate,
            None => u64::try_from(u128::from(n) * 1_000_000 / u128::from(rate)).unwrap_or(u64::MAX),
        }
    }

    /// The last event number whose [`Self::offset_us`] is at most `limit_us`: the events
    /// due `limit_us` after `base-time` when the source is rate limited.
    pub(crate) fn last_event_due(&self, limit_us: u64) -> u64 {
        let rate = u128::from(self.config.first_event_rate);
        // offset_us(n) <= L  <=>  n * 10^6 < (L + 1) * rate.
        let last = ((u128::from(limit_us) + 1) * rate - 1) / 1_000_000;
        u64::try_from(last).unwrap_or(u64::MAX)
    }

    /// The event time of event `n`, in milliseconds since the Unix epoch: `base-time` plus
    /// `n` inter-event delays of `1 / first-event.rate` seconds, rounded down to the
    /// millisecond (Flink's `timestampForEvent`). Never decreases with `n`.
    pub fn timestamp_ms(&self, n: u64) -> i64 {
        let rate = u64::from(self.config.first_event_rate);
        // floor(floor(n * 10^6 / rate) / 1000) = floor(n * 1000 / rate).
        let offset_ms = match n.checked_mul(1000) {
            Some(scaled) => scaled / rate,
            None => u64::try_from(u128::from(n) * 1000 / u128::from(rate)).unwrap_or(u64::MAX),
        };
        self.config
            .base_time_ms
            .saturating_add(i64::try_from(offset_ms).unwrap_or(i64::MAX))
    }

    /// The id of the newest person among events `0..=n`, without [`FIRST_PERSON_ID`]
    /// (Flink's `lastBase0PersonId`): event `n`'s own id when it is a person.
    fn last_base0_person_id(&self, n: u64) -> i64 {
        let epoch = n / self.total;
        let offset = (n % self.total).min(self.persons - 1);
        (epoch * self.persons + offset) as i64
    }

    /// The id of the newest auction among events `0..=n`, without [`FIRST_AUCTION_ID`]
    /// (Flink's `lastBase0AuctionId`); `-1` before the first auction.
    fn last_base0_auction_id(&self, n: u64) -> i64 {
        let epoch = (n / self.total) as i64;
        let offset = n % self.total;
        let auctions = self.auctions as i64;
        if offset < self.persons {
            // A person: the last auction is in the previous cycle.
            (epoch - 1) * auctions + auctions - 1
        } else if offset >= self.persons + self.auctions {
            // A bid: the last auction of this cycle.
            epoch * auctions + auctions - 1
        } else {
            epoch * auctions + (offset - self.persons) as i64
        }
    }

    /// The id of the newest person among events `0..=n` (`FIRST_PERSON_ID - 1` would mean
    /// none, which the proportions rule out).
    pub fn last_person_id(&self, n: u64) -> i64 {
        self.last_base0_person_id(n) + FIRST_PERSON_ID
    }

    /// The id of the newest auction among events `0..=n`; `FIRST_AUCTION_ID - 1` before
    /// the first auction.
    pub fn last_auction_id(&self, n: u64) -> i64 {
        self.last_base0_auction_id(n) + FIRST_AUCTION_ID
    }

    /// A person among the active ones, or up to [`PERSON_ID_LEAD`] beyond the newest
    /// (Flink's `nextBase0PersonId`).
    fn next_base0_person_id(&self, n: u64, rng: &mut SplitMix64) -> i64 {
        let num_people = self.last_base0_person_id(n) as u64 + 1;
        let active = num_people.min(u64::from(self.config.num_active_people));
        let pick = rng.below(active + PERSON_ID_LEAD);
        (num_people - active + pick) as i64
    }

    /// An auction among the in-flight ones, or up to [`AUCTION_ID_LEAD`] beyond the newest
    /// (Flink's `nextBase0AuctionId`).
    fn next_base0_auction_id(&self, n: u64, rng: &mut SplitMix64) -> i64 {
        let max_auction = self.last_base0_auction_id(n);
        let min_auction = (max_auction - i64::from(self.config.num_in_flight_auctions)).max(0);
        let span = (max_auction - min_auction + 1) as u64 + AUCTION_ID_LEAD;
        min_auction + rng.below(span) as i64
    }

    /// Person event `n` (Flink's `PersonGenerator.nextPerson`). Meant for `n` whose
    /// [`Self::event_kind`] is [`EventKind::Person`]; for another `n` it repeats the id of
    /// the newest person.
    pub fn person(&self, n: u64) -> Person {
        let mut rng = SplitMix64::for_event(n);
        let first = rng.below(FIRST_NAMES.len() as u64) as usize;
        let last = rng.below(LAST_NAMES.len() as u64) as usize;
        let name = self.tables.names[first * LAST_NAMES.len() + last].clone();
        let mut email_address = String::with_capacity(16);
        random::push_string(&mut rng, 7, b' ', &mut email_address);
        email_address.push('@');
        random::push_string(&mut rng, 5, b' ', &mut email_address);
        email_address.push_str(".com");
        let credit_card = credit_card(&mut rng);
        let city = US_CITIES[rng.below(US_CITIES.len() as u64) as usize].to_owned();
        let state = US_STATES[rng.below(US_STATES.len() as u64) as usize].to_owned();
        let current_size =
            8 + name.len() + email_address.len() + credit_card.len() + city.len() + state.len();
        let extra = random::extra(
            &mut rng,
            current_size,
            self.config.avg_person_byte_size as usize,
        );
        Person {
            id: self.last_person_id(n),
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time: self.timestamp_ms(n),
            extra,
        }
    }

    /// Auction event `n` (Flink's `AuctionGenerator.nextAuction`). Meant for `n` whose
    /// [`Self::event_kind`] is [`EventKind::Auction`]; for another `n` it repeats the id of
    /// the newest auction.
    pub fn auction(&self, n: u64) -> Auction {
        let mut rng = SplitMix64::for_event(n);
        let hot = rng.below(u64::from(self.config.hot_sellers_ratio)) > 0;
        let seller = if hot {
            // The first person of the newest block of HOT_SELLER_RATIO.
            (self.last_base0_person_id(n) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
        } else {
            self.next_base0_person_id(n, &mut rng)
        };
        let category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES) as i64;
        let initial_bid = random::price(&mut rng);
        let date_time = self.timestamp_ms(n);
        let expires = date_time + self.auction_length_ms(n, &mut rng);
        let item_name = random::string(&mut rng, 20, b' ');
        let description = random::string(&mut rng, 100, b' ');
        let reserve = initial_bid + random::price(&mut rng);
        let current_size = 8 + item_name.len() + description.len() + 8 + 8 + 8 + 8 + 8;
        let extra = random::extra(
            &mut rng,
            current_size,
            self.config.avg_auction_byte_size as usize,
        );
        Auction {
            id: self.last_auction_id(n),
            item_name,
            description,
            initial_bid,
            reserve,
            date_time,
            expires,
            seller: seller + FIRST_PERSON_ID,
            category,
            extra,
        }
    }

    /// How long auction `n` stays open: uniform in `1..=2h` milliseconds, where `h` is the
    /// time until `auction.in-flight.num` more auctions have opened (Flink's
    /// `nextAuctionLengthMs`), so that many auctions are open on average.
    fn auction_length_ms(&self, n: u64, rng: &mut SplitMix64) -> i64 {
        let events_for_auctions =
            u64::from(self.config.num_in_flight_auctions) * self.total / self.auctions;
        let horizon_ms =
            self.timestamp_ms(n.saturating_add(events_for_auctions)) - self.timestamp_ms(n);
        1 + rng.below(horizon_ms.saturating_mul(2).max(1) as u64) as i64
    }

    /// Bid event `n` (Flink's `BidGenerator.nextBid`). Meant for `n` whose
    /// [`Self::event_kind`] is [`EventKind::Bid`] (otherwise it is a bid all the same).
    pub fn bid(&self, n: u64) -> Bid {
        let mut extra = String::new();
        let view = self.bid_view(n, &mut extra);
        Bid {
            auction: view.auction,
            bidder: view.bidder,
            price: view.price,
            channel: view.channel.to_owned(),
            url: view.url.to_owned(),
            date_time: view.date_time,
            extra,
        }
    }

    /// Bid event `n` without allocating: the channel and URL borrow from the generator's
    /// tables and the `extra` padding replaces the content of `extra` (reuse one buffer).
    /// Equal, field by field, to [`Self::bid`].
    pub fn bid_view(&self, n: u64, extra: &mut String) -> BidView<'_> {
        let mut rng = SplitMix64::for_event(n);
        let hot_auction = rng.below(u64::from(self.config.hot_auction_ratio)) > 0;
        let auction = if hot_auction {
            // The first auction of the newest block of HOT_AUCTION_RATIO.
            (self.last_base0_auction_id(n) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
        } else {
            self.next_base0_auction_id(n, &mut rng)
        };
        let hot_bidder = rng.below(u64::from(self.config.hot_bidders_ratio)) > 0;
        let bidder = if hot_bidder {
            // The second person of the newest block, so hot bidders are not hot sellers.
            (self.last_base0_person_id(n) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
        } else {
            self.next_base0_person_id(n, &mut rng)
        };
        let price = random::price(&mut rng);
        let (channel, url) = if rng.below(HOT_CHANNELS_RATIO) > 0 {
            let i = rng.below(HOT_CHANNELS.len() as u64) as usize;
            (HOT_CHANNELS[i], self.tables.hot_urls[i].as_str())
        } else {
            let i = rng.below(CHANNELS_NUMBER as u64) as usize;
            (
                self.tables.channels[i].as_str(),
                self.tables.channel_urls[i].as_str(),
            )
        };
        extra.clear();
        random::push_extra(
            &mut rng,
            8 + 8 + 8 + 8,
            self.config.avg_bid_byte_size as usize,
            extra,
        );
        BidView {
            auction: auction + FIRST_AUCTION_ID,
            bidder: bidder + FIRST_PERSON_ID,
            price,
            channel,
            url,
            date_time: self.timestamp_ms(n),
        }
    }
}

/// Four groups of four random digits separated by spaces (`"0421 9934 0007 5120"`).
fn credit_card(rng: &mut SplitMix64) -> String {
    let mut card = String::with_capacity(19);
    for group in 0..4 {
        if group > 0 {
            card.push(' ');
        }
        let mut digits = rng.below(10_000) as u32;
        let mut buf = [b'0'; 4];
        for slot in buf.iter_mut().rev() {
            *slot = b'0' + (digits % 10) as u8;
            digits /= 10;
        }
        card.extend(buf.iter().map(|&b| char::from(b)));
    }
    card
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexmark::DEFAULT_BASE_TIME_MS;

    const N: u64 = 10_000;

    fn generator() -> NexmarkGenerator {
        NexmarkGenerator::new(NexmarkConfig::default()).unwrap()
    }

    fn events(g: &NexmarkGenerator) -> Vec<Event> {
        (0..N).map(|n| g.event(n)).collect()
    }

    #[test]
    fn event_n_is_a_pure_function_of_n() {
        let (a, b) = (generator(), generator());
        let forward = events(&a);
        let backward: Vec<Event> = (0..N).rev().map(|n| b.event(n)).collect();
        assert!(forward.iter().eq(backward.iter().rev()));
        for n in [0, 1, 4, 49, 123_456_789, u64::MAX / 3] {
            assert_eq!(a.event(n), b.event(n), "event {n}");
        }
        assert_ne!(a.event(10), a.event(11));
    }

    #[test]
    fn kinds_follow_the_proportions() {
        let count = |g: &NexmarkGenerator, kind| {
            (0..N)
                .filter(|&n| g.event(n).kind() == kind && g.event_kind(n) == kind)
                .count()
        };
        let g = generator();
        assert_eq!(count(&g, EventKind::Person), 200);
        assert_eq!(count(&g, EventKind::Auction), 600);
        assert_eq!(count(&g, EventKind::Bid), 9_200);
        let custom = NexmarkGenerator::new(NexmarkConfig {
            person_proportion: 2,
            auction_proportion: 5,
            bid_proportion: 3,
            ..NexmarkConfig::default()
        })
        .unwrap();
        assert_eq!(count(&custom, EventKind::Person), 2_000);
        assert_eq!(count(&custom, EventKind::Auction), 5_000);
        assert_eq!(count(&custom, EventKind::Bid), 3_000);
    }

    #[test]
    fn person_and_auction_ids_count_up_from_1000() {
        let g = generator();
        let (mut next_person, mut next_auction) = (FIRST_PERSON_ID, FIRST_AUCTION_ID);
        for (n, event) in (0..N).zip(events(&g)) {
            match event {
                Event::Person(p) => {
                    assert_eq!(p.id, next_person, "event {n}");
                    next_person += 1;
                }
                Event::Auction(a) => {
                    assert_eq!(a.id, next_auction, "event {n}");
                    next_auction += 1;
                }
                Event::Bid(_) => {}
            }
            assert_eq!(g.last_person_id(n), next_person - 1, "event {n}");
            assert_eq!(g.last_auction_id(n), next_auction - 1, "event {n}");
        }
    }

    /// Bids and auctions refer to persons and auctions already generated, except for the
    /// model's deliberate lead of up to 10 ids not yet created (and the hot bidder, the
    /// second person of the newest block of 100, when that block has one person so far).
    #[test]
    fn references_point_at_generated_ids_or_the_lead() {
        let g = generator();
        let (mut last_person, mut last_auction) = (FIRST_PERSON_ID - 1, FIRST_AUCTION_ID - 1);
        let (mut bids, mut known_auction, mut known_bidder) = (0, 0, 0);
        for event in events(&g) {
            match event {
                Event::Person(p) => last_person = p.id,
                Event::Auction(a) => {
                    last_auction = a.id;
                    assert!(a.seller >= FIRST_PERSON_ID);
                    assert!(a.seller <= last_person + PERSON_ID_LEAD as i64, "{a:?}");
                }
                Event::Bid(b) => {
                    bids += 1;
                    assert!(b.auction >= FIRST_AUCTION_ID && b.bidder >= FIRST_PERSON_ID);
                    assert!(b.auction <= last_auction + AUCTION_ID_LEAD as i64, "{b:?}");
                    assert!(b.bidder <= last_person + PERSON_ID_LEAD as i64, "{b:?}");
                    known_auction += usize::from(b.auction <= last_auction);
                    known_bidder += usize::from(b.bidder <= last_person);
                }
            }
        }
        assert!(known_auction * 100 > bids * 93, "{known_auction} of {bids}");
        assert!(known_bidder * 100 > bids * 90, "{known_bidder} of {bids}");
    }

    #[test]
    fn hot_auctions_bidders_and_sellers_follow_the_ratios() {
        let g = generator();
        let (mut bids, mut hot_auctions, mut hot_bidders) = (0.0, 0.0, 0.0);
        let (mut auctions, mut hot_sellers) = (0.0, 0.0);
        for n in 0..N * 5 {
            let base0_person = g.last_person_id(n) - FIRST_PERSON_ID;
            match g.event(n) {
                Event::Bid(b) => {
                    bids += 1.0;
                    let hot = (g.last_auction_id(n) - FIRST_AUCTION_ID) / 100 * 100;
                    if b.auction == hot + FIRST_AUCTION_ID {
                        hot_auctions += 1.0;
                    }
                    if b.bidder == base0_person / 100 * 100 + 1 + FIRST_PERSON_ID {
                        hot_bidders += 1.0;
                    }
                }
                Event::Auction(a) => {
                    auctions += 1.0;
                    if a.seller == base0_person / 100 * 100 + FIRST_PERSON_ID {
                        hot_sellers += 1.0;
                    }
                }
                Event::Person(_) => {}
            }
        }
        // P(hot) = 1 - 1/ratio, plus the cold draws that land on the hot id.
        let share = hot_auctions / bids;
        assert!((0.49..0.53).contains(&share), "hot auctions {share}");
        let share = hot_bidders / bids;
        assert!((0.74..0.78).contains(&share), "hot bidders {share}");
        let share = hot_sellers / auctions;
        assert!((0.71..0.80).contains(&share), "hot sellers {share}");
    }

    #[test]
    fn timestamps_are_base_time_plus_inter_event_delay() {
        let g = generator();
        let base = DEFAULT_BASE_TIME_MS;
        assert_eq!(g.timestamp_ms(0), base);
        assert_eq!(g.timestamp_ms(9), base);
        assert_eq!(g.timestamp_ms(10), base + 1);
        assert_eq!(g.timestamp_ms(N), base + 1_000);
        let mut previous = i64::MIN;
        for (n, event) in (0..N).zip(events(&g)) {
            assert_eq!(event.date_time(), g.timestamp_ms(n));
            assert!(event.date_time() >= previous, "event {n}");
            previous = event.date_time();
        }
        let slow = NexmarkGenerator::new(NexmarkConfig {
            first_event_rate: 3,
            base_time_ms: 0,
            ..NexmarkConfig::default()
        })
        .unwrap();
        let times: Vec<i64> = (0..5).map(|n| slow.timestamp_ms(n)).collect();
        assert_eq!(times, [0, 333, 666, 1000, 1333]);
        assert_eq!(g.timestamp_ms(u64::MAX), base + (u64::MAX / 10) as i64);
    }

    #[test]
    fn auctions_expire_after_about_the_in_flight_horizon() {
        let g = generator();
        let lengths: Vec<i64> = events(&g)
            .into_iter()
            .filter_map(|e| match e {
                Event::Auction(a) => Some(a.expires - a.date_time),
                _ => None,
            })
            .collect();
        assert!(lengths.iter().all(|&l| l >= 1));
        // 100 in-flight auctions take 100 * 50 / 3 = 1666 events, 166 ms at 10 000/s:
        // lengths are uniform in 1..=332.
        assert!(lengths.iter().all(|&l| l <= 334));
        let mean = lengths.iter().sum::<i64>() as f64 / lengths.len() as f64;
        assert!((150.0..185.0).contains(&mean), "{mean}");
    }

    fn mean(sizes: &[usize]) -> f64 {
        sizes.iter().sum::<usize>() as f64 / sizes.len() as f64
    }

    #[test]
    fn records_are_padded_to_the_average_sizes() {
        let g = generator();
        let persons: Vec<usize> = (0..N)
            .map(|k| {
                let p = g.person(k * 50);
                8 + p.name.len()
                    + p.email_address.len()
                    + p.credit_card.len()
                    + p.city.len()
                    + p.state.len()
                    + p.extra.len()
            })
            .collect();
        let auctions: Vec<usize> = (0..N)
            .map(|k| {
                let a = g.auction(k / 3 * 50 + 1 + k % 3);
                8 + a.item_name.len() + a.description.len() + 40 + a.extra.len()
            })
            .collect();
        let bids: Vec<usize> = (0..N)
            .filter(|&n| g.event_kind(n) == EventKind::Bid)
            .map(|n| 32 + g.bid(n).extra.len())
            .collect();
        // nextExtra's lengths are uniform in [min, min + 2 delta): half a byte short.
        assert!((mean(&persons) - 199.5).abs() < 1.0, "{}", mean(&persons));
        assert!((mean(&auctions) - 499.5).abs() < 2.0, "{}", mean(&auctions));
        assert!((mean(&bids) - 99.5).abs() < 0.5, "{}", mean(&bids));
    }

    #[test]
    fn fields_take_the_models_values() {
        let g = generator();
        let (mut hot_channels, mut bids) = (0, 0);
        for event in events(&g) {
            match event {
                Event::Person(p) => {
                    let (first, last) = p.name.split_once(' ').unwrap();
                    assert!(FIRST_NAMES.contains(&first) && LAST_NAMES.contains(&last));
                    assert!(US_CITIES.contains(&p.city.as_str()));
                    assert!(US_STATES.contains(&p.state.as_str()));
                    let (user, domain) = p.email_address.split_once('@').unwrap();
                    assert!(!user.is_empty() && domain.ends_with(".com"), "{p:?}");
                    let groups: Vec<&str> = p.credit_card.split(' ').collect();
                    assert_eq!(groups.len(), 4);
                    assert!(groups
                        .iter()
                        .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_digit())));
                }
                Event::Auction(a) => {
                    assert!((10..15).contains(&a.category));
                    assert!(a.initial_bid >= 100 && a.reserve > a.initial_bid);
                    assert!(a.item_name.len() < 20 && a.description.len() < 100);
                }
                Event::Bid(b) => {
                    bids += 1;
                    assert!((100..=100_000_000).contains(&b.price));
                    assert!(b.url.starts_with("https://www.nexmark.com/"), "{b:?}");
                    if HOT_CHANNELS.contains(&b.channel.as_str()) {
                        hot_channels += 1;
                        assert!(b.url.ends_with("item.htm?query=1"));
                    } else {
                        let i: usize = b.channel.strip_prefix("channel-").unwrap().parse().unwrap();
                        assert_eq!(b.url, g.tables.channel_urls[i]);
                    }
                }
            }
        }
        let share = f64::from(hot_channels) / f64::from(bids);
        assert!((0.48..0.52).contains(&share), "{share}");
    }

    #[test]
    fn channel_urls_mostly_carry_the_reversed_channel_id() {
        let tables = Tables::build();
        let with_id = tables
            .channel_urls
            .iter()
            .filter(|u| u.contains("&channel_id="))
            .count();
        assert!((8_800..9_200).contains(&with_id), "{with_id}");
        assert!(
            tables.channel_urls[2].ends_with("item.htm?query=1&channel_id=1073741824")
                || tables.channel_urls[2].ends_with("item.htm?query=1")
        );
        assert_eq!(tables.names.len(), 99);
        assert_eq!(tables.hot_urls.len(), 4);
    }

    #[test]
    fn bid_view_equals_bid() {
        let g = generator();
        let mut extra = String::from("left over");
        for n in (0..N).filter(|&n| g.event_kind(n) == EventKind::Bid) {
            let view = g.bid_view(n, &mut extra);
            let bid = g.bid(n);
            assert_eq!(
                (view.auction, view.bidder, view.price, view.date_time),
                (bid.auction, bid.bidder, bid.price, bid.date_time)
            );
            assert_eq!(
                (view.channel, view.url),
                (bid.channel.as_str(), bid.url.as_str())
            );
            assert_eq!(extra, bid.extra);
        }
    }

    #[test]
    fn invalid_configs_are_refused() {
        let err = NexmarkGenerator::new(NexmarkConfig {
            first_event_rate: 0,
            ..NexmarkConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("first-event.rate"), "{err}");
    }
}
