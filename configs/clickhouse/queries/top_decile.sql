-- Top decile of the point forecast per trade date for one horizon, best first.
-- Parameters: horizon (days), start, end (trade dates, inclusive).
SELECT date, code, point, q10, q90, model_version
FROM
(
    SELECT date, code, point, q10, q90, model_version,
           ntile(10) OVER (PARTITION BY date ORDER BY point DESC, code) AS decile
    FROM predictions
    WHERE horizon = {horizon:UInt8} AND date BETWEEN {start:Date} AND {end:Date}
          AND point IS NOT NULL
)
WHERE decile = 1
ORDER BY date, point DESC, code
