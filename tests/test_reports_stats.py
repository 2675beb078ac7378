"""Report statistics agree with scipy/statsmodels on fixed data; aggregation follows its definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize

from vlaeval.reports import stats
from vlaeval.reports.aggregate import metric_table, summarize
from vlaeval.reports.power import episodes_needed
from vlaeval.reports.synthetic import Outcome, episode_frame

RNG = np.random.default_rng(20240601)
Y = RNG.integers(0, 2, size=120).astype(float)
CLUSTERS = np.repeat(np.arange(8), 15)


def test_seed_se_matches_scipy_sem():
    per_seed = [0.82, 0.78, 0.9, 0.71]
    mean, se, n = stats.seed_se(per_seed)
    assert mean == pytest.approx(np.mean(per_seed))
    assert se == pytest.approx(sps.sem(per_seed), rel=1e-12)
    assert n == 4
    assert math.isnan(stats.seed_se([0.5])[1])


@pytest.mark.parametrize("n_clusters", [2, 3, 8, 30])
def test_clustered_se_matches_statsmodels_ols_cluster(n_clusters):
    """statsmodels' default correction C/(C-1)·(n-1)/(n-k) is C/(C-1) for y ~ 1 (k = 1): the same CR1."""
    rng = np.random.default_rng(n_clusters)
    groups = rng.integers(0, n_clusters, size=150)
    groups[:n_clusters] = np.arange(n_clusters)  # every cluster present
    y = (rng.random(150) < 0.3 + 0.4 * (groups % 2)).astype(float)
    fit = sm.OLS(y, np.ones_like(y)).fit(cov_type="cluster", cov_kwds={"groups": groups})
    se, c = stats.clustered_se(y, groups.tolist())
    assert c == n_clusters
    assert se == pytest.approx(float(fit.bse[0]), rel=1e-10)


def test_clustered_se_accepts_any_hashable_labels_and_needs_two_clusters():
    labels = [("libero-spatial", f"task{c}") for c in CLUSTERS]
    assert stats.clustered_se(Y, labels)[0] == pytest.approx(stats.clustered_se(Y, CLUSTERS)[0])
    assert math.isnan(stats.clustered_se([1.0, 0.0], ["a", "a"])[0])


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (37, 50), (499, 500), (1, 1)])
def test_wilson_matches_statsmodels(k, n):
    low, high = stats.wilson_interval(k, n)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert (low, high) == (pytest.approx(ref_low, abs=1e-12), pytest.approx(ref_high, abs=1e-12))


@pytest.mark.parametrize("b, c", [(0, 0), (0, 5), (3, 3), (12, 4), (40, 21), (1, 30)])
def test_mcnemar_exact_matches_statsmodels(b, c):
    table = [[50, b], [c, 40]]  # rows: base success/failure; columns: new success/failure
    reference = mcnemar(table, exact=True).pvalue
    assert stats.mcnemar_exact(b, c) == pytest.approx(reference, rel=1e-12)


def test_holm_matches_multipletests():
    pvalues = np.array([0.001, 0.04, 0.03, 0.2, 0.012, 0.5, 0.04])
    reject, adjusted = stats.holm(pvalues, alpha=0.05)
    ref_reject, ref_adjusted, _, _ = multipletests(pvalues, alpha=0.05, method="holm")
    np.testing.assert_allclose(adjusted, ref_adjusted, rtol=1e-12)
    np.testing.assert_array_equal(reject, ref_reject)


def test_bootstrap_is_seeded_and_close_to_the_analytic_se():
    x = RNG.normal(size=400)
    assert stats.bootstrap_se(x, seed=3) == stats.bootstrap_se(x, seed=3)
    assert stats.bootstrap_se(x, seed=3) == pytest.approx(sps.sem(x), rel=0.1)


def test_paired_bootstrap_detects_a_shift_and_not_noise():
    base = RNG.normal(size=200)
    shifted = stats.paired_bootstrap(base, base + 0.3 + RNG.normal(scale=0.1, size=200), seed=1)
    assert shifted.pvalue < 0.01 and shifted.ci_low < 0.3 < shifted.ci_high
    assert stats.paired_bootstrap(base, base, seed=1).pvalue == 1.0


