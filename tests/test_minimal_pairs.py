"""Minimal pairs: the automatic edits, the per-domain summary, and the detector."""

import pytest

from gapscope.attribution import edits as E
from gapscope.data.synth import SynthConfig
from gapscope.detectors import minimal_pairs as M
from tests.study_helpers import mini_study

EMAIL = ("Subject: URGENT: verify your account\n\nDear customer,\n\nYour account will be suspended within 24 hours. "
         "Act now! Log in at https://secure-bank.example.xyz/login?id=42 immediately.\n\n"
         "Support team\nsupport@secure-bank.xyz")


def test_edits_change_only_what_they_name():
    no_url = E.remove_urls(EMAIL)
    assert "https://" not in no_url and "Log in at" in no_url and no_url.count("\n") == EMAIL.count("\n")
    assert E.remove_urls("no links here") is None
    swapped = E.swap_sender_domain(EMAIL)
    assert "support@mail.example.org" in swapped and "secure-bank.example.xyz/login" in swapped
    calm = E.neutralize_urgency(EMAIL)
    assert "URGENT" not in calm and "within 24 hours" not in calm and "immediately" not in calm
    assert "verify your account" in calm
    assert "Dear customer" not in E.drop_greeting(EMAIL) and "Your account" in E.drop_greeting(EMAIL)
    assert E.drop_greeting("Subject: x\n\nNo greeting here.") is None
    assert E.remove_phrase(EMAIL, ["support", "team"]) is not None
    assert "Support team" not in E.remove_phrase(EMAIL, ["support", "team"])
    assert E.remove_phrase(EMAIL, ["not", "there"]) is None
    assert {e.effect for e in E.EDITS} == {"cue-removing", "label-preserving"}


def test_summary_counts_flips_both_ways():
    recs = [
        {"domain": "a", "edit": "x", "effect": "label-preserving", "original": 2.0, "edited": -1.0, "label": 1},
        {"domain": "a", "edit": "x", "effect": "label-preserving", "original": 1.0, "edited": 0.5, "label": 1},
        {"domain": "b", "edit": "x", "effect": "label-preserving", "original": -1.0, "edited": 1.0, "label": 1},
        {"domain": "b", "edit": "x", "effect": "label-preserving", "original": -2.0, "edited": -2.5, "label": 0},
    ]
    s = M.summarize(recs, threshold=0.0)
    assert s[("x", "a")]["flip_rate"] == 0.5 and s[("x", "a")]["to_legitimate"] == 1
    assert s[("x", "b")]["to_phishing"] == 1
    # a flip onto the true label corrects an error (b's phishing email), one off it makes one (a's)
    assert (s[("x", "a")]["corrected"], s[("x", "a")]["broken"]) == (0, 1)
    assert (s[("x", "b")]["corrected"], s[("x", "b")]["broken"]) == (1, 0)
    assert s[("x", "*")]["n"] == 4 and s[("x", "*")]["mean_delta"] == pytest.approx((-3 - 0.5 + 2 - 0.5) / 4)


