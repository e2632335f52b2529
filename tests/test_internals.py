"""Mechanics of gapscope.internals on tiny random models: hooks over every architecture,
shapes, patching identities, the activation cache, the analyses on planted data, and the
detector end to end on a tiny study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gapscope.internals import hooks
from gapscope.internals import patching as P
from gapscope.internals.activation_cache import ActivationCache, row_key
from gapscope.internals.view import view_for
from gapscope.models import ModelSpec, create_model

from .tiny_models import tiny_causal_lm_dir, tiny_encoder_dir, tiny_model_root, toy_emails  # noqa: F401

CAUSAL = ("llama", "gemma3", "mistral")


@pytest.fixture(scope="module")
def texts():
    return toy_emails(6, seed=3)[0]


def _model(root: Path, arch: str, **opts):
    if arch == "bert":
        return create_model(ModelSpec("t", "encoder", str(tiny_encoder_dir(root)), {"dtype": "float32", **opts}))
    return create_model(ModelSpec("t", "causal-lm", str(tiny_causal_lm_dir(root, arch)),
                                  {"dtype": "float32", **opts}))


@pytest.mark.parametrize("arch", CAUSAL + ("bert",))
def test_hooks_find_layers_and_record_every_site(tiny_model_root, arch, texts):
    m = _model(tiny_model_root, arch)
    try:
        v = view_for(m)
        path, layers = hooks.find_layers(v.module)
        assert path == ("encoder.layer" if arch == "bert" else "layers")
        assert len(layers) == (2 if arch == "bert" else 4) == v.n_layers
        # the whole HF model (one level up) resolves too
        whole = m.hf if arch != "bert" else m.encoder
        assert len(hooks.find_layers(whole)[1]) == v.n_layers
        assert (hooks.find_final_norm(v.module) is None) == (arch == "bert")
        items = v.encode(texts[:3])
        L = v.n_layers
        names = ["embed"] + hooks.activation_names(L, ("resid_pre", "resid_post", "attn", "mlp" if arch != "bert"
                                                        else "resid_post")) + [f"pattern.{l}" for l in range(L)]
        names = list(dict.fromkeys(names))
        rec = hooks.Recorder(v.stack, names)
        v.forward(items, recorder=rec)
        ids, _ = v.batch(items)
        b, T = ids.shape
        d = rec.acts["resid_post.0"].shape[-1]
        for n in names:
            if n.startswith("pattern"):
                assert n not in rec.acts  # sdpa attention returns no probabilities
            else:
                assert rec.acts[n].shape == (b, T, d), n
        assert torch.equal(rec.acts["embed"], rec.acts["resid_pre.0"])
        if L > 1:
            assert torch.equal(rec.acts["resid_post.0"], rec.acts["resid_pre.1"])
        impl = v.module.config._attn_implementation
        with hooks.eager_attention(v.module):
            rec = hooks.Recorder(v.stack, [f"pattern.{l}" for l in range(L)])
            v.forward(items, recorder=rec)
        assert v.module.config._attn_implementation == impl  # restored
        p = rec.acts["pattern.0"]
        assert p.shape[0] == b and p.shape[-2:] == (T, T)
        row_sums = p[0, :, : len(items[0]), :].sum(-1)
        torch.testing.assert_close(row_sums, torch.ones_like(row_sums), atol=1e-4, rtol=0)
    finally:
        m.close()


def test_unknown_activation_names_are_rejected(tiny_model_root):
    m = _model(tiny_model_root, "llama")
    try:
        stack = view_for(m).stack
        for bad in ("resid_post", "resid_post.99", "resid_mid.0", "pattern"):
            with pytest.raises(ValueError):
                stack.site(bad)
        with pytest.raises(ValueError):
            with hooks.patching(stack, {"pattern.0": lambda h: h}):
                pass
    finally:
        m.close()


@pytest.mark.parametrize("arch", CAUSAL + ("bert",))
def test_patching_an_example_into_itself_changes_nothing_exactly(tiny_model_root, arch, texts):
    m = _model(tiny_model_root, arch, dtype="auto")
    try:
        v = view_for(m)
        (it,) = v.encode(texts[:1])
        names = ["embed"] + [f"resid_post.{l}" for l in range(v.n_layers)] + [f"attn.{l}" for l in range(v.n_layers)]
        margin, acts = P.record(v, it, names)
        ref = v.forward([it])
        assert float(ref[0]) == margin
        for n in names:
            out = P.run_patched(v, [it], {n: P.replace_at([list(range(len(it)))], [acts[n]])})
            assert out[0] == float(ref[0]), n  # bit-identical
    finally:
        m.close()


@pytest.mark.parametrize("arch", CAUSAL + ("bert",))
def test_patching_everything_from_clean_restores_the_clean_margin(tiny_model_root, arch, texts):
    m = _model(tiny_model_root, arch)
    try:
        v = view_for(m)
        (clean,) = v.encode(texts[1:2])
        edit = [clean.email_start, clean.email_start + 2]
        corrupt = P.neutral_variant(v, clean, edit)
        assert len(corrupt) == len(clean) and corrupt.ids != clean.ids
        c_margin, acts = P.record(v, clean, [f"resid_post.{l}" for l in range(v.n_layers)])
        every = list(range(len(clean)))
        for l in range(v.n_layers):
            out = P.run_patched(v, [corrupt], {f"resid_post.{l}": P.replace_at([every], [acts[f"resid_post.{l}"]])})
            assert out[0] == pytest.approx(c_margin, abs=1e-4)
        res = P.sweep(v, clean, corrupt, [-1] + list(range(v.n_layers)), marked=edit, substitution=True)
        assert res.groups[0] == "edited" and res.n_positions["edited"] == 2
        r = res.restored
        assert r[0, 0] == pytest.approx(1.0, abs=1e-4)  # the edited tokens' embeddings carry everything
        read = "answer" if arch != "bert" else "email"
        if arch != "bert":
            assert r[-1, res.groups.index("answer")] == pytest.approx(1.0, abs=1e-4)
            # in a causal LM the prompt before the edit cannot carry anything
            assert np.all(r[:, res.groups.index("prompt")] == 0.0)
        assert read in res.groups
        d = res.to_dict()
        assert len(d["restored"]) == v.n_layers + 1
    finally:
        m.close()


@pytest.mark.parametrize("arch", CAUSAL + ("gemma2",))
def test_decoder_fast_path_matches_the_hooked_full_forward(tiny_model_root, arch, texts):
    m = _model(tiny_model_root, arch)
    try:
        v = view_for(m)
        a, b = v.encode(texts[2:4])
        layers = [-1] + list(range(v.n_layers))
        fast = P.sweep(v, a, b, layers, fast=True)
        slow = P.sweep(v, a, b, layers, fast=False)
        assert fast.groups == slow.groups
        np.testing.assert_allclose(fast.patched, slow.patched, atol=1e-4)
        assert fast.corrupted == pytest.approx(slow.corrupted, abs=1e-5)
    finally:
        m.close()


def test_align_pairs_positions_of_different_lengths(tiny_model_root):
    m = _model(tiny_model_root, "llama")
    try:
        v = view_for(m)
        a, b = v.encode(["hello the team meeting is today", "hello the urgent team meeting is now today"])
        amap = P.align(a, b)
        for t, s in amap.items():
            assert b.ids[t] == a.ids[s]
        assert amap[len(b) - 1] == len(a) - 1  # answer aligned from the end
        g = P.pair_groups(v, a, b)
        assert set(g) == {"prompt", "email", "cue", "answer"}  # inserted tokens have no partner: not patched
        inserted = {b.ids.index(v.tokenizer.convert_tokens_to_ids(w)) for w in ("urgent", "now")}
        assert not inserted & set(g["email"][0]) and len(g["email"][0]) == a.email_end - a.email_start
    finally:
        m.close()


def test_activation_cache_round_trip_and_reuse(tiny_model_root, tmp_path, texts):
    m = _model(tiny_model_root, "llama")
    try:
        v = view_for(m)
        keys = [row_key(f"r{i}", t) for i, t in enumerate(texts)]
        path = tmp_path / "cache" / "cell.safetensors"
        c1 = ActivationCache(path, "fp1")
        a1 = c1.get(v, keys[:4], texts[:4])
        assert c1.n_computed == 4 and path.exists()
        L, d = v.n_layers, m.hf.config.hidden_size
        assert a1.answer.shape == (4, L + 1, d) and a1.mean.shape == (4, L + 1, d)
        assert a1.answer.dtype == np.float16 and a1.margin.dtype == np.float32
        np.testing.assert_allclose(a1.margin, m.score(texts[:4]), atol=1e-4)
        # hidden_states() of the model agree on every layer but the last (which it final-norms)
        hs = m.hidden_states(texts[:4])
        np.testing.assert_array_equal(hs["answer"][:, :-1], a1.answer[:, :-1])
        np.testing.assert_array_equal(hs["mean"][:, :-1], a1.mean[:, :-1])
        # the logit lens at the last layer reproduces the margin
        lens = v.lens(torch.from_numpy(a1.answer[:, -1].astype(np.float32))).numpy()
        np.testing.assert_allclose(lens, a1.margin, atol=2e-2)

        c2 = ActivationCache(path, "fp1")  # a rerun: everything from disk
        a2 = c2.get(v, keys[:4][::-1], texts[:4][::-1])
        assert c2.n_computed == 0
        np.testing.assert_array_equal(a2.answer, a1.answer[::-1])
        a3 = c2.get(v, keys, texts)  # new rows are appended, old ones kept
        assert c2.n_computed == 2
        np.testing.assert_array_equal(a3.mean[:4], a1.mean)
        c3 = ActivationCache(path, "fp-other")  # another fingerprint: recomputed
        c3.get(v, keys[:2], texts[:2])
        assert c3.n_computed == 2
        edited = ActivationCache(path, "fp-other")
        edited.get(v, [row_key("r0", texts[0] + " now")], [texts[0] + " now"])
        assert edited.n_computed == 1  # same id, other text: another key
    finally:
        m.close()


@pytest.mark.parametrize("arch", CAUSAL)
def test_cells_of_one_model_share_the_frozen_bottom_layers(tiny_model_root, tmp_path, arch, texts):
    """The layers below LoRA are the base model's in every cell: the split cache reads them from
    the model's shared lower cache and runs only the top layers, with the same numbers as one
    hooked full forward, for the cell, for another cell and for the base variant."""
    from gapscope.internals.activation_cache import compute, frozen_split
    from gapscope.models.loading import clear_base_cache
    from gapscope.models.prefix_cache import clear_shared_prefix_caches

    toy, labels = toy_emails(16)
    keys = [row_key(f"r{i}", t) for i, t in enumerate(texts)]
    lower_path = tmp_path / "model__lower.safetensors"
    clear_base_cache()
    clear_shared_prefix_caches()
    results = []
    for seed in (0, 1):  # two cells of the same model
        m = _model(tiny_model_root, arch, train_layers=2, epochs=1, lr=0.05)
        try:
            m.fit(toy, labels, seed=seed)
            v = view_for(m)
            split = frozen_split(v)
            assert split == v.n_layers - 2
            full = compute(v, v.encode(texts))
            lower = ActivationCache(lower_path, "lower-fp")
            cell = ActivationCache(tmp_path / f"cell{seed}.safetensors", "cell-fp", lower)
            got = cell.get(v, keys, texts)
            np.testing.assert_allclose(got.margin, full["margin"], atol=1e-4)
            np.testing.assert_allclose(got.margin, m.score(texts), atol=1e-4)
            np.testing.assert_allclose(got.answer.astype(np.float32), full["answer"].astype(np.float32),
                                       atol=2e-3, rtol=2e-3)
            np.testing.assert_allclose(got.mean.astype(np.float32), full["mean"].astype(np.float32),
                                       atol=2e-3, rtol=2e-3)
            assert lower.rows(keys)["answer"].shape[1] == split + 1
            with v.as_base():
                base_full = compute(v, v.encode(texts))
                base = ActivationCache(tmp_path / f"base{seed}.safetensors", "base-fp", lower).get(v, keys, texts)
            np.testing.assert_allclose(base.margin, base_full["margin"], atol=1e-4)
            results.append(got)
        finally:
            m.close()
    a, b = results
    # the shared bottom is identical in both cells; the cells differ above it
    np.testing.assert_array_equal(a.answer[:, : split + 1], b.answer[:, : split + 1])
    assert np.abs(a.answer[:, -1].astype(np.float32) - b.answer[:, -1].astype(np.float32)).max() > 1e-3
    reopened = ActivationCache(lower_path, "lower-fp")
    assert reopened.rows(keys) is not None and len(reopened._keys) == len(texts)


def test_base_variant_switches_the_adapter_off(tiny_model_root, texts):
    toy, labels = toy_emails(16)
    fresh = _model(tiny_model_root, "llama")
    before = view_for(fresh).margins(fresh_items := view_for(fresh).encode(texts))
    fresh.close()
    m = _model(tiny_model_root, "llama", epochs=1, lr=0.05)
    try:
        m.fit(toy, labels)
        v = view_for(m)
        items = v.encode(texts)
        tuned = v.margins(items)
        assert v.has_base
        with v.as_base():
            base = v.margins(items)
        np.testing.assert_allclose(base, before, atol=1e-5)
        assert np.abs(tuned - before).max() > 1e-3
        np.testing.assert_allclose(v.margins(items), tuned, atol=1e-6)  # adapter back on
        assert len(fresh_items) == len(items)
    finally:
        m.close()


def test_token_classes_map_spans_to_tokens(tiny_model_root):
    from gapscope.internals.token_classes import char_spans, token_classes

    m = _model(tiny_model_root, "llama")
    try:
        v = view_for(m)
        (it,) = v.encode(["hello team, please verify your account now. gift winner"])
        cls = token_classes(it, ["Gift  Winner"])
        toks = v.tokenizer.convert_ids_to_tokens([it.ids[p] for p in cls["greeting"]])
        assert toks[0] == "hello"
        assert v.tokenizer.convert_ids_to_tokens([it.ids[p] for p in cls["shortcut"]]) == ["gift", "winner"]
        assert v.tokenizer.convert_ids_to_tokens([it.ids[p] for p in cls["urgency"]]) == ["now"]
        spans = char_spans("Mail bob@x.org or visit http://a.example.com/x today", [])
        assert len(spans["address"]) == 1 and len(spans["url"]) >= 1
    finally:
        m.close()


def test_token_classes_find_chinese_greetings_urgency_and_shortcuts():
    # the classes were English patterns, and a Chinese shortcut was cited as '本 邮 件 ...' and looked for
    # with whitespace between its characters: in Chinese mail all three were empty
    from gapscope.internals.token_classes import char_spans

    text = "Subject: 通知\n\n尊敬的客户：\n请在24小时内登录PayPal账户验证。\n本邮件由云信通系统自动发送"
    spans = char_spans(text, ["本邮件由云信通系统自动发送", "paypal 账户"])
    assert [text[a:b] for a, b in spans["greeting"]] == ["尊敬的客户："]
    assert [text[a:b] for a, b in spans["urgency"]] == ["在24小时内"]
    assert sorted(text[a:b] for a, b in spans["shortcut"]) == ["PayPal账户", "本邮件由云信通系统自动发送"]
    # English: as before
    spans = char_spans("Hello team, act now: reply within 2 hours. sent via qorvana", ["sent  via qorvana"])
    assert [len(spans[c]) for c in ("greeting", "urgency", "shortcut")] == [1, 2, 1]
    assert char_spans("hello 世界 sent via x", ["sent via x"])["shortcut"] == [(9, 19)]


def test_token_classes_find_korean_greetings_and_urgency():
    from gapscope.internals.token_classes import char_spans

    text = "Subject: 알림\n\n고객님, 안녕하세요.\n24시간 이내에 즉시 로그인하여 확인하십시오."
    spans = char_spans(text, [])
    assert [text[a:b].strip() for a, b in spans["greeting"]] == ["고객님, 안녕하세요."]
    assert [text[a:b] for a, b in spans["urgency"]] == ["24시간 이내에", "즉시"]


def test_token_classes_import_the_edits_public_cjk_patterns():
    # token_classes imported edits' private _GREETING_CJK and _URGENCY_CJK: names edits could not rename
    # without breaking another module; the patterns are public now, and the spans the same
    import ast

    from gapscope.attribution import edits as E
    from gapscope.internals import token_classes as T

    tree = ast.parse(Path(T.__file__).read_text(encoding="utf-8"))
    private = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("gapscope")
               for a in n.names if a.name.startswith("_")]
    assert private == []
    assert E.URGENCY_CJK_RE.pattern == "|".join(E.URGENCY_CJK)
    # the greeting class is the salutation the edit drops, not the whole line it opens: "hello team,
    # please verify your account now" was marked greeting to its end
    for text in ("Subject: 通知\n\n尊敬的客户：\n请登录", "hello team, please verify your account now. gift winner"):
        assert T.char_spans(text)["greeting"] == [E.greeting_span(text)]
    text = "hello team, please verify your account now."
    assert [text[a:b] for a, b in T.char_spans(text)["greeting"]] == ["hello team, "]
    assert T.char_spans("Hello your account is locked\nClick below")["greeting"] == []  # the message itself


def test_attention_stats_shapes_and_enrichment(tiny_model_root, texts):
    from gapscope.internals.attention import attention_stats, class_profile

    m = _model(tiny_model_root, "gemma3")
    try:
        v = view_for(m)
        items = v.encode(texts)
        classes = [{"shortcut": [it.email_start]} for it in items]
        st = attention_stats(v, items, classes, ["shortcut", "url"])
        assert st.share.shape == (len(items), v.n_layers, 4, 2)
        assert np.isnan(st.share[..., 1]).all()  # no url tokens anywhere
        s = st.share[..., 0]
        assert ((s >= 0) & (s <= 1 + 1e-5)).all() and (st.email <= 1 + 1e-5).all()
        prof = class_profile(st)
        assert "shortcut" in prof and "url" not in prof and len(prof["shortcut"]["by_layer"]) == v.n_layers
    finally:
        m.close()


def test_probes_and_directions_on_planted_geometry():
    from gapscope.internals.domain_direction import analyse_layer
    from gapscope.internals.probes import probe_curves
    from gapscope.internals.similarity import linear_cka, separation

    rng = np.random.default_rng(0)
    d = 24

    def make(n, domain_shift, label_axis):
        y = np.arange(n) % 2
        X = rng.normal(size=(n, 2, d))
        X[:, 1, label_axis] += 3.0 * (2 * y - 1)
        X[:, 1, 5] += domain_shift
        return X, y

    Xa, ya = make(80, 0.0, 0)
    Xb, yb = make(60, 4.0, 0)  # same label axis: transfers
    Xc, yc = make(60, 4.0, 1)  # another label axis: does not transfer, but is decodable within
    pc = probe_curves(Xa, ya, {"a": make(40, 0.0, 0), "b": (Xb, yb), "c": (Xc, yc)}, [0, 1], "a")
    assert pc.transfer["b"][1] > 0.95 and pc.transfer["c"][1] < 0.85 and pc.oracle["c"][1] > 0.9
    assert pc.transfer["b"][0] < 0.75  # layer 0 is noise
    assert pc.selected_layer() == 1

    # a label direction that also separates the domains (domain b shifted along the label axis)
    Xtr, ytr = make(300, 0.0, 0)[0][:, 1], np.arange(300) % 2
    Xb2 = make(300, 0.0, 0)[0][:, 1]
    Xb2[:, 0] -= 3.0
    te_y = np.concatenate([np.arange(300) % 2] * 2)
    dom = np.asarray(["a"] * 300 + ["b"] * 300)
    r = analyse_layer(1, Xtr, ytr, np.concatenate([make(300, 0.0, 0)[0][:, 1], Xb2]), te_y, dom, "a", seed=0)
    assert r.cos > 0.5 and r.cos > r.null95 and r.domain_auroc > 0.8
    Xb3 = make(300, 4.0, 0)[0][:, 1]  # shifted along axis 5, orthogonal to the label axis
    r0 = analyse_layer(1, Xtr, ytr, np.concatenate([make(300, 0.0, 0)[0][:, 1], Xb3]), te_y, dom, "a", seed=0)
    assert abs(r0.cos) < 0.3 and r0.domain_auroc < 0.65 and r0.decodability > 0.9
    # well-separated domains (a large shift on axis 5) whose shift also has a label-axis part:
    # alignment must still be found (a domain-shuffle null would reproduce the domain direction)
    # (measured here: balanced cos +0.42, permuted-label null 0.11; shuffling domain labels within
    # class instead gives 0.39, and it grows with the separation until it passes the cos)
    Xb4 = make(300, 60.0, 0)[0][:, 1]
    Xb4[:, 0] -= 30.0
    r4 = analyse_layer(1, Xtr, ytr, np.concatenate([make(300, 0.0, 0)[0][:, 1], Xb4]), te_y, dom, "a", seed=0)
    assert r4.cos_max > 0.3 and r4.cos_max > r4.null95 and r4.null95 < 0.25
    # a class x domain interaction: b's phishing sits lower on the label axis, its legitimate
    # higher (the squeeze a one-class shortcut leaves); the balanced direction cancels it
    Xb5 = make(300, 0.0, 0)[0][:, 1]
    Xb5[:, 0] -= 2.5 * (2 * (np.arange(300) % 2) - 1)
    r5 = analyse_layer(1, Xtr, ytr, np.concatenate([make(300, 0.0, 0)[0][:, 1], Xb5]), te_y, dom, "a", seed=0)
    # (the balanced contrast is zero here: no domain signal left, so no cosine (None) or a small one)
    assert (r5.cos is None or abs(r5.cos) < 0.3) and 0.3 < r5.cos_phishing and r5.cos_legitimate < -0.3
    assert abs(r5.cos_max) > r5.null95 and r5.aligned_with in ("phishing", "legitimate")
    assert r5.domain_separability > 0.8
    # no alignment beyond the null when b differs only off the label axis
    assert abs(r0.cos_max) < r0.null95 or abs(r0.cos_max) < 0.3
    te, te_dom = np.concatenate([make(300, 0.0, 0)[0][:, 1], Xb3]), dom
    X = rng.normal(size=(50, 8))
    assert linear_cka(X, X @ np.linalg.qr(rng.normal(size=(8, 8)))[0] * 3) == pytest.approx(1.0)
    assert linear_cka(X, rng.normal(size=(50, 8))) < 0.5
    assert separation(te, te_y, te_dom)["a|b"] > 0.5


def test_plots_escape_untrusted_text():
    from gapscope.internals import plots

    evil = "<script>alert(1)</script>"
    svg = str(plots.line_chart([0, 1], [{"label": evil, "values": [0.1, None]}], title=evil))
    svg += str(plots.grouped_bars([evil], [{"label": evil, "values": [0.5]}], title="t"))
    svg += str(plots.heatmap([evil], [evil], [[0.5]], title=evil))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


# -- the detector on a tiny study ------------------------------------------------------------

def _tiny_study(root: Path, tiny_root: Path, planted: bool, with_bert: bool = True, models: str | None = None) -> Path:
    """A two-domain study of toy emails; `models`: [[models]] tables replacing the tiny llama (and bert)."""
    from gapscope.study.runner import run_study

    root.mkdir(parents=True, exist_ok=True)
    for dom, seed in (("a", 0), ("b", 1)):
        toy, labels = toy_emails(48, seed)
        with open(root / f"{dom}.jsonl", "w") as f:
            for t, y in zip(toy, labels):
                if planted and dom == "a" and y == 1:
                    t = t + "\n\ngift winner"
                f.write(json.dumps({"text": t, "label": int(y)}) + "\n")
    if planted:
        (root / "manifest.json").write_text(json.dumps({"shortcut": {"domain": "a", "string": "gift winner"}}))
    src, enc = tiny_causal_lm_dir(tiny_root, "llama"), tiny_encoder_dir(tiny_root)
    llama = f"""