def test_power_matches_statsmodels_and_the_paired_formula():
    result = episodes_needed(0.05, 0.6)
    h = proportion_effectsize(0.6, 0.55)
    assert result.episodes_per_model == math.ceil(NormalIndPower().solve_power(abs(h), alpha=0.05, power=0.8))
    paired = episodes_needed(0.05, 0.6, paired=True)
    psi = 0.6 * 0.45 + 0.55 * 0.4
    z_a, z_b = sps.norm.ppf(0.975), sps.norm.ppf(0.8)
    assert paired.episodes_per_model == math.ceil((z_a * psi**0.5 + z_b * (psi - 0.05**2) ** 0.5) ** 2 / 0.05**2)
    assert episodes_needed(0.05, 0.6, paired=True, discordant=0.1).episodes_per_model < paired.episodes_per_model
    with pytest.raises(ValueError, match="--baseline"):
        episodes_needed(0.05, 1.5)


def _outcomes() -> list[Outcome]:
    """Two seeds; LIBERO four suites with one task each, an Instruct suite with Free/Alt tasks."""
    table = {  # (suite, task): successes out of 4 per seed
        ("libero-spatial", "a"): (4, 2), ("libero-object", "a"): (3, 3), ("libero-goal", "a"): (2, 0),
        ("libero-10", "a"): (1, 1), ("simpler-instruct", "FreeGraspBanana-v0"): (4, 2),
        ("simpler-instruct", "FreeGraspPear-v0"): (0, 2), ("simpler-instruct", "AltGraspSponge-v0"): (1, 1),
    }
    out = [Outcome(suite, task, i, seed, i < wins)
           for (suite, task), by_seed in table.items() for seed, wins in enumerate(by_seed) for i in range(4)]
    out.append(Outcome("libero-10", "a", 9, 0, False, status="error"))  # excluded from rates, counted
    return out


def test_aggregation_follows_the_paper_conventions():
    summary = summarize(episode_frame(_outcomes())).set_index("name")
    assert summary.at["libero-spatial", "mean"] == pytest.approx(0.75)
    assert summary.at["libero-spatial", "se"] == pytest.approx(sps.sem([1.0, 0.5]))
    # LIBERO = mean of the four suites; its SE is across the per-seed LIBERO averages.
    assert summary.at["LIBERO", "mean"] == pytest.approx((0.75 + 0.75 + 0.25 + 0.25) / 4)
    assert summary.at["LIBERO", "se"] == pytest.approx(sps.sem([(1 + 0.75 + 0.5 + 0.25) / 4, (0.5 + 0.75 + 0 + 0.25) / 4]))
    # Instruct: Free = mean of its tasks, Alt likewise, headline = mean(Free, Alt).
    free, alt = (0.75 + 0.25) / 2, 0.25
    assert summary.at["simpler-instruct / Free (instruction aggregation)", "mean"] == pytest.approx(free)
    assert summary.at["simpler-instruct / Alt (situated reasoning)", "mean"] == pytest.approx(alt)
    assert summary.at["SimplerEnv-Instruct", "mean"] == pytest.approx((free + alt) / 2)
    assert summary.at["simpler-instruct", "mean"] == pytest.approx((free + alt) / 2)
    # Error episodes: out of the rate, in the count; pooled Wilson uses valid episodes only.
    assert summary.at["libero-10", "errors"] == 1 and summary.at["libero-10", "n"] == 8
    assert summary.at["libero-10", "pooled"] == pytest.approx(2 / 8)
    assert summary.at["overall", "errors"] == 1


def test_group_from_episode_metadata_wins_over_patterns():
    outcomes = [Outcome("simpler-instruct", "FreeX", i, 0, i % 2 == 0) for i in range(4)]
    frame = episode_frame(outcomes, protocol={"max_steps": 10, "group": "custom"})
    assert set(frame["group"]) == {"custom"}