def test_severity_depends_on_what_the_edit_does():
    worst = {"flip_rate": 0.8, "n": 30}
    overall = {"flip_rate": 0.3}
    opts = M.DEFAULTS
    assert M._severity("label-preserving", worst, overall, opts) == "high"
    # half of a handful of emails is not evidence of a 50% flip rate (Wilson 95% low end 19%)
    assert M._severity("label-preserving", {"flip_rate": 0.5, "n": 10}, overall, opts) == "medium"
    lo, hi = M.flip_ci({"flip_rate": 0.5, "n": 8})
    assert 0.15 < lo < 0.25 and 0.75 < hi < 0.85
    assert M._severity("cue-removing", worst, overall, opts) == "low"
    # a cue-removing edit flipping one of two emails rules out nothing: info, not low
    assert M._severity("cue-removing", {"flip_rate": 0.5, "n": 2}, {"flip_rate": 0.3, "n": 10}, opts) == "info"
    assert M._severity("label-preserving", {"flip_rate": 0.6, "n": 5}, overall, opts) == "medium"
    # medium needs the sample to rule out a flip rate under the bar: one flip of five emails is
    # 20% but its Wilson low end is 4%, and over all 29 emails it was 2 flips
    assert M._severity("label-preserving", {"flip_rate": 0.2, "n": 5}, {"flip_rate": 2 / 29, "n": 29}, opts) == "low"
    assert M._severity("label-preserving", {"flip_rate": 0.25, "n": 8}, {"flip_rate": 0.35, "n": 40}, opts) == "medium"
    assert M._severity("label-preserving", {"flip_rate": 0.1, "n": 10}, {"flip_rate": 0.1}, opts) is None
    # one flip of one email: its Wilson low end (0.21) cleared the 0.2 bar on its own; medium
    assert M._severity("label-preserving", {"flip_rate": 1.0, "n": 1}, {"flip_rate": 1.0, "n": 1}, opts) == "low"
    assert M._severity("label-preserving", {"flip_rate": 1.0, "n": 4}, {"flip_rate": 1.0, "n": 4}, opts) == "low"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    cfg = SynthConfig(seed=5, n_per_domain=120, domains=["mailinglist", "corporate", "alerts"],
                      shortcut={"domain": "mailinglist"})
    study = mini_study(tmp_path_factory.mktemp("mp"), cfg)
    return study, M.run(study)


def test_detector_tables_every_edit_and_includes_the_suspected_shortcut(planted):
    from gapscope.study import artifacts

    study, findings = planted
    table = artifacts.read_json(study.run_dir / "diagnostics" / "minimal_pairs" / "edits.json")
    edits = {r["edit"] for r in table}
    assert {"remove_urls", "drop_greeting", "neutralize_urgency"} <= edits
    string = study.manifest["shortcut"]["string"].lower()
    shortcut_edits = [e for e in edits if e.startswith("remove '")]
    assert any(e[len("remove '"):-1] in string for e in shortcut_edits)
    spec = next(c for c in study.cells if c.paradigm == "specialist:mailinglist")
    rows = [r for r in table if r["cell"] == spec.name and r["domain"] == "mailinglist"
            and r["edit"] in shortcut_edits and r["edit"][len("remove '"):-1] in string]
    assert rows and rows[0]["mean_delta"] < 0  # removing the planted phishing marker lowers the margin
    # the report shows every domain's flips, not only the all-domain row
    sections = artifacts.read_json(study.run_dir / "diagnostics" / "minimal_pairs" / "section.json")
    per_dom = next(s for s in sections if s["id"] == "minimal-pairs-domains")["table"]
    assert per_dom["columns"][2:] == sorted(study.domains)
    r = rows[0]
    shown = next(x for x in per_dom["rows"] if x[:2] == [spec.name, r["edit"]])
    assert shown[2 + sorted(study.domains).index("mailinglist")] == f"{r['to_phishing'] + r['to_legitimate']}/{r['n']}"
    # a finding for every (cell, edit) whose table clears the bar, and none for the rest
    flagged = {(f.evidence["cell"], f.evidence["edit"]) for f in findings}
    for row in [x for x in table if x["domain"] == "*" and x["n"]]:
        doms = {x["domain"]: x for x in table if x["cell"] == row["cell"] and x["edit"] == row["edit"]
                and x["domain"] != "*" and x["n"]}
        eligible = {d: x for d, x in doms.items() if x["n"] >= M.DEFAULTS["min_emails"]} or doms
        worst = max(eligible.values(), key=lambda x: (x["flip_rate"], x["domain"]))
        sev = M._severity(row["effect"], worst, row, M.DEFAULTS, picked_from=len(eligible))
        assert ((row["cell"], row["edit"]) in flagged) == (sev is not None), row
    for f in findings:
        assert f.kind == "edit_sensitivity"
        o = f.evidence["overall"]  # the overall split is said, not only the headline domain's
        assert f"({o['corrected']} correcting an error, {o['broken']} making one)" in f.summary
        pair = f.evidence["example_pair"]
        if pair:
            assert {"tokens", "weights", "text"} <= set(pair["original"]) <= set(pair["edited"]) | {"text"}
            assert pair["original"]["text"] != pair["edited"]["text"]


