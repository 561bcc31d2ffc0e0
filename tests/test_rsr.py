"""Thresholds at FMR, RSR with counts (evaluation.rsr), score files (evaluation.score_files) and tables (evaluation.tables)."""

import re
import subprocess
import sys

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bob_facerev.evaluation import rsr, score_files, tables
from bob_facerev.protection.setting import Protection

FMRS = (0.001, 0.01, 0.1)


def _bona_fide(n_imp=1000, n_gen=100, seed=0):
    """Impostors = 0..n_imp-1 (shuffled), genuines = n_imp..n_imp+n_gen-1."""
    rng = np.random.default_rng(seed)
    imp = rng.permutation(np.arange(n_imp, dtype=float))
    gen = np.arange(n_imp, n_imp + n_gen, dtype=float)
    return pd.DataFrame(
        {
            "probe_subject_id": [f"p{i % 37}" for i in range(n_imp)] + [f"g{i}" for i in range(n_gen)],
            "probe_template_id": [f"pt{i}" for i in range(n_imp + n_gen)],
            "bio_ref_subject_id": [f"r{i % 41}" for i in range(n_imp)] + [f"g{i}" for i in range(n_gen)],
            "score": np.concatenate([imp, gen]),
        }
    )


def _attack(scores, prefix="a"):
    n = len(scores)
    return {
        "probe_subject_id": [f"{prefix}{i}" for i in range(n)],
        "probe_template_id": [f"{prefix}t{i}" for i in range(n)],
        "bio_ref_subject_id": [f"{prefix}{i}" for i in range(n)],
        "score": np.asarray(scores, float),
    }


# attack scores 985, 986, ..., 1004: accepted at thresholds 999 / 990 / 900 -> 6 / 15 / 20
ATTACK = np.arange(985, 1005, dtype=float)
EXPECTED = {0.001: (999.0, 1, 6), 0.01: (990.0, 10, 15), 0.1: (900.0, 100, 20)}


def test_thresholds_on_known_impostors():
    neg = np.random.default_rng(1).permutation(np.arange(1000, dtype=float))
    got = rsr.fmr_thresholds(neg, FMRS)
    for t in got:
        thr, n_fm, _ = EXPECTED[t["fmr"]]
        assert t["threshold"] == thr
        assert t["n_false_matches"] == n_fm
        assert t["n_impostors"] == 1000
        assert t["fmr_achieved"] == pytest.approx(n_fm / 1000)


def test_thresholds_3000_impostors_rest_on_3_scores():
    neg = np.random.default_rng(2).normal(size=3000)
    t = rsr.fmr_thresholds(neg, [0.001])[0]
    # independent: the 3rd largest score is the threshold, 3 scores are accepted
    assert t["threshold"] == np.sort(neg)[-3]
    assert t["n_false_matches"] == 3


def test_threshold_below_one_false_match_is_above_every_impostor():
    neg = np.arange(100, dtype=float)
    t = rsr.fmr_thresholds(neg, [0.001])[0]
    assert t["n_false_matches"] == 0 and t["threshold"] > 99.0


def test_rsr_counts_equal_hand_computation():
    bf = _bona_fide()
    neg = bf.score[bf.probe_subject_id != bf.bio_ref_subject_id]
    pos = bf.score[bf.probe_subject_id == bf.bio_ref_subject_id]
    res = rsr.reversibility_success_rate(ATTACK, neg, pos, FMRS)
    assert [r.fmr for r in res] == list(FMRS)
    for r in res:
        thr, n_fm, n_acc = EXPECTED[r.fmr]
        assert (r.threshold, r.n_false_matches, r.n_accepted, r.n_attacks) == (thr, n_fm, n_acc, 20)
        assert r.rsr == n_acc / 20
        assert r.n_genuine == 100 and r.fnmr == 0.0 and r.eer == 0.0


def test_rsr_random_scores_against_brute_force():
    rng = np.random.default_rng(3)
    neg, pos, att = rng.normal(0, 1, 2000), rng.normal(3, 1, 300), rng.normal(2, 1.5, 500)
    for r in rsr.reversibility_success_rate(att, neg, pos, (0.001, 0.0123, 0.2)):
        # largest threshold among the scores with at most fmr * n impostors >= it
        srt = np.sort(neg)[::-1]
        k = int(np.floor(r.fmr * neg.size + 1e-9))
        assert r.threshold == srt[k - 1]
        assert r.n_accepted == sum(a >= srt[k - 1] for a in att)
        assert r.fnmr == pytest.approx(np.mean(pos < srt[k - 1]))


