//! `serve --demo`: when the store has no run, loads a realistic demo run (a generated
//! trades table through five steps: load, deduplicate, fix currencies, enrich, aggregate)
//! through the same ingest path as the API, and seals it.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use pipeproof_core::Format;
use pipeproof_core::api::{CreateRun, RunStatus, StepQuery};
use pipeproof_core::bundle::batch_to_ipc;

use crate::store::ingest::{self, Upload};
use crate::store::{Store, db};

/// One trade.
#[derive(Clone)]
struct Trade {
    id: i64,
    desk: &'static str,
    currency: String,
    amount: f64,
    price: Option<f64>,
    ts: i64,
    booked: bool,
    notional_usd: Option<f64>,
}

const DESKS: [&str; 5] = ["rates", "credit", "fx", "equities", "commodities"];
const CURRENCIES: [&str; 4] = ["USD", "EUR", "GBP", "JPY"];

/// A small deterministic generator (xorshift), so the demo is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn trades(n: i64) -> Vec<Trade> {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut out = Vec::new();
    for id in 1..=n {
        let currency = CURRENCIES[rng.below(4) as usize];
        // Some feeds send lower-case or padded currency codes.
        let currency = match rng.below(25) {
            0 => currency.to_lowercase(),
            1 => format!(" {currency}"),
            _ => currency.to_string(),
        };
        let t = Trade {
            id,
            desk: DESKS[rng.below(5) as usize],
            currency,
            amount: (rng.below(1_000_000) as f64) / 100.0 + 1.0,
            price: (rng.below(20) != 0).then(|| 50.0 + rng.below(10_000) as f64 / 100.0),
            ts: 1_767_225_600_000 + id * 17_000 + rng.below(1000) as i64,
            booked: rng.below(10) != 0,
            notional_usd: None,
        };
        out.push(t.clone());
        // The source system re-sends about 1% of trades under a new id.
        if rng.below(100) == 0 {
            out.push(Trade {
                id: id + 1_000_000,
                ..t
            });
        }
    }
    out
}

fn batch(rows: &[Trade], enriched: bool) -> Result<RecordBatch> {
    let mut fields = vec![
        Field::new("trade_id", DataType::Int64, false),
        Field::new("desk", DataType::Utf8, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("price", DataType::Float64, true),
        Field::new(
            "traded_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("booked", DataType::Boolean, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|t| t.id))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|t| t.desk))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|t| t.currency.as_str()),
        )),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|t| t.amount),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|t| t.price))),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|t| t.ts))
                .with_timezone("UTC"),
        ),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|t| Some(t.booked)))),
    ];
    if enriched {
        fields.push(Field::new("notional_usd", DataType::Float64, true));
        cols.push(Arc::new(Float64Array::from_iter(
            rows.iter().map(|t| t.notional_usd),
        )));
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

fn aggregate(rows: &[Trade]) -> Result<RecordBatch> {
    let mut groups: BTreeMap<(&str, &str), (i64, f64)> = BTreeMap::new();
    for t in rows {
        let g = groups.entry((t.desk, t.currency.as_str())).or_default();
        g.0 += 1;
        g.1 += t.notional_usd.unwrap_or(0.0);
    }
    let schema = Schema::new(vec![
        Field::new("desk", DataType::Utf8, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("trades", DataType::Int64, false),
        Field::new("notional_usd", DataType::Float64, false),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(groups.keys().map(|k| k.0))),
            Arc::new(StringArray::from_iter_values(groups.keys().map(|k| k.1))),
            Arc::new(Int64Array::from_iter_values(groups.values().map(|v| v.0))),
            Arc::new(Float64Array::from_iter_values(
                groups.values().map(|v| (v.1 * 100.0).round() / 100.0),
            )),
        ],
    )?)
}

/// Stores `b` as the next step of an open run.
pub(crate) fn post(
    store: &Store,
    run_id: &str,
    step: &str,
    key: Option<&str>,
    b: &RecordBatch,
) -> Result<()> {
    let path = store.tmp_path("demo");
    std::fs::write(&path, batch_to_ipc(b)?)?;
    let q = StepQuery {
        step: step.into(),
        key: key.map(String::from),
        ..StepQuery::default()
    };
    ingest::ingest_step(
        store,
        run_id,
        &q,
        None,
        Upload::new(path, Format::ArrowFile),
    )
    .map_err(|e| anyhow::anyhow!("demo step {step}: {}", e.detail))?;
    Ok(())
}

/// Loads the demo run when the store has no run; returns its id when it did.
pub fn load_if_empty(store: &Store) -> Result<Option<String>> {
    if store
        .read(db::count_runs)
        .map_err(|e| anyhow::anyhow!("{}", e.detail))?
        > 0
    {
        return Ok(None);
    }
    let run = ingest::create_run(
        store,
        CreateRun {
            pipeline: "trades-daily".into(),
            labels: [("env".to_string(), "demo".to_string())].into(),
            code_version: Some("v1.4.2".into()),
            params: serde_json::json!({"business_date": "2026-01-01"}),
        },
    )
    .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    let id = run.id.clone();
    let loaded = trades(3000);
    post(
        store,
        &id,
        "load",
        Some("trade_id"),
        &batch(&loaded, false)?,
    )?;
    let mut seen = std::collections::HashSet::new();
    let mut dedup: Vec<Trade> = loaded
        .into_iter()
        .filter(|t| seen.insert((t.desk, t.ts, t.amount.to_bits())))
        .collect();
    post(
        store,
        &id,
        "deduplicate",
        Some("trade_id"),
        &batch(&dedup, false)?,
    )?;
    for t in &mut dedup {
        t.currency = t.currency.trim().to_uppercase();
    }
    post(
        store,
        &id,
        "fix_currencies",
        Some("trade_id"),
        &batch(&dedup, false)?,
    )?;
    let rate = |c: &str| match c {
        "EUR" => 1.08,
        "GBP" => 1.27,
        "JPY" => 0.0067,
        _ => 1.0,
    };
    // Unbooked trades leave the book; the rest get a USD notional.
    dedup.retain(|t| t.booked);
    for t in &mut dedup {
        t.notional_usd = t
            .price
            .map(|p| (t.amount * p / 100.0 * rate(&t.currency) * 100.0).round() / 100.0);
    }
    post(
        store,
        &id,
        "enrich",
        Some("trade_id"),
        &batch(&dedup, true)?,
    )?;
    post(store, &id, "aggregate", None, &aggregate(&dedup)?)?;
    ingest::finish_run(store, &id, RunStatus::Sealed, None)
        .map_err(|e| anyhow::anyhow!("{}", e.detail))
        .context("sealing the demo run")?;
    tracing::info!(run = %id, "loaded the demo run");
    Ok(Some(id))
}
