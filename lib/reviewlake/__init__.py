"""reviewlake: product reviews to sentiment, ratings, aspects and topics on Spark and Delta Lake."""

__version__ = "0.1.0"
