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
use sluice_connectors::nexmark::{
    Auction, BidView, EventKind, NexmarkConfig, NexmarkEventNumbers, NexmarkGenerator,
    NexmarkSource, Person,
};
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Person,
    Auction,
    Bid,
}

/// The builders of one `ROW` column: its event kind, a builder per field, validity.
type RowBuilders = (Kind, Vec<FieldBuilder>, Vec<bool>);

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

    /// Rows of the events numbered `numbers`, built straight from the generator: bids
    /// (most events) without allocating.
    ///
    /// # Errors
    /// When Arrow rejects the arrays (a bug).
    pub fn rows(&self, generator: &NexmarkGenerator, numbers: &[u64]) -> Result<RecordBatch> {
        let n = numbers.len();
        let mut types: Vec<i64> = Vec::with_capacity(n);
        // Per ROW column: its field builders and validity.
        let mut rows: Vec<Option<RowBuilders>> = self
            .columns
            .iter()
            .map(|plan| match plan {
                ColumnPlan::EventType => None,
                ColumnPlan::Row { kind, fields, .. } => Some((
                    *kind,
                    fields
                        .iter()
                        .filter_map(|c| FieldBuilder::new(c.data_type(), n))
                        .collect(),
                    Vec::with_capacity(n),
                )),
            })
            .collect();
        let mut extra = String::new();
        for &number in numbers {
            let event_kind = generator.event_kind(number);
            let (kind, person, auction, bid) = match event_kind {
                EventKind::Person => (Kind::Person, Some(generator.person(number)), None, None),
                EventKind::Auction => (Kind::Auction, None, Some(generator.auction(number)), None),
                EventKind::Bid => (
                    Kind::Bid,
                    None,
                    None,
                    Some(generator.bid_view(number, &mut extra)),
                ),
            };
            types.push(match kind {
                Kind::Person => 0,
                Kind::Auction => 1,
                Kind::Bid => 2,
            });
            for (plan, row) in self.columns.iter().zip(rows.iter_mut()) {
                let (ColumnPlan::Row { names, .. }, Some((row_kind, builders, valid))) =
                    (plan, row)
                else {
                    continue;
                };
                let mine = *row_kind == kind;
                valid.push(mine);
                for (b, name) in builders.iter_mut().zip(names.iter()) {
                    let value = if !mine {
                        None
                    } else if let Some(p) = &person {
                        person_field(p, name)
                    } else if let Some(a) = &auction {
                        auction_field(a, name)
                    } else if let Some(v) = &bid {
                        bid_view_field(v, &extra, name)
                    } else {
                        None
                    };
                    b.push(value);
                }
            }
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for ((plan, row), field) in self.columns.iter().zip(rows).zip(self.schema.fields()) {
            match (plan, row) {
                (ColumnPlan::Row { fields, .. }, Some((_, mut builders, valid))) => {
                    let children: Vec<ArrayRef> =
                        builders.iter_mut().map(FieldBuilder::finish).collect();
                    let s = StructArray::try_new(
                        fields.clone(),
                        children,
                        Some(NullBuffer::from(valid)),
                    )?;
                    arrays.push(Arc::new(s));
                }
                _ => {
                    let a = arrow::array::Int64Array::from(types.clone());
                    arrays.push(arrow::compute::cast(&a, field.data_type())?);
                }
            }
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), arrays)?)
    }
}

fn bid_view_field<'a>(b: &BidView<'a>, extra: &'a str, field: &str) -> Option<Value<'a>> {
    Some(match field {
        "auction" => Value::Int(b.auction),
        "bidder" => Value::Int(b.bidder),
        "price" => Value::Int(b.price),
        "channel" => Value::Str(b.channel),
        "url" => Value::Str(b.url),
        "datetime" => Value::Time(b.date_time),
        "extra" => Value::Str(extra),
        _ => return None,
    })
}

/// Decodes event numbers into rows with a generator.
struct NumberDecoder {
    decoder: NexmarkDecoder,
    generator: Arc<NexmarkEventNumbers>,
}

impl RecordDecoder<u64> for NumberDecoder {
    fn decode(&mut self, records: Vec<u64>) -> RuntimeResult<Option<SqlBatch>> {
        if records.is_empty() {
            return Ok(None);
        }
        self.decoder
            .rows(self.generator.generator(), &records)
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
    let numbers = Arc::new(source.event_numbers());
    let node = graph.source::<u64>(
        &format!("Source: {name} (nexmark)"),
        parallelism,
        Arc::clone(&numbers) as Arc<dyn sluice_runtime::source::Source<u64>>,
    );
    let schema = Arc::clone(&table.physical_schema);
    let decoder =
        graph.typed_operator::<u64, _, _>(&format!("Decode({name})"), parallelism, move |_| {
            let d = NexmarkDecoder::new(Arc::clone(&schema)).map_err(Error::into_runtime)?;
            Ok(DecodeOperator::new(Box::new(NumberDecoder {
                decoder: d,
                generator: Arc::clone(&numbers),
            })))
        });
    graph.typed_forward::<u64>(node, decoder);
    Ok((decoder, parallelism))
}
