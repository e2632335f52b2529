"""One view of a fitted ClassifierModel for the internals analyses, whatever its kind.

A view knows how a model turns text into token ids (`encode`), which positions it reads
its decision from, and how to turn a residual-stream vector into the label margin
(`readout`, the logit lens / head lens). Everything architecture-specific is found
through hooks.Stack (layers, attention, final norm); the per-*kind* code below only uses
the public pieces of CausalLM (hf, decoder, codec, base) and Encoder (encoder, head,
tokenizer, opts).

    causal-lm  decision read at the answer position (last token): final norm, then the
               two label rows of the unembedding (lm_forward.label_logits)
    encoder    decision read from the mean over real tokens: the linear head
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gapscope.internals.hooks import Recorder, Setter, Stack, find_final_norm, patching
from gapscope.models.base import ClassifierModel, UnsupportedByModel
from gapscope.models.tokens import CHARS_PER_TOKEN_BOUND, pad_right


@dataclass(frozen=True)
class Item:
    """One tokenized example: ids, where the email's tokens are, where the decision is read."""

    ids: tuple[int, ...]
    email_start: int
    email_end: int
    query: tuple[int, ...]  # positions whose attention rows are analysed (answer / all tokens)
    offsets: tuple[tuple[int, int], ...] | None  # char span in the text of each email token
    text: str

    @property
    def answer_index(self) -> int:
        return len(self.ids) - 1

    def __len__(self) -> int:
        return len(self.ids)


