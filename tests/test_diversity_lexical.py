"""Lexical diversity: sets are compared on a common token budget (a short set measured on all
it has looks more diverse), and words of any script are tokens."""

from __future__ import annotations

import random

import pytest

from gapscope.data.rows import Row
from gapscope.diversity.analysis import DiversityOptions, measure_sets
from gapscope.diversity.lexical import TOKEN, lexical_diversity
from gapscope.diversity.report import section_html


def _set(name, n, seed=0):
    """Rows drawn from one source: the same distribution whatever n."""
    rng = random.Random(seed)
    vocab = [f"w{j}" for j in range(400)]
    return [Row(f"{name}-{i}", name, " ".join(rng.choices(vocab, k=12)), i % 2) for i in range(n)]


def test_a_short_set_of_the_same_source_does_not_look_more_diverse():
    opts = DiversityOptions(n_tokens=2000, embeddings=False, proj_dim=16)
    out = measure_sets({"big": _set("big", 400), "small": _set("small", 20, seed=1)}, opts)
    big, small = out["big"], out["small"]
    for n in (1, 2):  # same source, same budget: about the same diversity
        assert small[f"distinct_{n}"] == pytest.approx(big[f"distinct_{n}"], abs=0.08)
    # 20 rows x 12 words = 240 tokens: both sets are measured on 240, the smaller set's count
    assert big["tokens"] == small["tokens"] == 240 and big["lexical_budget"] == 240
    assert small["short"] and not big["short"]
    cells = [{"model": "m", "paradigm": k, "metrics": {"n_rows": 1, **v}, "out_of_domain_f1": None}
             for k, v in out.items()]
    assert "240 tokens per set" in section_html({"cells": cells, "ratios": {}, "correlation": {}})


def test_sets_with_enough_tokens_keep_the_full_budget():
    opts = DiversityOptions(n_tokens=600, embeddings=False, proj_dim=16)
    out = measure_sets({"a": _set("a", 100), "b": _set("b", 60, seed=1)}, opts)
    assert out["a"]["tokens"] == out["b"]["tokens"] == 600 and not out["a"]["short"] and not out["b"]["short"]
    assert out["a"]["distinct_1"] == lexical_diversity([r.text for r in _set("a", 100)], 600)["distinct_1"]


def test_non_ascii_words_are_tokens():
    assert TOKEN.findall("Привет, как дела? Vérifiez votre compte_x") == [
        "Привет", ",", "как", "дела", "?", "Vérifiez", "votre", "compte", "_", "x"]
    assert TOKEN.findall("Re: don't click-here, ok?!") == ["Re", ":", "don't", "click-here", ",", "ok", "?", "!"]
    # two sets of the same structure, random 6-letter words, Latin vs Cyrillic: the same diversity
    rng = random.Random(0)

    def words(alpha):
        return [" ".join("".join(rng.choice(alpha) for _ in range(6)) for _ in range(20)) for _ in range(50)]

    lat = lexical_diversity(words("abcdefghijklmnopqrstuvwxyz"), 1000)
    cyr = lexical_diversity(words("абвгдежзийклмнопрстуфхцчшщыэюя"), 1000)
    assert lat["tokens"] == cyr["tokens"] == 1000 and cyr["distinct_1"] == pytest.approx(lat["distinct_1"], abs=0.01)


def test_chinese_text_is_counted_in_characters():
    # a Chinese clause was one token: 30 notices from one template, each with its own amount, read
    # as 30 distinct 'words' per position (distinct-1 near that of random text)
    from gapscope.diversity.lexical import token_sample

    assert token_sample(["您的账户已被暂停，请验证PayPal账户。"], 100) == [
        ["您", "的", "账", "户", "已", "被", "暂", "停", "，", "请", "验", "证", "paypal", "账", "户", "。"]]
    rng = random.Random(0)
    one_template = [f"您尾号{rng.randint(1000, 9999)}的信用卡本期账单金额为{rng.randint(100, 9999)}元，请按时还款。"
                    for _ in range(30)]
    assert lexical_diversity(one_template, 300)["distinct_1"] < 0.2


def test_the_gradient_proxy_reads_chinese_characters():
    from gapscope.diversity.gradient import GradientProxy

    texts = ["您的账户已被暂停请验证", "明天下午开会讨论项目", "点击链接验证您的账户", "会议纪要已发送给大家"] * 3
    proxy = GradientProxy(texts, [1, 0, 1, 0] * 3)
    vocab = set(proxy.vec.get_feature_names_out())
    assert {"账", "账 户", "会", "会 议"} <= vocab  # was four whole sentences
