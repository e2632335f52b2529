"""Tiny randomly initialised models + an offline tokenizer, saved in Hugging Face layout.

Used by the model tests (and reusable by anyone needing a fast stand-in for a real
model): `tiny_causal_lm_dir(tmp, "llama")` / `tiny_encoder_dir(tmp)` return a directory
that works as a spec `source`. The tokenizer is a word-level one built in memory, so
" phishing" and " legitimate" are single tokens as they are in the real models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

PHISH_WORDS = ["urgent", "verify", "password", "account", "suspended", "click", "link", "prize",
               "winner", "bank", "login", "confirm", "immediately", "wire", "invoice", "gift"]
LEGIT_WORDS = ["meeting", "lunch", "tomorrow", "report", "agenda", "team", "notes", "project",
               "schedule", "thanks", "review", "draft", "coffee", "weekend", "family", "photos"]
COMMON_WORDS = ["the", "a", "your", "please", "we", "you", "is", "for", "and", "to", "of", "on",
                "hello", "hi", "regards", "dear", "this", "our", "today", "now"]
PROMPT_WORDS = ["Classify", "email", "as", "phishing", "or", "legitimate", "Email", "Answer"]
PUNCT = [".", ":", ",", "!", "?", "\n", "\n\n"]


def tiny_tokenizer(with_bos: bool = True, encoder: bool = False):
    """A word-level fast tokenizer (whitespace + punctuation split, newlines kept as tokens)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "[CLS]", "[SEP]"]
    words = specials + sorted(set(PHISH_WORDS + LEGIT_WORDS + COMMON_WORDS + PROMPT_WORDS + PUNCT))
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    # Split off runs of newlines as their own tokens, then words / punctuation.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\n+"), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"[ \t]+"), behavior="removed"),
        pre_tokenizers.Split(Regex(r"[^\w\n]"), behavior="isolated"),
    ])
    if encoder:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
        extra = {"cls_token": "[CLS]", "sep_token": "[SEP]"}
    elif with_bos:
        tok.post_processor = processors.TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", vocab["[BOS]"])])
        extra = {"bos_token": "[BOS]", "eos_token": "[EOS]"}
    else:
        extra = {"eos_token": "[EOS]"}
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", **extra)


# Qwen2 is left out: transformers 5 always rebuilds a Qwen2Tokenizer for model_type
# "qwen2", which cannot wrap this word-level tokenizer. Its layer_types handling is
# the same as Gemma's, which is covered.
ARCHS = ("llama", "mistral", "gemma2", "gemma3")


def _causal_config(arch: str, vocab_size: int, n_layers: int, window: int = 6):
    import transformers as tf

    common = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=n_layers,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  initializer_range=0.2, pad_token_id=0, bos_token_id=2, eos_token_id=3,
                  tie_word_embeddings=False)
    if arch == "llama":
        return tf.LlamaConfig(**common), tf.LlamaForCausalLM
    if arch == "mistral":  # small window so the sliding mask actually matters
        return tf.MistralConfig(sliding_window=window, **common), tf.MistralForCausalLM
    types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n_layers)]
    if arch == "gemma2":  # has logit soft-capping
        return tf.Gemma2Config(head_dim=8, sliding_window=window, layer_types=types, final_logit_softcapping=3.0,
                               **common), tf.Gemma2ForCausalLM
    if arch == "gemma3":  # per-layer sliding/full attention with different rotary tables
        return tf.Gemma3TextConfig(head_dim=8, sliding_window=window, layer_types=types, **common), \
            tf.Gemma3ForCausalLM
    raise ValueError(arch)


def tiny_causal_lm_dir(root: Path, arch: str = "llama", n_layers: int = 4, seed: int = 0,
                       sliding_window: int = 6) -> Path:
    """sliding_window (Mistral, Gemma): small by default, so the sliding mask actually matters."""
    out = Path(root) / f"tiny-{arch}-{n_layers}" if sliding_window == 6 else \
        Path(root) / f"tiny-{arch}-{n_layers}-w{sliding_window}"
    if (out / "config.json").exists():
        return out
    tok = tiny_tokenizer(with_bos=arch != "mistral")  # one arch without BOS, like SmolLM2
    config, cls = _causal_config(arch, len(tok), n_layers, sliding_window)
    torch.manual_seed(seed)
    model = cls(config).eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_encoder_dir(root: Path, n_layers: int = 2, seed: int = 0) -> Path:
    from transformers import BertConfig, BertModel

    out = Path(root) / f"tiny-bert-{n_layers}"
    if (out / "config.json").exists():
        return out
    tok = tiny_tokenizer(encoder=True)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=n_layers,
                        num_attention_heads=4, max_position_embeddings=256, pad_token_id=0)
    torch.manual_seed(seed)
    BertModel(config).eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out


def toy_emails(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Trivially separable emails: label 1 uses phishing words, 0 legitimate words; mixed lengths."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        pool = PHISH_WORDS if label else LEGIT_WORDS
        k = int(rng.integers(3, 14))
        words = [str(rng.choice(pool)) if rng.random() < 0.6 else str(rng.choice(COMMON_WORDS)) for _ in range(k)]
        texts.append(" ".join(words) + ("." if rng.random() < 0.5 else "\n\nregards"))
        labels.append(label)
    return texts, np.array(labels)


# -- pytest fixtures (import them into a test module to use them) ------------------
import pytest  # noqa: E402


@pytest.fixture
def fresh_model_caches():
    """Empty base-model and prefix caches around a test (use with autouse in a module)."""
    from gapscope.models.loading import clear_base_cache
    from gapscope.models.prefix_cache import clear_shared_prefix_caches

    clear_base_cache()
    clear_shared_prefix_caches()
    yield
    clear_base_cache()
    clear_shared_prefix_caches()


@pytest.fixture(scope="session")
def tiny_model_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_models")


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_model_root) -> Path:
    return tiny_causal_lm_dir(tiny_model_root, "llama")


@pytest.fixture(scope="session")
def tiny_bert_dir(tiny_model_root) -> Path:
    return tiny_encoder_dir(tiny_model_root)