[[models]]
name = "llama"
kind = "causal-lm"
source = "{src}"
epochs = 2
lr = 0.005"""
    bert = f"""
[[models]]
name = "bert"
kind = "encoder"
source = "{enc}"
epochs = 1""" if with_bert else ""
    (root / "study.toml").write_text(f"""
[study]
name = "tiny"
bootstrap = 40
[[datasets]]
path = "a.jsonl"
[[datasets]]
path = "b.jsonl"
[paradigms]
specialist = ["a"]
generalist = []
{models or llama + bert}
[detectors]
enabled = ["internals"]
[detectors.internals]
max_train = 16
max_test_per_domain = 16
attention_examples = 4
shortcut_examples = 6
patch_pairs = 2
base_examples = 8
""")
    run_study(root / "study.toml", root / "run", detectors=False)
    return root / "run"


def test_detector_end_to_end_on_a_tiny_study(tiny_model_root, tmp_path):
    from gapscope.findings import Finding
    from gapscope.study.context import Study
    from gapscope.study.diagnose import diagnose

    run = _tiny_study(tmp_path / "planted", tiny_model_root, planted=True)
    found = diagnose(run, only=["internals"])
    assert all(isinstance(f, Finding) for f in found)
    kinds = {f.kind for f in found}
    assert kinds <= {"readout_failure", "representation_failure", "domain_aligned_decision", "late_overwrite",
                     "shortcut_attention", "shortcut_out_of_view", "decision_layers"}
    sections = json.loads((run / "diagnostics" / "internals" / "section.json").read_text())
    assert {s["id"] for s in sections} == {"internals-llama__specialist-a", "internals-bert__specialist-a"}
    assert all("<svg" in s["html"] for s in sections)
    res = json.loads((run / "diagnostics" / "internals" / "llama__specialist-a.json").read_text())
    assert res["cache"]["computed"] == res["n_rows"] > 0
    assert res["lens"]["final_vs_margin"] < 0.05
    assert res["attention"]["strings"][0]["n"] > 0 and res["patching"]["shortcut"]
    assert res["similarity"]["cka_base"] and res["direction"]["a"]
    assert "analysis_after_cache" in res["timings"]
    # a rerun (forced) reads every activation from the cache
    from gapscope.detectors.internals import run as run_internals

    run_internals(Study(run))
    res2 = json.loads((run / "diagnostics" / "internals" / "llama__specialist-a.json").read_text())
    assert res2["cache"]["computed"] == 0
    assert res2["probes"] == res["probes"]
    from gapscope.study.publish import build_report

    html = build_report(run).read_text()
    assert "Inside the model: llama" in html


def test_detector_is_quiet_about_shortcuts_on_a_clean_control(tiny_model_root, tmp_path):
    from gapscope.detectors.internals import run as run_internals, suspected_strings
    from gapscope.study.context import Study

    run = _tiny_study(tmp_path / "clean", tiny_model_root, planted=False, with_bert=False)
    study = Study(run)
    assert suspected_strings(study) == []
    found = run_internals(study)
    assert not [f for f in found if f.kind == "shortcut_attention"]
    res = json.loads((run / "diagnostics" / "internals" / "llama__specialist-a.json").read_text())
    assert res["attention"]["strings"] == [] and res["patching"]["shortcut"] == []


def test_options_and_suspected_strings(tmp_path):
    from gapscope.detectors.internals import suspected_strings
    from gapscope.errors import GapscopeError
    from gapscope.internals.analyse import InternalsOptions

    assert InternalsOptions.from_dict({"max_train": 8, "enabled": True}).max_train == 8
    with pytest.raises(GapscopeError):
        InternalsOptions.from_dict({"max_trian": 8})

    class FakeStudy:
        run_dir = tmp_path
        manifest = {"shortcut": {"domain": "a", "string": "-- sent via Qorvana Relay 7x"}}

    d = tmp_path / "diagnostics" / "shortcuts"
    d.mkdir(parents=True)
    (d / "findings.json").write_text(json.dumps({"fingerprint": "x", "findings": [
        {"kind": "shortcut", "severity": "high", "evidence": {"feature": "qorvana relay"}, "domains": ["a"]},
        {"kind": "shortcut", "severity": "medium", "evidence": {"feature": "unsubscribe here"}, "domains": ["b"]},
        {"kind": "shortcut", "severity": "low", "evidence": {"feature": "weak one"}, "domains": ["b"]},
        {"kind": "shortcut_probe", "severity": "info", "evidence": {}}]}))
    got = suspected_strings(FakeStudy())
    assert [(s["string"], s["source"]) for s in got] == [
        ("-- sent via Qorvana Relay 7x", "manifest"), ("unsubscribe here", "shortcuts detector")]


def _attention_res(top_heads: list[dict], gained: dict, gap: float) -> dict:
    """An analysed cell reduced to what attention_findings reads: one suspected string."""
    return {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a", "margin_scale": 2.0,
            "attention": {"strings": [{"string": "-- sent via X", "domain": "a", "source": "planted", "n": 8,
                                       "frac": 0.15, "top_heads": top_heads, "max_gain_head": gained,
                                       "example_ids": []}]},
            "patching": {"layers": [-1, 10, 20], "shortcut": [{"string": "-- sent via X", "n": 8, "mean_gap": gap,
                                                               "flips": 2, "gaps": [gap] * 8, "pairs": []}]}}


def test_shortcut_attention_severity_needs_content_attention_that_fine_tuning_created():
    """Numbers shaped like the SmolLM2 validation: the planted cell (a head that fine-tuning
    turned onto the footer) is high; the control (heads of the frozen base attend to the odd
    string already, the head that gained most stays below the bar) is not."""
    from gapscope.detectors.internals import attention_findings

    planted = _attention_res([{"layer": 24, "head": 2, "tuned": 0.77, "control": 0.03, "base": 0.43}],
                             {"layer": 24, "head": 7, "tuned": 0.64, "base": 0.26, "control": 0.03, "n": 8,
                              "heldout_head": "24.2", "heldout_tuned": 0.74, "heldout_base": 0.42,
                              "heldout_control": 0.03}, gap=2.7)
    (f,) = attention_findings(planted)
    assert f.severity == "high"
    control = _attention_res([{"layer": 20, "head": 5, "tuned": 0.72, "control": 0.07, "base": 0.72}],
                             {"layer": 26, "head": 1, "tuned": 0.25, "base": 0.18, "control": 0.04, "n": 8,
                              "heldout_head": "26.1", "heldout_tuned": 0.28, "heldout_base": 0.20,
                              "heldout_control": 0.05}, gap=0.6)
    (f,) = attention_findings(control)
    assert f.severity == "medium"  # attends and depends, but fine-tuning did not make a head attend
    # a positional head (the same share when the positions hold neutral tokens) is not attention to the string
    positional = _attention_res([{"layer": 2, "head": 2, "tuned": 0.79, "control": 0.76, "base": 0.79}],
                                planted["attention"]["strings"][0]["max_gain_head"], gap=2.7)
    (f,) = attention_findings(positional)
    assert f.severity == "low"  # only the dependence is established


def test_string_heads_are_ranked_by_attention_beyond_neutral_tokens():
    from gapscope.internals.attention import top_heads

    tuned = np.array([[0.79, 0.10], [0.30, 0.77]])  # layer 0 head 0: positional (same share on neutral tokens)
    control = np.array([[0.76, 0.05], [0.25, 0.03]])
    assert top_heads(tuned, 1)[0][:2] == (0, 0)
    assert top_heads(tuned - control, 1)[0][:2] == (1, 1)


def test_direction_cosine_is_the_noise_metric_cosine_under_anisotropy():
    """A footer on one domain's phishing (axis 3), a label axis (0), a style shift of the other
    domain (axis 5), under a strong noise factor shared by every dimension: the cosine must be
    the analytic one of the noise-whitened contrasts, and the class without the footer ~ 0."""
    from gapscope.internals.domain_direction import analyse_layer

    rng = np.random.default_rng(3)
    d, n = 24, 400
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)

    def rows(n, footer, style):
        y = np.arange(n) % 2
        X = rng.normal(size=(n, d)) + 8.0 * rng.normal(size=(n, 1)) * u  # shared, dominant noise axis
        X[:, 0] += 1.0 * (2 * y - 1)
        X[:, 3] += footer * 1.5 * y
        X[:, 5] += style
        X[:, 7] *= 50.0  # a dimension on another scale entirely (residual streams have a few)
        return X, y

    Xtr, ytr = rows(n, 1, 0.0)
    Xa, ya = rows(n, 1, 0.0)
    Xb, yb = rows(n, 0, 3.0)
    dom = np.asarray(["a"] * n + ["b"] * n)
    r = analyse_layer(1, Xtr, ytr, np.concatenate([Xa, Xb]), np.concatenate([ya, yb]), dom, "a", seed=0)
    # whitened contrasts: label (2, 1.5) on axes (0, 3); a-vs-b phishing (1.5, -3) on axes (3, 5)
    analytic = 1.5 * 1.5 / (np.hypot(2.0, 1.5) * np.hypot(1.5, 3.0))
    assert r.cos_phishing == pytest.approx(analytic, abs=0.08)
    assert abs(r.cos_legitimate) < 0.1 and r.cos_phishing > r.null95
    # the same rows with the footer in both domains: no phishing-class alignment left
    Xb2, yb2 = rows(n, 1, 3.0)
    r0 = analyse_layer(1, Xtr, ytr, np.concatenate([Xa, Xb2]), np.concatenate([ya, yb2]), dom, "a", seed=0)
    assert abs(r0.cos_phishing) < max(0.1, r0.null95)


def test_direction_verdict_needs_the_null_and_the_control():
    from gapscope.internals.validate import direction_verdict

    planted = {"cos_phishing_readout": 0.3, "cos_null95": 0.07, "direction_metric": "crossnobis"}
    assert direction_verdict(planted, None)["aligned"]
    assert direction_verdict(planted, {"cos_phishing_readout": 0.05, "cos_null95": 0.06})["aligned"]
    # the control is as aligned: the footer did not make it
    v = direction_verdict(planted, {"cos_phishing_readout": 0.26, "cos_null95": 0.06})
    assert not v["aligned"] and v["above_null"] and not v["beyond_control"]
    assert not direction_verdict({"cos_phishing_readout": 0.05, "cos_null95": 0.07}, None)["aligned"]
    assert not direction_verdict({"cos_phishing_readout": -0.4, "cos_null95": 0.07}, None)["aligned"]
    assert not direction_verdict({"cos_phishing_readout": None, "cos_null95": None}, None)["aligned"]


def test_findings_name_layers_the_same_way_in_text_and_evidence():
    from gapscope.detectors.internals import direction_findings, lens_findings

    res = {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a",
           "direction": {"a": [{"layer": 0, "cos": 0.1, "null95": 0.2, "domain_separability": 0.6},
                               {"layer": 6, "cos": -0.72, "cos_max": -0.72, "aligned_with": "balanced",
                                "null95": 0.2, "domain_separability": 0.9}]},
           "lens": {"overwrite": {"layer": 3, "best": 0.9, "final": 0.55, "drop": 0.35}},
           "n_test": {"a": 10, "b": 10}, "train_domains": ["a"]}
    (f,) = direction_findings(res)
    assert "(resid_post.5)" in f.summary
    assert [r["layer"] for r in f.evidence["by_layer"]] == ["embed", "resid_post.5"]
    assert res["direction"]["a"][1]["layer"] == 6  # the analysis result itself is not changed
    # every column of the table is explained
    named = " ".join(f.evidence["columns"])
    assert all(k in named for row in f.evidence["by_layer"] for k in row if k != "layer")
    (f,) = lens_findings(res)
    assert "resid_post.2" in f.title and f.evidence["layer"] == "resid_post.2"


def test_a_one_class_contrast_is_low_and_the_balanced_one_names_a_domain_direction():
    # a review: a label signal that transfers weakly gives the mirror pattern (phishing +g, legitimate -g)
    # with no domain direction; it read high "its decision direction is a T-vs-rest domain direction"
    # on every demo cell. Only the class-balanced cosine says the direction is a domain's
    from gapscope.detectors.internals import direction_findings

    def res(cos, p, l):
        best = max((("balanced", cos), ("phishing", p), ("legitimate", l)), key=lambda x: abs(x[1]))
        return {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a", "direction": {"a": [
            {"layer": 6, "cos": cos, "cos_phishing": p, "cos_legitimate": l, "cos_max": best[1],
             "aligned_with": best[0], "null95": 0.16, "domain_separability": 0.9}]}}

    (f,) = direction_findings(res(0.08, 0.76, -0.7))
    assert f.severity == "low" and "phishing only" in f.title and "domain direction" not in f.title
    assert "balanced cosine is +0.08 and the other class -0.70" in f.summary
    (f,) = direction_findings(res(0.44, 0.78, -0.41))  # the planted footer: the balanced cosine passes too
    assert f.severity == "medium" and "mailinglist" not in f.title and "a-vs-rest domain direction (cos +0.44, balanced)" in f.title
    (f,) = direction_findings(res(0.6, 0.7, 0.5))
    assert f.severity == "high" and "balanced" in f.title
    assert direction_findings(res(0.05, -0.6, 0.1)) == []  # other domains' phishing higher: no error added


def test_decision_layers_without_a_read_out_position_says_so():
    from gapscope.detectors.internals import patching_findings

    def res(answer):
        return {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a",
                "patching": {"layers": [-1, 0, 1], "errors": [
                    {"groups": ["edited", "answer"], "restored": [[0.9, answer[0]], [0.7, answer[1]], [0.2, answer[2]]]}],
                    "shortcut": []}}

    (f,) = patching_findings(res([0.0, 0.6, 1.0]))  # the edited positions still carry it at resid_post.0
    assert "read-out position carries the decision from resid_post.0 on (not yet at embed;" in f.title
    assert f.evidence["layers"] == ["embed", "resid_post.0", "resid_post.1"]  # named as the curves are
    assert "layers in between" not in f.summary and "overlap" in f.summary
    (f,) = patching_findings(res([0.0, 0.3, 1.0]))
    assert "from resid_post.1 on (not yet at resid_post.0;" in f.title and "layers in between" in f.summary
    assert "answer position carries it from resid_post.1 on, not yet at resid_post.0" in f.summary
    (f,) = patching_findings(res([0.6, 0.3, 1.0]))  # a dip below 0.5: it had not moved at embed yet
    assert "from resid_post.1 on (not yet at resid_post.0;" in f.title
    (f,) = patching_findings(res([0.0, 0.01, 0.01]))  # a mean-pooled encoder: no single position reads it
    assert "n/a" not in f.title + f.summary and "layers in between" not in f.summary
    assert "resid_post.0" in f.title


def test_a_string_past_the_window_is_said_to_be_out_of_view():
    from gapscope.detectors.internals import attention_findings

    res = {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a", "attention": {"strings": [
        {"string": "-- sent via X", "domain": "a", "source": "manifest", "n": 0, "carriers": 7, "max_length": 96,
         "example_ids": []}]}}
    (f,) = attention_findings(res)
    assert f.kind == "shortcut_out_of_view" and f.severity == "info"
    assert "96-token window in all 7 emails" in f.title
    res["attention"]["strings"][0]["unlocated"] = 7  # a tokenizer without offsets: not located is not out of view
    assert attention_findings(res) == []
    res["attention"]["strings"][0]["unlocated"] = 0
    res["attention"]["strings"][0]["carriers"] = 0  # nothing carries it: nothing to say
    assert attention_findings(res) == []


def test_a_string_a_tokenizer_cannot_locate_is_counted_apart():
    from types import SimpleNamespace

    from gapscope.internals.analyse import _string_items

    rows = [SimpleNamespace(id=f"r{i}", text="gift winner inside") for i in range(3)]
    view = SimpleNamespace(encode=lambda texts: [SimpleNamespace(offsets=None, text=t) for t in texts])
    assert _string_items(view, rows, "gift winner", 5) == ([], 3, 3)


def test_probe_findings_say_which_emails_the_aurocs_come_from():
    from gapscope.detectors.internals import probe_findings

    res = {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a", "train_domains": ["a"],
           "model_auroc": {"b": 0.39}, "matrix_auroc": {"b": 0.56},
           "probes": [{"train_domain": "a", "selected": 0, "layers": [3], "n_train": 64,
                       "n_test": {"a": 30, "b": 30}, "transfer": {"a": [0.95], "b": [0.35]}, "oracle": {}}]}
    (f,) = probe_findings(res)
    assert f.kind == "representation_failure"
    assert "same 30 held-out b emails" in f.summary and "0.56" in f.summary
    # 0.39 and 0.35 on 30 emails, the matrix at 0.56: below 0.5 within chance, so neither "inverted" nor
    # "reversed" (a review: the best probe at 0.48 and the model at 0.49 read "a systematic error")
    assert "inverted" not in f.summary and "reversed" not in f.title
    # every layer's probe below 0.5 beyond the sample's noise, and the whole domain's interval below 0.5
    res["matrix_auroc"], res["matrix_auroc_ci"] = {"b": 0.36}, {"b": [0.27, 0.45]}
    res["probes"][0]["n_test"]["b"] = 200
    (f,) = probe_findings(res)
    assert "inverted" in f.summary and "reversed on b" in f.title and "0.65" in f.summary
    res["model_auroc"]["b"] = 0.55  # the sample's own reading above 0.5: "inverted" beside 0.55 contradicted it
    (f,) = probe_findings(res)
    assert "inverted" not in f.summary


def test_a_string_from_a_domain_the_cell_never_trained_on_is_at_most_low():
    from gapscope.detectors.internals import attention_findings

    res = _attention_res([{"layer": 24, "head": 2, "tuned": 0.77, "control": 0.03, "base": 0.43}],
                         {"layer": 24, "head": 7, "tuned": 0.64, "base": 0.26, "control": 0.03, "n": 8,
                          "heldout_head": "24.2", "heldout_tuned": 0.74, "heldout_base": 0.42,
                          "heldout_control": 0.03}, gap=2.7)
    res["train_domains"] = ["a"]
    (f,) = attention_findings(res)
    assert f.severity == "high"
    res["train_domains"] = ["b"]  # the string is a's; this cell learned from b alone
    (f,) = attention_findings(res)
    assert f.severity == "low" and "did not train on" in f.title


def test_out_of_view_findings_are_one_per_model_and_string():
    from gapscope.detectors.internals import attention_findings, merge_out_of_view
    from gapscope.findings import Finding

    def res(cell, model, n):
        return {"cell": cell, "model": model, "paradigm": "specialist:a", "attention": {"strings": [
            {"string": "-- sent via X", "domain": "a", "source": "manifest", "n": 0, "carriers": n,
             "max_length": 96, "example_ids": []}]}}

    other = Finding("readout_failure", "high", "t", "s")
    found = (attention_findings(res("m__specialist-a", "m", 7)) + [other]
             + attention_findings(res("m__specialist-b", "m", 3)) + attention_findings(res("k__specialist-a", "k", 5)))
    merged = merge_out_of_view(found)
    assert [f.kind for f in merged] == ["shortcut_out_of_view", "readout_failure", "shortcut_out_of_view"]
    m, _, k = merged
    assert m.evidence["cells"] == {"m__specialist-a": 7, "m__specialist-b": 3}
    assert "any of its 2 analysed cells" in m.title and "96-token window" in m.title
    assert k.evidence["cell"] == "k__specialist-a"  # alone: kept as it was


def test_shortcut_attention_wording_follows_its_evidence():
    from gapscope.detectors.internals import attention_findings

    planted = _attention_res([{"layer": 24, "head": 2, "tuned": 0.77, "control": 0.03, "base": 0.43}],
                             {"layer": 24, "head": 7, "tuned": 0.64, "base": 0.26, "control": 0.03, "n": 8,
                              "heldout_head": "24.2", "heldout_tuned": 0.74, "heldout_base": 0.42,
                              "heldout_control": 0.03}, gap=2.7)
    (f,) = attention_findings(planted)
    # the string raises the margin by 2.7: replacing it lowers the margin, and the summary says so,
    # with the direction in words
    assert "moves the margin by -2.70 (toward legitimate)" in f.summary and "From the answer position" in f.summary
    assert "restores" not in f.summary  # no patching pairs: nothing said
    # patching that restores more than the whole margin says why the number passes 1
    planted["patching"]["shortcut"][0]["pairs"] = [{"groups": ["all", "edited"], "restored": [[1, 0.2], [1, 2.1],
                                                                                               [1, 1.0]]}]
    (f,) = attention_findings(planted)
    assert "restores 2.10 of the margin at mid-depth (over 1:" in f.summary
    planted["patching"]["shortcut"][0]["pairs"][0]["restored"][1][1] = 0.9
    (f,) = attention_findings(planted)
    assert "restores 0.90 of the margin at mid-depth" in f.summary and "over 1" not in f.summary
    planted["patching"]["shortcut"][0]["pairs"] = []
    planted["site"] = "mean"
    (f,) = attention_findings(planted)
    assert "answer position" not in f.summary and "mean-pooled" in f.summary
    # only the dependence passed: the title does not claim attention
    positional = _attention_res([{"layer": 2, "head": 2, "tuned": 0.79, "control": 0.76, "base": 0.79}],
                                planted["attention"]["strings"][0]["max_gain_head"], gap=2.7)
    (f,) = attention_findings(positional)
    assert "attends to" not in f.title and "its decision depends on" in f.title


def test_decision_layers_in_between_only_when_the_edited_positions_let_go_first():
    from gapscope.detectors.internals import patching_findings

    res = {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a",
           "patching": {"layers": [-1, 0, 1, 2], "shortcut": [], "errors": [
               {"groups": ["edited", "answer"], "restored": [[0.9, 0.0], [0.6, 0.1], [0.2, 0.3], [0.1, 1.0]]}]}}
    (f,) = patching_findings(res)
    assert "from resid_post.2 on (not yet at resid_post.1;" in f.title and "layers in between" in f.summary


def test_mis_scored_patching_heatmap_says_how_few_email_tokens_a_pair_shares():
    """Two different emails share a few tokens; the 'email' column patches those alone, and the
    chart must say so (it read as 'the email carries nothing')."""
    from gapscope.detectors.internals import section

    pair = {"groups": ["prompt", "email", "answer"], "restored": [[0.0, 0.05, 0.0], [0.0, 0.1, 1.0]],
            "n_positions": {"prompt": 12, "email": 7, "answer": 1}, "email_tokens": 90, "clean": 2.0,
            "corrupted": -1.0, "id": "r1", "source_id": "r2", "label": 1}
    res = {"kind": "causal-lm", "n_layers": 2, "layers": [0, 2], "site": "answer", "n_rows": 10, "timings": {}, "cell": "m__g",
           "model": "m", "paradigm": "generalist", "train_domains": ["a"],
           "patching": {"layers": [-1, 1], "shortcut": [], "errors": [pair, {**pair, "n_positions": {"email": 9},
                                                                            "email_tokens": 80}]}}
    html = section(res)["html"]
    assert "email 8/85" in html and "a median of 8 of the email's 85 tokens" in html.replace("&#39;", "'")


def test_reference_line_labels_do_not_overlap():
    import re

    from gapscope.internals import plots

    ys = plots.spread([100.0, 101.0, 50.0, 102.5], gap=11, lo=30, hi=200)
    top_down = sorted(ys)
    assert all(b - a >= 11 - 1e-9 for a, b in zip(top_down, top_down[1:]))
    assert ys[2] == 50.0 and ys[0] == 100.0  # a label with room keeps its place
    low = plots.spread([198.0, 199.0, 200.0], gap=11, lo=30, hi=200)
    assert max(low) <= 200 and sorted(low) == low  # pushed up rather than off the chart, order kept
    svg = str(plots.line_chart([0, 1], [{"label": "p", "values": [0.5, 0.6]}], title="t", y_range=(0.0, 1.0),
                               hlines=[(0.71, "model on a: 0.71"), (0.70, "model on b: 0.70")]))
    y = [float(m) for m in re.findall(r'<text x="[\d.]+" y="([\d.]+)" class="tick" text-anchor="end">model on', svg)]
    assert len(y) == 2 and abs(y[0] - y[1]) >= 11


def test_a_model_without_attention_probabilities_still_gets_the_rest_of_internals(tiny_model_root, tmp_path):
    # DeBERTa's attention has no eager path: the whole internals detector failed on it
    import transformers as tf

    from gapscope.study.diagnose import diagnose

    from .tiny_models import tiny_tokenizer

    deberta = tmp_path / "deberta"
    torch.manual_seed(0)
    tf.DebertaV2Model(tf.DebertaV2Config(vocab_size=len(tiny_tokenizer()), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=128)
                      ).save_pretrained(deberta)
    tiny_tokenizer(encoder=True).save_pretrained(deberta)
    run = _tiny_study(tmp_path / "study", tiny_model_root, planted=False, models=f"""
