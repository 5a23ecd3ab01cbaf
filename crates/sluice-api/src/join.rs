//! Window joins and co-groups of two streams (Flink's `join` and `coGroup`):
//! `a.join(&b).where_key(ka).equal_to(kb).window(assigner).apply(f)`.
//!
//! As in Flink, both streams are tagged, united, keyed and windowed; when a window fires,
//! the co-group function sees the key's records of both sides in that window, and the
//! join emits `f(a, b)` for every pair. Results carry the window's last millisecond.

use std::hash::Hash;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_core::Data;
use sluice_runtime::operators::window::{WindowAssigner, WindowContext};
use sluice_runtime::operators::UserResult;

use crate::datastream::DataStream;

/// A record of either input of a two-input window operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaggedUnion<A, B> {
    /// A record of the first stream.
    One(A),
    /// A record of the second stream.
    Two(B),
}

type KeyFn<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

/// Two streams to co-group by key and window: call [`CoGroupedStreams::where_key`].
pub struct CoGroupedStreams<A, B> {
    first: DataStream<A>,
    second: DataStream<B>,
    join: bool,
}

/// Two streams with the first one's key: call [`CoGroupWhere::equal_to`].
pub struct CoGroupWhere<A, B, K> {
    streams: CoGroupedStreams<A, B>,
    key1: KeyFn<A, K>,
}

/// Two keyed streams: call [`CoGroupKeyed::window`].
pub struct CoGroupKeyed<A, B, K> {
    streams: CoGroupedStreams<A, B>,
    key1: KeyFn<A, K>,
    key2: KeyFn<B, K>,
}

/// Two keyed, windowed streams: call `apply`.
pub struct CoGroupWindowed<A, B, K> {
    keyed: CoGroupKeyed<A, B, K>,
    assigner: WindowAssigner,
}

macro_rules! opaque_debug {
    ($($t:ident < $($p:ident),+ >),+) => {$(
        impl<$($p),+> std::fmt::Debug for $t<$($p),+> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).finish()
            }
        }
    )+};
}

opaque_debug!(
    CoGroupedStreams<A, B>,
    CoGroupWhere<A, B, K>,
    CoGroupKeyed<A, B, K>,
    CoGroupWindowed<A, B, K>
);

impl<A: Data> DataStream<A> {
    /// Joins this stream with `other` per key and window (Flink's `join`): every pair of
    /// records with equal keys in the same window.
    pub fn join<B: Data>(&self, other: &DataStream<B>) -> CoGroupedStreams<A, B> {
        CoGroupedStreams {
            first: self.clone(),
            second: other.clone(),
            join: true,
        }
    }

    /// Co-groups this stream with `other` per key and window (Flink's `coGroup`): one
    /// call with both sides' records of a key and window, even when one side is empty.
    pub fn co_group<B: Data>(&self, other: &DataStream<B>) -> CoGroupedStreams<A, B> {
        CoGroupedStreams {
            first: self.clone(),
            second: other.clone(),
            join: false,
        }
    }
}

impl<A: Data, B: Data> CoGroupedStreams<A, B> {
    /// The key of records of the first stream.
    pub fn where_key<K>(
        self,
        key: impl Fn(&A) -> K + Send + Sync + 'static,
    ) -> CoGroupWhere<A, B, K> {
        CoGroupWhere {
            streams: self,
            key1: Arc::new(key),
        }
    }
}

impl<A: Data, B: Data, K> CoGroupWhere<A, B, K> {
    /// The key of records of the second stream.
    pub fn equal_to(self, key: impl Fn(&B) -> K + Send + Sync + 'static) -> CoGroupKeyed<A, B, K> {
        CoGroupKeyed {
            streams: self.streams,
            key1: self.key1,
            key2: Arc::new(key),
        }
    }
}

impl<A: Data, B: Data, K> CoGroupKeyed<A, B, K> {
    /// The windows both streams are cut into.
    pub fn window(self, windows: impl Into<WindowAssigner>) -> CoGroupWindowed<A, B, K> {
        CoGroupWindowed {
            keyed: self,
            assigner: windows.into(),
        }
    }
}

impl<A: Data, B: Data, K: Data + Hash + Eq> CoGroupWindowed<A, B, K> {
    /// The co-grouped (or joined) stream: `f(key, window, first records, second records,
    /// out)` per key and window.
    fn co_group_with<O: Data>(
        &self,
        f: impl Fn(&K, &WindowContext, &[A], &[B], &mut Vec<O>) -> UserResult + Send + Sync + 'static,
    ) -> DataStream<O> {
        let s = &self.keyed.streams;
        let tagged = s
            .first
            .map(TaggedUnion::<A, B>::One)
            .union(&[s.second.map(TaggedUnion::<A, B>::Two)]);
        let (k1, k2) = (Arc::clone(&self.keyed.key1), Arc::clone(&self.keyed.key2));
        let stream = tagged
            .key_by(move |r: &TaggedUnion<A, B>| match r {
                TaggedUnion::One(a) => k1(a),
                TaggedUnion::Two(b) => k2(b),
            })
            .window(self.assigner)
            .process(
                move |key: &K,
                      ctx: &WindowContext,
                      records: &[TaggedUnion<A, B>],
                      out: &mut Vec<O>| {
                    let mut first = Vec::new();
                    let mut second = Vec::new();
                    for r in records {
                        match r {
                            TaggedUnion::One(a) => first.push(a.clone()),
                            TaggedUnion::Two(b) => second.push(b.clone()),
                        }
                    }
                    f(key, ctx, &first, &second, out)
                },
            );
        stream.name(if s.join {
            "Window Join"
        } else {
            "Window CoGroup"
        })
    }

    /// Emits `f(a, b)` for every pair of records of the first and second stream with the
    /// same key in the same window (an inner join).
    pub fn apply<O: Data>(&self, f: impl Fn(&A, &B) -> O + Send + Sync + 'static) -> DataStream<O> {
        self.co_group_with(move |_, _, first, second, out| {
            for a in first {
                for b in second {
                    out.push(f(a, b));
                }
            }
            Ok(())
        })
    }

    /// Calls `f(key, window, first records, second records, out)` once per key and
    /// window that holds records of either stream.
    pub fn apply_co_group<O: Data>(
        &self,
        f: impl Fn(&K, &WindowContext, &[A], &[B], &mut Vec<O>) -> UserResult + Send + Sync + 'static,
    ) -> DataStream<O> {
        self.co_group_with(f)
    }
}