def test_an_edit_is_quoted_once_in_a_title():
    # a shortcut edit's name holds its quotes: the title read "'remove 'sent via relay''"
    assert M._quoted("remove 'sent via relay'") == "remove 'sent via relay'"
    assert M._quoted("drop_greeting") == "'drop_greeting'"


def test_an_edit_past_the_model_window_is_counted_not_scored(monkeypatch):
    """A model that reads 6 words: removing the last line's footer changes nothing it reads, so those
    emails are counted as not in view (never a 0% flip rate 'measured' on text the model never saw)."""
    from types import SimpleNamespace

    from gapscope.attribution import corpus as C
    from gapscope.data.rows import Row

    class FirstWords:
        kind = "causal-lm"
        scored: list[str] = []

        def tokenize(self, text):
            return text.split()[:6]

        def score(self, texts):
            self.scored += list(texts)
            return [2.0 if "urgent" in self.tokenize(t) else -2.0 for t in texts]

    rows = [Row(id=f"r{i}", domain="d", label=i % 2,
                text=("urgent " if i % 2 else "hello ") + "a b c d e f g h -- sent via relay") for i in range(8)]
    rows[0].text = "hello relay a b c d e f g h"  # here the footer word sits in view
    study = SimpleNamespace(domains=["d"], test_rows=lambda d: rows, distinct_test_rows=lambda d: rows, spec=SimpleNamespace(study=SimpleNamespace(seed=0)))
    model = FirstWords()
    monkeypatch.setattr(C.ModelCache, "get", classmethod(lambda cls, s, c: model))
    cell = SimpleNamespace(kind="causal-lm", name="m__specialist-d")
    recs = M.pairs_for_cell(study, cell, [E.phrase_edit(["relay"])], {**M.DEFAULTS, "emails_per_domain_llm": 8})
    s = M.summarize(recs, 0.0)[("remove 'relay'", "*")]
    assert s["n"] == 1 and s["unseen"] == 7 and s["flip_rate"] == 0.0
    assert sum("-- sent via" in t for t in model.scored) == 7  # the originals only, not their edits
    past = M.summarize([r for r in recs if r.get("unseen")], 0.0)[("remove 'relay'", "*")]
    assert past["n"] == 0 and past["flip_rate"] is None and past["mean_delta"] is None


def test_the_worst_of_several_domains_is_read_with_a_wider_interval():
    """A flip rate of 0.35 everywhere: the worst of six domains of 16 emails can read 0.69, whose plain
    95% Wilson interval (0.44-0.86) stops short of 0.5 only just; picked from six it is not high."""
    worst, overall = {"flip_rate": 12 / 16, "n": 16}, {"flip_rate": 0.35, "n": 96}
    assert M._severity("label-preserving", worst, overall, M.DEFAULTS) == "high"  # as if named in advance
    assert M._severity("label-preserving", worst, overall, M.DEFAULTS, picked_from=6) == "medium"
    lo1, hi1 = M.flip_ci(worst)
    lo6, hi6 = M.flip_ci(worst, 6)
    assert lo6 < lo1 and hi6 > hi1


def test_greetings_go_and_the_rest_of_their_line_stays():
    cases = {
        "Hi Bob, wire the $4,800 to the new vendor today.\nThanks": "wire the $4,800 to the new vendor today.\nThanks",
        "Subject: Invoice\n\nHello, your mailbox is full.\n": "Subject: Invoice\n\nyour mailbox is full.\n",
        "Subject: x\n\nDear valued customer of Bank,\nYour card": "Subject: x\n\nYour card",
        "Good day,\nI am Mr X": "I am Mr X", "Dearest friend,\nhello": "hello", "Hiya\nok": "ok",
        "Dear Sir/Madam,\nhi": "hi", "Hello!\nWe": "We", "Hi team: the notes": "the notes",
        # a header without a blank line (Enron), and Windows line ends
        "Subject: meeting\nDear John,\nYour card": "Subject: meeting\nYour card",
        "Subject: meeting\r\n\r\nDear John,\r\nYour card": "Subject: meeting\r\n\r\nYour card",
    }
    for text, want in cases.items():
        assert E.drop_greeting(text) == want, text
    # not greetings, or not where a greeting is: nothing to drop
    for text in ("Attention: your mailbox will be closed\nThanks", "Morning meeting moved to 10\nbye",
                 "Subject: lunch\n\nsee you at noon\nthe room is booked\nHi there, later",
                 # the message itself, not a salutation: a label-preserving edit must not remove it
                 "Hello your account has been locked!\nClick below.", "Hey you must verify your password: http://x.co"):
        assert E.drop_greeting(text) is None, text


