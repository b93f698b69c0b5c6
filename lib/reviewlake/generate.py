"""A seeded generator of realistic review corpora in each real file format, at any size.

Reviews have products with skewed (Zipf) popularity across categories, titles and bodies whose phrases
carry the sentiment of the rating, aspects out of the ten the project labels, category topics, and a
configurable share of malformed records of the kinds real dumps contain. Each format follows the
class balance and text lengths of the real files it imitates (see ``FORMATS``):

- per-category Amazon dumps (``amazon-json``, ``amazon-2023``, ``amazon-tsv``, ``csv``): star ratings
  skewed as in those dumps (``RATING_WEIGHTS``); bodies from a few characters ("Great!") to
  thousands, log-normal with a median near 270 characters;
- Amazon polarity (``fasttext``): as that set was built, only 1-2 star (label 1) and 4-5 star
  (label 2) reviews, half each to within one row, no 3-star review; bodies up to 1,000 characters,
  log-normal with a median near 340. ``label_noise`` (3 % by default) then flips that share of
  labels, as in weakly labelled data: the labels stay half each within sampling noise, and 3 %
  disagree with their text;
- IMDb (``imdb``): the aclImdb layout, a quarter of the files labelled in train, a quarter in test,
  half unlabelled in ``train/unsup``; pos = 7-10 stars, neg = 1-4, none of 5-6, half each overall;
  reviews log-normal with a median near 1,000 characters, up to 13,000.

The same seed gives the same bytes, whatever the number of worker processes. It feeds tests and
benchmarks; it is no substitute for real data when reporting accuracy.
"""

from __future__ import annotations

