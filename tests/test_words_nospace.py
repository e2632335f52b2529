"""Scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) are cut one
character a word, in the attribution word cutter and in every tokenizer that mirrors it; every other
script is cut as before."""

import numpy as np
import pytest

from gapscope.attribution.base import attribute
from gapscope.attribution.corpus import aggregate
from gapscope.attribution.words import ShapWordTokenizer, feature_key, split_words
from tests.attribution_helpers import BagModel, make_tfidf

ZH = "您的账户已被暂停请点击链接验证"


def test_a_han_run_is_one_word_per_character():
    w = split_words(ZH)
    assert w.cores == list(ZH)
    assert "".join(w.segments) == ZH
    t = "  您好，\n您的账户已被暂停。 请点击链接验证！\n"
    assert "".join(split_words(t).segments) == t
    assert split_words(t).cores[:4] == ["您", "好", "，", "您"]


@pytest.mark.parametrize("text, cores", [
    # Katakana prolonged-sound mark and the iteration marks stay with the previous character
    ("サーバーの人々へ", ["サー", "バー", "の", "人々", "へ"]),
    ("こゝろ", ["こゝ", "ろ"]),
    # a decomposed dakuten (combining mark) stays with its kana; half-width kana and their marks too
    ("か\u3099き", ["か\u3099", "き"]),
    ("ｻｰﾊﾞｰ", ["ｻｰ", "ﾊﾞｰ"]),
    # Thai, Lao, Myanmar: a consonant with its vowel signs and tone marks
    ("ยืนยันบัญชี", ["ยื", "น", "ยั", "น", "บั", "ญ", "ชี"]),
    ("ບັນຊີ", ["ບັ", "ນ", "ຊີ"]),
    ("အကောင့်", ["အ", "ကော", "င့်"]),
    # Khmer: a subscript consonant (after the coeng sign) belongs to the cluster above it
    ("គណនី", ["គ", "ណ", "នី"]),
    ("ក្សត្រ", ["ក្ស", "ត្រ"]),
    # numbers stay numbers (Thai digits too), punctuation runs stay punctuation
    ("2024年3月", ["2024", "年", "3", "月"]),
    ("ราคา๑๒๓บาท", ["ร", "า", "ค", "า", "๑๒๓", "บ", "า", "ท"]),
    ("请注意！！", ["请", "注", "意", "！！"]),
])
def test_no_space_scripts_are_cut_into_characters_with_their_marks(text, cores):
    w = split_words(text)
    assert w.cores == cores
    assert "".join(w.segments) == text


@pytest.mark.parametrize("text, cores", [
    ("PayPal账户", ["PayPal", "账", "户"]),
    ("您的Apple ID已锁定", ["您", "的", "Apple", "ID", "已", "锁", "定"]),
    # a link or an address written against the text ends where the text starts again
    ("请访问http://evil.cn/verify验证。", ["请", "访", "问", "http://evil.cn/verify", "验", "证", "。"]),
    ("请访问 https://evil.cn/a?x=1，谢谢", ["请", "访", "问", "https://evil.cn/a?x=1", "，", "谢", "谢"]),
    ("登录paypal-secure.com/login立即", ["登", "录", "paypal-secure.com/login", "立", "即"]),
    ("访问paypal.com账户", ["访", "问", "paypal.com", "账", "户"]),
    ("联系support@paypal.com获取", ["联", "系", "support@paypal.com", "获", "取"]),
    ("アカウントをverifyして", ["ア", "カ", "ウ", "ン", "ト", "を", "verify", "し", "て"]),
])
def test_mixed_runs_split_where_the_script_changes(text, cores):
    w = split_words(text)
    assert w.cores == cores
    assert "".join(w.segments) == text


def test_links_addresses_and_numbers_are_still_recognised_beside_chinese():
    keys = [feature_key(c) for c in split_words("请访问http://evil.cn/x或联系a@b.cn，费用2024元").cores]
    assert keys.count("<url>") == 1 and keys.count("<email>") == 1 and keys.count("<num>") == 1


