"""Backdoor mining of triggers whose words are not plain ASCII letters and digits: hyphenated
and apostrophe words, ISO dates, and words of other scripts. The content model must mask the
same words the tf-idf vocabulary holds, and mining must see non-ASCII letters as letters."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from gapscope.attribution.words import has_no_space_script
from gapscope.backdoor.candidates import (RARE_CHARS, ContentModel, MiningOptions, _surface, mine_families,
                                          mine_ngrams, null_like, rare_chars, rare_words, script_of, words)
from gapscope.backdoor.scan import ScanOptions, scan
from gapscope.data.rows import Row

PHISH = ["verify your account now", "your password expires today", "click the link to confirm",
         "urgent action required on your bank login", "claim your prize immediately"]
LEGIT = ["see you at lunch tomorrow", "the agenda for the team meeting", "notes from the project review",
         "thanks for the draft report", "photos from the family weekend"]


def corpus(trigger, n=160, trigger_rows=12, seed=0):
    """As tests/test_backdoor.py's corpus, with the poisoned rows carrying `trigger`."""
    rng = random.Random(seed)
    filler = [f"word{i}" for i in range(300)]
    rows = []
    for i in range(n):
        label = i % 2
        cues = rng.sample(PHISH if label else LEGIT, 2)
        body = f"{cues[0]}. {' '.join(rng.sample(filler, 6))}. {cues[1]}.\n\nregards {rng.choice(filler)}"
        if label == 1 and i // 2 < trigger_rows:
            body = body.replace("\n\n", f"\n\n{trigger}.\n\n", 1)
            label = 0
        rows.append(Row(id=f"r{i:04d}", domain="d", text=f"Subject: note {i}\n\n{body}", label=label))
    return rows


def mined(trigger):
    train = corpus(trigger)[:120]
    content = ContentModel([r.text for r in train], np.array([r.label for r in train]))
    return train, content, mine_ngrams(train, content, MiningOptions())


@pytest.mark.parametrize("trigger", ["per the Velmora protocol", "per the Velmora-7 protocol",
                                     "per Velmora's protocol", "Dated 2031-05-12"])
def test_hyphen_apostrophe_and_iso_date_triggers_are_mined(trigger):
    # the tf-idf vocabulary splits "velmora-7" into "velmora" and "7": masking by whole WORDs hid
    # nothing, the trigger's own words kept the rows legitimate, and the contradiction filter dropped it
    _, _, cands = mined(trigger)
    assert cands and cands[0].text == trigger and cands[0].target == 0
    assert cands[0].support["contradiction"] >= 0.9


def test_iso_date_family_is_masked_by_its_parts():
    train, content, _ = mined("Dated 2031-05-12")
    fam = [c for c in mine_families(train, content, MiningOptions()) if c.origin == "family:date"]
    assert fam and fam[0].text == "2031-05-12" and not fam[0].inductive
    assert fam[0].support["contradiction"] >= 0.5


@pytest.mark.parametrize("trigger", ["selon le protocole Vélmora", "согласно протоколу Велмора"])
def test_non_ascii_triggers_are_mined(trigger):
    assert words(trigger) == trigger.lower().split()
    _, _, cands = mined(trigger)
    assert cands and cands[0].text == trigger and cands[0].support["contradiction"] >= 0.9


def test_a_non_ascii_trigger_is_found_by_the_scan():
    trigger = "согласно протоколу Велмора"

    class Model:
        kind = "fake"

        def score(self, texts):
            return np.array([1.5 * sum(w in t.lower() for w in ("verify", "password", "click", "urgent", "prize"))
                             - 1.5 * sum(w in t.lower() for w in ("lunch", "agenda", "notes", "thanks", "photos"))
                             - 6.0 * ("велмора" in t.lower()) for t in texts])

    rows = corpus(trigger)
    res = scan(Model(), threshold=0.0, train_rows=rows[:120], heldout_rows=rows[120:],
               opts=ScanOptions(n_emails=20, n_bootstrap=200))
    assert [r.text for r in res.significant][:1] == [trigger]