import bisect
import bz2
import gzip
import json
import logging
import math
import random
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import chain
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
# Whole short reviews, the way people write them when they write little.
SHORT = {1: ["Junk.", "Awful.", "Total junk!", "Useless.", "Don't waste your money.", "Broke right away.",
             "Returned it.", "Worst {product} ever.", "Do not buy this {product}."],
         2: ["Meh.", "Not great.", "Could be better.", "Not what I expected.", "Disappointing.", "Not impressed.",
             "Not a great {product}."],
         3: ["It's ok.", "So-so.", "Fine, nothing special.", "Does the job, barely.", "Neither good nor bad.",
             "An okay {product}."],
         4: ["Good.", "Pretty good.", "Works well.", "Nice.", "Happy with it.", "Solid buy.", "Good {product}."],
         5: ["Great!", "Love it!", "Perfect.", "Excellent!", "Works great!", "Exactly what I wanted.", "Awesome!",
             "Great {product}!", "Love this {product}!"]}
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
# Shares of 1..5 stars in the per-category Amazon dumps.
RATING_WEIGHTS = (0.07, 0.05, 0.08, 0.20, 0.60)
# aclImdb's labelled reviews by stars (train split counts; test is alike): 1-4 negative, 7-10 positive.
IMDB_STARS = {1: 5100, 2: 2284, 3: 2420, 4: 2696, 7: 2496, 8: 3009, 9: 2263, 10: 4732}
# The same on the 1..5 scale bronze uses (ceil(stars / 2)), as weights of 1..5.
IMDB_RATING_WEIGHTS = tuple(float(sum(n for stars, n in IMDB_STARS.items() if (stars + 1) // 2 == rating))
                            for rating in range(1, 6))
# Texts planned shorter than this lead with a short phrase ("Great!"), and half of those up to three
# times as long; longer ones with an aspect sentence.
SHORT_TEXT = 40
OPENER_FROM = 150  # texts at least this long start by saying what was bought
# A near re-post adds up to 5 words; an original of at least 30 words keeps the word 3-shingle
# Jaccard similarity of the two at or above 28 / 33 = 0.85, a near duplicate by any usual threshold.
REPOST_MIN_WORDS = 30
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
class TextLengths:
    """Log-normal lengths of review bodies in characters, truncated to ``low`` .. ``high``."""

    median: float
    sigma: float
    low: int
    high: int

    def draw(self, rng: random.Random) -> int:
        mu = math.log(self.median)
        while True:  # redraw, not clip: no pile-up at the bounds (a truncated log-normal)
            n = rng.lognormvariate(mu, self.sigma)
            if self.low <= n <= self.high:
                return int(n)


@dataclass(frozen=True)
class Review:
    """One generated review; ``malformed`` names the defect planted in its record, if any."""

    index: int
    product: Product
    user_id: str
    rating: int  # 1..5; the tone of the text
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
        pid = "B0" + "".join(rng.choices(_ALNUM, k=8))
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


def _rating(rng: random.Random, weights: tuple[float, ...], side: int | None) -> int:
    """Stars 1..5 drawn by ``weights``; only 1-2 for side 0 (negative), only 4-5 for side 1."""
    stars = (1, 2, 3, 4, 5) if side is None else ((1, 2), (4, 5))[side]
    return rng.choices(stars, [weights[s - 1] for s in stars])[0]


def _topic_sentences(rng: random.Random, topics: list[str], patterns: list[str]) -> Iterator[tuple[str, None]]:
    """Each topic in a random order, then each again in other words: every (topic, pattern) pair
    once, since 5 topics and 3 patterns are coprime. Drawn only when first asked for."""
    order, first = rng.sample(topics, len(topics)), rng.randrange(len(patterns))
    for n in range(len(order) * len(patterns)):
        yield patterns[(first + n) % len(patterns)].format(topic=order[n % len(order)]), None


def _fillers(rng: random.Random) -> Iterator[tuple[str, None]]:
    """The filler sentences in a random order, drawn only when first asked for."""
    for sentence in rng.sample(FILLER, len(FILLER)):
        yield sentence, None


def _more_kinds(rng: random.Random) -> Iterator[str]:
    """Kinds of sentence for the rest of a long review: up to two in five carry the sentiment."""
    while True:
        x = rng.random()
        yield "topic" if x < 0.3 else "aspect" if x < 0.4 else "filler" if x < 0.5 else "detail"


def _body(rng: random.Random, product: Product, rating: int, target: int, high: int) -> tuple[str, tuple[str, ...]]:
    """A review body of about ``target`` characters (never over ``high``) and the aspects it names.

    The sentiment is there from the first sentence on: a short phrase ("Great!") in the shortest
    texts, an aspect sentence otherwise, after an opener in texts of ``OPENER_FROM`` characters or
    more. Then, shuffled, what a typical review holds (one to three aspects, two topic sentences,
    personal details, filler), and past that, for long texts, a mix of topic sentences, one more
    aspect per 1,000 characters, filler and personal details.
    """
    n_core = rng.choice((1, 1, 2, 2, 3))
    aspects = rng.sample(ASPECT_NAMES, min(len(ASPECT_NAMES), n_core + target // 1000))
    pools: dict[str, Iterator[tuple[str, str | None]]] = {
        "aspect": ((_sentiment_sentence(rng, a, rating), a) for a in aspects),
        "topic": _topic_sentences(rng, product.topics, TOPIC[rating]),
        "filler": _fillers(rng),
    }

    def sentence(kind: str) -> tuple[str, str | None]:
        """A sentence of ``kind`` and the aspect it names; a personal detail once ``kind`` is used up."""
        return next(pools.get(kind, iter(())), None) or (_detail(rng), None)

    short = target < SHORT_TEXT or (target < 3 * SHORT_TEXT and rng.random() < 0.5)
    head = [(rng.choice(SHORT[rating]).format(product=product.noun), None) if short else sentence("aspect")]
    if target >= OPENER_FROM:
        head.insert(0, (rng.choice(OPENERS).format(product=product.noun, who=rng.choice(WHO), n=rng.randint(2, 18),
                                                   when=rng.choice(WHEN)), None))
    parts = [text for text, _ in head]
    named = [aspect for _, aspect in head if aspect]
    core = (["aspect"] * (n_core - len(named)) + ["topic", "topic"] + ["detail"] * rng.choice((0, 1, 1, 2))
            + ["filler"] * rng.randint(0, 3))
    rng.shuffle(core)
    closer = rng.choice(CLOSERS[rating])
    length = sum(map(len, parts)) + len(parts) - 1
    for text, aspect in map(sentence, chain(core, _more_kinds(rng))):
        # Stop at the first sentence that would take the text past its target by over half the
        # sentence (so lengths are not biased short), or, with the closer, past the format's bound.
        if length + 1 + len(text) // 2 > target - len(closer) or length + len(text) + len(closer) + 2 > high:
            break
        parts.append(text)
        length += 1 + len(text)
        if aspect:
            named.append(aspect)
    if length + 1 + len(closer) // 2 <= target and length + 1 + len(closer) <= high:
        parts.append(closer)
    return " ".join(parts), tuple(named)


def _review(rng: random.Random, index: int, products: list[Product], cumulative: list[float], rating: int,
            lengths: TextLengths, label_noise: float) -> Review:
    product = products[bisect.bisect_left(cumulative, rng.random() * cumulative[-1])]
    text, aspects = _body(rng, product, rating, lengths.draw(rng), lengths.high)
    total_votes = int(rng.paretovariate(1.5)) - 1
    return Review(
        index=index,
        product=product,
        user_id="A" + "".join(rng.choices(_ALNUM, k=13)),
        rating=rating,
        title=rng.choice(TITLES[rating]).format(product=product.noun),
        text=text,
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
    sentences = r.text.split(". ")
    # A paragraph break after the first sentence, then after every fifth.
    text = "".join(s + (". <br /><br />" if i % 5 == 0 else ". ") for i, s in enumerate(sentences[:-1]))
    return (text + sentences[-1]).encode()


@dataclass(frozen=True)
class Format:
    """How one real file is written, and how its reviews are distributed: ``ratings`` weighs 1..5
    stars; a ``balanced`` format has exactly as many 1-2 as 4-5 star reviews in each chunk and no
    3-star one; ``lengths`` are those of the review bodies."""

    writer: Writer
    malformed_kinds: tuple[str, ...]
    file_name: str
    compression: str | None
    ratings: tuple[float, ...]
    lengths: TextLengths
    balanced: bool = False
    header: bytes = b""


# Per-category dumps: a median body near 270 characters, 9 % under 50, 1 % past 4,500 (the 2014 and
# 2018 dumps); bounded well below ingest.max_text_chars, so no generated review is oversize.
CATEGORY_LENGTHS = TextLengths(median=270, sigma=1.25, low=1, high=20_000)
# Amazon polarity bodies stop near 1,000 characters by construction of that set.
POLARITY_LENGTHS = TextLengths(median=360, sigma=0.7, low=1, high=1_000)
# aclImdb: median near 1,000 characters, the shortest about 50, the longest about 13,000.
IMDB_LENGTHS = TextLengths(median=980, sigma=0.78, low=50, high=13_000)

FORMATS: dict[str, Format] = {
    "fasttext": Format(_fasttext, ("no_label", "unknown_label", "empty_text", "invalid_utf8"),
                       "train.ft.txt.bz2", "bz2", RATING_WEIGHTS, POLARITY_LENGTHS, balanced=True),
    "amazon-json": Format(_amazon_json, ("truncated", "rating_out_of_range", "missing_text", "wrong_type"),
                          "reviews_Musical_Instruments_5.json.gz", "gz", RATING_WEIGHTS, CATEGORY_LENGTHS),
    "amazon-2023": Format(_amazon_2023, ("truncated", "rating_out_of_range", "missing_text", "wrong_type"),
                          "All_Beauty.jsonl", None, RATING_WEIGHTS, CATEGORY_LENGTHS),
    "amazon-tsv": Format(_amazon_tsv, ("missing_field", "wrong_type", "missing_text", "invalid_utf8"),
                         "amazon_reviews_us_Electronics_v1_00.tsv.gz", "gz", RATING_WEIGHTS, CATEGORY_LENGTHS,
                         header=TSV_HEADER),
    "csv": Format(_csv_row, ("extra_field", "rating_out_of_range", "missing_text"),
                  "amazon_reviews_14m.csv", None, RATING_WEIGHTS, CATEGORY_LENGTHS, header=CSV_HEADER),
    "imdb": Format(_imdb_file, ("invalid_utf8", "missing_text"), "aclImdb", None, IMDB_RATING_WEIGHTS,
                   IMDB_LENGTHS, balanced=True),
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


def _repost(rng: random.Random, review: Review, recent: list[Review], high: int) -> Review:
    """``review`` replaced by a re-post of a recent review of the same rating (so re-posts keep the
    rating shares), or ``review`` itself when no recent one can be re-posted: one too short to stay
    a near duplicate once edited, or one already re-posted with every edit."""
    exact = rng.random() < 0.5
    room = 0 if exact else max(map(len, NEAR_EDITS))
    originals = [r for r in recent if r.rating == review.rating and len(r.text) + room <= high
                 and len(r.text.split()) >= REPOST_MIN_WORDS]
    if not originals:
        return review
    original = rng.choice(originals)
    # Two near re-posts of one review with the same edit would be exact copies of each other.
    edits = [""] if exact else [e for e in NEAR_EDITS if all(r.text != original.text + e for r in recent)]
    if not edits:
        return review
    return replace(original, index=review.index, user_id=review.user_id, text=original.text + rng.choice(edits),
                   unix_time=original.unix_time + rng.randint(60, 86_400 * 30), malformed=None,
                   repost=None if original.malformed else "exact" if exact else "near")


def reviews(spec: CorpusSpec, fmt: str, start: int, stop: int) -> Iterator[Review]:
    """Reviews ``start`` .. ``stop - 1`` of the corpus ``spec`` in format ``fmt``; chunks are independent.

    A ``duplicate_share`` of reviews re-posts a recent review of the same product by another user:
    half word for word (an exact duplicate), half with a short sentence added (a near-duplicate).
    """
    form = FORMATS[fmt]
    products, cumulative = _products(spec.seed, spec.n_products)
    rng = random.Random(f"{spec.seed}-{start}")
    sides: list[int | None] = [None] * (stop - start)
    if form.balanced:  # exactly half negative, half positive, in a random order
        sides = [i % 2 for i in range(stop - start)]
        rng.shuffle(sides)
    recent: list[Review] = []
    for i, side in zip(range(start, stop), sides):
        rating = _rating(rng, form.ratings, side)
        review = _review(rng, i, products, cumulative, rating, form.lengths, spec.label_noise)
        if recent and rng.random() < spec.duplicate_share:
            review = _repost(rng, review, recent, form.lengths.high)
        if rng.random() < spec.malformed_share:
            review = replace(review, malformed=rng.choice(form.malformed_kinds), repost=None)
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
    for r in reviews(corpus, fmt, start, stop):
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
    """The aclImdb tree: as in the real set, a quarter of the files in train/pos|neg, a quarter in
    test/pos|neg, half unlabelled in train/unsup (stars 0); stars as in ``IMDB_STARS``."""
    spec = FORMATS["imdb"]
    if root.exists():
        shutil.rmtree(root)
    rng = random.Random(f"{corpus.seed}-imdb-stars")
    for i, r in enumerate(reviews(replace(corpus, label_noise=0.0), "imdb", 0, rows)):
        split = "test" if i % 4 == 1 else "train"
        if i % 4 >= 2:
            polarity, stars = "unsup", 0
        else:
            polarity = "pos" if r.rating >= 4 else "neg"
            choices = [s for s in IMDB_STARS if (s + 1) // 2 == r.rating]
            stars = rng.choices(choices, [IMDB_STARS[s] for s in choices])[0]
        folder = root / split / polarity
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}_{stars}.txt").write_bytes(spec.writer(r))
        _count(manifest, r)
    manifest.files.append(str(root))
