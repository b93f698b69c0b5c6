-- Month-over-month change of each topic's negative share, all categories together, over the latest six
-- months with reviews (counts are summed, so the shares are exact).
WITH monthly AS (
  SELECT month, topic_id, max(topic_label) AS topic_label, sum(reviews) AS reviews, sum(negative) AS negative
  FROM topic_sentiment_monthly
  GROUP BY month, topic_id
),
changes AS (
  SELECT month, topic_id, topic_label, reviews, round(negative / reviews, 3) AS share_negative,
         round(negative / reviews - lag(negative / reviews) OVER (PARTITION BY topic_id ORDER BY month), 3)
           AS change
  FROM monthly
)
SELECT * FROM changes
WHERE month > add_months((SELECT max(month) FROM monthly), -6)
ORDER BY topic_id, month;