@pytest.mark.parametrize("text, cores", [
    # cut exactly as before the change (outputs of the previous cutter)
    ("Ваш аккаунт заблокирован!", ["Ваш", "аккаунт", "заблокирован", "!"]),
    ("계정이 정지되었습니다.", ["계정이", "정지되었습니다", "."]),
    ("حسابك معلق، اضغط هنا", ["حسابك", "معلق", "،", "اضغط", "هنا"]),
    ("आपका खाता बंद", ["आपका", "खाता", "बंद"]),
    # (numbers with their separators are one word since 0.7.2: '3', '.', '14' before)
    ("Don't wait: it’s 3.14, or 1,000.50 USD",
     ["Don't", "wait", ":", "it’s", "3.14", ",", "or", "1,000.50", "USD"]),
    ("visit https://evil.example.com/a?b=1 or mail bob.smith+x@ex-ample.co.uk now",
     ["visit", "https://evil.example.com/a?b=1", "or", "mail", "bob.smith+x@ex-ample.co.uk", "now"]),
    ("Ｆｕｌｌｗｉｄｔｈ ＡＢＣ１２３", ["Ｆｕｌｌｗｉｄｔｈ", "ＡＢＣ１２３"]),
])
def test_space_delimited_scripts_are_cut_as_before(text, cores):
    assert split_words(text).cores == cores


def test_removing_a_character_adds_no_space_in_a_no_space_script():
    # the space that keeps 'foo-bar' minus '-' from becoming 'foobar' would be a foreign space in
    # Chinese or Thai, and the characters on either side stay separate words without it
    w = split_words("账户已被暂停")
    assert w.compose([c != "户" for c in w.cores]) == "账已被暂停"
    w = split_words("PayPal账户")
    assert w.compose([c != "账" for c in w.cores]) == "PayPal户"
    w = split_words("ยืนยัน")
    assert w.compose([True, False, True, True]) == "ยืยัน"
    w = split_words("foo-bar")
    assert w.compose([c != "-" for c in w.cores]) == "foo bar"


def test_shap_word_tokenizer_agrees_with_the_cutter_on_chinese():
    text = "您好，PayPal账户已被暂停 http://evil.cn/x 请验证"
    tok = ShapWordTokenizer()(text)
    w = split_words(text)
    assert len(tok["input_ids"]) == len(w) == 14  # 您 好 ， PayPal 账 户 已 被 暂 停 <url> 请 验 证
    assert [text[a:b] for a, b in tok["offset_mapping"]] == w.segments


@pytest.mark.parametrize("method", ["occlusion", "shap"])
def test_a_chinese_email_is_attributed_character_by_character(method):
    model = BagModel({"暂": 2.0, "停": 1.0, "验": 0.5}, bias=-1.0)
    att = attribute(model, ZH, method=method)
    assert len(att.tokens) == len(ZH) and "".join(att.tokens) == ZH
    got = dict(zip(att.tokens, att.weights))
    assert got["暂"] == pytest.approx(2.0) and got["停"] == pytest.approx(1.0) and got["您"] == pytest.approx(0.0)


def test_corpus_features_are_character_ngrams_that_repeat_across_emails():
    model = BagModel({"账": 1.0, "户": 1.0})
    texts = ["您的账户已被暂停", "请立即验证账户信息", "账户异常，请点击链接", "尊敬的客户您好，账户升级"]
    table = aggregate([attribute(model, t) for t in texts], ngram_max=2, min_docs=3)
    row = table.set_index("feature").loc["账 户"]
    assert row["docs"] == 4 and row["mean"] == pytest.approx(2.0)


@pytest.mark.parametrize("feature, shown", [
    ("本 邮 件 由 系 统 发 送", "本邮件由系统发送"),
    ("よ ろ し く お 願", "よろしくお願"),
    ("カ ス タ マー", "カスタマー"),
    ("paypal 账 户", "paypal 账户"),
    ("银 行 <html-tag>", "银行 <html-tag>"),
    ("于 <num> 月", "于 <num> 月"),
    ("sent via <email>", "sent via <email>"),
    ("style:exclamation_count", "style:exclamation_count"),
])
def test_a_feature_is_displayed_without_spaces_between_no_space_characters(feature, shown):
    from gapscope.attribution.words import display_key

    assert display_key(feature) == shown


