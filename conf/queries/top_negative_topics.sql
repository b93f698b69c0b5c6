-- Which topics drive negative reviews in each category this month (each category's latest month with
-- reviews)? Per category the three topics with the most negative reviews: how many, their share of the
-- category's negative reviews that month, and the topic's own negative share. For one category add
-- e.g. `WHERE category = 'Musical Instruments'` to the last SELECT.
WITH latest AS (
  SELECT category, max(month) AS month FROM topic_sentiment_monthly GROUP BY category
),
ranked AS (
  SELECT category, month, topic_id, topic_label, reviews, negative,
         round(try_divide(negative, sum(negative) OVER (PARTITION BY category)), 3) AS share_of_negatives,
         round(share_negative, 3) AS share_negative,
         row_number() OVER (PARTITION BY category ORDER BY negative DESC, topic_id) AS rank
  FROM topic_sentiment_monthly JOIN latest USING (category, month)
)
SELECT category, month, rank, topic_id, topic_label, reviews, negative, share_of_negatives, share_negative
FROM ranked
WHERE rank <= 3 AND negative > 0
ORDER BY category, rank;