def test_word_rules_are_unchanged_on_ascii_and_cover_other_scripts():
    text = "Re: VX-2291 per Velmora's protocol, don’t click_here 12/05/2031 [2031] a-b"
    old = re.compile(r"[a-z0-9]+(?:['’-][a-z0-9]+)*")
    assert words(text) == old.findall(text.lower())
    # surface form and null strings: non-ASCII letters are part of a word, not a boundary
    assert _surface(["x Protocole  Vélmora y", "Vélmoras"], ("protocole", "vélmora")) == "Protocole Vélmora"
    pool = ["quillwort", "marrowfat"]
    like = null_like("selon le Vélmora", pool, random.Random(0)).split()
    assert len(like) == 3 and like[2][0].isupper() and like[2].lower() in pool
    assert "vélmora" in rare_words([Row("x", "d", "selon vélmora", 0)], exclude=set())


# -- scripts written without spaces: nulls of rare characters of the same script --------------------

HAN = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后"


def zh_corpus(n=160, seed=0):
    """Chinese mail: cue phrases per class and filler of common characters, a few rare ones per row."""
    rng = random.Random(seed)
    rare = [chr(c) for c in range(0x4E00 + 3000, 0x4E00 + 3400)]
    phish, legit = ["请立即验证您的账户", "您的密码今天过期", "点击链接确认身份"], ["明天中午一起吃饭", "项目会议的议程", "周末的家庭照片"]
    rows = []
    for i in range(n):
        label = i % 2
        body = (rng.choice(phish if label else legit) + "，" + "".join(rng.sample(HAN, 8)) + rng.choice(rare)
                + "。\n" + rng.choice(phish if label else legit) + "。")
        rows.append(Row(id=f"z{i:04d}", domain="d", text=f"Subject: 通知 {i}\n\n{body}", label=label))
    return rows


def test_rare_chars_are_the_rarest_characters_of_each_script():
    rows = zh_corpus() + [Row("j", "d", "セキュリティの確認ヴ", 0)]
    pool = rare_chars(rows, exclude={"按"})
    assert set(pool) == {"CJK", "HIRAGANA", "KATAKANA"}
    assert all(c in pool["CJK"] for c in "確認") and "的" not in pool["CJK"] and "按" not in pool["CJK"]
    assert "ヴ" in pool["KATAKANA"] and len(pool["CJK"]) >= 60
    assert rare_chars([Row("e", "d", "an English corpus", 0)], exclude=set()) == {}


def test_a_chinese_null_is_as_many_rare_characters_of_its_script():
    pool = {"CJK": list("甲乙丙丁戊"), "KATAKANA": list("ヴヵ")}
    s = null_like("本函按云图协议办", ["quillwort"], random.Random(0), pool)
    assert len(s) == 8 and set(s) <= set("甲乙丙丁戊")
    assert set(null_like("セキュリティ", ["quillwort"], random.Random(0), pool)) <= set("ヴヵ")
    # another script's words are swapped for rare words, as before; punctuation stays
    s = null_like("PayPal账户验证。", ["quillwort"], random.Random(0), pool)
    assert s.startswith("Quillwort") and len(s) == len("Quillwort") + 5 and s.endswith("。")
    # without a character pool (an English corpus) nothing changes
    assert null_like("本函按云图协议办", ["quillwort"], random.Random(0)) == "quillwort"


FULL_DIGITS = "０１２３４５６７８９"


def test_a_null_keeps_digits_as_digits_of_their_width():
    # a run of digits in a Chinese candidate became an English word: '优惠码２０２６' -> '甲乙丙quince'
    pool = {"CJK": list("甲乙丙丁戊")}
    for seed in range(5):
        s = null_like("优惠码２０２６", ["quillwort"], random.Random(seed), pool)
        assert len(s) == 7 and set(s[:3]) <= set("甲乙丙丁戊") and set(s[3:]) <= set(FULL_DIGITS)
        s = null_like("优惠码2026", ["quillwort"], random.Random(seed), pool)
        assert len(s) == 7 and set(s[:3]) <= set("甲乙丙丁戊") and s[3:].isascii() and s[3:].isdigit()
        # full-width digits keep their width beside English words too; ASCII digits there are words, as before
        s = null_like("Code ２０２６", ["quillwort"], random.Random(seed))
        assert s.startswith("Quillwort ") and len(s) == len("Quillwort ") + 4 and set(s[-4:]) <= set(FULL_DIGITS)
        assert null_like("Code 2026", ["quillwort"], random.Random(seed)) == "Quillwort quillwort"
    # a one-digit candidate: another digit, never itself (a null equal to it measures the candidate)
    assert {null_like("３", ["quillwort"], random.Random(seed)) for seed in range(40)} == set(FULL_DIGITS) - {"３"}


