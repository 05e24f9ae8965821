"""Routers by hand: Fixed Share on a three-expert toy, a meeting that agrees and one that votes, a ranking
with a known order and one with a cycle, the learnt gate's gradient, and the sentiment rule's sentence."""

import numpy as np
import pytest

from tests.helpers import market_signals, view
from wealtharena.config import HedgeConfig, MeetingConfig, RankingConfig, SentimentConfig
from wealtharena.ensemble.routers.gate import gate_objective
from wealtharena.ensemble.routers.hedge import FixedShare
from wealtharena.ensemble.routers.meeting import ExpertMeeting, agreement
from wealtharena.ensemble.routers.ranking import RankingRouter, average_ranks, copeland_order, rank_ic
from wealtharena.ensemble.routers.sentiment import parse_reply, rule_label

EXPERTS = ("a", "b", "c")


def test_fixed_share_on_a_three_expert_toy_by_hand():
    router = FixedShare(HedgeConfig(learning_rate=2.0, share=0.1), EXPERTS)
    books = np.zeros((3, 2))
    returns = np.array([[0.01, -0.01, 0.0], [0.02, 0.0, -0.02]])
    assert router.decide(view(0, books, returns)).capital.tolist() == pytest.approx([1 / 3] * 3)
    w = np.full(3, 1 / 3)
    for day in returns:  # by hand: Hedge on log-loss with eta = 2, then share 10% equally
        v = w * (1 + day) ** 2
        w = 0.9 * v / v.sum() + 0.1 / 3
    got = router.decide(view(2, books, returns)).capital
    np.testing.assert_allclose(got, w, rtol=1e-12)
    assert got[0] > got[1] > got[2] and got.min() > 0.1 / 3 * 0.99  # the share keeps every expert alive


def test_adahedge_follows_the_leader_first_then_tunes_its_rate():
    router = FixedShare(HedgeConfig(learning_rate="adahedge", share=0.0), EXPERTS)
    returns = np.array([[0.01, 0.0, -0.01], [-0.03, 0.01, 0.0]])
    first = router.decide(view(1, np.zeros((3, 2)), returns)).capital
    np.testing.assert_allclose(first, [1.0, 0.0, 0.0], atol=1e-12)  # no mixability gap yet: the leader
    loss = -np.log1p(returns[0])
    gap = loss.mean() - loss.min()  # the first day's mixability gap
    assert router.gap == pytest.approx(gap, rel=1e-9)
    router.decide(view(2, np.zeros((3, 2)), returns))
    assert router.rate_used == pytest.approx(np.log(3) / gap, rel=1e-9)  # eta = ln(E) / Delta


def test_a_meeting_that_reaches_consensus_adopts_the_confidence_weighted_book():
    router = ExpertMeeting(
        MeetingConfig(round_days=21, confidence_days=5, agreement_threshold=0.9), EXPERTS, ("X", "Y")
    )
    same = np.tile([0.4, 0.3], (3, 1))  # every expert proposes one book
    returns = np.random.default_rng(0).normal(0.0, 0.01, (5, 3)) + [0.006, 0.004, -0.02]
    decision = router.meet(view(5, same, returns))
    assert decision.label == "consensus" and router.meetings[-1].agreement == pytest.approx(1.0)
    r = returns[-5:]
    sharpe = np.maximum(r.mean(axis=0) / r.std(axis=0, ddof=1) * np.sqrt(252), 0)
    np.testing.assert_allclose(decision.capital, sharpe / sharpe.sum())  # capital by confidence


def test_a_meeting_that_disagrees_votes_with_weights_learnt_from_the_last_round():
    cfg = MeetingConfig(round_days=2, confidence_days=5, agreement_threshold=0.99, vote_learning_rate=10.0)
    router = ExpertMeeting(cfg, EXPERTS, ("X", "Y"))
    books = np.array([[0.9, 0.0], [0.0, 0.9], [0.0, 0.0]])  # three different books
    returns = np.array([[0.02, 0.01, 0.001], [0.03, -0.01, 0.002]])
    first = router.meet(view(0, books, returns))
    assert first.label == "vote" and first.capital.tolist() == pytest.approx([1 / 3] * 3)
    second = router.meet(view(2, books, returns))
    votes = np.full(3, 1 / 3) * np.exp(10.0 * np.log1p(np.prod(1 + returns, axis=0) - 1))
    votes /= votes.sum()
    r = returns
    conf = np.nan_to_num(np.maximum(r.mean(0) / r.std(0, ddof=1) * np.sqrt(252), 0))
    conf /= conf.sum()
    assert second.label == "vote"
    np.testing.assert_allclose(router.votes, votes)
    np.testing.assert_allclose(second.capital, votes * conf / (votes * conf).sum())
    score, consensus = agreement(np.c_[books, 1 - books.sum(1)], conf)
    assert router.meetings[-1].agreement == pytest.approx(round(score, 4)) and score < 0.99