def test_a_first_line_that_is_the_message_is_no_greeting():
    # after a greeting word, up to four words of anything ending the line counted as a name: the
    # edit removed "verify your account", the phishing cue, and the flip was blamed on a greeting
    for text in ("Hello your account is locked\nClick below", "Hi verify your account\nhttps://evil.com/login",
                 "Hey urgent request\nI need gift cards", "Hello your account is locked, click here\nok",
                 # Title Case messages end a line, a ":" or a "!" too
                 "Hello Verify Your Account!\nx", "Dear Customer Action Required:\nx", "Hi URGENT PAYMENT NEEDED\nx"):
        assert E.drop_greeting(text) is None, text
    cases = {
        "Dear Valued Customer:\nYour account": "Your account", "Dear PayPal Member:\nx": "x",
        "Dear john.doe@company.com,\nx": "x", "Hello jdoe@acme.org,\nx": "x", "Dear account holder,\nx": "x",
        "Dear Mr Smith:\nx": "x", "hi john,\nx": "x", "Hello there,\nx": "x", "Dear Dr. van der Berg,\nx": "x",
        "Dear friends and family,\nx": "x", "Hi Ms. García,\nx": "x", "Hello Jean-Luc,\nx": "x",
        # pasted mail opens with its headers: the greeting is the body's
        "From: a@b.com\nSubject: hi\n\nDear Customer,\nx": "From: a@b.com\nSubject: hi\n\nx",
        "To: you@x.org\nDate: today\nHi Ann,\nx": "To: you@x.org\nDate: today\nx",
        "Subject:Invoice\nFrom: x@y.z\n\nDear Bob,\nx": "Subject:Invoice\nFrom: x@y.z\n\nx",
    }
    for text, want in cases.items():
        assert E.drop_greeting(text) == want, text


def test_deadlines_as_phishing_writes_them_go():
    for text in ("Please verify within 1 hour or", "respond within 1 day or", "within 24hrs or",
                 "within 48-hours or", "within the next 24 hours or", "it expires in 24 hours or", "expiring today or",
                 "act within 30 mins or"):
        calm = E.neutralize_urgency(text)
        assert calm is not None and not any(c.isdigit() for c in calm) and "today" not in calm, text
        assert calm.rstrip().endswith("or"), text


def test_links_as_phishing_writes_them_are_links():
    text = ("Visit https://a.example/x or bit.ly/3xYz or HTTP://B.EXAMPLE/y, hxxp://evil.com/a, evil[.]com/x "
            "and paypal-secure.com/login today. Mail support@secure-bank.xyz, U.S. office, e.g. this/that.")
    out = E.remove_urls(text)
    for gone in ("https://", "bit.ly", "B.EXAMPLE", "hxxp", "evil[.]com", "paypal-secure"):
        assert gone not in out, gone
    for kept in ("support@secure-bank.xyz", "U.S. office", "e.g. this/that", "today"):
        assert kept in out, kept
    # a country's TLD, a port, a query, any TLD with a path, an IP with a path, a defanged scheme:
    # each went in part ("visit .br/login") or not at all
    for link in ("banco.com.br/login", "banco.com.br", "evil.com:8080/path", "evil.com?x=1", "evil.fr/login",
                 "bank.in/x", "evil.icu/x", "192.168.1.1/login", "http[:]//evil.com/x"):
        assert E.remove_urls(f"visit {link} now") == "visit  now", link
    for prose in ("and/or 3.5/5 km/h", "version 1.2.3.4 released", "file.txt is here", "node.js/react",
                  "report.pdf/docx", "sales.team/marketing", "config.yaml?ref=1", "C:/Users/john.doe/Documents",
                  "1.234.567.890/yr"):
        assert E.remove_urls(prose) is None, prose
    assert E.remove_urls("Is it evil.com? Yes") == "Is it ? Yes"
    # a brand's capitals are still a link ("PayPal.com"); an address that starts with www is an address
    for link in ("PayPal.com/verify", "Amazon.com", "Evil.com/x", "Secure-Bank.co.uk"):
        assert E.remove_urls(f"visit {link} now") == "visit  now", link
    assert E.remove_urls("write to x@www.evil.com now") is None
    assert E.remove_urls("write to x@mail.www.evil.com now") is None
    assert E.remove_urls("Click here...www.evil-bank.com/login now") == "Click here... now"
    # text that lost its spaces is prose, not a link ("to", "me", "live" are TLDs too)
    for prose in ("verify your account.Click the link", "sent to you.To confirm", "built on ASP.NET", "we are done.live"):
        assert E.remove_urls(prose) is None, prose

    # urgency words and addresses inside a link belong to the link; spacing elsewhere stays
    calm = E.neutralize_urgency("This is urgent: https://x.example.com/urgent-action?now. Thanks,  Bob\n    table")
    assert "x.example.com/urgent-action?now" in calm and "urgent:" not in calm and "Thanks,  Bob\n    table" in calm
    swapped = E.swap_sender_domain("write to admin@evil.com or https://admin@portal-secure.com/verify")
    assert "admin@mail.example.org" in swapped and "https://admin@portal-secure.com/verify" in swapped


