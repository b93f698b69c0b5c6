"""reviewlake: the library the Spark jobs call, installable and shipped to executors."""

from setuptools import find_packages, setup

setup(
    name="reviewlake",
    version="0.1.0",
    description="Product reviews to sentiment, ratings, aspects and topics on Spark and Delta Lake",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    package_data={"reviewlake": ["py.typed"]},
    python_requires=">=3.11",
)
