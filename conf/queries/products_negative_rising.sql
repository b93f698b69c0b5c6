-- Products whose share of negative reviews rose most: their reviews of the latest three months with
-- reviews against the three months before, for products with at least three reviews in each. Sentiment
-- of the model version the gold tables were built from (their sentiment_model column).
WITH model AS (
  SELECT DISTINCT split(sentiment_model, '/')[0] AS model_name, split(sentiment_model, '/')[1] AS model_version
  FROM topic_sentiment
),
scored AS (
  SELECT v.product_id, to_date(date_trunc('MONTH', v.review_time)) AS month, c.sentiment
  FROM review_scores c
  JOIN model USING (model_name, model_version)
  JOIN reviews_silver v USING (review_id)
  WHERE c.status IN ('ok', 'truncated') AND v.review_time IS NOT NULL AND v.product_id IS NOT NULL
),
windows AS (
  SELECT product_id,
         count_if(month <= add_months(last, -3) AND month > add_months(last, -6)) AS earlier,
         count_if(month <= add_months(last, -3) AND month > add_months(last, -6) AND sentiment = 'negative')
           AS earlier_negative,
         count_if(month > add_months(last, -3)) AS recent,
         count_if(month > add_months(last, -3) AND sentiment = 'negative') AS recent_negative
  FROM scored CROSS JOIN (SELECT max(month) AS last FROM scored)
  GROUP BY product_id
)
SELECT product_id, product_title, earlier, round(earlier_negative / earlier, 3) AS share_earlier,
       recent, round(recent_negative / recent, 3) AS share_recent,
       round(recent_negative / recent - earlier_negative / earlier, 3) AS rise
FROM windows
LEFT JOIN (SELECT product_id, max(product_title) AS product_title FROM topic_sentiment_by_product GROUP BY product_id)
  USING (product_id)
WHERE earlier >= 3 AND recent >= 3
ORDER BY rise DESC, product_id
LIMIT 10;