def test_an_edit_in_view_does_not_pull_unseen_text_into_a_truncating_model():
    """A model that reads the first six words: dropping the greeting would bring 'urgent', past its
    view, into it. At c51d90c every such pair flipped (flip rate 1.0, high)."""
    from types import SimpleNamespace

    from gapscope.attribution import corpus as C
    from gapscope.data.rows import Row

    class FirstWords:
        kind = "causal-lm"

        def tokenize(self, text):
            return text.split()[:6]

        def score(self, texts):
            return [2.0 if "urgent" in self.tokenize(t) else -2.0 for t in texts]

    rows = [Row(id=f"r{i}", domain="d", label=0, text="Hi Bob,\nplease see the note below urgent reply needed")
            for i in range(6)]
    study = SimpleNamespace(domains=["d"], test_rows=lambda d: rows, distinct_test_rows=lambda d: rows, spec=SimpleNamespace(study=SimpleNamespace(seed=0)))
    get = C.ModelCache.get
    C.ModelCache.get = classmethod(lambda cls, s, c: FirstWords())
    try:
        recs = M.pairs_for_cell(study, SimpleNamespace(kind="causal-lm", name="x"),
                                [e for e in E.EDITS if e.name == "drop_greeting"], {**M.DEFAULTS, "emails_per_domain_llm": 6})
    finally:
        C.ModelCache.get = get
    s = M.summarize(recs, 0.0)[("drop_greeting", "*")]
    assert s["n"] == 6 and s["flip_rate"] == 0.0
    assert all(r["text"] == "please see the note" for r in recs)  # what the original showed, less the greeting
    assert M.visible_end(FirstWords().tokenize, "a b c") is None  # read whole: nothing to cut


ZH_EMAIL = ("Subject: 【紧急】账户安全验证\n\n尊敬的用户，您好：\n系统检测到您的账户有风险，请在24小时内点击以下链接"
            "验证您的身份：http://icbc-secure.cn/verify?id=24小时内\n否则账户将被永久冻结。")
JA_EMAIL = ("Subject: 【至急】お支払い情報の更新\n\nお客様各位\nお支払い方法の確認ができませんでした。"
            "24時間以内に以下のリンクからログインしてください。\nhttps://mufg-login.info/login")


