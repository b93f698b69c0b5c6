"""A seeded generator of realistic review corpora in each real file format, at any size.

Reviews have products with skewed (Zipf) popularity across categories, ratings skewed the way Amazon's
are, titles and bodies whose phrases carry the sentiment of the rating, one to three aspects out of
the ten the project labels, category topics, fastText label noise, and a configurable share of
malformed records of the kinds real dumps contain. The same seed gives the same bytes, whatever the
number of worker processes. It feeds tests and benchmarks; it is no substitute for real data when
reporting accuracy.
"""

from __future__ import annotations

import bisect
import bz2
import gzip
import json
import logging
import random
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger(__name__)

CATEGORIES: dict[str, tuple[list[str], list[str]]] = {
    # category: (products, topic words)
    "Electronics": (["wireless headphones", "USB-C charger", "bluetooth speaker", "power bank",
                     "HDMI cable", "smart watch", "webcam"],
                    ["battery life", "sound", "bluetooth connection", "screen", "charging speed"]),
    "Books": (["novel", "cookbook", "history book", "children's book", "travel guide"],
              ["story", "characters", "writing", "recipes", "ending"]),
    "Musical Instruments": (["guitar strings", "capo", "clip-on tuner", "microphone stand",
                             "drum sticks", "guitar pedal"],
                            ["tone", "tuning", "sound", "strings", "feedback"]),
    "Home and Kitchen": (["coffee maker", "blender", "knife set", "frying pan", "vacuum cleaner"],
                         ["coffee", "blade", "nonstick coating", "suction", "noise level"]),
    "Clothing Shoes and Jewelry": (["running shoes", "winter jacket", "t-shirt", "necklace", "jeans"],
                                   ["fabric", "color", "stitching", "comfort", "style"]),
    "Beauty": (["face cream", "shampoo", "lipstick", "sunscreen", "hair dryer"],
               ["scent", "skin", "hair", "texture", "smell"]),
    "Toys and Games": (["jigsaw puzzle", "board game", "action figure", "building blocks", "kite"],
                       ["kids", "pieces", "rules", "fun", "colors"]),
    "Sports and Outdoors": (["yoga mat", "camping tent", "water bottle", "bike light", "dumbbells"],
                            ["grip", "weight", "camping trip", "workout", "brightness"]),
}
CATEGORY_WEIGHTS = [0.22, 0.2, 0.08, 0.16, 0.12, 0.08, 0.07, 0.07]

ASPECTS: dict[str, tuple[list[str], list[str]]] = {
    # aspect: (positive phrases, negative phrases)
    "quality": (["the build quality is excellent", "it feels really well made", "top quality materials"],
                ["the quality is terrible", "it feels cheap and flimsy", "poor quality overall"]),
    "price": (["the price is great", "very affordable", "cheaper than in the store"],
              ["way too expensive", "overpriced for what you get", "the price went up right after I bought it"]),
    "shipping": (["shipping was fast", "it arrived two days early", "delivery was quick"],
                 ["shipping took forever", "it arrived three weeks late", "the delivery was lost twice"]),
    "packaging": (["nicely packaged", "the packaging was secure", "came in a sturdy box"],
                  ["the box was crushed", "the packaging was torn open", "it came with no packaging at all"]),
    "value for money": (["great value for money", "worth every penny", "you get a lot for the money"],
                        ["not worth the money", "a waste of money", "poor value for the money"]),
    "customer service": (["customer service was very helpful", "the seller replied quickly and sorted it out",
                          "support replaced it without questions"],
                         ["customer service never answered", "the support team was rude",
                          "the seller refused a refund"]),
    "ease of use": (["very easy to use", "setup was simple", "the instructions are clear"],
                    ["hard to use", "the instructions are confusing", "setup was a nightmare"]),
    "functionality": (["works exactly as described", "does everything I need", "works perfectly"],
                      ["stopped working after a day", "it does not work as advertised", "half the features do not work"]),
    "durability": (["still going strong after a year", "very durable", "it has survived daily use"],
                   ["broke after two weeks", "fell apart quickly", "it cracked the first time I dropped it"]),
    "size/fit": (["fits perfectly", "the size is just right", "true to size"],
                 ["runs small", "way too big, the size chart is wrong", "does not fit at all"]),
}
ASPECT_NAMES = list(ASPECTS)