def test_fnmr_is_bob_measure_frr_and_unchanged_by_hand():
    """FNMR comes from bob.measure.farfrr; it equals the hand-written count it replaced, with
    ties at the threshold (a genuine score equal to it is accepted) and rounded scores."""
    import bob.measure

    rng = np.random.default_rng(11)
    neg = np.round(rng.normal(0, 1, 3000), 2)
    pos = np.round(rng.normal(2, 1, 700), 2)
    res = rsr.reversibility_success_rate(rng.normal(1, 1, 50), neg, pos, (0.001, 0.01, 0.1))
    for r in res:
        by_hand = float((pos < r.threshold).mean())  # the formula used before bob.measure
        assert r.fnmr == by_hand
        assert r.fnmr == bob.measure.farfrr(neg, pos, r.threshold)[1]
    assert [round(r.fnmr, 6) for r in res] == [round(float((pos < r.threshold).mean()), 6)
                                               for r in res]
    assert 0 < res[0].fnmr < 1 and res[0].fnmr > res[-1].fnmr
    tied = pos.copy()
    tied[:5] = res[1].threshold  # genuine scores exactly at the threshold are accepted
    r = rsr.reversibility_success_rate([0.0], neg, tied, [res[1].fmr])[0]
    assert r.fnmr == float((tied < r.threshold).mean())


def test_nan_attack_scores_are_failures_left_out():
    att = np.concatenate([ATTACK, [np.nan, np.nan]])
    r = rsr.reversibility_success_rate(att, np.arange(1000.0), fmrs=[0.01])[0]
    assert (r.n_attacks, r.n_failed, r.n_accepted) == (20, 2, 15)
    assert np.isnan(r.eer) and r.n_genuine == 0


def test_bad_fmr_and_too_few_impostors():
    with pytest.raises(ValueError, match="FMR"):
        rsr.fmr_thresholds(np.arange(10.0), [1.0])
    with pytest.raises(ValueError, match="impostor"):
        rsr.fmr_thresholds([1.0], [0.1])


def _write(tmp_path, name="scores-dev.csv", attack=ATTACK, protection=Protection(32, 4), **meta):
    meta = score_files.protection_metadata(**{"model": "dlib", "protection": protection, **meta})
    return score_files.write_vuln_scores(tmp_path / name, _bona_fide(), _attack(attack), metadata=meta)


def test_written_file_reads_in_bob_as_intended(tmp_path):
    from bob.bio.base.score.load import split_csv_scores, split_csv_vuln

    path = _write(tmp_path)
    assert not list(tmp_path.glob("*.tmp*"))
    header = path.read_text().splitlines()[0].split(",")
    assert header[:3] == ["probe_template_id", "probe_subject_id", "probe_attack_type"]
    assert header[-1] == "score"
    assert set(score_files.LABEL_COLUMNS) <= set(header)
    split = split_csv_vuln(str(path))
    np.testing.assert_array_equal(np.sort(split["licit_neg"]), np.arange(1000.0))
    np.testing.assert_array_equal(np.sort(split["licit_pos"]), np.arange(1000.0, 1100.0))
    np.testing.assert_array_equal(np.sort(split["spoof"]), ATTACK)
    # bob bio readers (dask.dataframe) accept the extra facerev_* columns
    neg, pos = split_csv_scores(str(path))
    assert neg.size == 1000 and pos.size == 100 + 20
    bf, at = score_files.read_vuln_scores(path)
    assert set(at["probe_attack_type"]) == {"reconstruction"}
    assert set(at["facerev_block_size"]) == {"32"} and set(bf["facerev_block_size"]) == {""}


def test_protection_metadata():
    meta = score_files.protection_metadata("arcface", Protection(64, 2), "deshuffle", "type-II")
    assert meta == {
        "facerev_model": "arcface", "facerev_block_size": "64", "facerev_moved_blocks": "2",
        "facerev_variant": "deshuffle", "facerev_comparison": "type-II"}
    assert list(meta) == list(score_files.LABEL_COLUMNS)  # the columns' order in the score files
    assert Protection.from_labels(meta) == Protection(64, 2)
    assert score_files.protection_metadata("dlib")["facerev_block_size"] == "none"
    assert score_files.protection_metadata("dlib")["facerev_moved_blocks"] == "0"
    assert score_files.protection_metadata("dlib", "k32-prandom")["facerev_moved_blocks"] == "random"
    with pytest.raises(ValueError, match="unknown protection name"):
        score_files.protection_metadata("dlib", "k32p4")


def test_nan_scores_survive_the_file(tmp_path):
    from bob.bio.base.score.load import split_csv_vuln

    path = _write(tmp_path, attack=np.r_[ATTACK, np.nan])
    assert np.isnan(split_csv_vuln(str(path))["spoof"]).sum() == 1
    r = rsr.evaluate_score_files([path], fmrs=[0.01]).iloc[0]
    assert (r.n_attacks, r.n_failed, r.n_accepted) == (20, 1, 15)