def test_urgency_and_greeting_edits_read_chinese_and_japanese():
    # on a Chinese or Japanese corpus both edits applied to no email: the per-domain table was blank,
    # "no email of that domain carries what the edit changes", beside mail full of 紧急 and 尊敬的客户
    calm = E.neutralize_urgency(ZH_EMAIL)
    assert "紧急" not in calm and "【】" not in calm and "请点击以下链接" in calm
    assert calm.endswith("http://icbc-secure.cn/verify?id=24小时内\n否则账户将被永久冻结。")  # links stay whole
    assert E.drop_greeting(ZH_EMAIL) == ZH_EMAIL.replace("尊敬的用户，您好：\n", "")
    calm = E.neutralize_urgency(JA_EMAIL)
    assert "至急" not in calm and "24時間以内に" not in calm and "以下のリンクからログインしてください" in calm
    assert E.drop_greeting(JA_EMAIL) == JA_EMAIL.replace("お客様各位\n", "")
    for text, rest in [("亲爱的会员，您的订单已发货。", "您的订单已发货。"), ("您好！您关注的商品已降价。", "您关注的商品已降价。"),
                       ("亲，恭喜您获得返现", "恭喜您获得返现"), ("尊敬的客户您好，账单已生成", "账单已生成"),
                       ("田中様\nお世話になっております。", "お世話になっております。")]:
        assert E.drop_greeting("Subject: x\n\n" + text) == "Subject: x\n\n" + rest
    assert E.neutralize_urgency("请立即更新，马上处理，尽快回复") == "请更新，处理，回复"


@pytest.mark.parametrize("text,rest", [
    ("各位同事：\n下周一放假。", "下周一放假。"),
    ("各位客户，您好！请查收账单", "请查收账单"),
    ("尊敬的 Apple ID 用户：\n您的账户已锁定", "您的账户已锁定"),  # a name with spaces
    ("Hi 王先生，请查收附件", "请查收附件"),  # an English greeting, a full-width comma
    # 各位/大家 + an addressee or a time of day + 好, alone on its line or before a comma, colon or ！
    ("各位好，请查收附件", "请查收附件"),
    ("各位好！\n下周一放假。", "下周一放假。"),
    ("各位同事好：\n会议改到周五。", "会议改到周五。"),
    ("各位早上好\n会议改到周五。", "会议改到周五。"),
    ("大家下午好！本周例会取消", "本周例会取消"),
    ("各位申请人：\n请补交材料。", "请补交材料。"),
    ("各位同事们，大家好！\n会议改到周五。", "会议改到周五。"),
    ("各位领导、同事好！\n会议改到周五。", "会议改到周五。"),  # addressees joined by 、
    ("各位老师、家长、同学：\n明天停课。", "明天停课。"),  # 大家好 was left behind  # 请 inside the addressee, not opening it
])
def test_more_chinese_salutations_go(text, rest):
    assert E.drop_greeting("Subject: x\n\n" + text) == "Subject: x\n\n" + rest


@pytest.mark.parametrize("text", [
    "尊敬的客户您的账户已被冻结！请核实",    # no comma: the sentence itself, not a salutation
    "各位注意安全",                        # 各位 then a sentence: no comma, colon or 您好
    "各位请注意防范诈骗邮件",
    "各位请注意账户安全。",
    "各位请注意，账户存在被盗风险",         # 请 begins the message: no addressee starts with it
    "各位请注意：\n账户存在被盗风险",
    "各位注意，账户存在被盗风险",
    "各位都好，下周见",
    "各位领导、同事都好！",                 # an adverb before 好, after a list of addressees too
    "各位最近都好！",                      # "everyone is well": an adverb before 好 makes it a sentence
    "各位好好学习",                        # 好 then more text: no salutation ends there
    "大家都好！",
    "亲自去网点办理即可。",
    "お客様のアカウントに不正なアクセスが検出されました。",
    "下周会议的资料已上传。",
])
def test_a_chinese_or_japanese_sentence_is_no_greeting(text):
    assert E.drop_greeting("Subject: x\n\n" + text) is None


@pytest.mark.parametrize("text,calm", [
    # Korean phishing read no urgency word: the edit applied to no email of a Korean corpus
    ("즉시 로그인하여 확인하십시오", "로그인하여 확인하십시오"),
    ("24시간 이내에 인증하지 않으면 계정이 정지됩니다", "인증하지 않으면 계정이 정지됩니다"),
    ("[긴급] 계정 보안 알림", "계정 보안 알림"),
    ("지금 바로 확인하세요. 계정이 즉시 정지됩니다.", "확인하세요. 계정이 정지됩니다."),
    ("오늘 중으로 결제하세요", "결제하세요"),
    ("긴급 공지: 조속히 확인 바랍니다 http://kb-secure.kr/즉시", "공지: 확인 바랍니다 http://kb-secure.kr/즉시"),
    # a word that only contains one: 긴급하지 (not urgent), 즉시성 (immediacy), 오늘날 (nowadays)
    ("긴급하지 않은 문의입니다", None), ("즉시성 검토 결과", None), ("오늘날 많은 고객이", None),
])
def test_korean_urgency_words_go(text, calm):
    assert E.neutralize_urgency(text) == calm