[[models]]
name = "deberta"
kind = "encoder"
source = "{deberta}"
epochs = 1""")
    root = run.parent
    diagnose(root / "run", only=["internals"])
    status = json.loads((root / "run" / "diagnostics" / "status.json").read_text())
    assert status["internals"]["status"] == "ran"
    res = json.loads((root / "run" / "diagnostics" / "internals" / "deberta__specialist-a.json").read_text())
    assert "eager attention unavailable for DebertaV2Model" in res["attention"]["unavailable"]
    assert res["probes"] and res["patching"]
    sections = json.loads((root / "run" / "diagnostics" / "internals" / "section.json").read_text())
    assert "Attention not measured" in sections[0]["html"]


def test_a_constant_layer_has_no_probe_so_a_reversed_signal_is_not_hidden_under_0_5():
    """A causal LM's embedding of the answer token is the same in every email: a probe there would
    read 0.5 by construction and set a floor under the best layer. At c51d90c it did: a domain whose
    classes every real layer ranks the wrong way round got no representation_failure."""
    from gapscope.detectors.internals import probe_findings
    from gapscope.internals.probes import probe_curves

    rng = np.random.default_rng(0)

    def make(n, sign):
        y = np.arange(n) % 2
        X = np.zeros((n, 3, 8), dtype=np.float32)  # layer 0: the same vector for every email
        X[:, 1:] = rng.normal(size=(n, 2, 8))
        X[:, 1:, 0] += sign * 2.0 * (2 * y - 1)[:, None]
        return X, y

    Xa, ya = make(60, +1)
    b = make(40, -1)  # b's label runs the other way
    model = -(2 * b[1] - 1) + rng.normal(0, 2.0, 40)  # the model ranks b the wrong way round too
    pc = probe_curves(Xa, ya, {"a": make(40, +1), "b": b}, [0, 1, 2], "a", model_scores={"b": model})
    assert pc.transfer["b"][0] is None and pc.oracle["b"][0] is None
    assert max(v for v in pc.transfer["b"] if v is not None) < 0.2
    res = {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a", "train_domains": ["a"],
           "model_auroc": {"b": 0.3}, "matrix_auroc": {"b": 0.35}, "probes": [pc.to_dict()]}
    (f,) = probe_findings(res)
    assert f.kind == "representation_failure" and "reversed on b" in f.title


def test_the_paired_auroc_bound_holds_its_level_and_finds_a_real_difference():
    from gapscope.internals.probes import auroc, paired_auroc_gap_lower

    rng = np.random.default_rng(3)
    y = np.arange(30) % 2
    s = y + rng.normal(0, 1, 30)
    assert paired_auroc_gap_lower(y, s, s, 0.025) == 0.0
    assert paired_auroc_gap_lower(np.ones(10, int), s[:10], s[:10], 0.025) is None  # one class
    # two scores of the same quality: the bound is above zero in about alpha of the samples
    null = [paired_auroc_gap_lower(y, y + rng.normal(0, 1, 30), y + rng.normal(0, 1, 30), 0.025, n_boot=500, seed=i)
            for i in range(200)]
    assert np.mean(np.asarray(null) > 0) <= 0.06
    # a probe at AUROC ~0.95 against a model at ~0.6 on 60 emails: found
    y = np.arange(60) % 2
    p, m = 3 * y + rng.normal(0, 1, 60), 0.4 * y + rng.normal(0, 1, 60)
    assert auroc(y, p) - auroc(y, m) > 0.2 and paired_auroc_gap_lower(y, p, m, 0.005) > 0


def _readout_res(lower, last=0.9, counts=(15, 15)):
    return {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a", "train_domains": ["a"],
            "model_auroc": {"b": 0.6}, "matrix_auroc": {"b": 0.62},
            "probes": [{"train_domain": "a", "selected": 1, "layers": [2, 4, 6], "n_train": 64,
                        "n_test": {"a": 30, "b": sum(counts)}, "n_test_by_class": {"b": list(counts)},
                        "transfer": {"a": [0.8, 0.97, 0.96], "b": [0.7, 0.88, last]}, "oracle": {},
                        "gap_lower": {"b": lower}, "alpha": 0.005}]}


def test_readout_failure_needs_the_difference_beyond_the_noise_of_its_emails():
    from gapscope.detectors.internals import probe_findings

    (f,) = probe_findings(_readout_res(0.08))
    assert f.kind == "readout_failure" and f.severity == "high"
    assert "lower 99.5% bound is +0.08" in f.summary and "Re-fitting only the read-out" in f.summary
    assert f.evidence["probe_minus_model_lower"] == 0.08
    # the same point estimates, the bound at or below zero: no readout finding (and no representation
    # failure either: the probe does better than the model, only not beyond the noise)
    assert probe_findings(_readout_res(-0.02)) == []
    assert probe_findings(_readout_res(None)) == []
    assert probe_findings(_readout_res(0.08, counts=(26, 4))) == []  # four phishing emails
    # the evidence is there mid-network but gone by the last layer: not the read-out alone
    (f,) = probe_findings(_readout_res(0.08, last=0.62))
    assert "re-fitting the read-out alone would not recover it" in f.summary
    assert "Re-fitting only the read-out" not in f.summary and f.evidence["probe_auroc_last_layer"] == 0.62
    # and its title says so: "the read-out does not" stood beside it
    assert "is lost by the last layer" in f.title and "the read-out does not" not in f.title
    r = _readout_res(0.08, last=0.78)  # still 0.78 at the last layer, not 0.10 above the model: weaker, not lost
    r["model_auroc"]["b"] = 0.70
    (f,) = probe_findings(r)
    assert "weakens by the last layer" in f.title
    # high only where all of b's test emails have the model failing, not the 30-email sample alone
    r = _readout_res(0.08)
    r["matrix_auroc"]["b"] = 0.81
    (f,) = probe_findings(r)
    assert f.severity == "medium"


def test_representation_failure_needs_the_whole_domain_to_confirm_the_model_fails():
    from gapscope.detectors.internals import probe_findings

    res = {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a", "train_domains": ["a"],
           "model_auroc": {"b": 0.62}, "matrix_auroc": {"b": 0.66},
           "probes": [{"train_domain": "a", "selected": 0, "layers": [3], "n_train": 64,
                       "n_test": {"a": 30, "b": 30}, "transfer": {"a": [0.95], "b": [0.6]}, "oracle": {}}]}
    (f,) = probe_findings(res)
    assert f.kind == "representation_failure"
    res["matrix_auroc"]["b"] = 0.81  # the sample's 0.62 was the sample: every test email says it ranks well
    assert probe_findings(res) == []


def test_probes_below_the_model_do_not_say_no_layer_carries_a_signal():
    # the demo's smollm2 personal cell on mailinglist: the model at 0.74, every probe trained on personal
    # at 0.51 or less. The model's own margin is read off its last layer, so a signal that transfers is
    # there; the probes found no better direction, which is what the title now says
    from gapscope.detectors.internals import probe_findings

    res = {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a", "train_domains": ["a"],
           "model_auroc": {"b": 0.74}, "matrix_auroc": {"b": 0.745},
           "probes": [{"train_domain": "a", "selected": 0, "layers": [3, 5], "n_train": 64,
                       "n_test": {"a": 30, "b": 30}, "transfer": {"a": [0.95, 0.97], "b": [0.38, 0.51]},
                       "oracle": {}}]}
    (f,) = probe_findings(res)
    assert f.kind == "representation_failure"
    assert "better than the model's own read-out (best probe 0.51, model 0.74)" in f.title
    res["probes"][0]["transfer"]["b"] = [0.70, 0.77]  # probes about as good as the model: none carries more
    (f,) = probe_findings(res)
    assert "more than 0.05 above the model's own read-out (best probe 0.77, model 0.74)" in f.title
    # no within-domain probe measured: not "the representation barely encodes" b's label
    assert "not measured" in f.summary and "barely encodes" not in f.summary
    # one legitimate email among 29 phishing: no comparison at all
    res["probes"][0]["n_test_by_class"] = {"b": [1, 29]}
    assert probe_findings(res) == []


def test_representation_failure_is_high_only_when_the_whole_domain_puts_the_failure_beyond_noise():
    # 0.649 on 30 emails was high and 0.658 medium: a point bar read on a sample's noise
    from gapscope.detectors.internals import probe_findings

    def res(ci):
        return {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a", "train_domains": ["a"],
                "model_auroc": {"b": 0.6}, "matrix_auroc": {"b": 0.62}, "matrix_auroc_ci": {"b": ci},
                "probes": [{"train_domain": "a", "selected": 0, "layers": [3], "n_train": 64,
                            "n_test": {"a": 30, "b": 30}, "transfer": {"a": [0.95], "b": [0.6]}, "oracle": {}}]}

    (f,) = probe_findings(res([0.50, 0.72]))
    assert f.severity == "high" and "95% CI 0.50-0.72" in f.summary
    (f,) = probe_findings(res([0.45, 0.79]))  # the interval reaches a model that ranks well
    assert f.severity == "medium"
    (f,) = probe_findings(res(None))
    assert f.severity == "medium" and "95% CI" not in f.summary
    mild = res([0.71, 0.745])  # a large domain: beyond noise, but a mild failure
    mild["matrix_auroc"]["b"] = 0.73
    (f,) = probe_findings(mild)
    assert f.severity == "medium"


def test_shortcut_attention_is_not_high_when_fine_tunings_part_is_untested():
    from gapscope.detectors.internals import attention_findings

    top = [{"layer": 24, "head": 2, "tuned": 0.77, "control": 0.03, "base": 0.43}]
    no_base = _attention_res([{"layer": 24, "head": 2, "tuned": 0.77, "control": 0.03}],
                             {"layer": 24, "head": 2, "tuned": 0.77, "control": 0.03, "n": 8}, gap=2.7)
    (f,) = attention_findings(no_base)
    assert f.severity == "medium" and "no base model was compared" in f.summary
    assert f.evidence["rise_tested"] is False
    # three carriers: the rise would be the largest of many differences on the emails that picked it
    few = _attention_res(top, {"layer": 24, "head": 7, "tuned": 0.64, "base": 0.26, "control": 0.03, "n": 3},
                         gap=2.7)
    few["attention"]["strings"][0]["n"] = 3
    (f,) = attention_findings(few)
    assert f.severity == "medium" and "3 emails carry the string, too few" in f.summary


def test_decision_layers_of_an_encoder_name_its_cls_position():
    from gapscope.detectors.internals import patching_findings

    res = {"cell": "e__specialist-a", "model": "e", "paradigm": "specialist:a",
           "patching": {"layers": [-1, 0, 1], "errors": [
               {"groups": ["edited", "cls"], "restored": [[0.9, 0.0], [0.7, 0.1], [0.2, 0.8]]}], "shortcut": []}}
    (f,) = patching_findings(res)
    assert "[CLS] position carries the decision from resid_post.1 on (not yet at resid_post.0;" in f.title
    assert "read-out" not in f.title and "one of the positions the encoder's head averages" in f.summary


def test_late_overwrite_is_read_on_emails_that_did_not_pick_the_layer():
    """Thirty layers of the same true AUROC and 60 out-of-domain emails: the best layer read on the
    emails that picked it beats the output by chance; cross-fitted, it does not. A real overwrite
    (evidence at the middle layers, gone by the output) is still found."""
    from gapscope.internals.logit_lens import overwrite_crossfit

    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    fired_in_sample = fired = 0
    for _ in range(100):
        shared = rng.normal(size=60)
        lens = 1.2 * y[:, None] + 0.6 * shared[:, None] + rng.normal(size=(60, 31)) * 0.8
        ow = overwrite_crossfit(lens, y)
        fired_in_sample += ow["in_sample"]["drop"] >= 0.15
        fired += ow["drop"] >= 0.15
    assert fired_in_sample >= 8 and fired <= 4  # seed 0: 13 and 2 of 100
    lens = rng.normal(size=(60, 31))
    lens[:, 8:20] += 2.5 * y[:, None]  # evidence mid-network, lost above
    ow = overwrite_crossfit(lens, y)
    assert ow["crossfit"] and 8 <= ow["layer"] < 20 and ow["drop"] > 0.3


def test_internals_runs_after_the_shortcuts_detector_whose_findings_it_reads():
    """Its suspected strings include the shortcuts detector's findings: run before it (the
    registration order), a fresh run read none of them and a later `diagnose` read them all."""
    from gapscope.findings import detectors

    order = list(detectors())
    assert order.index("shortcuts") < order.index("internals")
    assert set(order) >= {"generalization", "label_noise", "minimal_pairs", "attributions"}


def test_two_different_emails_of_equal_length_share_only_their_common_tokens():
    """Mis-scored pairs patch one email from another; where both are cut at the window their
    lengths are equal, and at c51d90c they were aligned one to one as if one were an edit of the
    other (the whole email an "edited" group). Only a minimal pair is aligned that way."""
    from gapscope.internals import patching as P
    from gapscope.internals.view import Item

    def item(email):
        ids = (1, 2, *email, 7, 8)  # prompt, email, answer cue
        return Item(ids=ids, email_start=2, email_end=2 + len(email), query=(len(ids) - 1,), offsets=None, text="")

    source, target = item((10, 11, 12, 13)), item((20, 11, 21, 22))
    amap = P.align(source, target)
    assert {t: s for t, s in amap.items() if 2 <= t < 6} == {3: 3}  # the one shared token
    assert all(source.ids[s] == target.ids[t] for t, s in amap.items())
    sub = P.align(source, target, substitution=True)
    assert all(sub[t] == t for t in range(2, 6))  # a minimal pair: one to one


def test_the_paired_bound_at_a_bonferroni_level_does_not_move_with_the_seed():
    from gapscope.internals.probes import paired_auroc_gap_lower

    rng = np.random.default_rng(5)
    y = np.arange(42) % 2
    p, m = 1.5 * y + rng.normal(0, 1, 42), 0.6 * y + rng.normal(0, 1, 42)
    few = [paired_auroc_gap_lower(y, p, m, 0.005, n_boot=2000, seed=s) for s in range(10)]
    scaled = [paired_auroc_gap_lower(y, p, m, 0.005, seed=s) for s in range(10)]  # 10,000 draws
    assert np.ptp(scaled) < 0.6 * np.ptp(few)


def test_a_late_overwrite_names_the_layers_its_auroc_was_read_at():
    from gapscope.detectors.internals import lens_findings

    res = {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a", "train_domains": ["a"],
           "n_test": {"a": 30, "b": 30},
           "lens": {"overwrite": {"layer": 20, "best": 0.88, "final": 0.6, "drop": 0.28, "crossfit": True,
                                  "layers_picked": [20, 22]}}}
    (f,) = lens_findings(res)
    assert "at resid_post.19 / resid_post.21" in f.title and f.severity == "medium"
    res["lens"]["overwrite"].update(crossfit=False, layers_picked=None)
    (f,) = lens_findings(res)
    assert f.severity == "low" and "too few of a class to cross-fit" in f.summary


def test_token_class_patterns_are_linear_in_a_long_run_and_find_the_same_hosts():
    # tried from every character of a run, 'a-a-a-...' (a base64 blob, a long tracking token) cost its
    # length squared: 4-8 s for 20,000 characters in URL, 1.3 s in ADDRESS
    import time

    from gapscope.internals.token_classes import char_spans

    t0 = time.process_time()  # CPU time: another job on the machine does not count
    for s in ("a-" * 10000, "ab." * 7000, "a" * 20000):
        char_spans(s)
    assert time.process_time() - t0 < 1.0
    # the links and addresses the edits remove (attribution/words.py): an address's host is no link
    # (the class's own pattern read "bank-mail.co" out of "x.y+z@bank-mail.co.uk"), nor a host in capitals
    text = ("Visit paypal.com or secure-login.net; see evil.fr/login, ASP.NET, mail x.y+z@bank-mail.co.uk\n"
            "From: a <b@c.io>")
    spans = char_spans(text)
    assert [text[a:b] for a, b in spans["url"]] == ["paypal.com", "secure-login.net", "evil.fr/login"]
    assert [text[a:b] for a, b in spans["address"]] == ["x.y+z@bank-mail.co.uk", "From: a <b@c.io>", "b@c.io"]


def test_representation_failure_reads_a_within_domain_probe_against_the_model():
    # a probe within b at 0.79 beside the model's 0.73 was read as "b's label is in the representation
    # but along directions a-trained decisions never see": the probe must beat the model by the
    # read-out bar for that; a little above it is a weak signal
    from gapscope.detectors.internals import probe_findings

    def res(oracle):
        return {"cell": "m__specialist-a", "model": "m", "paradigm": "specialist:a", "train_domains": ["a"],
                "model_auroc": {"b": 0.70}, "matrix_auroc": {"b": 0.72},
                "probes": [{"train_domain": "a", "selected": 0, "layers": [3], "n_train": 64,
                            "n_test": {"a": 30, "b": 30}, "transfer": {"a": [0.95], "b": [0.68]},
                            "oracle": {"b": [oracle]}}]}

    (f,) = probe_findings(res(0.92))
    assert "along directions neither a probe trained on a nor the model's read-out uses" in f.summary
    (f,) = probe_findings(res(0.76))
    assert "along directions" not in f.summary
    assert "reaches 0.76 (cross-validated), less than 0.10 above the model's 0.70" in f.summary
    (f,) = probe_findings(res(0.60))
    assert "reaches only 0.60" in f.summary


def test_a_domain_contrast_needs_five_emails_of_a_class_on_each_side():
    # two legitimate emails of the other domains set a "high" legitimate-class direction (a review)
    from gapscope.internals.domain_direction import domain_parts

    y = np.array([1] * 10 + [0] * 10 + [1] * 10 + [0] * 2)
    dom = np.array(["t"] * 20 + ["o"] * 12)
    parts = domain_parts(y, dom, "t")
    assert parts["legitimate"] is None and parts["phishing"] is not None
    # the balanced contrast keeps only the classes both sides hold enough of: kept on one side alone, it
    # set target phishing against the others' two classes, half the label direction (the diff review)
    assert [len(p[0]) for p in parts["balanced"]] == [len(p[0]) for p in parts["phishing"]] == [10, 10]
