-- Features whose non-null share on a date fell more than `drop` below their mean over
-- the previous (up to) 20 loaded dates. Parameters: start, end (trade dates), drop (0..1).
SELECT date, feature, non_null_share, trailing_share
FROM
(
    SELECT date, feature, non_null_share,
           avg(non_null_share) OVER w AS trailing_share,
           count() OVER w AS history
    FROM feature_coverage_daily
    WHERE date BETWEEN subtractDays({start:Date}, 40) AND {end:Date}
    WINDOW w AS (PARTITION BY feature ORDER BY date ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING)
)
WHERE date BETWEEN {start:Date} AND {end:Date} AND history > 0
      AND trailing_share - non_null_share > {drop:Float64}
ORDER BY date, trailing_share - non_null_share DESC, feature