@pytest.mark.parametrize("text,rest", [
    ("고객님, 안녕하세요.\n계정이 일시 정지되었습니다.", "계정이 일시 정지되었습니다."),
    ("안녕하세요, 국민은행입니다.", "국민은행입니다."),
    ("친애하는 회원님,\n결제가 실패했습니다.", "결제가 실패했습니다."),
    ("홍길동 님께\n안내드립니다.", "안내드립니다."),
    ("김철수 고객님: 안녕하세요!\n확인 바랍니다.", "확인 바랍니다."),
    ("고객님의 계정이 정지되었습니다.", None),  # 님 then a particle: the message
    ("고객님 계정이 정지되었습니다", None),      # no comma, colon or line end after 님
])
def test_korean_salutations_go(text, rest):
    got = E.drop_greeting("Subject: x\n\n" + text)
    assert got == (None if rest is None else "Subject: x\n\n" + rest)


def test_korean_patterns_are_linear_on_long_lines():
    import time

    t0 = time.process_time()  # CPU time: another job on the machine does not count
    for text in ["가" * 100_000, "가 " * 50_000, "1" * 50_000 + "시간", "고객 " * 30_000]:
        E.drop_greeting(text), E.neutralize_urgency(text)
    assert time.process_time() - t0 < 2.0


def test_mail_without_urgency_words_is_left_alone_in_chinese_and_japanese():
    assert E.neutralize_urgency("您的订单已发货，预计3天后送达。") is None
    assert E.neutralize_urgency("会議の資料を共有いたします。") is None
    # English is edited as before, whatever else the text holds
    assert E.neutralize_urgency("Act now! 请查收") == "reply! 请查收"


@pytest.mark.parametrize("text", [
    "我们已建立即时通讯渠道。",      # 建立 + 即时 (instant messaging), no 立即
    "公司设立即日起生效。",          # 设立 + 即日起
    "今日内容：季度报告。",          # 今日 + 内容 (today's content)
    "他每天骑马上班。",              # 骑马 + 上班 (rides a horse to work), no 马上
    "检测到木马上传行为。",          # 木马 + 上传 (a Trojan uploading)
    "3月15日内部审计已完成。",        # the 15th + 内部 (internal audit)
    "今天内部会议改到下午。",        # today's internal meeting
])
def test_chinese_words_that_only_contain_an_urgency_word_are_left_alone(text):
    assert E.neutralize_urgency(text) is None


def test_chinese_urgency_still_goes_beside_those_guards():
    assert E.neutralize_urgency("请立即建立连接，请在24小时内完成，今日内回复") == "请建立连接，请完成，回复"
    assert E.neutralize_urgency("请在２４小时内点击") == "请点击"  # full-width digits
    assert E.neutralize_urgency("请于24小时内在线完成验证") == "请在线完成验证"
    assert E.neutralize_urgency("请今天晚上马上处理") == "请今天晚上处理"  # 上 before 马上: a time word


def test_chinese_urgency_is_linear_in_a_long_run_of_digits():
    # \d+ before 小时/時間 retried at every digit of a run: 20,000 digits took 12 s (100 KB: minutes)
    import time

    text = "请点击" + "9" * 20000
    t0 = time.process_time()
    assert E.neutralize_urgency(text) is None
    assert time.process_time() - t0 < 1.0


