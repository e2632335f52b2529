"""The audit finds what was planted (exact and near duplicates, train/test leakage) and stays quiet on a clean set."""

from __future__ import annotations

import json
import random

from gapscope.data.audit import audit, near_duplicate_pairs, write_audit
from gapscope.data.rows import Row, SourceReport

_RNG_WORDS = [f"word{i}" for i in range(5000)]


def email(seed: int, n_words: int = 120) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(_RNG_WORDS) for _ in range(n_words))


def clean_rows(n: int = 60) -> list[Row]:
    return [Row(id=f"r{i}", domain="a" if i % 2 else "b", text=email(i), label=i % 2) for i in range(n)]


def test_clean_set_has_no_duplicates_or_leakage():
    rows = clean_rows()
    a = audit(rows, [], test_ids={r.id for r in rows[::3]})
    exact, near = a["duplicates"]["exact"], a["duplicates"]["near"]
    assert exact["within_domain"]["groups"] == 0 and exact["cross_domain"]["groups"] == 0
    assert exact["conflicting_labels"]["groups"] == 0
    assert near["pairs"] == 0 and near["rows_involved"] == 0
    assert a["leakage"]["cross_domain"]["rows_at_risk"] == 0
    tt = a["leakage"]["train_test"]
    assert (tt["exact_test_rows"], tt["near_test_rows"], tt["leaked_test_ids"]) == (0, 0, [])
    assert (tt["train_rows"], tt["test_rows"], tt["unused_rows"]) == (40, 20, 0)
    # held-out rows past a test cap are in neither set: unused, not training rows
    b = audit(rows, [], test_ids={r.id for r in rows[::3][:10]}, train_ids={r.id for r in rows if r not in rows[::3]})
    tt = b["leakage"]["train_test"]
    assert (tt["train_rows"], tt["test_rows"], tt["unused_rows"]) == (40, 10, 10)


def test_planted_exact_duplicate_across_domains_is_found():
    rows = clean_rows()
    # same email, different case and spacing, in another domain
    rows.append(Row(id="copy", domain="c", text="  " + rows[4].text.upper().replace(" ", "\n "), label=1))
    a = audit(rows, [])
    cross = a["duplicates"]["exact"]["cross_domain"]
    assert cross["groups"] == 1 and cross["rows"] == 2
    assert cross["examples"] == [{"ids": ["r4", "copy"], "domains": ["b", "c"]}]
    assert cross["domain_pairs"] == [{"domains": ["b", "c"], "groups": 1}]
    assert a["duplicates"]["exact"]["conflicting_labels"]["groups"] == 1  # r4 is label 0, the copy 1
    assert a["leakage"]["cross_domain"]["exact_groups"] == 1
    assert a["leakage"]["cross_domain"]["rows_at_risk"] == 2


def test_exact_duplicate_within_a_domain_is_counted():
    rows = clean_rows()
    rows.append(Row(id="again", domain="a", text=rows[1].text, label=1))
    within = audit(rows, [])["duplicates"]["exact"]["within_domain"]
    assert (within["groups"], within["extra_rows"], within["extra_rows_by_domain"]) == (1, 1, {"a": 1})