OPENERS = ["I bought this {product} for my {who}.", "I have been using this {product} for {n} months.",
           "Ordered the {product} last {when}.", "This is my second {product} from this brand.",
           "Needed a new {product} and picked this one."]
WHO = ["son", "daughter", "wife", "husband", "office", "kitchen", "dad", "friend", "car", "studio"]
WHEN = ["week", "month", "spring", "summer", "winter", "year"]
TOPIC = {1: ["The {topic} is awful.", "I hate the {topic}.", "The {topic} is a big disappointment."],
         2: ["The {topic} is not good.", "The {topic} could be much better.", "I did not like the {topic}."],
         3: ["The {topic} is okay.", "The {topic} is average.", "The {topic} is fine, nothing special."],
         4: ["The {topic} is good.", "I like the {topic}.", "The {topic} is nice."],
         5: ["The {topic} is amazing.", "I love the {topic}.", "The {topic} is fantastic."]}
CLOSERS = {1: ["Do not buy this.", "Returning it.", "Total waste.", "Avoid."],
           2: ["Would not buy again.", "Disappointed.", "Expected more."],
           3: ["It's okay, nothing special.", "Mixed feelings.", "Average at best."],
           4: ["Pretty happy with it.", "Would recommend.", "Good purchase."],
           5: ["Highly recommend!", "Love it!", "Best purchase this year.", "Five stars, would buy again."]}
TITLES = {1: ["Terrible", "Do not buy", "Waste of money", "Broke quickly", "Awful {product}"],
          2: ["Disappointed", "Not great", "Meh", "Poor {product}"],
          3: ["It's okay", "Average", "Decent but not great", "OK {product}"],
          4: ["Good {product}", "Works well", "Nice", "Solid"],
          5: ["Great {product}", "Love it", "Excellent", "Five stars", "Perfect {product}"]}
FILLER = ["It came with a manual.", "The color matches the photos.", "I use it almost every day.",
          "My family uses it too.", "I compared a few brands before buying.", "It replaced an older one."]
# Personal details: broad vocabulary, no aspect or sentiment words, so they vary texts
# the way real reviews do without changing their labels.
DETAIL_WHEN = ["Last Tuesday", "Over the holidays", "The day it came", "During our move", "On a rainy weekend",
               "Before a long trip", "After my old one died", "Since January", "Around midnight", "Early one morning",
               "While camping in Oregon", "At my cousin's wedding", "During a heatwave", "On my lunch break",
               "Before the school year", "After the renovation", "Over spring break", "On Thanksgiving",
               "Right before exams", "During a power outage"]
DETAIL_WHO = ["I", "my roommate", "my grandmother", "my teenage son", "our nanny", "my coworker Dave", "my sister",
              "my neighbor", "our whole team", "my husband and I", "the kids", "my brother-in-law", "my partner",
              "a friend from church", "my mother", "my college roommate", "our babysitter", "my boss"]
DETAIL_DID = ["tried it", "hooked it up", "tested it", "took it along", "used it twice", "showed it off", "unpacked it",
              "gave it a go", "put it through its paces", "borrowed it", "compared it side by side",
              "read the manual", "charged it overnight", "cleaned it", "moved it around", "left it running"]
DETAIL_WHERE = ["in the garage", "at the lake house", "in a tiny apartment", "on the back porch", "in the RV",
                "at the office", "in the basement", "at grandma's place", "in the dorm", "on the boat",
                "in the guest room", "at the cabin", "on the balcony", "in the workshop", "at the beach house"]
DETAIL_WHY = ["for a birthday party", "for a science project", "while the contractors were here",
              "for our anniversary", "to replace a hand-me-down", "for the new baby", "for my morning routine",
              "before guests arrived", "for a road trip to Denver", "for the holidays", "for a camping weekend",
              "for my home office", "after a friend suggested it", "for a school fundraiser"]
