"""The HTML report: escapes hostile text, loads nothing external, renders any finding."""

import re
from html.parser import HTMLParser

import numpy as np
import pytest

from gapscope.eval.matrix import evaluate_cell, summarise
from gapscope.findings import Finding
from gapscope.report import render_report

SCRIPT = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(1)>'
HOSTILE = f"{SCRIPT} {ATTR} 'onmouseover='alert(2)"
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "main", "header", "nav", "section", "article",
                "footer", "h1", "h2", "h3", "p", "a", "span", "b", "sup", "br", "div", "dl", "dt", "dd", "table",
                "thead", "tbody", "tr", "th", "td", "ol", "li", "pre", "details", "summary", "figure",
                "figcaption", "svg", "g", "rect", "text", "line"}


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += attrs


def _study(models=("smollm2", "tfidf-lr"), evil_domain=f"corp{ATTR}"):
    rng = np.random.default_rng(0)
    domains = ["enron", "phish_only", evil_domain]
    entries = []
    for model in models:
        for paradigm, train in (("specialist:enron", ["enron"]), ("lodo:enron", domains[1:])):
            per = {}
            for d in domains:
                y = np.ones(60, int) if d == "phish_only" else rng.integers(0, 2, 60)
                per[d] = ([f"{d}-{i}" for i in range(60)], y, rng.normal(size=60) + 2 * y - 1)
            entries += evaluate_cell(model, paradigm, train, 0.0, per, seed=1, n_resamples=50)
    audit = {"sources": [{"path": f"/d/{d}.jsonl", "domain": d, "format": "jsonl", "rows_in": 70, "rows_kept": 60,
                          "rows_rejected": 10, "rejected_by_reason": {HOSTILE: 10},
                          "label_counts": {"phishing": 30, "legitimate": 30}, "notes": HOSTILE} for d in domains],
             "style_profile": {evil_domain: {"mean_chars": 1234.5, "url_rate": 0.3}},
             "duplicates": {"within_domain": 3, HOSTILE: [HOSTILE]}, "leakage": {"removed": 2}}
    return entries, audit


def _render(tmp_path, findings, entries=None, audit=None, **kw):
    if entries is None:
        entries, audit = _study()
    path = render_report(tmp_path, title=f"study {HOSTILE}", spec_text=f'[study]\nname = "{HOSTILE}"',
                         audit=audit or {}, entries=entries, summary=summarise(entries), findings=findings, **kw)
    assert path == tmp_path / "report.html"
    return path.read_text(encoding="utf-8")


def _hostile_finding(**kw):
    return Finding(
        kind="shortcut", severity="high", title=f"Title {HOSTILE}", summary=f"Summary {HOSTILE}",
        evidence={"examples": [{"id": f"id{ATTR}", "domain": "enron", "label": 1, "text": f"Dear user\n{HOSTILE}"}],
                  HOSTILE: {"nested": HOSTILE}, "url": "see https://evil.example/x.png",
                  "tokens": ["Click", f"Ġ{SCRIPT}"], "weights": [0.9, -0.4]},
        models=[f"m{ATTR}"], domains=[f"corp{ATTR}"], example_ids=[f"id{ATTR}"], **kw)


def test_hostile_strings_are_escaped(tmp_path):
    html = _render(tmp_path, [_hostile_finding()],
                   extra_sections=[{"id": f"x{ATTR}", "title": HOSTILE, "caption": f"What the table shows {HOSTILE}",
                                     "table": {"columns": [HOSTILE], "rows": [[HOSTILE]]}}])
    assert "What the table shows &lt;script&gt;" in html  # a section's caption is shown, escaped
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert ATTR not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text, not dropped
    parser = _Tags()
    parser.feed(html)
    assert parser.tags <= ALLOWED_TAGS, parser.tags - ALLOWED_TAGS
    # No attribute was injected: no event handlers, no attribute named after hostile text.
    names = {name for name, _ in parser.attrs}
    assert not {n for n in names if n.startswith("on")}, names
    assert names <= {"lang", "charset", "name", "content", "http-equiv", "class", "id", "href", "open", "style",
                     "title", "colspan", "viewbox", "width", "height", "role", "aria-label", "x", "y", "x1", "x2",
                     "y1", "y2", "rx", "fill", "stroke", "stroke-width", "text-anchor"}, names