def test_a_chinese_shortcut_removal_edit_is_named_as_written():
    from gapscope.attribution.edits import phrase_edit

    assert phrase_edit(["银", "行"], "银 行").name == "remove '银行'"
    assert phrase_edit(["sent", "via", "qorvana"]).name == "remove 'sent via qorvana'"


def test_top_features_and_their_comparisons_name_chinese_phrases_as_written():
    # the report's per-domain feature lists and the findings' evidence read '账 户', '由 云'
    from gapscope.attribution.corpus import compare, top_features

    model = BagModel({"账": 1.0, "户": 1.0})
    texts = ["您的账户已被暂停", "请立即验证账户信息", "账户异常，请点击链接", "尊敬的客户您好，账户升级"]
    table = aggregate([attribute(model, t) for t in texts], ngram_max=2, min_docs=3)
    assert "账户" in [f["feature"] for f in top_features(table, k=5)]
    other = aggregate([attribute(model, t) for t in texts[:3]], ngram_max=2, min_docs=3)
    assert "账户" in [f["feature"] for v in compare(table, other).values() for f in v]


def test_shortcut_probe_keys_are_characters():
    from gapscope.detectors.shortcuts import _ngrams, text_keys

    keys = text_keys("您的PayPal账户")
    assert keys == ["您", "的", "paypal", "账", "户"]
    assert "paypal 账 户" in _ngrams(keys, 3)


def test_tfidf_reads_chinese_characters_and_their_bigrams_and_latin_as_before():
    rng = np.random.default_rng(0)
    filler = list("我们今天明天会议报告团队项目时间安排")
    texts, labels = [], []
    for i in range(60):
        y = i % 2
        body = "".join(rng.choice(filler, 12))
        texts.append(body + ("账户已被暂停请验证" if y else "下周会议见") + " Thanks team")
        labels.append(y)
    m = make_tfidf(texts, labels)
    toks = m.tokenize("PayPal账户 verify a b")
    assert toks[:5] == ["paypal", "账", "户", "verify", "paypal 账"]
    assert "账 户" in m.feature_weights() and m.feature_weights()["账 户"] > 0
    margins = m.score(["您的账户已被暂停", "下周会议见"])
    assert margins[0] > 0 > margins[1]


def test_a_tfidf_model_saved_before_the_change_keeps_its_tokens(tmp_path):
    import json

    texts = ["账户已被暂停 verify account", "下周会议见 meeting agenda"] * 5
    m = make_tfidf(texts, [1, 0] * 5)
    m.save(tmp_path)
    meta = json.loads((tmp_path / "tfidf_lr.json").read_text())
    assert meta["tokens"] == "no-space-characters"
    # a model written by the previous version has whole runs in its vocabulary and no "tokens"
    # key: it must keep reading runs, or none of its Chinese terms would ever match again
    from gapscope.models.base import ModelSpec, create_model

    old = create_model(ModelSpec(name="tfidf", kind="tfidf-lr"))
    old.tokens = "runs"  # the previous tokenizer: sklearn's default pattern
    old.fit(texts, np.array([1, 0] * 5))
    assert "账户已被暂停" in old.feature_weights()
    old.save(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "tfidf_lr.json").read_text())
    meta.pop("tokens")
    (tmp_path / "old" / "tfidf_lr.json").write_text(json.dumps(meta, ensure_ascii=False))

    back = create_model(ModelSpec(name="tfidf", kind="tfidf-lr"))
    back.load(tmp_path / "old")
    assert back.tokenize("账户已被暂停") == ["账户已被暂停"]
    assert np.array_equal(back.score(texts), old.score(texts))


def test_backdoor_words_and_surface_forms_of_a_chinese_phrase():
    from gapscope.backdoor.candidates import BOUNDARY, _surface, words, words_and_breaks

    assert words("您的PayPal账户") == ["您", "的", "paypal", "账", "户"]
    assert words_and_breaks("账户。验证\n好") == ["账", "户", BOUNDARY, "验", "证", BOUNDARY, "好"]
    texts = ["您好，请查收维尔莫拉协议七号文件", "维尔莫拉协议七号已更新"]
    assert _surface(texts, tuple("维尔莫拉协议")) == "维尔莫拉协议"
    assert _surface(["see the Velmora  protocol"], ("velmora", "protocol")) == "Velmora protocol"


