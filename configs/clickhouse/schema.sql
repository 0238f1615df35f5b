-- gogooku3 analytics tables (ClickHouse server or chdb). Every load replaces whole trade
-- dates, so re-runs are idempotent; sort keys follow the queries in queries/.

-- Forecasts, long by horizon (one row per date, code, horizon). Sort key (horizon, date,
-- code): "top decile by date" reads one contiguous run per (horizon, date).
CREATE TABLE IF NOT EXISTS predictions
(
    date          Date,
    code          LowCardinality(String),
    horizon       UInt8,
    point         Nullable(Float64),
    q10           Nullable(Float64),
    q25           Nullable(Float64),
    q50           Nullable(Float64),
    q75           Nullable(Float64),
    q90           Nullable(Float64),
    model_name    LowCardinality(String),
    model_version LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYear(date)
ORDER BY (horizon, date, code);

-- Per-date model quality. Sort key (model, horizon, date): "RankIC history of a model"
-- is one contiguous, date-ordered range.
CREATE TABLE IF NOT EXISTS model_metrics_daily
(
    date          Date,
    model         LowCardinality(String),
    horizon       UInt8,
    ic            Nullable(Float64),
    rank_ic       Nullable(Float64),
    hit_rate      Nullable(Float64),
    decile_spread Nullable(Float64),
    n             UInt32
)
ENGINE = MergeTree
ORDER BY (model, horizon, date);

-- Per-date coverage of every gold.features column. Sort key (feature, date): "coverage
-- drops" compares each feature with its own trailing days.
CREATE TABLE IF NOT EXISTS feature_coverage_daily
(
    date           Date,
    feature        LowCardinality(String),
    non_null_share Float64,
    mean           Nullable(Float64),
    std            Nullable(Float64),
    n              UInt32
)
ENGINE = MergeTree
PARTITION BY toYear(date)
ORDER BY (feature, date);