def test_control_bidi_and_zero_width_characters_are_shown_not_obeyed(tmp_path):
    # A right-to-left override in a domain name reversed the rest of each line it sat in, numbers
    # included; an ESC or a zero-width space hid in names. Each is shown by its code point.
    rlo, esc, zws = "\u202e", "\x1b[31m", "\u200b"
    f = Finding(kind="shortcut", severity="high", title=f"trained on corp{rlo}{zws} loses 0.61 F1",
                summary=f"a {esc}red{rlo} word", evidence={"text": f"mail {rlo}gnp.exe"},
                models=["m"], domains=[f"corp{rlo}"])
    html = _render(tmp_path, [f])
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069]", html)
    assert "corp⟨U+202E⟩⟨U+200B⟩ loses 0.61 F1" in html
    assert "⟨U+001B⟩[31mred" in html and "mail ⟨U+202E⟩gnp.exe" in html


def test_no_external_resources(tmp_path):
    html = _render(tmp_path, [_hostile_finding()])
    assert not re.search(r"""(src|href|xlink:href|action)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "@import" not in html and "url(" not in html
    assert all(v.startswith("#") for k, v in _attrs(html) if k == "href")
    assert "<link" not in html.lower()
    assert "default-src 'none'" in html  # CSP: even a missed escape could fetch or run nothing
    assert "form-action 'none'" in html  # nor post a form (a password field) anywhere


def _attrs(html):
    p = _Tags()
    p.feed(html)
    return p.attrs


def test_one_heatmap_per_model_and_sections_in_order(tmp_path):
    entries, audit = _study(models=("a", "b", "c"))
    html = _render(tmp_path, [], entries=entries, audit=audit,
                   extra_sections=[{"id": "probe", "title": "Probes", "html": "<p>ours</p>"}])
    assert len(re.findall(r'aria-label="F1 heatmap for ', html)) == 3
    order = [html.index(f'id="{s}"') for s in ("findings", "matrix", "audit", "x-probe", "spec")]
    assert order == sorted(order)
    assert "<p>ours</p>" in html  # our own markup is trusted, not escaped
    assert "one class in test set" in html  # undefined reasons reach the table
    assert "gap +" in html or "gap -" in html
    # F1 moves with a domain's phishing share: each heatmap column says it (phish_only: every email)
    assert "100% phishing" in html
    assert "F1 moves with the share" in html  # and the gap chart, whose means mix the shares, says so


def test_renders_unknown_finding_kind_with_nested_evidence(tmp_path):
    weird = {"kind": "quantum_drift", "severity": "medium", "title": "Never seen before",
             "summary": "A detector the report was not written for.",
             "evidence": {"per_layer": [{"layer": 1, "acc": 0.51}, {"layer": 2, "acc": 0.93}],
                          "deep": {"l1": {"l2": {"l3": {"l4": {"l5": "bottom"}}}}},
                          "mixed": [1, {"a": [1, 2]}, "x" * 300], "flag": True, "nothing": None,
                          "many": list(range(500))},
             "models": ["m"], "domains": ["enron"], "example_ids": [f"e{i}" for i in range(100)],
             "future_field": "ignored"}
    html = _render(tmp_path, [weird])
    for text in ("quantum_drift", "Never seen before", "per_layer", "0.93", "l4", "bottom", "+76 more"):
        assert text in html, text
    assert "+480 more" in html  # long lists are capped


def test_findings_ranked_and_objects_or_dicts_accepted(tmp_path):
    low = Finding("a", "low", "Low one", "s", score=5)
    high = {"kind": "b", "severity": "high", "title": "High one", "summary": "s"}
    odd = {"kind": "c", "severity": "catastrophic", "title": "Odd severity", "summary": "s"}
    html = _render(tmp_path, [low, odd, high])
    assert html.index("High one") < html.index("Low one") < html.index("Odd severity")


def test_token_highlights(tmp_path):
    f = Finding("attr", "info", "t", "s", evidence={"tokens": ["Ġverify", "Ġaccount", "Ġthanks"],
                                                    "weights": [1.0, 0.0, -0.5]})
    html = _render(tmp_path, [f])
    assert "rgba(220,38,38,0.65)" in html and "rgba(37,99,235," in html
    assert "> verify</span>" in html  # sub-word marker shown as the space it stands for


def test_empty_study_renders(tmp_path):
    html = render_report(tmp_path, title="empty", spec_text="", audit={}, entries=[], summary=[],
                         findings=[]).read_text()
    assert "No detector reported a finding" in html and "No audit recorded" in html


def test_every_finding_is_in_the_report_those_past_the_first_collapsed(tmp_path):
    from gapscope.report import render

    many = [Finding("k", "low", f"Finding number {i:03d}", f"summary {i:03d} {HOSTILE}", score=-i,
                    evidence={"x": i}) for i in range(render.MAX_FINDINGS + 7)]
    html = _render(tmp_path, many)
    for i in range(render.MAX_FINDINGS + 7):
        assert f"Finding number {i:03d}" in html and f"summary {i:03d}" in html
    assert SCRIPT not in html
    rest = html[html.index('id="more-findings"'):]
    assert f"Finding number {render.MAX_FINDINGS:03d}" in rest and "Finding number 000" not in rest
    assert f"{render.MAX_FINDINGS + 7} · most severe first" in html
    # the token legend comes before the first finding it explains; the headline says what its gap is
    assert html.index("legend-tok") < html.index("Finding number 000")
    assert "largest in-domain − out-of-domain F1 gap" in html


def test_an_attribution_shows_its_email_once_without_bookkeeping(tmp_path):
    att = {"text": "Verify your account now", "tokens": ["Verify", " your", " account", " now"],
           "weights": [0.9, 0.0, 0.2, 0.1], "margin": 1.5, "method": "occlusion",
           "params": {"window": 1}, "seconds": 0.25, "evals": 6}
    html = _render(tmp_path, [Finding("attr", "high", "t", "s", evidence={"example": att})])
    body = html[html.index('id="finding-1"'):]
    assert body.count("account") == 1 and "seconds" not in body and "window" not in body
    assert "occlusion" in body and "1.5" in body


def test_a_cell_that_flags_everything_is_marked_in_the_matrix():
    from gapscope.report.render import _flags_everything

    e = {"n": 50, "n_positive": 27, "recall": 1.0, "precision": 27 / 50, "f1": 0.701, "undefined": {}}
    (note,) = _flags_everything(e)
    assert note[0] == "f1" and "flags 100% of the emails" in note[1] and "scores 0.701" in note[1]
    (note,) = _flags_everything({**e, "precision": 27 / 49})  # 49 of 50 flagged, all 27 phishing among them
    assert "flags 98% of the emails" in note[1]
    (note,) = _flags_everything({**e, "auroc": 0.99})  # a good ranking: the threshold is what fails
    assert "the threshold does not transfer" in note[1]
    assert _flags_everything({**e, "precision": 0.9}) == []
    assert _flags_everything({**e, "recall": 0.8}) == []
    # a ranking reversed beyond its interval is said so: "(see AUROC)" left the reader to find 0.34 there
    (note,) = _flags_everything({**e, "auroc": 0.34, "auroc_ci": [0.20, 0.49]})
    assert "inverted" in note[1] and "AUROC 0.34" in note[1]


def test_a_pair_of_emails_is_drawn_side_by_side_on_one_colour_scale(tmp_path):
    # each email scaled to its own largest weight made 0.5 full red in one and faint in the other
    pair = {"edit": "remove_urls",
            "original": {"tokens": ["Verify", " now"], "weights": [1.0, 0.5], "margin": 2.0},
            "edited": {"tokens": ["Check", " now"], "weights": [0.25, 0.5], "margin": 0.5}}
    html = _render(tmp_path, [Finding("minimal_pair", "high", "t", "s", evidence={"example_pair": pair})])
    body = html[html.index('id="finding-1"'):]
    alpha = {m.group(2): float(m.group(1)) for m in re.finditer(r'rgba\(220,38,38,([0-9.]+)\)"[^>]*>([^<]+)<', body)}
    assert alpha["Verify"] == pytest.approx(0.65) and alpha[" now"] == pytest.approx(0.375, abs=0.006)
    assert alpha["Check"] == pytest.approx(0.2375, abs=0.006)  # its own scale drew it at 0.375
    assert re.search(r'class="side".*>original<.*>edited<', body, re.S)
    assert body.count(" now</span>") == 2 and "remove_urls" in body


def test_a_section_can_carry_evidence_drawn_and_escaped_like_a_findings(tmp_path):
    pair = {"home": {"tokens": ["Verify", f" {SCRIPT}"], "weights": [1.0, 0.5]},
            f"away {HOSTILE}": {"tokens": ["Hi", " there"], "weights": [0.25, -0.5]}}
    section = {"id": "examples", "title": "Examples", "evidence": {f"cell{ATTR}": pair}}
    html = _render(tmp_path, [], extra_sections=[section])
    body = html[html.index('id="x-examples"'):]
    assert SCRIPT not in html and "class=\"side\"" in body and "rgba(37,99,235,0.38)" in body


def test_an_example_email_whose_label_the_audit_contradicts_says_so(tmp_path):
    """A planted flip shown as a cell's 'lowest-scored phishing out of domain ... missed', with nothing
    linking it to the label-noise finding that lists it (a user's review)."""
    miss = {"id": "hd-155", "tokens": ["Planned", " maintenance"], "weights": [-0.5, -0.2], "margin": -1.4}
    home = {"id": "rt-3", "tokens": ["Verify", " now"], "weights": [1.0, 0.5], "margin": 2.0}
    section = {"id": "examples", "title": "Examples", "evidence": {"cell": {"home": home, "missed": miss}}}
    noise = Finding("label_noise", "high", "helpdesk: 1 of 100 labels", "s",
                    evidence={"rows": [{"id": "hd-155", "text": "Planned maintenance", "given_label": 1}]},
                    example_ids=["hd-155"])
    pair = Finding("minimal_pair", "low", "t", "s", evidence={"examples": [{"id": "hd-155", "text": "Planned"},
                                                                          {"id": "rt-3", "text": "Verify"}]})
    html = _render(tmp_path, [noise, pair], extra_sections=[section])
    said = html.count("flagged by the label-noise audit")
    assert said == 2  # the section's missed example and the minimal pair's email, not the audit's own row
    body = html[html.index('id="x-examples"'):]
    assert body.index("flagged by the label-noise audit") > body.index("maintenance") - 2000


def test_the_cell_table_gives_the_worst_domain_interval_and_the_losses_beyond_noise(tmp_path):
    from gapscope.eval.matrix import losses_text, worst_text

    entries, audit = _study()
    summary = summarise(entries)
    html = _render(tmp_path, [], entries=entries, audit=audit)
    table = html[html.index("Losses beyond noise"):]
    for s in summary:
        assert s["f1_losses_beyond_noise"] is not None and s["worst_domain_f1_ci"]
        assert worst_text(s) in table and losses_text(s) in table


def test_a_domain_without_phishing_shows_the_share_of_its_mail_flagged():
    # no F1 there: "0.00†" read the same whether the cell flagged none of its mail or all of it
    from gapscope.report.svg import heatmap

    base = {"model": "m", "paradigm": "specialist:a", "in_domain": False, "f1": 0.0, "f1_ci": None,
            "n": 40, "n_positive": 0, "undefined": {"f1": "no phishing rows"}}
    quiet = str(heatmap([{**base, "test_domain": "inbox", "accuracy": 1.0, "accuracy_ci": [0.91, 1.0]}], "m"))
    loud = str(heatmap([{**base, "test_domain": "inbox", "accuracy": 0.0, "accuracy_ci": [0.0, 0.09]}], "m"))
    assert "0% flagged†" in quiet and "100% flagged†" in loud
    assert "false-positive rate 100.0% (95% CI 91.0%-100.0%)" in loud


def test_the_gap_caption_and_the_sources_table_hold_no_empty_or_repeated_text(tmp_path):
    # the demo's report read "The table's losses beyond noise: losses beyond noise: the other domains ...",
    # and every source of its audit drew an empty "rejected_at" row (no row of it was rejected)
    entries, audit = _study()
    for s in audit["sources"]:
        s["rejected_at"] = {}
    html = _render(tmp_path, [], entries=entries, audit=audit)
    assert "losses beyond noise: losses beyond noise" not in html
    assert "The table's losses beyond noise: the other domains" in html
    assert "rejected_at" not in html
    audit["sources"][0]["rejected_at"] = {"bad label": ["a.jsonl:3"]}
    assert html.count("rejected_at") == 0 and _render(tmp_path, [], entries=entries, audit=audit).count("rejected_at") == 1


def test_a_wide_heatmap_scrolls_rather_than_shrinking(tmp_path):
    # 12 domains x 25 cells drew a heatmap 1,813 px wide, scaled to the page: its labels at 6-7px
    rng = np.random.default_rng(0)
    domains = [f"domain_number_{i:02d}" for i in range(12)]
    entries = []
    for train in domains[:3]:
        per = {}
        for d in domains:
            y = rng.integers(0, 2, 40)
            per[d] = ([f"{d}-{i}" for i in range(40)], y, rng.normal(size=40) + 2 * y - 1)
        entries += evaluate_cell("tfidf", f"specialist:{train}", [train], 0.0, per, seed=1, n_resamples=20)
    html = _render(tmp_path, [], entries=entries, audit={})
    width = int(re.search(r'viewBox="0 0 \d+ \d+" width="(\d+)"[^>]*aria-label="F1 heatmap', html).group(1))
    assert width > 1180  # wider than the page
    assert re.search(r'<div class="scroll"><svg class="chart"[^>]*aria-label="F1 heatmap', html)
    assert ".scroll > svg.chart { max-width:none; }" in html


def test_a_finding_repeated_for_many_cells_is_shown_once_and_names_the_others(tmp_path):
    # 12 domains: the 13 cells trained on a footer's domain gave 13 findings of one statement, 39 of 94
    # findings in all, and they took 26 of the 60 places shown in full from findings saying something else
    from gapscope.report import render

    footer = [Finding("shortcut", "medium", f"cell {c} keys on the relay footer", "s", score=10 - c / 100,
                      models=["tfidf"], domains=["alerts"], evidence={"feature": "sent via relay", "cell": f"cell-{c}"})
              for c in range(13)]
    other = [Finding("k", "low", f"Finding number {i:03d}", "summary", score=-i, evidence={"x": i})
             for i in range(render.MAX_FINDINGS)]
    html = _render(tmp_path, footer + other)
    full, rest = html[:html.index('id="more-findings"')], html[html.index('id="more-findings"'):]
    assert full.count("keys on the relay footer") == 1  # the best-ranked one, in full
    assert "The same for 12 more cells" in full and "cell-12 (#13)" in full and 'href="#finding-13"' in full
    assert f"Finding number {render.MAX_FINDINGS - 2:03d}" in full  # the places went to other findings
    assert rest.count("keys on the relay footer") == 12 and rest.count("The same as <a href=\"#finding-1\">#1</a>") == 12
    for i in range(render.MAX_FINDINGS):  # nothing is dropped: every finding is in the page once
        assert html.count(f"Finding number {i:03d}<") == 1
    # a different severity, feature, model or domain is a different statement: not grouped
    kinds = [Finding("shortcut", sev, "t" + sev + feat, "s", models=["tfidf"], domains=["alerts"],
                     evidence={"feature": feat, "cell": "c"}) for sev in ("medium", "low") for feat in ("a", "b")]
    html = _render(tmp_path, kinds)
    assert "The same for" not in html and 'id="more-findings"' not in html


def test_evidence_past_the_depth_limit_is_drawn_with_rounded_numbers(tmp_path):
    # drift's {"mean": 0.5833333333333334, "lo": 0.3333333333333333, ...} read as noise in the report
    deep = {"kind": "behaviour_drift", "severity": "low", "title": "t", "summary": "s",
            "evidence": {"a": {"b": {"c": {"greedy_change": {"mean": 7 / 12, "lo": 1 / 3, "n": 12,
                                                             "rows": [0.123456789, "x"]}}}}}}
    html = _render(tmp_path, [deep])
    assert "0.5833" in html and "0.3333" in html and "0.1235" in html
    assert "0.58333" not in html and "0.33333" not in html and "0.123456" not in html


def test_a_long_email_keeps_its_colour_scale_and_says_what_is_cut_or_unread():
    # cut at 400 words with the scale of the part kept: weak words drawn full red, the decisive word
    # missing, and no word of the cut; words past the model's window looked like neutral ones
    from gapscope.report.render import MAX_TOKENS, evidence_node

    tokens = ["word "] * 450 + ["VERIFY"]
    node = evidence_node({"tokens": tokens, "weights": [0.01] * 450 + [2.0], "text": "".join(tokens)})
    spans = node["spans"]
    assert len(spans) == MAX_TOKENS + 1 and "51 more words" in spans[-1]["text"]
    assert spans[0]["style"] == ""  # 0.01 against the email's 2.0: no colour (it was drawn full red)
    node = evidence_node({"tokens": ["urgent ", "verify ", "family ", "notes"], "weights": [2.0, 1.0, 0.0, 0.0],
                          "in_view": 2})
    assert [("line-through" in s["style"]) for s in node["spans"]] == [False, False, True, True]
    assert node["rest"] is None  # in_view is drawn, not listed as a field