def test_ranking_with_a_known_order_and_with_a_cycle():
    order, copeland = copeland_order(np.array([[3.0, 2.0, 1.0]]), np.array([1.0]))
    assert order.tolist() == [0, 1, 2] and copeland.tolist() == [2, 0, -2]
    cycle = np.array([[3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [2.0, 1.0, 3.0]])  # a > b, b > c, c > a by 2 to 1
    order, copeland = copeland_order(cycle, np.full(3, 1 / 3))
    assert copeland.tolist() == [0, 0, 0] and order.tolist() == [0, 1, 2]  # a tie all round: universe order
    order, copeland = copeland_order(cycle, np.array([0.5, 0.3, 0.2]))
    # margins: a-b = .5-.3+.2 > 0, b-c = .5+.3-.2 > 0, c-a = -.5+.3+.2 = 0: a 1 win, b 1-1, c 1 loss
    assert copeland.tolist() == [1, 0, -1] and order.tolist() == [0, 1, 2]


def test_ranks_and_rank_ic_agree_with_scipy():
    from scipy.stats import rankdata, spearmanr

    x = np.array([[0.3, 0.1, 0.1, 0.5], [1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_array_equal(average_ranks(x), np.stack([rankdata(r) for r in x]))
    returns = np.array([0.02, -0.01, 0.0, 0.03])
    np.testing.assert_allclose(rank_ic(x, returns), [spearmanr(r, returns).statistic for r in x])


def test_ranking_router_holds_the_top_k_equally():
    class Fixed:
        def __init__(self, name, scores):
            self.name, self._scores = name, np.asarray(scores, dtype=float)

        def scores(self, view):
            return self._scores

    router = RankingRouter(RankingConfig(top_k=2), [Fixed("m", [1, 4, 2, 3])], ("A", "B", "C", "D"))
    decision = router.decide(view(0, np.zeros((1, 4)), np.zeros((1, 1)), market_signals(n=4)))
    assert decision.book.tolist() == [0, 0.5, 0, 0.5] and "B (+3), D (+1)" in decision.explanation


def test_gate_gradient_is_exact():
    rng = np.random.default_rng(0)
    steps, e, f, n = 40, 3, 4, 5
    z, r = rng.normal(size=(steps, f)), rng.normal(0, 0.01, (steps, e))
    books = rng.dirichlet(np.ones(n + 1), size=(steps, e))[:, :, :n]
    theta = rng.normal(0, 0.3, e * (1 + f))
    _, grad, _ = gate_objective(theta, z, r, books, 0.0015, 1e-4)
    eps = 1e-6
    numeric = [
        (
            gate_objective(theta + eps * d, z, r, books, 0.0015, 1e-4)[0]
            - gate_objective(theta - eps * d, z, r, books, 0.0015, 1e-4)[0]
        )
        / (2 * eps)
        for d in np.eye(len(theta))
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-10)


def test_sentiment_rule_names_its_figures():
    cfg = SentimentConfig()
    calm = rule_label(market_signals(index_return=0.002, vol=0.12, pct=0.40).upto(20), cfg)
    assert calm.label == "optimistic" and calm.explanation == (
        "index 5-day return +1.0%, volatility 12.0% at the 40th percentile of its history: optimistic"
    )
    fall = rule_label(market_signals(index_return=-0.0063, vol=0.30, pct=0.88).upto(20), cfg)
    assert fall.label == "pessimistic" and "-3.1%" in fall.explanation and "88th percentile" in fall.explanation


@pytest.mark.parametrize(
    "reply, label",
    [
        ('{"label": "pessimistic", "explanation": "the index fell 3%"}', "pessimistic"),
        ('```json\n{"label": "Optimistic", "explanation": "calm"}\n```', "optimistic"),
        ("Optimistic: volatility is low and the trend is up.", "optimistic"),
    ],
)
def test_model_replies_are_parsed(reply, label):
    assert parse_reply(reply)[0] == label


@pytest.mark.parametrize("reply", ['{"label": "bullish"}', "no idea", "optimistic or pessimistic?", ""])
def test_unusable_model_replies_are_refused(reply):
    with pytest.raises(ValueError):
        parse_reply(reply)