BRANDS = ["Acme", "Zentro", "Norvik", "Pellham", "Quillo", "Brightline", "Kessel", "Voltra", "Maple & Co",
          "Orbit", "Tundra", "Lumen"]
RATING_WEIGHTS = [0.08, 0.05, 0.08, 0.19, 0.60]
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class Product:
    product_id: str
    title: str
    category: str
    noun: str
    topics: list[str]


@dataclass(frozen=True)
class Review:
    """One generated review; ``malformed`` names the defect planted in its record, if any."""

    index: int
    product: Product
    user_id: str
    rating: int
    title: str
    text: str
    aspects: tuple[str, ...]
    label_flipped: bool
    unix_time: int
    helpful_votes: int
    total_votes: int
    verified: bool
    malformed: str | None = None
    repost: str | None = None  # "exact" or "near": a planted duplicate of a well-formed earlier review


@dataclass
class Manifest:
    """What a generator run wrote: rows in all, the planted malformed records by kind, and the
    planted well-formed re-posts of well-formed reviews (``exact`` and ``near`` duplicates)."""

    format: str
    rows: int
    seed: int
    files: list[str] = field(default_factory=list)
    malformed: dict[str, int] = field(default_factory=dict)
    reposts: dict[str, int] = field(default_factory=dict)

    @property
    def malformed_rows(self) -> int:
        return sum(self.malformed.values())


def _products(seed: int, n: int) -> tuple[list[Product], list[float]]:
    rng = random.Random(f"{seed}-products")
    products = []
    for _ in range(n):
        category = rng.choices(list(CATEGORIES), CATEGORY_WEIGHTS)[0]
        nouns, topics = CATEGORIES[category]
        noun = rng.choice(nouns)
        pid = "B0" + "".join(rng.choice(_ALNUM) for _ in range(8))
        title = f"{rng.choice(BRANDS)} {noun.title()} {rng.choice(['Pro', 'Lite', 'Max', 'Classic', 'Plus', '2'])}"
        products.append(Product(pid, title, category, noun, topics))
    weights = [1.0 / (rank + 1) ** 1.07 for rank in range(n)]
    cumulative, total = [], 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    return products, cumulative


def _sentiment_sentence(rng: random.Random, aspect: str, rating: int) -> str:
    positive, negative = ASPECTS[aspect]
    if rating == 3:
        pool = positive if rng.random() < 0.5 else negative
    else:
        pool = positive if rating >= 4 else negative
    sentence = rng.choice(pool)
    return sentence[0].upper() + sentence[1:] + "."


def _detail(rng: random.Random) -> str:
    """A sentence about the reviewer's circumstances (over 10^6 combinations, some with a typo)."""
    words = f"{rng.choice(DETAIL_WHEN)} {rng.choice(DETAIL_WHO)} {rng.choice(DETAIL_DID)} " \
            f"{rng.choice(DETAIL_WHERE)} {rng.choice(DETAIL_WHY)}".split(" ")
    if rng.random() < 0.15:  # swap two letters of one word, as people type
        i = rng.randrange(len(words))
        w = words[i]
        if len(w) > 3:
            j = rng.randrange(1, len(w) - 2)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words) + rng.choice((".", ".", ".", "!", "..."))


def _review(rng: random.Random, index: int, products: list[Product], cumulative: list[float],
            label_noise: float) -> Review:
    product = products[bisect.bisect_left(cumulative, rng.random() * cumulative[-1])]
    rating = rng.choices((1, 2, 3, 4, 5), RATING_WEIGHTS)[0]
    aspects = tuple(rng.sample(ASPECT_NAMES, rng.choice((1, 1, 2, 2, 3))))
    sentences = [rng.choice(OPENERS).format(product=product.noun, who=rng.choice(WHO),
                                            n=rng.randint(2, 18), when=rng.choice(WHEN))]
    sentences += [_detail(rng) for _ in range(rng.choice((0, 1, 1, 2)))]
    sentences += [_sentiment_sentence(rng, a, rating) for a in aspects]
    for topic in rng.sample(product.topics, 2):
        sentences.append(rng.choice(TOPIC[rating]).format(topic=topic))
    sentences += rng.sample(FILLER, rng.randint(0, 3))
    sentences.append(rng.choice(CLOSERS[rating]))
    total_votes = int(rng.paretovariate(1.5)) - 1
    return Review(
        index=index,
        product=product,
        user_id="A" + "".join(rng.choice(_ALNUM) for _ in range(13)),
        rating=rating,
        title=rng.choice(TITLES[rating]).format(product=product.noun),
        text=" ".join(sentences),
        aspects=aspects,
        label_flipped=rng.random() < label_noise,
        unix_time=rng.randint(1_104_537_600, 1_672_531_199),  # 2005 .. 2022
        helpful_votes=rng.randint(0, total_votes) if total_votes > 0 else 0,
        total_votes=max(total_votes, 0),
        verified=rng.random() < 0.85,
    )


