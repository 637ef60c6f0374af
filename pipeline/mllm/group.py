"""Group mode: turn a per-aspect ranking of k images into k(k-1)/2 pairwise judgments.

VisionPrefer labelled the four images of a prompt in one call; the preference data, the agreement
reports and VP-Score training all work on pairs. A ranking is a list of tiers, best first, where images
in one tier are tied; image ``i`` beats image ``j`` when its tier comes first.

Pairs are emitted in canonical terms: indices ``i < j`` in presentation order, ``first`` = image ``i``,
``second`` = image ``j``, and ``choice`` is ``"A"`` when the first image wins, ``"B"`` when the second wins,
``"tie"`` when they share a tier. ``winner`` names the winning image id directly (None for a tie), which
is what a caller with its own canonical pair order (for instance, Pair.image_a < Pair.image_b) needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from pipeline.mllm.schema import Choice, ParsedAnswer


@dataclass(frozen=True, slots=True)
class PairwiseJudgment:
    """One aspect's verdict on two images, in canonical (i < j) terms."""

    aspect: str
    i: int
    j: int
    first: str
    second: str
    choice: Choice
    winner: str | None
    first_score: int | None = None
    second_score: int | None = None
    rationale: str = ""


def ranking_to_pairwise(
    ranking: Sequence[Sequence[str]], labels: Sequence[str], *, aspect: str = ""
) -> list[PairwiseJudgment]:
    """Return the k(k-1)/2 pairwise judgments a tiered ranking implies, ties preserved.

    ``labels`` fixes the canonical order; every label must appear in exactly one tier.
    """
    tier_of: dict[str, int] = {}
    for position, tier in enumerate(ranking):
        for label in tier:
            if label in tier_of:
                raise ValueError(f"label {label!r} appears twice in the ranking")
            tier_of[label] = position
    if set(tier_of) != set(labels):
        raise ValueError(f"ranking covers {sorted(tier_of)}, expected {sorted(labels)}")
    out = []
    for i, j in combinations(range(len(labels)), 2):
        first, second = labels[i], labels[j]
        if tier_of[first] == tier_of[second]:
            choice: Choice = "tie"
        else:
            choice = "A" if tier_of[first] < tier_of[second] else "B"
        winner = None if choice == "tie" else first if choice == "A" else second
        out.append(
            PairwiseJudgment(
                aspect=aspect, i=i, j=j, first=first, second=second, choice=choice, winner=winner
            )
        )
    return out


def answer_to_pairwise(answer: ParsedAnswer, image_ids: Sequence[str]) -> list[PairwiseJudgment]:
    """Every aspect's pairwise judgments of a parsed answer, with image ids instead of labels.

    Works for both modes (a pair-mode answer gives one judgment per aspect). ``image_ids`` are in the
    presentation order of the call, so a position-swapped trial maps back to the right images.
    """
    if len(image_ids) != len(answer.labels):
        raise ValueError(f"{len(image_ids)} image ids for {len(answer.labels)} labels")
    id_of = dict(zip(answer.labels, image_ids, strict=True))
    out = []
    for key, judgment in answer.aspects.items():
        for pj in ranking_to_pairwise(judgment.ranking, answer.labels, aspect=key):
            out.append(
                PairwiseJudgment(
                    aspect=key,
                    i=pj.i,
                    j=pj.j,
                    first=id_of[pj.first],
                    second=id_of[pj.second],
                    choice=pj.choice,
                    winner=None if pj.winner is None else id_of[pj.winner],
                    first_score=judgment.scores[pj.first],
                    second_score=judgment.scores[pj.second],
                    rationale=judgment.rationale,
                )
            )
    return out
