"""Random long-format judgments and slow, obviously-correct reference implementations for the tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np


@dataclass(frozen=True)
class Votes:
    """Long-format judgments of one aspect."""

    item: np.ndarray
    judge: np.ndarray
    choice: np.ndarray
    n_items: int
    n_judges: int


def random_votes(
    rng: np.random.Generator, *, n_items: int, n_judges: int, vote_probability: float = 0.6
) -> Votes:
    """Each judge votes on each item with the given probability; items lean towards A, tie or B."""
    item_grid, judge_grid = np.meshgrid(np.arange(n_items), np.arange(n_judges), indexing="ij")
    voted = rng.random((n_items, n_judges)) < vote_probability
    item, judge = item_grid[voted], judge_grid[voted]
    # A per-item preference makes judges agree more than chance, so the statistics are not all ~0.
    lean = rng.dirichlet([0.7, 0.4, 0.7], size=n_items)
    cumulative = np.cumsum(lean, axis=1)[item]
    choice = (rng.random(item.size)[:, None] > cumulative[:, :2]).sum(axis=1)
    order = rng.permutation(item.size)  # rows arrive in no particular order from the database
    return Votes(item[order], judge[order], choice[order], n_items, n_judges)


def reliability_matrix(votes: Votes) -> np.ndarray:
    """Judges x items matrix of choices with NaN where a judge did not vote (krippendorff's input)."""
    matrix = np.full((votes.n_judges, votes.n_items), np.nan)
    matrix[votes.judge, votes.item] = votes.choice
    return matrix


def plurality(choices: list[int], *, rule: str) -> int:
    """Majority one item at a time: a shared top is -1 ("strict") or a tie ("tie"); no votes is -1."""
    if not choices:
        return -1
    counts = Counter(choices).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return -1 if rule == "strict" else 1
    return counts[0][0]


def brute_force_pairs(
    item: np.ndarray, choice: np.ndarray, group1: np.ndarray, group2: np.ndarray, *, ties: bool
) -> tuple[int, int]:
    """(agreeing, total) over unordered pairs of distinct rows on one item, one row in each group."""
    agreeing = total = 0
    for r in range(item.size):
        for s in range(r + 1, item.size):
            if item[r] != item[s]:
                continue
            if not ((group1[r] and group2[s]) or (group1[s] and group2[r])):
                continue
            if not ties and (choice[r] == 1 or choice[s] == 1):
                continue
            total += 1
            agreeing += int(choice[r] == choice[s])
    return agreeing, total


@dataclass(frozen=True)
class Study:
    """Long-format judgments of one aspect with presented orders, and which judges are human."""

    item: np.ndarray
    judge: np.ndarray
    choice: np.ndarray
    a_first: np.ndarray  # True where image A was shown first/left
    n_items: int
    is_human: np.ndarray  # per judge index
    names: tuple[str, ...]  # per judge index

    def rows_of(self, name: str) -> np.ndarray:
        """Row mask of one named judge."""
        return self.judge == self.names.index(name)

    @property
    def human_rows(self) -> np.ndarray:
        """Row mask of every human judgment."""
        return self.is_human[self.judge]


@dataclass(frozen=True)
class SimulatedJudge:
    """An AI judge: with prob. ``noise`` it answers uniformly at random, with ``first`` it picks the
    first-shown image, with ``mode`` it picks the item's most likely choice (the consensus), otherwise it
    votes like a human (a draw from the item's own choice distribution)."""

    name: str
    noise: float = 0.0
    first: float = 0.0
    mode: float = 0.0


def simulate_study(
    rng: np.random.Generator,
    *,
    n_items: int,
    votes_per_item: int | Sequence[int] | np.ndarray | Callable[[np.ndarray], np.ndarray],
    n_humans: int,
    judges: Sequence[SimulatedJudge] = (),
    lean: Sequence[float] = (0.7, 0.4, 0.7),
    p_a_first: float = 0.5,
) -> Study:
    """Items with a latent choice distribution (Dirichlet ``lean``); humans and AI judges vote on them.

    ``votes_per_item`` gives each item's number of human votes (distinct humans drawn from ``n_humans``),
    or is a function of the (n_items, 3) choice distributions returning them (votes that follow difficulty).
    Every AI judge votes once on every item. Each judgment's presented order is A-first with probability
    ``p_a_first``, independently of everything else. Humans have no position bias.
    """
    distribution = rng.dirichlet(lean, size=n_items)
    if callable(votes_per_item):
        votes_per_item = votes_per_item(distribution)
    per_item = np.broadcast_to(np.asarray(votes_per_item), (n_items,))
    rows_item, rows_judge = [], []
    for i in range(n_items):
        humans = rng.choice(n_humans, size=int(per_item[i]), replace=False)
        rows_item += [i] * humans.size
        rows_judge += humans.tolist()
    for k in range(len(judges)):
        rows_item += list(range(n_items))
        rows_judge += [n_humans + k] * n_items
    item, judge = np.array(rows_item, dtype=np.int64), np.array(rows_judge, dtype=np.int64)
    a_first = rng.random(item.size) < p_a_first
    cumulative = np.cumsum(distribution, axis=1)[item]
    choice = (rng.random(item.size)[:, None] > cumulative[:, :2]).sum(axis=1)
    for k, spec in enumerate(judges):
        mine = judge == n_humans + k
        u = rng.random(item.size)
        random_answer = mine & (u < spec.noise)
        first_answer = mine & (u >= spec.noise) & (u < spec.noise + spec.first)
        mode_answer = mine & (u >= spec.noise + spec.first) & (u < spec.noise + spec.first + spec.mode)
        choice[random_answer] = rng.integers(0, 3, int(random_answer.sum()))
        choice[first_answer] = np.where(a_first[first_answer], 0, 2)
        choice[mode_answer] = distribution[item[mode_answer]].argmax(axis=1)
    order = rng.permutation(item.size)
    names = tuple(f"human{h}" for h in range(n_humans)) + tuple(j.name for j in judges)
    is_human = np.array([True] * n_humans + [False] * len(judges))
    return Study(item[order], judge[order], choice[order], a_first[order], n_items, is_human, names)


def item_votes(item: np.ndarray, values: np.ndarray, n_items: int) -> list[list[int]]:
    """The values of each item's rows, as plain lists (for one-item-at-a-time references)."""
    return [values[item == i].tolist() for i in range(n_items)]


def brute_force_item_rate(
    judge_votes: list[int], human_votes: list[int] | None, *, ties: bool
) -> float | None:
    """Share of matching vote pairs on one item: judge x human pairs, or (None) pairs of distinct humans."""
    if human_votes is None:
        pairs = list(combinations(judge_votes, 2))
    else:
        pairs = [(j, h) for j in judge_votes for h in human_votes]
    if not ties:
        pairs = [(x, y) for x, y in pairs if x != 1 and y != 1]
    if not pairs:
        return None
    return sum(x == y for x, y in pairs) / len(pairs)


def brute_force_bootstrap(
    n_items: int,
    statistic: Callable[[list[int]], float],
    *,
    n_resamples: int,
    seed: int,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(drawn item list)`` over explicit resamples of the items.

    The draws are those ``resampled_column_sums`` makes for the same seed (one B x n block), so the two
    can be compared resample for resample; the statistic is recomputed from the raw votes each time.
    """
    draws = np.random.default_rng(seed).integers(0, n_items, size=(n_resamples, n_items))
    values = np.array([statistic(draw.tolist()) for draw in draws], dtype=np.float64)
    values = values[~np.isnan(values)]
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)
