//! End-to-end: every kind of keyed state in a process function, at parallelism 3, against
//! a sequential computation per key.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};

use sluice_api::prelude::*;

struct Mean;

impl AggregateFunction<i64, (i64, i64), i64> for Mean {
    fn create_accumulator(&self) -> (i64, i64) {
        (0, 0)
    }
    fn add(&self, v: i64, acc: &mut (i64, i64)) {
        acc.0 += v;
        acc.1 += 1;
    }
    fn get_result(&self, acc: &(i64, i64)) -> i64 {
        acc.0 / acc.1
    }
    fn merge(&self, a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

/// Per user: the last three amounts (list), spend per shop (map), the largest amount
/// (reducing) and the mean amount (aggregating); emits a summary on every purchase.
#[derive(Clone, Default)]
struct Profile {
    recent: Option<ListStateHandle<i64>>,
    per_shop: Option<MapStateHandle<String, i64>>,
    largest: Option<ReducingStateHandle<i64>>,
    mean: Option<AggregatingStateHandle<i64, (i64, i64), i64>>,
}

type Purchase = (String, String, i64);

/// The sequential model of one user: recent amounts, spend per shop, max, sum, count.
type UserModel = (Vec<i64>, HashMap<String, i64>, i64, i64, i64);

impl KeyedProcessFunction<String, Purchase, String> for Profile {
    fn open(&mut self, ctx: &mut OpenContext<'_, String>) -> UserResult {
        self.recent = Some(ctx.list_state("recent")?);
        self.per_shop = Some(ctx.map_state("per-shop")?);
        self.largest = Some(ctx.reducing_state("largest", |a: i64, b: i64| a.max(b))?);
        self.mean = Some(ctx.aggregating_state("mean", Mean)?);
        Ok(())
    }

    fn process_element(
        &mut self,
        (user, shop, amount): Purchase,
        ctx: &mut KeyedContext<'_, String>,
        out: &mut ProcessOutput<'_, String>,
    ) -> UserResult {
        let recent = self.recent.ok_or("not opened")?;
        let mut list = ctx.list_state(&recent);
        let mut kept: Vec<i64> = list.get().to_vec();
        kept.push(amount);
        if kept.len() > 3 {
            kept.remove(0);
        }
        list.update(kept.clone());
        let per_shop = self.per_shop.ok_or("not opened")?;
        let mut shops = ctx.map_state(&per_shop);
        let spent = shops.get(&shop).copied().unwrap_or(0) + amount;
        shops.put(shop.clone(), spent);
        let shop_count = shops.iter().count();
        let largest = self.largest.clone().ok_or("not opened")?;
        ctx.reducing_state(&largest).add(amount);
        let max = ctx.reducing_state(&largest).get().copied().unwrap_or(0);
        let mean = self.mean.clone().ok_or("not opened")?;
        ctx.aggregating_state(&mean).add(amount);
        let avg = ctx.aggregating_state(&mean).get().unwrap_or(0);
        out.collect(format!(
            "{user} recent={kept:?} {shop}={spent} shops={shop_count} max={max} mean={avg}"
        ));
        Ok(())
    }
}

#[test]
fn all_state_kinds_keep_per_key_values_across_subtasks() {
    let mut purchases: Vec<Purchase> = Vec::new();
    for i in 0..300i64 {
        purchases.push((
            format!("user{}", i % 7),
            format!("shop{}", i % 4),
            (i * 37) % 101,
        ));
    }
    // Sequential model, per user in input order.
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut model: HashMap<String, UserModel> = HashMap::new();
    for (user, shop, amount) in &purchases {
        let m = model
            .entry(user.clone())
            .or_insert((vec![], HashMap::new(), i64::MIN, 0, 0));
        m.0.push(*amount);
        if m.0.len() > 3 {
            m.0.remove(0);
        }
        let spent = {
            let s = m.1.entry(shop.clone()).or_insert(0);
            *s += amount;
            *s
        };
        m.2 = m.2.max(*amount);
        m.3 += amount;
        m.4 += 1;
        expected.entry(user.clone()).or_default().push(format!(
            "{user} recent={:?} {shop}={} shops={} max={} mean={}",
            m.0,
            spent,
            m.1.len(),
            m.2,
            m.3 / m.4
        ));
    }
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(3).set_handle_ctrl_c(false);
    let out = env
        .from_collection(purchases)
        .set_parallelism(1)
        .key_by_ref(|(user, _, _): &Purchase| user)
        .process(Profile::default())
        .collect();
    env.execute("profiles").unwrap();
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in out.take() {
        let user = line.split(' ').next().unwrap().to_string();
        got.entry(user).or_default().push(line);
    }
    assert_eq!(got, expected);
}
