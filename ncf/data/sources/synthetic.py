"""Synthetic implicit feedback with a known latent structure (``data.source: synthetic``).

The generative model, all of it drawn from one ``seed`` (``d`` = ``factors``,
``T`` = ``temperature``, ``a`` = ``popularity_exponent``, ``G`` = ``round(sqrt(items) / 2)``
genres, between 1 and 32):

- taste: user vectors ``u`` are N(0, d^-1/2 I); an item's vector is its genre's vector plus
  its own part (30% of the variance), so the affinity ``<u, v>`` has unit variance;
- popularity: genres get Zipf masses (genre ``g``, 1-based: ``∫_g^(g+1) x^-a dx``), and
  inside a genre the items get the same Zipf law over a random order; ``a = 0`` is uniform;
- activity: users get log-normal weights (σ = 1); each user has at least 5 interactions
  (fewer only when ``interactions < 5 * users``) and at most half the catalogue, and the
  rest of ``interactions`` is shared in proportion to the weights;
- choice: the target is sampling ``n`` items without replacement with probability
  ``∝ popularity * exp(<u, v> / T)``. A user draws ``3 n`` candidates: how many from each
  genre from a multinomial ``∝ genre mass * exp(<u, genre vector> / T)``, and which items by
  popularity inside the genre; the user keeps the ``n`` distinct candidates with the
  largest ``<u, own part> / T + Gumbel noise``. The genre and popularity structure match
  exact sampling; the pull of an item's own part is weaker than exact (a pool, not the
  whole genre). A user whose pool holds fewer distinct items gets fewer interactions;
- rating: ``clip(round(3.5 + <u, v> - mean affinity + N(0, 0.6^2)), 1, 5)``;
- time: each user is active for a log-normal span (median one year) starting in 2000-2019;
  timestamps (unix seconds) increase per user and are unrelated to the items' appeal.

Ids are numbers written as text: users ``"1"`` to ``"<users>"``, items ``"1"`` to
``"<items>"`` (an item's id says nothing about its popularity). ``item_info`` has titles
``"Item 45"`` and ``genre:<Name>`` columns (the taste genre, plus a second one for 30% of
the items); ``user_info`` has ``age``, ``gender`` and ``occupation``, noisy functions of
the taste vector, so side features carry signal. The frame is ordered by user, then time.

Everything is vectorised over chunks of users (uint16 radix sorts rank each user's pool);
the noise of a (user, item) pair is a hash of the pair, so repeated candidates tie and
collapse. An ML-20M-sized set (138k users, 27k items, 20M interactions) takes about 15 s
of one core and 1.6 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ncf.config import SyntheticConfig
from ncf.data.interactions import RawData
from ncf.data.sources.tabular import strings_from_codes

POOL_FACTOR = 3
MIN_PER_USER = 5
CHUNK = 2_000_000  # pool entries per chunk of users
OWN_SHARE = 0.3  # share of an item's taste variance that is its own, not its genre's
GENRE_NAMES = (
    "Action", "Adventure", "Animation", "Biography", "Children", "Comedy", "Crime",
    "Documentary", "Drama", "Family", "Fantasy", "Film-Noir", "History", "Horror", "Martial-Arts",
    "Music", "Musical", "Mystery", "Noir", "Road", "Romance", "Satire", "Sci-Fi", "Sport",
    "Spy", "Superhero", "Teen", "Thriller", "War", "Western", "Disaster", "Heist",
)  # fmt: skip
MAX_GENRES = len(GENRE_NAMES)
OCCUPATIONS = ("student", "engineer", "artist", "educator", "retired")
_START, _END = 946_684_800, 1_577_836_800  # 2000-01-01 and 2020-01-01, unix seconds
_DAY = 86_400
RATING_BASE, RATING_NOISE = 3.5, 0.6


@dataclass(frozen=True)
class LatentModel:
    """The hidden structure behind a synthetic data set (for tests and diagnostics)."""

    user_factors: np.ndarray  # [users, d] float32
    item_factors: np.ndarray  # [items, d] float32: the item's genre vector plus its own part
    genre_factors: np.ndarray  # [genres, d] float32
    item_genre: np.ndarray  # [items] int32
    item_log_popularity: np.ndarray  # [items] float64, log of the normalised popularity
    genre_items: np.ndarray  # [items] int32: items grouped by genre, most popular first
    genre_start: np.ndarray  # [genres + 1] int64: where each genre's items start in genre_items
    user_counts: np.ndarray  # [users] int64, interactions asked of each user
    exponent: float
    temperature: float

    def logits(self, users: np.ndarray) -> np.ndarray:
        """``log popularity + <u, v> / T`` of every item for each user: ``[len(users), items]``."""
        taste = self.user_factors[users] @ self.item_factors.T
        return self.item_log_popularity[None, :] + taste / self.temperature

    def genre_logits(self, users: np.ndarray) -> np.ndarray:
        """``log genre mass + <u, genre vector> / T``: ``[len(users), genres]``."""
        mass = np.log(np.bincount(self.item_genre, np.exp(self.item_log_popularity)))
        taste = self.user_factors[users] @ self.genre_factors.T
        return mass[None, :] + taste / self.temperature

    def sample_in_genres(self, genre: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """One item per entry, drawn by popularity within ``genre`` (inverse Zipf CDF)."""
        size = np.diff(self.genre_start)
        a = self.exponent
        if abs(a - 1.0) < 1e-9:
            x = np.exp(uniform * np.log1p(size).astype(np.float32)[genre])
        else:
            span = ((size + 1.0) ** (1.0 - a) - 1.0).astype(np.float32)
            x = (1.0 + uniform * span[genre]) ** np.float32(1.0 / (1.0 - a))
        rank = np.minimum(x.astype(np.int32), size.astype(np.int32)[genre])  # 1-based
        return self.genre_items[(self.genre_start[:-1] - 1)[genre] + rank]


def _seeds(seed: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(4)  # factors, activity, choice, side info


def num_genres(items: int) -> int:
    """Taste genres: ``round(sqrt(items) / 2)``, between 1 and 32."""
    return max(1, min(MAX_GENRES, round(items**0.5 / 2)))


def latent_model(config: SyntheticConfig, seed: int) -> LatentModel:
    """The taste vectors, popularity and activity that :func:`generate` uses for ``seed``."""
    factors_seed, activity_seed, _, _ = _seeds(seed)
    rng = np.random.default_rng(factors_seed)
    d, n, genres = config.factors, config.items, num_genres(config.items)
    variance = d**-0.5  # per component, so that <u, v> has unit variance
    users = rng.normal(0.0, variance**0.5, (config.users, d)).astype(np.float32)
    centres = rng.normal(0.0, (variance * (1 - OWN_SHARE)) ** 0.5, (genres, d))
    order = rng.permutation(n).astype(np.int32)  # genre g holds order[g::genres], by rank
    item_genre = np.empty(n, np.int32)
    item_genre[order] = np.arange(n) % genres
    own = rng.normal(0.0, (variance * OWN_SHARE) ** 0.5, (n, d))
    items = (centres[item_genre] + own).astype(np.float32)
    genre_items = np.concatenate([order[g::genres] for g in range(genres)])
    genre_start = np.concatenate([[0], np.cumsum(np.bincount(item_genre, minlength=genres))])
    log_pop = np.empty(n)
    genre_mass = _zipf(genres, config.popularity_exponent)  # genre 0 is the biggest
    for g in range(genres):
        members = genre_items[genre_start[g] : genre_start[g + 1]]
        log_pop[members] = np.log(_zipf(len(members), config.popularity_exponent) * genre_mass[g])
    counts = _activity(config, np.random.default_rng(activity_seed))
    return LatentModel(
        users, items, centres.astype(np.float32), item_genre, log_pop, genre_items,
        genre_start, counts, config.popularity_exponent, config.temperature,
    )  # fmt: skip


def _zipf(n: int, a: float) -> np.ndarray:
    """Probabilities of ranks 1..n: ``∫_r^(r+1) x^-a dx``, normalised."""
    r = np.arange(1, n + 1, dtype=np.float64)
    if abs(a - 1.0) < 1e-9:
        weight = np.log1p(1.0 / r)
    else:
        weight = ((r + 1.0) ** (1.0 - a) - r ** (1.0 - a)) / (1.0 - a)
    return weight / weight.sum()


def _activity(config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Interactions per user: a floor of 5, a cap of half the catalogue, log-normal shares."""
    floor = min(MIN_PER_USER, config.interactions // config.users, config.items)
    cap = max(floor, config.items // 2)
    weights = rng.lognormal(0.0, 1.0, config.users)
    counts = np.full(config.users, floor, dtype=np.int64)
    rest = config.interactions - floor * config.users
    while rest > 0 and (counts < cap).any():
        share = np.where(counts < cap, weights, 0.0)
        counts += rng.multinomial(rest, share / share.sum())
        rest = int(np.maximum(counts - cap, 0).sum())
        np.minimum(counts, cap, out=counts)
    return counts


def generate(config: SyntheticConfig, seed: int) -> RawData:
    """A synthetic data set (see the module docstring); the same seed gives the same data."""
    model = latent_model(config, seed)
    _, _, choice_seed, info_seed = _seeds(seed)
    rng = np.random.default_rng(choice_seed)
    user, item, affinity = _choose(model, rng)
    rating = rng.standard_normal(len(user), dtype=np.float32)
    rating *= np.float32(RATING_NOISE)
    rating += affinity
    rating += np.float32(RATING_BASE) - affinity.mean()
    rating = np.clip(np.rint(rating), 1, 5).astype(np.float64)
    del affinity
    timestamp = _timestamps(user, config.users, rng)
    frame = pd.DataFrame(
        {
            "user": strings_from_codes(user, _labels(config.users)),
            "item": strings_from_codes(item, _labels(config.items)),
            "rating": rating,
            "timestamp": timestamp,
        }
    )
    info_rng = np.random.default_rng(info_seed)
    description = (
        f"synthetic (users={config.users}, items={config.items}, "
        f"interactions={config.interactions}, factors={config.factors}, seed={seed})"
    )
    return RawData(
        frame=frame,
        description=description,
        item_info=_item_info(model, info_rng),
        user_info=_user_info(model, info_rng),
    )


def _labels(n: int) -> np.ndarray:
    return np.arange(1, n + 1).astype(str)


def _choose(model: LatentModel, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(user, item, affinity) of every interaction, grouped by user, chunk by chunk."""
    counts = model.user_counts
    pool = POOL_FACTOR * counts
    total = int(counts.sum())
    user = np.empty(total, np.int32)
    item = np.empty(total, np.int32)
    affinity = np.empty(total, np.float32)
    salt = np.uint64(rng.integers(0, 2**63))
    filled = 0
    for lo, hi in _chunks(pool):
        u, i, a = _choose_chunk(model, lo, hi, pool[lo:hi], counts[lo:hi], rng, salt)
        user[filled : filled + len(u)], item[filled : filled + len(u)] = u, i
        affinity[filled : filled + len(u)] = a
        filled += len(u)
    return user[:filled], item[:filled], affinity[:filled]


def _chunks(pool: np.ndarray) -> list[tuple[int, int]]:
    """User ranges [lo, hi) of at most CHUNK pool entries (or one user) and 65535 users."""
    ends = np.cumsum(pool)
    bounds, lo = [], 0
    while lo < len(pool):
        start = ends[lo] - pool[lo]
        hi = int(np.searchsorted(ends, start + CHUNK, side="right"))
        hi = min(max(hi, lo + 1), lo + 65_535)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def _choose_chunk(
    model: LatentModel,
    lo: int,
    hi: int,
    pool: np.ndarray,
    counts: np.ndarray,
    rng: np.random.Generator,
    salt: np.uint64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw each user's pool, keep the top ``count`` distinct by appeal, in random order."""
    users = np.arange(lo, hi)
    genre_logits = model.genre_logits(users)
    share = np.exp(genre_logits - genre_logits.max(axis=1, keepdims=True))
    per_genre = rng.multinomial(pool, share / share.sum(axis=1, keepdims=True))  # [users, genres]
    rows = np.repeat(np.arange(hi - lo, dtype=np.uint16), pool)  # chunk-local user
    genre = np.repeat(np.tile(np.arange(per_genre.shape[1]), hi - lo), per_genre.ravel())
    items = model.sample_in_genres(genre, rng.random(len(rows), dtype=np.float32))
    affinity = _affinity(model.user_factors[lo:hi], model.item_factors, rows, items)
    genre_taste = (model.user_factors[lo:hi] @ model.genre_factors.T).ravel()
    own_taste = affinity - genre_taste[rows.astype(np.int64) * per_genre.shape[1] + genre]
    score = own_taste / np.float32(model.temperature) + _pair_gumbel(rows, lo, items, salt)
    order = _rank_within_rows(rows, score)  # rows[order] == rows: pools stay in place
    items_sorted = items[order]
    keep = np.ones(len(rows), dtype=bool)  # drop repeated candidates (they tie, so sit together)
    keep[1:] = (items_sorted[1:] != items_sorted[:-1]) | (rows[1:] != rows[:-1])
    kept = np.cumsum(keep, dtype=np.int32)
    kept_before_row = np.concatenate([[0], kept])[np.cumsum(pool) - pool]
    keep &= kept - kept_before_row[rows] <= counts[rows]  # rank among distinct candidates
    chosen = order[keep]
    shuffle = rng.integers(0, 65_536, len(chosen), dtype=np.uint16)
    chosen = chosen[_rank_within_rows(rows[chosen], shuffle)]  # random order within a user
    return lo + rows[chosen].astype(np.int32), items[chosen], affinity[chosen]


def _affinity(
    users: np.ndarray, items_factors: np.ndarray, rows: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """``<u_row, v_item>`` for each pair, in cache-sized blocks."""
    out = np.empty(len(rows), np.float32)
    step = 65_536
    for s in range(0, len(rows), step):
        left = np.take(users, rows[s : s + step], axis=0)
        right = np.take(items_factors, items[s : s + step], axis=0)
        out[s : s + step] = np.einsum("ij,ij->i", left, right)
    return out


def _pair_gumbel(rows: np.ndarray, lo: int, items: np.ndarray, salt: np.uint64) -> np.ndarray:
    """Gumbel noise that is a hash (splitmix64) of the (user, item) pair: repeats tie."""
    z = rows.astype(np.uint64)
    z += np.uint64(lo)
    z <<= np.uint64(32)
    z |= items.astype(np.uint64)
    z *= np.uint64(0x9E3779B97F4A7C15)
    z += salt
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    uniform = ((z >> np.uint64(41)).astype(np.float32) + np.float32(0.5)) * np.float32(2**-23)
    return -np.log(-np.log(uniform))


def _rank_within_rows(rows: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Order by row, then score descending, with two uint16 radix sorts (ties stay stable)."""
    if len(score) == 0:
        return np.arange(0)
    top, bottom = float(score.max()), float(score.min())
    step = max(top - bottom, 1e-12) / 65_535.0
    quantised = ((top - score) / np.float32(step)).astype(np.uint16)
    by_score = np.argsort(quantised, kind="stable")
    return by_score[np.argsort(rows[by_score], kind="stable")]


def _timestamps(user: np.ndarray, users: int, rng: np.random.Generator) -> np.ndarray:
    """Increasing unix seconds per user (``user`` is grouped by user, ascending).

    Cumulated exponential gaps over their total plus one more gap are sorted uniform
    numbers in (0, 1): each user's times fall inside the user's span.
    """
    per_user = np.bincount(user, minlength=users)
    span = np.minimum(rng.lognormal(np.log(365.0), 1.0, users) * _DAY, _END - _START)
    start = _START + rng.random(users) * (_END - _START - span)
    elapsed = np.cumsum(rng.standard_exponential(len(user)))
    ends = np.cumsum(per_user)
    before = np.where(ends > per_user, elapsed[np.maximum(ends - per_user - 1, 0)], 0.0)
    last = np.where(per_user > 0, elapsed[np.maximum(ends - 1, 0)], before)
    total = last - before + rng.standard_exponential(users)
    elapsed -= before[user]
    elapsed *= (span / total)[user]
    elapsed += start[user]
    return elapsed.astype(np.int64)


def _item_info(model: LatentModel, rng: np.random.Generator) -> pd.DataFrame:
    """Titles and genres: each item's taste genre, and for 30% of the items a second genre
    (the one whose vector is closest to the item's own part)."""
    n = len(model.item_genre)
    genres = len(model.genre_factors)
    flags = np.zeros((n, genres), dtype=np.int8)
    flags[np.arange(n), model.item_genre] = 1
    own = model.item_factors - model.genre_factors[model.item_genre]
    closeness = own @ model.genre_factors.T
    closeness[np.arange(n), model.item_genre] = -np.inf
    second = rng.random(n) < 0.3 if genres > 1 else np.zeros(n, dtype=bool)
    flags[np.flatnonzero(second), closeness[second].argmax(axis=1)] = 1
    table = pd.DataFrame(flags, columns=[f"genre:{g}" for g in GENRE_NAMES[:genres]])
    table.insert(0, "title", [f"Item {i}" for i in range(1, n + 1)])
    table.index = pd.Index(_labels(n), name="item")
    return table


def _user_info(model: LatentModel, rng: np.random.Generator) -> pd.DataFrame:
    """Age, gender and occupation, each a noisy function of the user's taste vector."""
    n, d = model.user_factors.shape
    axes = rng.normal(size=(2 + len(OCCUPATIONS), d)).astype(np.float32)
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    signal = model.user_factors @ axes.T * np.float32(d**0.25) + rng.normal(size=(n, len(axes)))
    age = np.clip(np.rint(35.0 + 9.0 * signal[:, 0]), 18, 80)
    gender = np.where(signal[:, 1] > 0, "F", "M")
    occupation = np.asarray(OCCUPATIONS)[signal[:, 2:].argmax(axis=1)]
    table = pd.DataFrame({"age": age, "gender": gender, "occupation": occupation})
    table.index = pd.Index(_labels(n), name="user")
    return table