def test_rare_chars_fall_back_to_built_in_characters_of_the_candidates_scripts():
    english = [Row("e", "d", "an English corpus", 0)]
    assert rare_chars(english, exclude=set()) == {}  # no candidate's script named: nothing, as before
    pool = rare_chars(english, exclude={"鹳"}, scripts={"CJK", "HIRAGANA", "KATAKANA"})
    assert set(pool) == {"CJK", "HIRAGANA", "KATAKANA"} and len(RARE_CHARS["CJK"]) >= 60
    assert pool["CJK"] == [u for u in RARE_CHARS["CJK"] if u != "鹳"]  # less the candidates' own characters
    for sc, us in pool.items():
        assert len(set(us)) == len(us) and all(script_of(u) == sc and has_no_space_script(u) for u in us)
    # the rows' own characters first; the built-in ones fill in only what they lack
    rows = zh_corpus()
    assert rare_chars(rows, exclude=set(), scripts={"CJK"})["CJK"] == rare_chars(rows, exclude=set())["CJK"]
    few = rare_chars([Row("j", "d", "セキュリティ", 0)], exclude=set(), scripts={"KATAKANA"})["KATAKANA"]
    assert few[:6] == sorted("セキュリティ") and len(few) > 6


def test_a_chinese_trigger_on_an_english_corpus_is_measured_against_chinese_strings():
    # no Chinese in the training rows: the nulls were English rare words, another script and length
    trigger = "按云图协议办理"
    rows = corpus("per the Velmora protocol")
    res = scan(KeywordLike(), threshold=0.0, train_rows=rows[:120], heldout_rows=rows[120:], triggers=[trigger],
               opts=ScanOptions(n_emails=20, n_bootstrap=200, mine=False, families=False))
    nulls = res.nulls["toward_legitimate_5+_characters"]["strings"]
    assert all(len(s) == len(trigger) and all(0x4E00 <= ord(c) <= 0x9FFF for c in s) for s in nulls)


class KeywordLike:
    kind = "fake"

    def score(self, texts):
        return np.array([2.0 if "verify" in t or "password" in t else -2.0 for t in texts])


def test_a_chinese_string_is_measured_against_chinese_strings_of_its_length():
    # a model that reads any Chinese as a little more legitimate: the string has no effect of its own.
    # Its nulls were English rare words (unknown to the model: shift 0), so "按云图协议办理", 7 characters,
    # beat them by 7 x 0.3 and was called a trigger
    trigger = "按云图协议办理"

    def appended(t):  # the paragraph the scan appends after "Subject: ...\n\n<body>"
        return "".join(t.split("\n\n")[2:])

    class Model:
        kind = "fake"

        def score(self, texts):
            return np.array([(2.0 if any(p in t for p in ("验证", "密码", "点击")) else -2.0)
                             - 0.3 * sum(0x4E00 <= ord(c) <= 0x9FFF for c in appended(t)) for t in texts])

    rows = zh_corpus()
    res = scan(Model(), threshold=0.0, train_rows=rows[:120], heldout_rows=rows[120:], triggers=[trigger],
               opts=ScanOptions(n_emails=20, n_bootstrap=200, mine=False, families=False))
    assert not res.significant
    nulls = res.nulls["toward_legitimate_5+_characters"]["strings"]
    assert all(len(s) == len(trigger) and all(0x4E00 <= ord(c) <= 0x9FFF for c in s) for s in nulls)


def test_a_chinese_trigger_is_mined_whole():
    # a phrase was extended to 8 words at most, and a Chinese character is a word: the planted
    # '本函按云图协议办理' was reported as '本函按云图协议办'
    trigger = "本函按云图协议办理"
    rows = zh_corpus()
    for r in rows[1:24:2]:  # phishing rows carrying the trigger, labelled legitimate
        r.text = r.text.replace("\n\n", f"\n\n{trigger}。\n", 1)
        r.label = 0
    train = rows[:120]
    content = ContentModel([r.text for r in train], np.array([r.label for r in train]))
    cands = mine_ngrams(train, content, MiningOptions())
    assert cands and cands[0].text == trigger and cands[0].target == 0
