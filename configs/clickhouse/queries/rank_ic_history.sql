-- RankIC of one model and horizon by date, with its trailing 20-day mean.
-- Parameters: model, horizon (days), start, end (trade dates, inclusive).
SELECT date, rank_ic,
       avg(rank_ic) OVER (ORDER BY date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW) AS rank_ic_20d,
       ic, decile_spread, n
FROM model_metrics_daily
WHERE model = {model:String} AND horizon = {horizon:UInt8}
      AND date BETWEEN {start:Date} AND {end:Date}
ORDER BY date