def test_copies_of_one_email_are_one_email(monkeypatch):
    # 8 held-out copies of one campaign and 1 other email read as n = 9, flip rate 0.89, high,
    # on one flipped text; the split's copy groups now keep one of each
    from types import SimpleNamespace

    from gapscope.attribution import corpus as C
    from gapscope.data.rows import Row
    from gapscope.study.context import Study

    class KeysOnTheGreeting:
        kind = "tfidf-lr"

        def score(self, texts):
            return [1.0 if "Dear customer" in t else -1.0 for t in texts]

    camp = "Subject: Invoice\n\nDear customer,\nYour invoice is attached."
    rows = [Row(id=f"c{i}", domain="d", label=0, text=camp) for i in range(8)]
    rows += [Row(id="o0", domain="d", label=1, text="Subject: hi\n\nHello,\nmeeting at 3")]
    study = Study.__new__(Study)  # a run's rows and splits, without the run
    study.__dict__.update(rows={r.id: r for r in rows},
                          splits={"test": [r.id for r in rows], "copy_groups": {f"c{i}": 7 for i in range(8)}})
    assert [r.id for r in study.distinct_test_rows("d")] == ["c0", "o0"]
    fake = SimpleNamespace(domains=["d"], distinct_test_rows=study.distinct_test_rows,
                           spec=SimpleNamespace(study=SimpleNamespace(seed=0)))
    monkeypatch.setattr(C.ModelCache, "get", classmethod(lambda cls, s, c: KeysOnTheGreeting()))
    edit = [e for e in E.EDITS if e.name == "drop_greeting"]
    s = M.summarize(M.pairs_for_cell(fake, SimpleNamespace(kind="tfidf-lr", name="x"), edit, M.DEFAULTS), 0.0)
    assert s[("drop_greeting", "d")]["n"] == 2 and s[("drop_greeting", "d")]["to_legitimate"] == 1


def test_a_finding_on_the_overall_rate_headlines_it(monkeypatch, tmp_path):
    # domain a (10 emails) flips none, b and c (4 each) flip all: the overall 8 of 18 made a medium
    # finding titled "flips 0 of 10 decisions (0%) in a", with no example and a score of 0
    from types import SimpleNamespace

    def recs(study, cell, edits, opts):
        return [{"domain": d, "edit": "drop_greeting", "effect": "label-preserving", "id": f"{d}{i}", "label": 0,
                 "original": -1.0, "edited": 1.0 if i < flip else -1.0, "text": "x"}
                for d, n, flip in (("a", 10, 1), ("b", 4, 4), ("c", 4, 4)) for i in range(n)]

    monkeypatch.setattr(M, "pairs_for_cell", recs)
    monkeypatch.setattr(M, "describe_cell", lambda c: "tfidf trained on a")
    monkeypatch.setattr(M, "_example_pair", lambda study, cell, edit, ex: {"id": ex["id"]})
    cell = SimpleNamespace(name="tfidf__specialist-a", model="tfidf", paradigm="specialist:a", kind="tfidf-lr",
                           threshold=0.0)
    study = SimpleNamespace(domains=["a", "b", "c"], detector_options=lambda n, d, r: {**d, "shortcut_edits": 0},
                            detector_cells=lambda n: [cell], artifact_dir=lambda n: tmp_path, rows={})
    (f,) = M.run(study)
    assert f.severity == "medium" and "flips 9 of 18 decisions (50%) over all test domains" in f.title
    assert "most in b, c, a" in f.title and f.domains == ["b", "c", "a"] and f.score == pytest.approx(9 / 18)
    assert f.evidence["example_pair"] == {"id": "b0"}
    # the sentence about the domain shown gives that domain's own numbers (it gave a's 1 of 10 as b's)
    assert "In b it changes 100% (95% CI" in f.summary and "of 4 decisions (0 to legitimate, 4 to phishing" in f.summary


def test_a_campaign_sent_to_two_domains_keeps_one_copy_in_each():
    # the group's lowest id over all domains was kept: the domain without it lost the campaign
    from gapscope.data.rows import Row
    from gapscope.study.context import Study

    rows = [Row(id="a1", domain="bank", label=1, text="win"), Row(id="b1", domain="shop", label=1, text="win"),
            Row(id="b2", domain="shop", label=1, text="win"), Row(id="b3", domain="shop", label=0, text="hi")]
    study = Study.__new__(Study)
    study.__dict__.update(rows={r.id: r for r in rows},
                          splits={"test": [r.id for r in rows], "copy_groups": {"a1": 0, "b1": 0, "b2": 0}})
    assert [r.id for r in study.distinct_test_rows("shop")] == ["b1", "b3"]
    assert [r.id for r in study.distinct_test_rows("bank")] == ["a1"]
