//! The `nexmark` connector: Nexmark events from the in-process generator
//! ([`sluice_connectors::nexmark`]) as rows of Flink's nexmark `datagen` table:
//! `event_type INT` (0 person, 1 auction, 2 bid) and one `ROW` column per event kind,
//! null for the other kinds. Fields are matched by name as in Flink's DDL
//! (`person ROW<id BIGINT, name VARCHAR, emailAddress VARCHAR, ..., dateTime
//! TIMESTAMP(3), extra VARCHAR>`); a declared field the model lacks is an error.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, RecordBatch, StringBuilder, StructArray,
    TimestampMillisecondBuilder,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Fields, SchemaRef, TimeUnit};
use sluice_connectors::nexmark::{Auction, Bid, Event, NexmarkConfig, NexmarkSource, Person};
use sluice_core::OperatorId;
use sluice_runtime::Result as RuntimeResult;

use crate::batch::SqlBatch;
use crate::catalog::CatalogTable;
use crate::error::{Error, Result};
use crate::operators::decode::{DecodeOperator, RecordDecoder};
use crate::planner::graph::GraphBuilder;

const PERSON_FIELDS: [&str; 8] = [
    "id",
    "name",
    "emailaddress",
    "creditcard",
    "city",
    "state",
    "datetime",
    "extra",
];
const AUCTION_FIELDS: [&str; 10] = [
    "id",
    "itemname",
    "description",
    "initialbid",
    "reserve",
    "datetime",
    "expires",
    "seller",
    "category",
    "extra",
];
const BID_FIELDS: [&str; 7] = [
    "auction", "bidder", "price", "channel", "url", "datetime", "extra",
];

/// A field value of an event, by the field's lower-case name.
enum Value<'a> {
    Int(i64),
    Str(&'a str),
    Time(i64),
}

fn person_field<'a>(p: &'a Person, field: &str) -> Option<Value<'a>> {
    Some(match field {
        "id" => Value::Int(p.id),
        "name" => Value::Str(&p.name),
        "emailaddress" => Value::Str(&p.email_address),
        "creditcard" => Value::Str(&p.credit_card),
        "city" => Value::Str(&p.city),
        "state" => Value::Str(&p.state),
        "datetime" => Value::Time(p.date_time),
        "extra" => Value::Str(&p.extra),
        _ => return None,
    })
}

fn auction_field<'a>(a: &'a Auction, field: &str) -> Option<Value<'a>> {
    Some(match field {
        "id" => Value::Int(a.id),
        "itemname" => Value::Str(&a.item_name),
        "description" => Value::Str(&a.description),
        "initialbid" => Value::Int(a.initial_bid),
        "reserve" => Value::Int(a.reserve),
        "datetime" => Value::Time(a.date_time),
        "expires" => Value::Time(a.expires),
        "seller" => Value::Int(a.seller),
        "category" => Value::Int(a.category),
        "extra" => Value::Str(&a.extra),
        _ => return None,
    })
}

fn bid_field<'a>(b: &'a Bid, field: &str) -> Option<Value<'a>> {
    Some(match field {
        "auction" => Value::Int(b.auction),
        "bidder" => Value::Int(b.bidder),
        "price" => Value::Int(b.price),
        "channel" => Value::Str(&b.channel),
        "url" => Value::Str(&b.url),
        "datetime" => Value::Time(b.date_time),
        "extra" => Value::Str(&b.extra),
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Person,
    Auction,
    Bid,
}

fn kind_of(e: &Event) -> Kind {
    match e {
        Event::Person(_) => Kind::Person,
        Event::Auction(_) => Kind::Auction,
        Event::Bid(_) => Kind::Bid,
    }
}

fn field_of<'a>(e: &'a Event, field: &str) -> Option<Value<'a>> {
    match e {
        Event::Person(p) => person_field(p, field),
        Event::Auction(a) => auction_field(a, field),
        Event::Bid(b) => bid_field(b, field),
    }
}

enum FieldBuilder {
    Int64(Int64Builder),
    Int32(Int32Builder),
    Utf8(StringBuilder),
    Time(TimestampMillisecondBuilder, Option<Arc<str>>),
}