def test_write_rejects_bad_input(tmp_path):
    bf = _bona_fide()
    with pytest.raises(ValueError, match=".csv"):
        score_files.write_vuln_scores(tmp_path / "scores.txt", bf, _attack(ATTACK))
    with pytest.raises(ValueError, match="bio_ref_subject_id"):
        score_files.write_vuln_scores(tmp_path / "s.csv", bf.drop(columns="bio_ref_subject_id"),
                              _attack(ATTACK))
    with pytest.raises(ValueError, match="pass them as attack rows"):
        score_files.write_vuln_scores(tmp_path / "s.csv", bf.assign(probe_attack_type="x"),
                              _attack(ATTACK))
    with pytest.raises(ValueError, match="facerev_"):
        score_files.write_vuln_scores(tmp_path / "s.csv", bf, _attack(ATTACK), metadata={"K": 3})


def test_evaluate_groups_and_shared_bona_fide(tmp_path):
    p1 = _write(tmp_path, "a.csv")
    p2 = _write(tmp_path, "b.csv", attack=ATTACK - 10, variant="deshuffle")
    res = rsr.evaluate_score_files([p1, p2], fmrs=FMRS)
    assert len(res) == 6
    a = res[res.facerev_variant == "study"].set_index("fmr")
    b = res[res.facerev_variant == "deshuffle"].set_index("fmr")
    for f, (_, _, n_acc) in EXPECTED.items():
        assert a.loc[f, "n_accepted"] == n_acc
    # 975..994: >= 999: 0, >= 990: 5, >= 900: 20
    assert list(b["n_accepted"]) == [0, 5, 20]
    # thresholds from another file, in each format Bob writes, give the same result
    exported = score_files.export_measure_files(p1, tmp_path / "txt")
    for src in (p1, exported["bonafide"], exported["bonafide_4col"]):
        shared = rsr.evaluate_score_files([p2], bona_fide=src, fmrs=FMRS)
        assert list(shared["n_accepted"]) == [0, 5, 20]
        assert list(shared["threshold"]) == [999.0, 990.0, 900.0]


def test_missing_bona_fide_is_a_clear_error(tmp_path):
    p = score_files.write_vuln_scores(tmp_path / "s.csv", _bona_fide().iloc[:0], _attack(ATTACK))
    with pytest.raises(ValueError, match="--bona-fide"):
        rsr.evaluate_score_files([p])


def test_exported_measure_files(tmp_path):
    import bob.bio.base.score.load as bio_load
    import bob.measure.load

    out = score_files.export_measure_files(_write(tmp_path))
    neg, pos = bob.measure.load.split(str(out["attack"]))
    np.testing.assert_array_equal(np.sort(neg), np.arange(1000.0))
    np.testing.assert_array_equal(np.sort(pos), ATTACK)
    neg, pos = bob.measure.load.split(str(out["bonafide"]))
    assert neg.size == 1000 and pos.size == 100
    neg, pos = bio_load.split(str(out["attack_4col"]))
    np.testing.assert_array_equal(np.sort(pos), ATTACK)
    assert neg.size == 1000
    neg, pos = bio_load.split(str(out["bonafide_4col"]))
    np.testing.assert_array_equal(np.sort(pos), np.arange(1000.0, 1100.0))


def test_tables_hold_the_numbers(tmp_path):
    p1 = _write(tmp_path, "a.csv")
    p2 = _write(tmp_path, "b.csv", attack=ATTACK - 10, variant="deshuffle")
    p3 = _write(tmp_path, "c.csv", attack=ATTACK[:10], protection=None)  # unprotected
    res = rsr.evaluate_score_files([p1, p2, p3], fmrs=FMRS)
    wide = tables.rsr_table(res)
    # variant is a column group, in the order of the input files
    assert list(wide.columns.get_level_values(0).unique()) == ["study", "deshuffle"]
    assert wide.loc[("dlib", "32", "4", "type-I"), ("study", "FMR 0.1 %")] == "30.00 (6/20)"
    assert wide.loc[("dlib", "32", "4", "type-I"), ("deshuffle", "FMR 1 %")] == "25.00 (5/20)"
    # unprotected: K none, P 0, first row; 985..994 -> 0 / 5 / 10 accepted of 10
    assert wide.index[0] == ("dlib", "none", "0", "type-I")
    assert wide.loc[("dlib", "none", "0", "type-I"), ("study", "FMR 1 %")] == "50.00 (5/10)"
    files = tables.write_tables(res, tmp_path / "out" / "rsr")
    md = files["md"].read_text()
    assert "30.00 (6/20)" in md and "75.00 (15/20)" in md and "1/1000" in md
    tex = files["tex"].read_text()
    assert "30.00 (6/20)" in tex and r"FMR 0.1 \%" in tex and "multicolumn" in tex
    long = pd.read_csv(files["csv"])
    row = long[(long.facerev_variant == "study") & (long.facerev_block_size == "32")
               & (long.fmr == 0.01)]
    assert row[["n_accepted", "n_attacks", "n_false_matches", "n_impostors"]].values.tolist() == [
        [15, 20, 10, 1000]
    ]