def test_near_duplicate_one_word_changed_in_a_long_email_is_found():
    rows = clean_rows()
    words = rows[10].text.split()
    words[len(words) // 2] = "CHANGED"
    rows.append(Row(id="edited", domain="a", text=" ".join(words), label=0))
    a = audit(rows, [])
    near = a["duplicates"]["near"]
    assert near["pairs"] == 1 and near["groups"] == 1 and near["rows_involved"] == 2
    ex = near["examples"][0]
    assert ex["ids"] == ["r10", "edited"] and 0.9 < ex["jaccard"] < 1.0
    assert near["cross_domain_pairs"] == 1 and near["within_domain_pairs"] == 0  # r10 is in domain b
    assert a["duplicates"]["exact"]["cross_domain"]["groups"] == 0


def test_a_near_copy_with_the_other_label_is_counted_as_a_conflict():
    """Only exact copies were counted as conflicting: a misfiled near-copy (Jaccard 0.82) was not."""
    from gapscope.data.audit import duplicates_line

    rows = clean_rows()
    words = rows[10].text.split()
    words[len(words) // 2] = "CHANGED"
    rows.append(Row(id="misfiled", domain="b", text=" ".join(words), label=1))  # r10 is legitimate
    a = audit(rows, [])
    conflict = a["duplicates"]["near"]["conflicting_labels"]
    assert conflict["pairs"] == 1 and conflict["examples"][0]["ids"] == ["r10", "misfiled"]
    assert "1 pair with conflicting labels" in duplicates_line(a)
    assert audit(clean_rows(), [])["duplicates"]["near"]["conflicting_labels"]["pairs"] == 0


def test_near_duplicate_pairs_threshold():
    base = email(1, 200).split()
    far = list(base)
    for k in range(0, 200, 8):  # change every 8th word: Jaccard of 5-shingles falls well below 0.8
        far[k] = "x"
    texts = [" ".join(base), " ".join(base[:-2]), " ".join(far), email(2, 200)]
    pairs = near_duplicate_pairs(texts)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]


def test_leakage_between_train_and_test_ids_is_found():
    rows = clean_rows()
    rows.append(Row(id="t_exact", domain="a", text=rows[1].text, label=1))
    words = rows[3].text.split()
    words[5] = "tweaked"
    rows.append(Row(id="t_near", domain="a", text=" ".join(words), label=1))
    a = audit(rows, [], test_ids={"t_exact", "t_near", "r20"})
    tt = a["leakage"]["train_test"]
    assert (tt["exact_test_rows"], tt["near_test_rows"]) == (1, 1)
    assert tt["leaked_test_ids"] == ["t_exact", "t_near"]
    assert {e["kind"] for e in tt["examples"]} == {"exact", "near"}
    assert a["leakage"]["test_ids_given"] is True


def test_leakage_accepts_domain_id_pairs():
    rows = [Row(id="1", domain="a", text=email(1), label=1), Row(id="1", domain="b", text=email(1), label=1)]
    tt = audit(rows, [], test_ids={("b", "1")})["leakage"]["train_test"]
    assert (tt["train_rows"], tt["test_rows"], tt["exact_test_rows"]) == (1, 1, 1)


def test_sources_domains_style_and_write(tmp_path):
    rows = [
        Row(id="1", domain="a", text="URGENT!!! Visit http://x.example now", label=1,
            meta={"source": "a.jsonl", "had_html": False}),
        Row(id="2", domain="a", text="<p>see https://y.example and www.z.example</p>", label=0,
            meta={"source": "a.jsonl", "had_html": True}),
        Row(id="3", domain="b", text="lunch at 12", label=0, subject="lunch", meta={"source": "b.jsonl"}),
    ]
    rep = SourceReport(path="a.jsonl", domain="a", format="jsonl", rows_in=3, rows_kept=2)
    rep.reject("empty text")
    a = audit(rows, [rep, {"path": "b.jsonl", "domain": "b", "rows_in": 1}])
    assert a["sources"][0]["rejected_by_reason"] == {"empty text": 1}
    assert a["sources"][0]["style"]["html_share"] == 0.5 and a["sources"][1]["style"]["subject_share"] == 1.0
    dom = a["domains"]["a"]
    assert dom["n"] == 2 and dom["label_counts"] == {"phishing": 1, "legitimate": 1} and dom["phishing_share"] == 0.5
    assert dom["style"]["url_count_mean"] == 1.5 and dom["style"]["exclamation_share"] == 0.5
    assert a["domains"]["b"]["phishing_share"] == 0.0
    out = write_audit(tmp_path / "run" / "audit.json", a)
    assert json.loads(out.read_text()) == a
    assert a["leakage"]["test_ids_given"] is False and "train_test" not in a["leakage"]


def test_a_campaigns_variants_do_not_leak_from_training_to_test():
    # 300 variants of one template (2 of 120 words changed each) share LSH buckets far larger than
    # the all-pairs limit; checked as a chain and a star, 27 of 128 training variants kept a test
    # twin at Jaccard >= 0.8 after the split dropped "duplicates of test rows"
    import random

    from gapscope.data.audit import _shingles, _WordHashes, audit, normalise_text
    from gapscope.data.rows import Row
    from gapscope.study.runner import near_pairs
    from gapscope.study.split import drop_train_duplicates_of_test, split_held_out

    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(2000)]
    template = [rng.choice(vocab) for _ in range(120)]
    rows = []
    for k in range(300):
        toks = list(template)
        for _ in range(2):
            toks[rng.randrange(len(toks))] = f"var{rng.randrange(10**6)}"
        rows.append(Row(id=f"spam-{k}", domain="d", text=" ".join(toks), label=1))
    rows += [Row(id=f"ham-{k}", domain="d", text=" ".join(rng.choice(vocab) for _ in range(120)), label=0)
             for k in range(300)]
    by = {r.id: r for r in rows}
    train, test = split_held_out(rows, 0.3, 0)
    kept, report = drop_train_duplicates_of_test(by, train, test,
                                                 near_pairs(audit(rows, [], test_ids=set(test), train_ids=set(train))))
    words = _WordHashes()
    sh = {i: set(_shingles(normalise_text(by[i].text), words).tolist()) for i in kept + test}
    spam_test = [t for t in test if by[t].label == 1]
    twins = [i for i in kept if by[i].label == 1
             and max(len(sh[i] & sh[t]) / len(sh[i] | sh[t]) for t in spam_test) >= 0.8]
    assert twins == [] and report["removed_near"] > 0
    # split by duplicate groups (as the runner does), linked variants stay on one side: the split
    # itself leaves no test twin in training, and training keeps its variants (de-duplicated after a
    # row-by-row split, it lost most of them)
    from gapscope.data.audit import duplicate_group_of, duplicate_structure

    structure = duplicate_structure(rows)
    train2, test2 = split_held_out(rows, 0.3, 0, duplicate_group_of(len(rows), structure))
    kept2, report2 = drop_train_duplicates_of_test(
        by, train2, test2, near_pairs(audit(rows, [], test_ids=set(test2), train_ids=set(train2), structure=structure)))
    sh.update({i: set(_shingles(normalise_text(by[i].text), words).tolist()) for i in train2 + test2})
    spam_test2 = [t for t in test2 if by[t].label == 1]
    leaks = [i for i in train2 if by[i].label == 1
             and max(len(sh[i] & sh[t]) / len(sh[i] | sh[t]) for t in spam_test2) >= 0.8]
    # MinHash (80 permutations) reads a pair at Jaccard 0.8 below the 0.7 pre-filter about 1% of
    # the time: the split leaves at most that share of variants with an unlinked twin
    assert len(leaks) <= 0.02 * sum(by[i].label for i in train2), leaks
    assert report2["removed_near"] == 0 and len(kept2) == len(train2)
    assert sum(by[i].label for i in kept2) > 2 * sum(by[i].label for i in kept)