# Per format: a function writing one review as one record (bytes), and the malformed kinds it plants.
Writer = Callable[[Review], bytes]
BAD_UTF8 = b"\xff\xfe"


def _fasttext(r: Review) -> bytes:
    polarity = 1 if r.rating <= 2 else 2
    if r.label_flipped:
        polarity = 3 - polarity
    title, text = r.title, r.text
    if r.malformed == "no_label":
        return f"{title}: {text}\n".encode()
    if r.malformed == "unknown_label":
        return f"__label__3 {title}: {text}\n".encode()
    if r.malformed == "empty_text":
        return f"__label__{polarity} \n".encode()
    if r.malformed == "invalid_utf8":
        return f"__label__{polarity} {title}: ".encode() + BAD_UTF8 + text.encode() + b"\n"
    return f"__label__{polarity} {title}: {text}\n".encode()


def _amazon_json(r: Review) -> bytes:
    record: dict[str, object] = {
        "reviewerID": r.user_id, "asin": r.product.product_id, "reviewerName": f"Customer {r.user_id[-4:]}",
        "helpful": [r.helpful_votes, r.total_votes], "reviewText": r.text, "overall": float(r.rating),
        "summary": r.title, "unixReviewTime": r.unix_time,
        "reviewTime": _date(r.unix_time, "%m %d, %Y"),
    }
    if r.malformed == "truncated":
        return json.dumps(record).encode()[:40] + b"\n"
    if r.malformed == "rating_out_of_range":
        record["overall"] = 7.0
    if r.malformed == "missing_text":
        del record["reviewText"]
    if r.malformed == "wrong_type":
        record["overall"] = "five stars"
    return json.dumps(record).encode() + b"\n"


def _amazon_2023(r: Review) -> bytes:
    record: dict[str, object] = {
        "rating": float(r.rating), "title": r.title, "text": r.text, "images": [],
        "asin": r.product.product_id, "parent_asin": r.product.product_id, "user_id": r.user_id,
        "timestamp": r.unix_time * 1000, "helpful_vote": r.helpful_votes, "verified_purchase": r.verified,
    }
    if r.malformed == "truncated":
        return json.dumps(record).encode()[:40] + b"\n"
    if r.malformed == "rating_out_of_range":
        record["rating"] = 0.0
    if r.malformed == "missing_text":
        record["text"] = ""
    if r.malformed == "wrong_type":
        record["timestamp"] = "yesterday"
    return json.dumps(record).encode() + b"\n"


def _amazon_tsv(r: Review) -> bytes:
    fields = ["US", r.user_id[1:9], "R" + r.user_id[1:], r.product.product_id, str(zlib.crc32(r.product.product_id.encode())),
              r.product.title, r.product.category.replace(" ", "_"), str(r.rating), str(r.helpful_votes),
              str(r.total_votes), "N", "Y" if r.verified else "N", r.title, r.text,
              _date(r.unix_time, "%Y-%m-%d")]
    if r.malformed == "missing_field":
        fields = fields[:-2]
    if r.malformed == "wrong_type":
        fields[7] = "five"
    if r.malformed == "missing_text":
        fields[13] = ""
    if r.malformed == "invalid_utf8":
        return "\t".join(fields[:13]).encode() + b"\t" + BAD_UTF8 + fields[13].encode() + b"\t" + fields[14].encode() + b"\n"
    return "\t".join(fields).encode() + b"\n"