def test_sort_numbers_numerically(tmp_path):
    paths = [_write(tmp_path, f"k{k}p{p}.csv", protection=Protection(k, p))
             for k, p in [(128, 2), (32, 12), (32, 4), (64, 2)]]
    wide = tables.rsr_table(rsr.evaluate_score_files(paths, fmrs=[0.01]))
    assert [i[1:3] for i in wide.index] == [("32", "4"), ("32", "12"), ("64", "2"), ("128", "2")]
    # the same setting in two files cannot share a table cell
    dup = _write(tmp_path, "dup.csv", protection=Protection(64, 2))
    with pytest.raises(ValueError, match="dup.csv"):
        tables.rsr_table(rsr.evaluate_score_files(paths + [dup], fmrs=[0.01]))


def test_rsr_command(tmp_path):
    from click.testing import CliRunner

    from bob_facerev.script.rsr import rsr as cmd

    p1 = _write(tmp_path, "a.csv")
    out = tmp_path / "out"
    r = CliRunner().invoke(cmd, [str(p1), "-o", str(out), "--fmr", "0.01", "--no-det",
                                 "--no-heatmap"])
    assert r.exit_code == 0, r.output
    assert "75.00 (15/20)" in r.output and "FMR 1 %" in r.output
    assert "FMR 0.1 %" not in r.output
    assert (out / "rsr.tex").is_file() and (out / "rsr.csv").is_file()
    bad = score_files.write_vuln_scores(tmp_path / "bad.csv", _bona_fide().iloc[:0], _attack(ATTACK))
    r = CliRunner().invoke(cmd, [str(bad), "-o", str(out)])
    assert r.exit_code == 2 and "--bona-fide" in r.output


def _bob(*args):
    bob = Path(sys.executable).with_name("bob")
    out = subprocess.run([str(bob), *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.slow
def test_bob_vuln_metrics_reports_our_rsr(tmp_path):
    rng = np.random.default_rng(4)
    bf = _bona_fide()
    bf["score"] = np.concatenate([rng.normal(0, 1, 1000), rng.normal(4, 1, 100)])
    att = rng.normal(2.5, 1.0, 333)
    path = score_files.write_vuln_scores(tmp_path / "scores-dev.csv", bf, _attack(att),
                                 metadata=score_files.protection_metadata("dlib", Protection(32, 8)))
    exported = score_files.export_measure_files(path)
    ours = rsr.evaluate_score_files([path], fmrs=[0.001, 0.01]).set_index("fmr")
    # one bob call per tool: each takes 10-30 s to start (every Bob plugin loads)
    out = _bob("vuln", "metrics", "-c", "far", "-f", "0.001", str(path))
    m = re.search(r"Attack Presentation Match Rate\s+([\d.]+)% \((\d+)/(\d+)\)", out)
    assert m, out
    assert (int(m.group(2)), int(m.group(3))) == (ours.loc[0.001, "n_accepted"], 333)
    assert float(m.group(1)) == pytest.approx(100 * ours.loc[0.001, "rsr"], abs=0.05)
    thr = float(re.search(r"Threshold on Development set .*: (\S+)", out).group(1))
    assert thr == pytest.approx(ours.loc[0.001, "threshold"], rel=1e-5)
    # bob measure on the 2-column attack file: false negatives are the rejected attacks
    out = _bob("measure", "metrics", "-c", "far", "-f", "0.01", str(exported["attack"]))
    m = re.search(r"False Negative Rate\s+[\d.]+% \((\d+)/(\d+)\)", out)
    assert m, out
    assert (int(m.group(1)), int(m.group(2))) == (333 - ours.loc[0.01, "n_accepted"], 333)


def test_markdown_table_is_the_one_renderer():
    """tables.markdown_table: pipe tables; number parsing on (floatfmt) or off (cells as written)."""
    frame = pd.DataFrame({"K": [8, 16], "cosine": ["0.800", "0.812"], "x": [0.12345, 2.0]})
    md = tables.markdown_table(frame, floatfmt=".2f")
    lines = md.split("\n")
    assert len(lines) == 4 and lines[0].split("|")[1].strip() == "K"
    assert set(lines[1].replace("|", "").replace(":", "")) == {"-"}
    assert "| 8 | 0.80 | 0.12 |" in re.sub(" +", " ", md)  # number-like strings parsed
    raw = re.sub(" +", " ", tables.markdown_table(frame, numparse=False))
    assert "| 8 | 0.800 | 0.12345 |" in raw  # pre-formatted cells kept as written
    assert md == frame.to_markdown(index=False, floatfmt=".2f")  # what the pandas callers had