def test_metric_table_bootstrap_is_reproducible():
    outcomes = [Outcome("vla-it", f"q{i % 3}", i, 0, True, metrics={"bleu": i / 10, "cider": 2 - i / 10, "ok": True,
                                                                   "text": "not numeric"}) for i in range(12)]
    first, second = metric_table(episode_frame(outcomes)), metric_table(episode_frame(outcomes))
    assert first.equals(second)
    suite_bleu = first[(first["level"] == "suite") & (first["metric"] == "bleu")].iloc[0]
    assert suite_bleu["mean"] == pytest.approx(np.mean([i / 10 for i in range(12)])) and suite_bleu["n"] == 12
    assert set(first["metric"]) == {"bleu", "cider", "ok"}


def test_simplerenv_cells_merge_drawers_and_average_like_instructvla():
    """Google VM cells: coke, move near, drawer = mean(open, close), apple; 'SimplerEnv' = mean of all cells."""
    wins = {("simpler-google-vm", "pick_coke_can"): 4, ("simpler-google-vm", "move_near"): 2,
            ("simpler-google-vm", "open_drawer"): 4, ("simpler-google-vm", "close_drawer"): 0,
            ("simpler-google-vm", "apple_in_drawer"): 1, ("simpler-widowx", "put_spoon_on_towel"): 3,
            ("simpler-widowx", "put_carrot_on_plate"): 1}
    outcomes = [Outcome(suite, task, i, 0, i < k) for (suite, task), k in wins.items() for i in range(4)]
    summary = summarize(episode_frame(outcomes)).set_index("name")
    google_cells = [1.0, 0.5, 0.5, 0.25]  # coke, move near, drawer (mean of 1.0 and 0.0), apple
    assert summary.at["simpler-google-vm / Open/close drawer", "mean"] == pytest.approx(0.5)
    assert summary.at["SimplerEnv Google VM", "mean"] == pytest.approx(np.mean(google_cells))
    assert summary.at["SimplerEnv WidowX VM", "mean"] == pytest.approx(0.5)
    assert summary.at["SimplerEnv", "mean"] == pytest.approx(np.mean(google_cells + [0.75, 0.25]))
    assert "LIBERO" not in summary.index  # needs all four LIBERO suites


def test_published_derived_columns_are_means_of_reported_cells():
    from vlaeval.reports.published import load_published

    rows = {(r.source, r.model): r for r in load_published().rows}
    expert = rows[("ivla-readme-t20", "InstructVLA-Expert (96 GPU, BS1536, 34.5k steps)")]
    assert expert.values["SimplerEnv Google VM"] == pytest.approx(round((79.6 + 68.3 + 52.3 + 50.3) / 4, 1) / 100)
    assert "SimplerEnv Google VM" in expert.derived and "SimplerEnv" not in expert.derived
    assert rows[("ivla-libero", "OpenVLA-7B")].pm["LIBERO"] == pytest.approx(0.006)


def test_mixed_suite_versions_of_one_model_are_refused():
    from vlaeval.reports.load import ReportInputError

    frame = episode_frame([Outcome("libero-10", "a", i, 0, True) for i in range(4)])
    frame.loc[0, "suite_version"] = "2"
    with pytest.raises(ReportInputError, match="different suite versions or protocol"):
        summarize(frame)


def test_tasks_with_their_own_protocols_pool_into_one_suite_but_one_task_may_not_mix():
    from vlaeval.reports.load import ReportInputError

    frame = episode_frame([Outcome("libero-10", t, i, 0, True) for t in "ab" for i in range(2)])
    frame.loc[frame["task_id"] == "b", "protocol_json"] = '{"max_steps": 9}'  # a per-task protocol (SimplerEnv)
    assert summarize(frame).query("level == 'suite'")["n"].tolist() == [4]
    frame.loc[0, "protocol_json"] = '{"max_steps": 7}'  # task a now mixes two protocols
    with pytest.raises(ReportInputError, match="different suite versions or protocol"):
        summarize(frame)
