//! The Nexmark data model: [`Person`], [`Auction`], [`Bid`] and the [`Event`] that holds one.
//!
//! Fields and their meaning follow Flink's nexmark (`com.github.nexmark.flink.model`); times
//! are milliseconds since the Unix epoch. Ids are foreign keys: `Auction::seller` and
//! `Bid::bidder` are `Person::id`s, `Bid::auction` is an `Auction::id`.

use serde::{Deserialize, Serialize};

/// A person, who can sell items and bid on auctions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Unique id, starting at [`super::FIRST_PERSON_ID`] and increasing with each new person.
    pub id: i64,
    /// First and last name (`"Peter Shultz"`).
    pub name: String,
    /// A made-up address (`"xyz@abcd.com"`).
    pub email_address: String,
    /// Four groups of four digits separated by spaces.
    pub credit_card: String,
    /// One of ten cities of the western United States.
    pub city: String,
    /// One of six state codes (`"OR"`).
    pub state: String,
    /// When the person registered, in milliseconds since the Unix epoch.
    pub date_time: i64,
    /// Padding that brings the record to the configured average size.
    pub extra: String,
}

/// An item put on auction by a seller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auction {
    /// Unique id, starting at [`super::FIRST_AUCTION_ID`] and increasing with each new auction.
    pub id: i64,
    /// Name of the item.
    pub item_name: String,
    /// Description of the item.
    pub description: String,
    /// Starting price, in cents.
    pub initial_bid: i64,
    /// Lowest price the seller accepts, in cents; at least `initial_bid`.
    pub reserve: i64,
    /// When the auction opened, in milliseconds since the Unix epoch.
    pub date_time: i64,
    /// When the auction closes, in milliseconds since the Unix epoch; after `date_time`.
    pub expires: i64,
    /// The [`Person::id`] of the seller.
    pub seller: i64,
    /// Category of the item, `10..=14`.
    pub category: i64,
    /// Padding that brings the record to the configured average size.
    pub extra: String,
}

/// A bid on an auction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    /// The [`Auction::id`] bid on.
    pub auction: i64,
    /// The [`Person::id`] of the bidder.
    pub bidder: i64,
    /// Price offered, in cents.
    pub price: i64,
    /// The channel that brought the bid (`"Google"`, `"channel-42"`).
    pub channel: String,
    /// The URL the bid was made from.
    pub url: String,
    /// When the bid was made, in milliseconds since the Unix epoch.
    pub date_time: i64,
    /// Padding that brings the record to the configured average size.
    pub extra: String,
}

/// One Nexmark event: a new person, a new auction, or a bid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A person registered.
    Person(Person),
    /// An auction opened.
    Auction(Auction),
    /// A bid was placed.
    Bid(Bid),
}

/// Which of the three kinds an [`Event`] is, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// [`Event::Person`].
    Person,
    /// [`Event::Auction`].
    Auction,
    /// [`Event::Bid`].
    Bid,
}

impl Event {
    /// The event's time, in milliseconds since the Unix epoch (its `date_time`); what a
    /// watermark strategy should read.
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }

    /// Which kind of event this is.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Person(_) => EventKind::Person,
            Event::Auction(_) => EventKind::Auction,
            Event::Bid(_) => EventKind::Bid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bid() -> Bid {
        Bid {
            auction: 1000,
            bidder: 1001,
            price: 4200,
            channel: "Google".into(),
            url: "https://www.nexmark.com/abc/def/ghi/item.htm?query=1".into(),
            date_time: 1_436_918_400_123,
            extra: "xyz".into(),
        }
    }

    #[test]
    fn date_time_and_kind_read_the_inner_record() {
        let event = Event::Bid(bid());
        assert_eq!(event.date_time(), 1_436_918_400_123);
        assert_eq!(event.kind(), EventKind::Bid);
    }

    #[test]
    fn events_round_trip_through_serde() {
        let event = Event::Bid(bid());
        let json = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
        let bytes = postcard::to_allocvec(&event).unwrap();
        let back: Event = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, event);
    }
}