ZH = ("尊敬的客户：\n您尾号4821的信用卡本期账单金额为3560元，到期还款日为5月12日。如有疑问，请致电客服热线95588。"
      "感谢您的支持，祝您生活愉快。我行将持续为您提供优质的金融服务，欢迎您通过手机银行、网上银行或前往就近网点办理相关业务。")


def test_a_chinese_near_duplicate_is_found_on_characters():
    # split on whitespace, this email is two 'words' and one shingle: a copy with another amount
    # shared none, and near-copies of a Chinese template crossed the train/test split unseen
    assert near_duplicate_pairs([ZH, ZH.replace("3560", "3561")]) != []
    assert near_duplicate_pairs([ZH, ZH.replace("我行将持续", "本行会一直")]) != []
    other = "您好！您的订单已发货，承运商为顺丰速运，预计三天内送达。详情请打开手机应用查看，感谢您的光临，祝您购物愉快。"
    assert near_duplicate_pairs([ZH, other]) == []


def test_style_counts_chinese_words_and_full_width_exclamations():
    rows = [Row(id="z", domain="zh", text="感谢您的支持！祝您生活愉快！", label=0),
            Row(id="e", domain="en", text="Thanks for your support! Have a nice day!", label=0)]
    a = audit(rows, [])
    zh, en = a["domains"]["zh"]["style"], a["domains"]["en"]["style"]
    assert zh["mean_words"] == 12 and zh["exclamation_share"] == 1.0   # was 1 word, no exclamation
    assert en["mean_words"] == 8 and en["exclamation_share"] == 1.0


def test_a_minhash_estimate_on_the_bar_counts_as_reaching_it():
    # 56 of 80 agreeing minhashes is 0.7, and 0.8 - 0.1 is 0.7000000000000001 in floats: the pair was
    # never checked, and a campaign variant at Jaccard 0.81 kept its held-out twin
    import numpy as np

    from gapscope.data.audit import NUM_PERM, _link_large_buckets

    sig = np.zeros((2, NUM_PERM), dtype=np.uint32)
    sig[1, : NUM_PERM * 7 // 10] = 0
    sig[1, NUM_PERM * 7 // 10:] = 1
    assert (sig[0] == sig[1]).mean() == 0.7
    assert _link_large_buckets(sig, [[0, 1]], [], lambda i, j: 0.81, 0.8) == [(0, 1, 0.81)]