impl FieldBuilder {
    fn new(t: &DataType, capacity: usize) -> Option<Self> {
        Some(match t {
            DataType::Int64 => FieldBuilder::Int64(Int64Builder::with_capacity(capacity)),
            DataType::Int32 => FieldBuilder::Int32(Int32Builder::with_capacity(capacity)),
            DataType::Utf8 => {
                FieldBuilder::Utf8(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            DataType::Timestamp(TimeUnit::Millisecond, tz) => FieldBuilder::Time(
                TimestampMillisecondBuilder::with_capacity(capacity),
                tz.clone(),
            ),
            _ => return None,
        })
    }

    fn push(&mut self, v: Option<Value<'_>>) {
        match (self, v) {
            (FieldBuilder::Int64(b), Some(Value::Int(x) | Value::Time(x))) => b.append_value(x),
            (FieldBuilder::Int32(b), Some(Value::Int(x))) => b.append_value(x as i32),
            (FieldBuilder::Utf8(b), Some(Value::Str(s))) => b.append_value(s),
            (FieldBuilder::Time(b, _), Some(Value::Time(x) | Value::Int(x))) => b.append_value(x),
            (FieldBuilder::Int64(b), _) => b.append_null(),
            (FieldBuilder::Int32(b), _) => b.append_null(),
            (FieldBuilder::Utf8(b), _) => b.append_null(),
            (FieldBuilder::Time(b, _), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            FieldBuilder::Int64(b) => Arc::new(b.finish()),
            FieldBuilder::Int32(b) => Arc::new(b.finish()),
            FieldBuilder::Utf8(b) => Arc::new(b.finish()),
            FieldBuilder::Time(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
        }
    }
}

/// How one column of the datagen table is filled.
enum ColumnPlan {
    EventType,
    Row {
        kind: Kind,
        fields: Fields,
        names: Vec<String>,
    },
}

/// Decodes Nexmark events into rows of the declared `datagen` schema.
pub struct NexmarkDecoder {
    schema: SchemaRef,
    columns: Vec<ColumnPlan>,
}

impl NexmarkDecoder {
    /// A decoder for `schema`, checked against the Nexmark model.
    ///
    /// # Errors
    /// A column or field the model does not have, or of a type it cannot fill.
    pub fn new(schema: SchemaRef) -> Result<Self> {
        let mut columns = Vec::new();
        for f in schema.fields() {
            let lower = f.name().to_ascii_lowercase();
            let plan = match (lower.as_str(), f.data_type()) {
                ("event_type", DataType::Int32 | DataType::Int64) => ColumnPlan::EventType,
                ("person" | "auction" | "bid", DataType::Struct(fields)) => {
                    let kind = match lower.as_str() {
                        "person" => Kind::Person,
                        "auction" => Kind::Auction,
                        _ => Kind::Bid,
                    };
                    let names: Vec<String> = fields
                        .iter()
                        .map(|c| c.name().to_ascii_lowercase())
                        .collect();
                    for (c, n) in fields.iter().zip(&names) {
                        let known: &[&str] = match kind {
                            Kind::Person => &PERSON_FIELDS,
                            Kind::Auction => &AUCTION_FIELDS,
                            Kind::Bid => &BID_FIELDS,
                        };
                        let sample_ok = known.contains(&n.as_str());
                        if !sample_ok || FieldBuilder::new(c.data_type(), 0).is_none() {
                            return Err(Error::config(format!(
                                "nexmark: field `{}.{}` of type {} is not in the Nexmark model",
                                f.name(),
                                c.name(),
                                c.data_type()
                            )));
                        }
                    }
                    ColumnPlan::Row {
                        kind,
                        fields: fields.clone(),
                        names,
                    }
                }
                _ => {
                    return Err(Error::config(format!(
                        "nexmark: column `{}` {} is not part of Flink's nexmark table (event_type \
                         INT, person ROW<...>, auction ROW<...>, bid ROW<...>)",
                        f.name(),
                        f.data_type()
                    )))
                }
            };
            columns.push(plan);
        }
        Ok(NexmarkDecoder { schema, columns })
    }

    /// Rows of `events`.
    ///
    /// # Errors
    /// When Arrow rejects the arrays (a bug).
    pub fn rows(&self, events: &[Event]) -> Result<RecordBatch> {
        let n = events.len();
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (plan, field) in self.columns.iter().zip(self.schema.fields()) {
            match plan {
                ColumnPlan::EventType => {
                    let values: Vec<i64> = events
                        .iter()
                        .map(|e| match kind_of(e) {
                            Kind::Person => 0,
                            Kind::Auction => 1,
                            Kind::Bid => 2,
                        })
                        .collect();
                    let a = arrow::array::Int64Array::from(values);
                    arrays.push(arrow::compute::cast(&a, field.data_type())?);
                }
                ColumnPlan::Row {
                    kind,
                    fields,
                    names,
                } => {
                    let mut builders: Vec<FieldBuilder> = fields
                        .iter()
                        .filter_map(|c| FieldBuilder::new(c.data_type(), n))
                        .collect();
                    let mut valid = Vec::with_capacity(n);
                    for e in events {
                        let mine = kind_of(e) == *kind;
                        valid.push(mine);
                        for (b, name) in builders.iter_mut().zip(names) {
                            b.push(if mine { field_of(e, name) } else { None });
                        }
                    }
                    let children: Vec<ArrayRef> =
                        builders.iter_mut().map(FieldBuilder::finish).collect();
                    let s = StructArray::try_new(
                        fields.clone(),
                        children,
                        Some(NullBuffer::from(valid)),
                    )?;
                    arrays.push(Arc::new(s));
                }
            }
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), arrays)?)
    }
}

impl RecordDecoder<Event> for NexmarkDecoder {
    fn decode(&mut self, records: Vec<Event>) -> RuntimeResult<Option<SqlBatch>> {
        if records.is_empty() {
            return Ok(None);
        }
        self.rows(&records)
            .map(|b| Some(SqlBatch::new(b)))
            .map_err(Error::into_runtime)
    }
}

/// Adds the generator and the decoder of a `nexmark` table.
///
/// # Errors
/// Bad options, or a schema the model cannot fill.
pub fn add_source(
    graph: &mut GraphBuilder,
    table: &CatalogTable,
    parallelism: u32,
) -> Result<(OperatorId, u32)> {
    let config = NexmarkConfig::from_options(&table.def.options)
        .map_err(|e| Error::config(format!("table `{}`: {e}", table.def.name)))?;
    let source = NexmarkSource::new(config)
        .map_err(|e| Error::config(format!("table `{}`: {e}", table.def.name)))?;
    // Check the schema now, so a bad DDL fails before the job starts.
    NexmarkDecoder::new(Arc::clone(&table.physical_schema))?;
    let name = &table.def.name;
    let node = graph.source::<Event>(
        &format!("Source: {name} (nexmark)"),
        parallelism,
        Arc::new(source),
    );
    let schema = Arc::clone(&table.physical_schema);
    let decoder =
        graph.typed_operator::<Event, _, _>(&format!("Decode({name})"), parallelism, move |_| {
            let d = NexmarkDecoder::new(Arc::clone(&schema)).map_err(Error::into_runtime)?;
            Ok(DecodeOperator::new(Box::new(d)))
        });
    graph.typed_forward::<Event>(node, decoder);
    Ok((decoder, parallelism))
}