class ModelView(abc.ABC):
    kind = ""
    readout_site = "answer"  # "answer" or "mean": the cached site the readout applies to

    def __init__(self, model: ClassifierModel):
        self.model = model
        self.stack = Stack(self.module)

    # -- structure ------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def module(self) -> torch.nn.Module:
        """What forward() runs and hooks attach to."""

    @property
    def n_layers(self) -> int:
        return self.stack.n_layers

    @property
    @abc.abstractmethod
    def tokenizer(self):
        """The model's tokenizer."""

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def pad_multiple(self) -> int:
        return int(getattr(self.model.opts, "pad_multiple", 1))

    @property
    def batch_size(self) -> int:
        return int(getattr(self.model.opts, "eval_batch_size", 16))

    @abc.abstractmethod
    def encode(self, texts: Sequence[str]) -> list[Item]:
        """Token ids and the email span of each text, as the model reads it."""

    def anchor(self, item: Item) -> int:
        """The single position cached as "answer": the last token (causal LM), [CLS] (encoder)."""
        return item.answer_index

    def pool_weights(self, items: Sequence[Item], width: int) -> torch.Tensor:
        """(b, width) weights of the mean-pooled site: the email tokens (empty email: the answer)."""
        w = torch.zeros((len(items), width), dtype=torch.float32)
        for r, it in enumerate(items):
            lo, hi = (it.email_start, it.email_end) if it.email_end > it.email_start else \
                (it.answer_index, it.answer_index + 1)
            w[r, lo:hi] = 1.0 / (hi - lo)
        return w

    # -- forward --------------------------------------------------------------------
    @abc.abstractmethod
    def _final(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Run the model; (b, T, d) final hidden states (final-normed where the model norms)."""

    @abc.abstractmethod
    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Label margin from a residual vector at the readout site, (n, d) -> (n,), float32."""

    @abc.abstractmethod
    def _pooled_final(self, items: Sequence[Item], final: torch.Tensor) -> torch.Tensor:
        """(b, d) final state at the readout site of each item."""

    def batch(self, items: Sequence[Item]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = pad_right([it.ids for it in items], self.model.pad_id, self.pad_multiple)
        return ids.to(self.device), mask.to(self.device)

    def forward(self, items: Sequence[Item], setters: dict[str, Setter] | None = None,
                recorder: Recorder | None = None) -> torch.Tensor:
        """Margins (b,) of one batch, with optional activation setters and a recorder active."""
        ids, mask = self.batch(items)
        with contextlib.ExitStack() as stack, torch.no_grad():
            if setters:
                stack.enter_context(patching(self.stack, setters))
            if recorder is not None:
                stack.enter_context(recorder)
            with self.model.inference_context():
                final = self._final(ids, mask)
            return self.readout(self._pooled_final(items, final)).float().cpu()

    def margins(self, items: Sequence[Item]) -> np.ndarray:
        from gapscope.models.tokens import length_buckets

        out = np.empty(len(items), dtype=np.float64)
        for b in length_buckets([len(it) for it in items], self.batch_size, self.pad_multiple):
            out[b] = self.forward([items[i] for i in b]).double().numpy()
        return out

    # -- variants -------------------------------------------------------------------
    @abc.abstractmethod
    def as_base(self) -> contextlib.AbstractContextManager["ModelView"]:
        """The same view with the fine-tuning switched off (LoRA disabled / base weights)."""

    @property
    def has_base(self) -> bool:
        return False


def _email_offsets(tokenizer, text: str, ids: Sequence[int], cut: int,
                   add_special_tokens: bool, max_length: int | None) -> list[tuple[int, int]] | None:
    """Char offsets of `ids` as tokenized from text[:cut]; None when the tokenizer cannot say
    (slow tokenizer) or its ids differ from the model's own."""
    try:
        kw = {"add_special_tokens": add_special_tokens, "return_offsets_mapping": True}
        if max_length is not None:
            kw.update(truncation=True, max_length=max_length)
        enc = tokenizer(text[:cut], **kw)
    except (NotImplementedError, ValueError, TypeError):
        return None
    got = list(enc["input_ids"])
    offs = [tuple(o) for o in enc["offset_mapping"]]
    if max_length is not None and not add_special_tokens:
        got, offs = got[:max_length], offs[:max_length]
    if got != list(ids):
        return None
    return offs


class CausalLMView(ModelView):
    kind = "causal-lm"
    readout_site = "answer"

    def __init__(self, model):
        self.norm = find_final_norm(model.decoder)
        super().__init__(model)

    @property
    def module(self):
        return self.model.decoder

    @property
    def tokenizer(self):
        return self.model.base.tokenizer

    def encode(self, texts: Sequence[str]) -> list[Item]:
        out = []
        for text, (e, offs) in zip(texts, self.model.codec.encode_with_offsets(texts)):
            out.append(Item(tuple(e.ids), e.email_start, e.email_end, (len(e.ids) - 1,),
                            tuple(offs) if offs is not None else None, text))
        return out

    def _final(self, ids, mask):
        return self.module(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state

    def _pooled_final(self, items, final):
        last = torch.as_tensor([it.answer_index for it in items], device=final.device)
        return final[torch.arange(final.shape[0], device=final.device), last]

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        from gapscope.models.lm_forward import label_logits

        # The decoder's own output is already final-normed; lens inputs (resid_post) are not.
        logits = label_logits(self.model.hf, h.float(), self.model.codec.label_ids)
        return logits[:, 1] - logits[:, 0]

    def run_from(self, layer: int, h: torch.Tensor, items: Sequence[Item]) -> torch.Tensor:
        """Margins (b,) when the residual stream leaving `layer` (-1: the embeddings) is `h`
        (b, T, d), padded like `batch(items)`: only the layers above run (lm_forward.run_layers),
        which makes patching late layers cheap."""
        from gapscope.models.lm_forward import run_layers

        L = self.n_layers
        _, mask = self.batch(items)
        h = h.to(self.device, self.model.weights_dtype)
        with torch.no_grad():
            if layer + 1 >= L:
                final = self.norm(h) if self.norm is not None else h
            else:
                with self.model.inference_context():
                    final = run_layers(self.module, layer + 1, L, inputs_embeds=h, attention_mask=mask)
            return self.readout(self._pooled_final(items, final)).float().cpu()

    def lens(self, resid: torch.Tensor) -> torch.Tensor:
        """Logit lens: final norm + the label rows applied to a residual (n, d) -> margins (n,)."""
        h = resid.to(self.device)
        if self.norm is not None:
            with torch.no_grad():
                p = next(self.norm.parameters(), None)
                h = self.norm(h.to(p.dtype if p is not None else torch.float32))
        with torch.no_grad():
            return self.readout(h).float().cpu()

    @property
    def has_base(self) -> bool:
        return getattr(self.model.base, "adapter", None) is not None

    @contextlib.contextmanager
    def as_base(self):
        adapter = getattr(self.model.base, "adapter", None)
        if adapter is None:
            yield self
            return
        with adapter.disable_adapter():
            yield self


class EncoderView(ModelView):
    kind = "encoder"
    readout_site = "mean"

    def __init__(self, model):
        self._module_override = None
        super().__init__(model)

    @property
    def module(self):
        return self._module_override if self._module_override is not None else self.model.encoder

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def encode(self, texts: Sequence[str]) -> list[Item]:
        tok = self.tokenizer
        L = self.model.opts.max_length
        cut = L * CHARS_PER_TOKEN_BOUND
        enc = tok([t[:cut] for t in texts], truncation=True, max_length=L)
        special = set(tok.all_special_ids)
        out = []
        for text, ids in zip(texts, enc["input_ids"]):
            ids = list(ids)
            real = [i for i, t in enumerate(ids) if t not in special]
            lo, hi = (real[0], real[-1] + 1) if real else (0, 0)
            offs = _email_offsets(tok, text, ids, cut, True, L)
            out.append(Item(tuple(ids), lo, hi, tuple(range(len(ids))),
                            tuple(offs[lo:hi]) if offs is not None else None, text))
        return out

    def anchor(self, item: Item) -> int:
        return 0

    def pool_weights(self, items, width):
        # The head's pooling: every real token, specials included.
        w = torch.zeros((len(items), width), dtype=torch.float32)
        for r, it in enumerate(items):
            w[r, : len(it)] = 1.0 / len(it)
        return w

    def _final(self, ids, mask):
        return self.module(input_ids=ids, attention_mask=mask).last_hidden_state

    def _pooled_final(self, items, final):
        w = self.pool_weights(items, final.shape[1]).to(final.device)
        return torch.einsum("bt,btd->bd", w, final.float())

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        head = self.model.head
        logits = head(h.to(head.weight.device, head.weight.dtype))
        return (logits[:, 1] - logits[:, 0]).float()

    def lens(self, resid: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.readout(resid.float()).cpu()

    @property
    def has_base(self) -> bool:
        return self.model.opts.finetune == "full" or getattr(self.model.base, "adapter", None) is not None

    @contextlib.contextmanager
    def as_base(self):
        adapter = getattr(self.model.base, "adapter", None)
        if adapter is not None:
            with adapter.disable_adapter():
                yield self
            return
        if self.model.opts.finetune == "full":
            self._module_override = self.model.base.model
            self.stack = Stack(self.module)
            try:
                yield self
            finally:
                self._module_override = None
                self.stack = Stack(self.module)
            return
        yield self


VIEWS = {"causal-lm": CausalLMView, "encoder": EncoderView}


def view_for(model: ClassifierModel) -> ModelView:
    cls = VIEWS.get(model.kind)
    if cls is None:
        raise UnsupportedByModel(f"model kind {model.kind!r} has no internals (no layers to hook)")
    return cls(model)
