"""Random long-format judgments and slow, obviously-correct reference implementations for the tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

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


def plurality(choices: list[int]) -> int:
    """Majority by the package's rule, one item at a time: shared top is a tie, nothing is -1."""
    if not choices:
        return -1
    counts = Counter(choices).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return 1
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