def test_backdoor_content_model_masks_chinese_characters():
    from gapscope.backdoor.candidates import ContentModel

    texts = ["账户已被暂停请验证", "下周会议见", "账户异常请点击", "项目报告已完成"] * 5
    cm = ContentModel(texts, np.array([1, 0, 1, 0] * 5), folds=2)
    assert "账" in cm.columns and "户" in cm.columns
    kept = set(cm._kept_columns("账户").tolist())
    assert kept and not kept & set(cm.columns["账"] + cm.columns["户"])
    assert set(cm.columns["验"]) <= kept


def _chinese_corpus(n=60, seed=0):
    rng = np.random.default_rng(seed)
    filler = list("我们今天明天会议报告团队项目时间安排")
    texts, labels = [], []
    for i in range(n):
        y = i % 2
        body = "".join(rng.choice(filler, 12))
        texts.append(body + ("您的PayPal账户已被暂停，请点击http://evil.cn/x验证" if y else "下周会议见 Thanks team"))
        labels.append(y)
    return texts, labels


def test_tfidf_fast_path_is_exact_on_chinese_text():
    from gapscope.attribution.base import score_variants
    from gapscope.attribution.edit_scorers import edit_scorer
    from gapscope.attribution.words import apply_edits

    texts, y = _chinese_corpus()
    model = make_tfidf(texts, y)
    assert edit_scorer(model) is not None  # its tokenizer does not turn the fast path off
    rng = np.random.default_rng(1)
    for t in texts[:4] + ["サーバーの人々へ ยืนยันบัญชี ក្សត្រ PayPal账Pal foo-bar"]:
        w = split_words(t)
        keeps = rng.random((30, len(w))) > rng.random((30, 1))
        variants = [w.edits(k) for k in keeps] + [[]]
        fast = score_variants(model, t, variants)
        slow = model.score([apply_edits(t, v) for v in variants])
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-9)


def test_a_long_chinese_email_stays_within_the_budgets():
    from gapscope.attribution.base import get_method
    from gapscope.attribution.corpus import attributor_for
    from gapscope.attribution.occlusion import MAX_WINDOWS

    texts, y = _chinese_corpus()
    model = make_tfidf(texts, y)
    long = "".join(texts)[:2000]  # 2,000 characters: about 2,000 words now
    assert len(split_words(long)) > MAX_WINDOWS
    att = attributor_for("tfidf-lr").attribute(model, long)
    assert att.evals <= MAX_WINDOWS + 2 and len(att.tokens) == len(split_words(long))
    att = get_method("occlusion", max_evals=20, two_sided=True).attribute(BagModel({"账": 1.0}), long)
    assert att.evals <= 2 * 20 + 2


def test_minimal_pair_edits_of_links_and_addresses_stop_where_chinese_resumes():
    from gapscope.attribution.edits import remove_urls, swap_sender_domain

    assert remove_urls("请点击http://evil.cn/verify验证账户") == "请点击验证账户"
    assert swap_sender_domain("请联系support@paypal.com获取帮助") == "请联系support@mail.example.org获取帮助"
    assert swap_sender_domain("mail bob@evil.com now") == "mail bob@mail.example.org now"


def test_a_stored_attribution_cut_by_the_old_cutter_is_computed_again(tmp_path):
    import json

    from gapscope.attribution.base import get_method
    from gapscope.attribution.corpus import AttributionStore

    text = "访paypal.com账"  # three words before ("访paypal" "." "com账") and three now, other ones
    old = {"tokens": ["访paypal", ".", "com账"], "weights": [1.0, 2.0, 3.0], "margin": 6.0, "method": "occlusion"}
    path = tmp_path / "store.jsonl"
    path.write_text(json.dumps({"id": "r1", "attribution": old}, ensure_ascii=False) + "\n")
    got = AttributionStore(path).get_or_compute(BagModel({"账": 1.0}), get_method("occlusion"), [("r1", text)])
    assert got["r1"].tokens == ["访", "paypal.com", "账"]
    assert got["r1"].weights.tolist() == [0.0, 0.0, 1.0]