def _csv_row(r: Review) -> bytes:
    def q(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'

    fields = [r.user_id, r.product.product_id, str(float(r.rating)), q(r.title), q(r.text), str(r.unix_time),
              str(r.helpful_votes), q(r.product.category)]
    if r.malformed == "extra_field":
        fields.append("oops")
    if r.malformed == "rating_out_of_range":
        fields[2] = "9.0"
    if r.malformed == "missing_text":
        fields[4] = '""'
    return ",".join(fields).encode() + b"\n"


CSV_HEADER = b"reviewerID,asin,overall,summary,reviewText,unixReviewTime,helpful_votes,category\n"
TSV_HEADER = ("marketplace\tcustomer_id\treview_id\tproduct_id\tproduct_parent\tproduct_title\tproduct_category\t"
              "star_rating\thelpful_votes\ttotal_votes\tvine\tverified_purchase\treview_headline\treview_body\t"
              "review_date\n").encode()


def _imdb_file(r: Review) -> bytes:
    if r.malformed == "invalid_utf8":
        return BAD_UTF8 + r.text.encode()
    if r.malformed == "missing_text":
        return b"   "
    return r.text.replace(". ", ". <br /><br />", 1).encode()


@dataclass(frozen=True)
class Format:
    writer: Writer
    malformed_kinds: tuple[str, ...]
    file_name: str
    compression: str | None
    header: bytes = b""


FORMATS: dict[str, Format] = {
    "fasttext": Format(_fasttext, ("no_label", "unknown_label", "empty_text", "invalid_utf8"),
                       "train.ft.txt.bz2", "bz2"),
    "amazon-json": Format(_amazon_json, ("truncated", "rating_out_of_range", "missing_text", "wrong_type"),
                          "reviews_Musical_Instruments_5.json.gz", "gz"),
    "amazon-2023": Format(_amazon_2023, ("truncated", "rating_out_of_range", "missing_text", "wrong_type"),
                          "All_Beauty.jsonl", None),
    "amazon-tsv": Format(_amazon_tsv, ("missing_field", "wrong_type", "missing_text", "invalid_utf8"),
                         "amazon_reviews_us_Electronics_v1_00.tsv.gz", "gz", TSV_HEADER),
    "csv": Format(_csv_row, ("extra_field", "rating_out_of_range", "missing_text"),
                  "amazon_reviews_14m.csv", None, CSV_HEADER),
    "imdb": Format(_imdb_file, ("invalid_utf8", "missing_text"), "aclImdb", None),
}


def _date(unix_time: int, fmt: str) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(unix_time, timezone.utc).strftime(fmt)


@dataclass(frozen=True)
class CorpusSpec:
    """Everything that defines a generated corpus besides its format and size."""

    seed: int
    n_products: int
    malformed_share: float
    label_noise: float
    duplicate_share: float


NEAR_EDITS = [" Thanks!", " Update: still happy with it.", " Edit: fixed a typo.", " Would buy again."]


def reviews(spec: CorpusSpec, start: int, stop: int, malformed_kinds: tuple[str, ...]) -> Iterator[Review]:
    """Reviews ``start`` .. ``stop - 1`` of the corpus ``spec``; chunks are independent.

    A ``duplicate_share`` of reviews re-posts a recent review of the same product by another user:
    half word for word (an exact duplicate), half with a short sentence added (a near-duplicate).
    """
    products, cumulative = _products(spec.seed, spec.n_products)
    rng = random.Random(f"{spec.seed}-{start}")
    recent: list[Review] = []
    for i in range(start, stop):
        review = _review(rng, i, products, cumulative, spec.label_noise)
        if recent and rng.random() < spec.duplicate_share:
            original = rng.choice(recent)
            exact = rng.random() < 0.5
            text = original.text if exact else original.text + rng.choice(NEAR_EDITS)
            review = replace(original, index=i, user_id=review.user_id, text=text,
                             unix_time=original.unix_time + rng.randint(60, 86_400 * 30), malformed=None,
                             repost=None if original.malformed else "exact" if exact else "near")
        if malformed_kinds and rng.random() < spec.malformed_share:
            review = replace(review, malformed=rng.choice(malformed_kinds), repost=None)
        recent = (recent + [review])[-64:]
        yield review


def _count(manifest: Manifest, r: Review) -> None:
    if r.malformed:
        manifest.malformed[r.malformed] = manifest.malformed.get(r.malformed, 0) + 1
    if r.repost:
        manifest.reposts[r.repost] = manifest.reposts.get(r.repost, 0) + 1


def _chunk(args: tuple[str, CorpusSpec, int, int]) -> tuple[bytes, Manifest]:
    fmt, corpus, start, stop = args
    spec = FORMATS[fmt]
    counts = Manifest(fmt, stop - start, corpus.seed)
    parts = []
    for r in reviews(corpus, start, stop, spec.malformed_kinds):
        parts.append(spec.writer(r))
        _count(counts, r)
    data = b"".join(parts)
    # Each chunk is a complete compressed stream; the file is their concatenation (multi-stream
    # bzip2 and multi-member gzip), which bzip2, gzip and Hadoop's codecs all read as one.
    if spec.compression == "bz2":
        data = bz2.compress(data, 9)
    elif spec.compression == "gz":
        data = gzip.compress(data, 6, mtime=0)
    return data, counts


def _header(spec: Format) -> bytes:
    if not spec.header:
        return b""
    if spec.compression == "bz2":
        return bz2.compress(spec.header, 9)
    if spec.compression == "gz":
        return gzip.compress(spec.header, 6, mtime=0)
    return spec.header


def generate(fmt: str, out_dir: Path, rows: int, seed: int = 42, malformed_share: float = 0.002,
             label_noise: float = 0.03, workers: int = 1, duplicate_share: float = 0.01) -> Manifest:
    """Write ``rows`` generated reviews in format ``fmt`` under ``out_dir``; return what was written.

    The output mimics the original file's name and layout (one ``.bz2`` file for fastText, the aclImdb
    folder tree for IMDb, ...). A ``manifest.json`` beside it records rows and planted defects.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; one of: {', '.join(FORMATS)}")
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    spec = FORMATS[fmt]
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = CorpusSpec(seed, max(20, rows // 25), malformed_share, label_noise, duplicate_share)
    manifest = Manifest(format=fmt, rows=rows, seed=seed)
    if fmt == "imdb":
        _write_imdb(out_dir / spec.file_name, rows, corpus, manifest)
    else:
        target = out_dir / spec.file_name
        jobs = [(fmt, corpus, s, min(s + CHUNK_ROWS, rows)) for s in range(0, rows, CHUNK_ROWS)]
        with target.open("wb") as f:
            f.write(_header(spec))
            results = (ProcessPoolExecutor(workers).map(_chunk, jobs) if workers > 1 and len(jobs) > 1
                       else map(_chunk, jobs))
            for done, (data, counts) in enumerate(results, 1):
                f.write(data)
                for kind, n in counts.malformed.items():
                    manifest.malformed[kind] = manifest.malformed.get(kind, 0) + n
                for kind, n in counts.reposts.items():
                    manifest.reposts[kind] = manifest.reposts.get(kind, 0) + n
                log.info("generated %s: %d / %d rows", fmt, min(done * CHUNK_ROWS, rows), rows)
        manifest.files.append(str(target))
    (out_dir / "manifest.json").write_text(json.dumps(manifest.__dict__, indent=2))
    return manifest


def _write_imdb(root: Path, rows: int, corpus: CorpusSpec, manifest: Manifest) -> None:
    spec = FORMATS["imdb"]
    if root.exists():
        shutil.rmtree(root)
    for i, r in enumerate(reviews(replace(corpus, label_noise=0.0), 0, rows, spec.malformed_kinds)):
        split = "train" if i % 2 == 0 else "test"
        if r.rating == 3:
            polarity, stars = "unsup", 0
        else:
            polarity = "pos" if r.rating >= 4 else "neg"
            stars = {1: 1, 2: 3, 4: 7, 5: 9 + i % 2}[r.rating]
        folder = root / split / polarity
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}_{stars}.txt").write_bytes(spec.writer(r))
        _count(manifest, r)
    manifest.files.append(str(root))