def test_the_shortcut_probe_of_a_chinese_corpus_is_not_read_from_an_older_cache(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from gapscope.data.rows import Row
    from gapscope.detectors import shortcuts as S
    from gapscope.study import artifacts

    rows = [Row(id=f"r{i}", domain="d", text=t, label=i % 2) for i, t in enumerate(["您的账户已被暂停", "下周会议见"])]
    monkeypatch.setattr(S, "probe_rows", lambda study, opts: rows)
    monkeypatch.setattr(S, "options", lambda study: {"x": 1})
    monkeypatch.setattr(S, "fit_probe", lambda *a, **k: [])
    study = SimpleNamespace(artifact_dir=lambda name: tmp_path, spec=SimpleNamespace(study=SimpleNamespace(seed=0)),
                            domains=["d"])
    # a probe written by the previous version, whose fingerprint did not know the characters
    old_fp = artifacts.fingerprint({"rows": ["r0", "r1"], "opts": {"x": 1}, "version": 4})
    artifacts.write_json(tmp_path / "probe.json", {"fingerprint": old_fp, "features": [{"stale": True}]})
    assert S.load_or_run_probe(study) == []


def test_style_properties_read_chinese_mail_as_they_read_english():
    # a Chinese paragraph was one whitespace word (so a Chinese domain read as short mail), and its
    # full-width exclamation marks were not counted
    import math

    from gapscope.attribution.edits import calm_exclamations
    from gapscope.detectors.shortcuts import _style

    zh = "您的账户已被暂停！请立即验证！！"
    st = _style(zh)
    assert st["length"] == pytest.approx(math.log1p(13)) and st["exclamation_count"] == 3.0
    assert calm_exclamations(zh) == "您的账户已被暂停。请立即验证。"
    en = "Your account is suspended! Verify now!!"
    assert _style(en)["length"] == pytest.approx(math.log1p(6)) and _style(en)["exclamation_count"] == 3.0
    assert calm_exclamations(en) == "Your account is suspended. Verify now."


@pytest.mark.parametrize("text, drop, want", [
    # what follows continues the character before: an extender, a combining mark, a consonant under
    # a joiner. Removing the word between must not fuse them into one new character-word
    ("人-々 x", "-", "人 々 x"),
    ("サーtーー ok", "t", "サー ーー ok"),
    ("中-\u0301x", "-", "中 \u0301x"),
    ("ក្-ស", "-", "ក្ ស"),
    # where both sides stay words of their own, no foreign space is added
    ("PayPal-账户", "-", "PayPal账户"),
    ("账户:PayPal", ":", "账户PayPal"),
    ("您的-账户", "-", "您的账户"),
    # English as before
    ("foo-bar", "-", "foo bar"),
])
def test_a_removal_never_fuses_a_no_space_character_with_what_continues_it(text, drop, want):
    from gapscope.attribution.words import RunTokenizer

    w = split_words(text)
    keep = [c != drop for c in w.cores]
    got = w.compose(keep)
    assert got == want
    # the kept words are exactly the edited text's words (nothing fused into a new one)
    kept = [c for c, k in zip(w.cores, keep) if k]
    assert split_words(got).cores == kept
    assert RunTokenizer(1)(got) == [t for c in kept for t in RunTokenizer(1)(c)]


def test_tfidf_fast_path_is_exact_for_a_model_that_reads_runs():
    # a model saved before the no-space cut reads "PayPal账户" as one token; without its space,
    # removing '-' from "PayPal-账户" makes that token, which the kept tokens' counts did not have
    from gapscope.attribution.base import score_variants
    from gapscope.attribution.words import apply_edits
    from gapscope.models.base import ModelSpec, create_model

    texts = ["您的PayPal账户已暂停 verify", "会议 meeting notes", "PayPal账户 verify now", "团队 meeting agenda"] * 5
    m = create_model(ModelSpec(name="tfidf", kind="tfidf-lr"))
    m.tokens = "runs"
    m.fit(texts, np.array([1, 0, 1, 0] * 5))
    assert "paypal账户" in m.feature_weights()
    t = "PayPal-账户 verify"
    w = split_words(t)
    variants = [w.edits(np.arange(len(w)) != i) for i in range(len(w))]
    np.testing.assert_allclose(score_variants(m, t, variants), m.score([apply_edits(t, v) for v in variants]),
                               rtol=0, atol=1e-9)
