"""Kind `causal-lm`: a decoder-only LM prompted to answer " phishing" / " legitimate",
fine-tuned with LoRA on its top layers.

margin = logit(" phishing") - logit(" legitimate") at the answer (last) position.

Speed, without changing margins beyond float noise:
  * only the two label rows of the unembedding are ever multiplied (lm_forward.label_logits);
  * right padding + gather at each row's last real token, length-bucketed batches;
  * bfloat16 autocast where the hardware has it (float32 master weights on CPU);
  * LoRA only on the top `train_layers` layers, so the residual stream entering them is a
    pure function of the tokens: it is computed once (prefix_cache.PrefixCache) and reused
    for every epoch, for scoring, and across cells sharing the base model.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gapscope import option_rules as R
from gapscope.errors import GapscopeError
from gapscope.models import lm_forward as lmf
from gapscope.models.architecture import decoder_layers, lora_fix, module_path
from gapscope.models.base import ClassifierModel, ModelSpec, ProgressFn, register_model_kind
from gapscope.models.attention import inference_context as attention_inference
from gapscope.models.device import (DTYPES, autocast, frozen_linear_dtype, resolve_compute_dtype, resolve_device,
                                    weights_dtype)
from gapscope.models.linearized import RELEVANCE_BATCH, TokenRelevance, input_relevance
from gapscope.models.loading import borrow, drop_adapter, float32_linears, give_back
from gapscope.models.lora import (attach_lora, default_targets, load_lora_state_dict, lora_state_dict,
                                  require_all_targets, resolve_train_layers)
from gapscope.models.options import choice, parse_options, ranged
from gapscope.models.prefix_cache import PrefixCache, ids_key, shared_prefix_cache
from gapscope.models.sources import resolve_source
from gapscope.models.tokens import ANSWER_CUE, INSTRUCTION, LABEL_WORDS, Encoded, PromptCodec, length_buckets, pad_id_of, pad_right
from gapscope.models.training import train_loop


@dataclass
class CausalLMOptions:
    max_length: int = ranged(128, R.whole(1))  # email tokens kept (the prompt around it is never cut)
    epochs: int = ranged(2, R.whole(1))
    batch_size: int = ranged(8, R.whole(1))
    # 8, not 16: scoring 64 emails on this 2-core CPU, SmolLM2 took 3.2 s at 8 rows vs 4.1 s at 16
    # (best of 3, same run; Gemma 3 270M: 3.17 vs 3.19 s); 4 rows gave no more
    eval_batch_size: int = ranged(8, R.whole(1))
    pad_multiple: int = ranged(16, R.whole(1))  # rows padded to their own length bucket: batch-independent margins
    # 1e-3, not the common 2e-4: studies fit cells on a few hundred texts (tens of steps);
    # measured on SmolLM2, 129 texts x 2 epochs: 2e-4 barely moves (in-domain AUROC 0.57),
    # 1e-3 learns (0.73 in-domain, 0.70 out-of-domain).
    lr: float = ranged(1e-3, R.number(0, lo_open=True))
    weight_decay: float = ranged(0.0, R.number(0))
    grad_clip: float = ranged(1.0, R.number(0))  # 0: no clipping
    lora_r: int = ranged(8, R.whole(1))
    lora_alpha: float = ranged(16.0, R.number(0, lo_open=True))
    lora_dropout: float = ranged(0.0, R.number(0, 1, hi_open=True))
    lora_mlp: bool = False  # also adapt the MLP projections
    lora_targets: list[str] | None = None  # explicit module names; overrides the defaults
    train_layers: int | str = ranged("auto", R.whole(1))  # top-k layers get LoRA; "auto" = top third, "all"
    prefix_cache: bool = True  # reuse frozen lower-layer activations
    prefix_cache_max_mb: int = ranged(2048, R.whole(0))
    # "auto" stores the residual stream in its own dtype (float32 on CPU, bf16 on GPU):
    # lossless, so cached margins equal full-forward margins. "bfloat16" halves CPU memory
    # at the price of bf16-sized noise (measured max 0.06 logit on SmolLM2).
    prefix_cache_dtype: str = choice("auto", "auto", "float32", "bfloat16")
    dtype: str = choice("auto", "auto", "float32", "bfloat16")  # compute (autocast) dtype
    device: str = "auto"
    load_in_4bit: bool = False  # QLoRA on CUDA with bitsandbytes
    # One model over several GPUs (accelerate's dispatch): "auto", "balanced", "sequential" ...
    device_map: str | None = None


# The email of the margin check: a short prompt keeps it cheap (one forward per base and path).
CHECK_EMAIL = "Hello, please confirm your account."

# Options that shape the saved adapter: load() takes these from the save, not the spec.
STRUCTURAL_OPTIONS = ("max_length", "lora_r", "lora_alpha", "lora_mlp", "lora_targets", "train_layers")


@register_model_kind("causal-lm")
class CausalLM(ClassifierModel):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.opts = parse_options(CausalLMOptions, spec.options, spec.name)
        self.source = resolve_source(spec.source, "causal-lm")
        self.device = resolve_device(self.opts.device)
        self.compute_dtype = resolve_compute_dtype(self.opts.dtype, self.device)
        self.weights_dtype = weights_dtype(self.device, self.compute_dtype)
        self.linear_dtype = frozen_linear_dtype(self.device, self.compute_dtype)
        self.base = borrow("causal-lm", self.source, self.device, self.weights_dtype, self,
                           self.opts.load_in_4bit, self.opts.device_map, self.linear_dtype)
        if self.opts.device_map is not None:  # inputs go where the first layer lives
            self.device = self.base.model.get_input_embeddings().weight.device
        self.codec = PromptCodec(self.base.tokenizer, self.opts.max_length)
        self.pad_id = pad_id_of(self.base.tokenizer)
        decoder_layers(self.hf, self.source.source, self.opts.prefix_cache)  # refuses a structure it cannot drive
        self._configure_split()

    # -- structure -------------------------------------------------------------
    @property
    def hf(self):
        if self.base is None:
            raise RuntimeError(f"{self.spec.name}: model was closed")
        return self.base.model

    @property
    def decoder(self):
        return self.hf.get_decoder()

    @property
    def n_layers(self) -> int:
        return len(self.decoder.layers)

    def _configure_split(self) -> None:
        L = self.n_layers
        self.train_layers = resolve_train_layers(self.opts.train_layers, L, self.spec.name)
        self.split = L - self.train_layers  # layers [0, split) are frozen
        self.prefix_cache: PrefixCache | None = None
        pcd = self.opts.prefix_cache_dtype
        self.cache_dtype = self.weights_dtype if pcd == "auto" else DTYPES[pcd]
        if self.opts.prefix_cache and self.split > 0:
            key = (str(self.source.local_dir), self.split, str(self.compute_dtype), str(self.weights_dtype),
                   str(self.cache_dtype), self.base.quantized, str(self.device))
            self.prefix_cache = shared_prefix_cache(key, self.opts.prefix_cache_max_mb << 20)
        self._check_margin()

    def _check_margin(self) -> None:
        """gapscope's margin (its split, cached-states and label-rows path) against the HF model's own
        forward on one short prompt, once per loaded base and path. A scaling gapscope does not know
        (Granite's logits_scaling and embedding_multiplier were missed) made margins, the training
        loss and calibration wrong without an error; such a model is refused in one line instead."""
        path = (self.split if self._use_cache else 0, str(self.compute_dtype), str(self.cache_dtype))
        verdict = self.base.margin_checks.get(path)
        if verdict is None:
            verdict = self.base.margin_checks[path] = self._margin_disagreement()
        if verdict:
            raise GapscopeError(verdict)

    def _margin_disagreement(self) -> str:
        """"" when both margins agree within the compute dtype's noise, else the refusal message."""
        enc = self.codec.encode([CHECK_EMAIL])[0]
        legit, phish = self.codec.label_ids
        keep = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(type(self.hf).forward).parameters else {}
        with torch.no_grad():  # no adapter is attached here (load() drops it first)
            states = None
            if self._use_cache:  # computed like the cache's, not kept in it
                states = [s for _, computed in self._compute_prefix([enc], [0], None) for s in computed]
            ours = self._logits([enc], states)[0].double().cpu()
            with self.inference_context():
                out = self.hf(input_ids=torch.tensor([list(enc.ids)], device=self.device), use_cache=False, **keep)
            ref = out.logits[0, -1, [legit, phish]].double().cpu()
        # Noise, relative to the logits' size: float32 at most 2e-6 on 16 tiny models of 15
        # architectures, bf16 0.013 (HF's bf16 head, padding flipping roundings): 500x and 5x below these
        # bounds; a missed scaling is off by its whole factor (Granite 8, Cohere 16). No absolute
        # floor: tiny random models have logits ~0.1, real ones ~10.
        rtol = 1e-3 if self.compute_dtype == torch.float32 else 2**-4
        if float((ours - ref).abs().sum()) <= rtol * float(ref.abs().sum()) + 1e-6:
            return ""
        how = f"layers 0-{self.split - 1} from the prefix cache" if self._use_cache else "a full forward"
        return (f"{self.source.source}: gapscope's margin on a check prompt is {float(ours[1] - ours[0]):.6g} but "
                f"this {type(self.hf).__name__}'s own forward gives {float(ref[1] - ref[0]):.6g} (label logits "
                f"{float(ours[0]):.4g}, {float(ours[1]):.4g} vs {float(ref[0]):.4g}, {float(ref[1]):.4g}; "
                f"{how}): gapscope does not reproduce this architecture's output"
                + ("; try prefix_cache = false" if self._use_cache else ""))

    def _attach_adapter(self) -> None:
        drop_adapter(self.base)
        o = self.opts
        targets = o.lora_targets or default_targets(self.hf, self.source.model_type, o.lora_mlp)
        layers = list(range(self.split, self.n_layers)) if self.split > 0 else None
        with float32_linears(list(self.decoder.layers[self.split:]), self.linear_dtype):
            adapter = attach_lora(self.hf, r=o.lora_r, alpha=o.lora_alpha, dropout=o.lora_dropout, targets=targets,
                                  layers=layers, within=module_path(self.hf, self.decoder.layers))
        try:
            require_all_targets(adapter, targets, source=self.source.source, layers=layers,
                                arch=type(self.hf).__name__, fix=lora_fix("causal-lm", o))
        except GapscopeError:
            self.base.model = adapter.unload()  # the shared base goes back clean
            raise
        self.base.adapter = adapter
        self._targets = targets
        self._adapted = len(adapter.targeted_module_names)

    # -- forward pieces ----------------------------------------------------------
    def _prefix_states(self, encs: Sequence[Encoded]) -> list[torch.Tensor]:
        """Residual stream entering layer `split`, (len_i, d) per text, via the cache."""
        keys = [ids_key(e.ids) for e in encs]
        states: list[torch.Tensor | None] = [self.prefix_cache.get(k) for k in keys]
        missing = [i for i, s in enumerate(states) if s is None]
        for rows, computed in self._compute_prefix(encs, missing, keys):
            for i, h in zip(rows, computed):
                states[i] = h
        return states  # type: ignore[return-value]

    def _compute_prefix(self, encs: Sequence[Encoded], rows: Sequence[int], keys: Sequence[str] | None):
        """Computes the states of encs[rows] bucket by bucket into the cache (not kept when `keys` is
        None), yielding (bucket rows, their (len_i, d) states): a caller holds only what it needs."""
        for bucket in length_buckets([len(encs[i].ids) for i in rows], self.opts.eval_batch_size,
                                     self.opts.pad_multiple):
            chunk = [rows[j] for j in bucket]
            ids, mask = pad_right([encs[i].ids for i in chunk], self.pad_id, self.opts.pad_multiple)
            # in eval mode even inside fit(): a base whose config has dropout (phi-2's resid_pdrop 0.1)
            # put noisy states in the shared cache that later scores read (off by 1.5 on a tiny model)
            training = self.hf.training
            self.hf.eval()
            try:
                with torch.no_grad(), self.inference_context():
                    h = lmf.run_layers(self.decoder, 0, self.split, input_ids=ids.to(self.device),
                                       attention_mask=mask.to(self.device))
            finally:
                self.hf.train(training)
            h = h.to(self.cache_dtype).cpu()
            computed = [h[r, : len(encs[i].ids)].clone() for r, i in enumerate(chunk)]
            for i, state in zip(chunk, computed):
                if keys is not None:
                    self.prefix_cache.put(keys[i], state)
            yield chunk, computed

    def _warm_prefix_cache(self, encs: Sequence[Encoded]) -> None:
        """Puts the training texts' states in the cache before training, one bucket in memory at a
        time. Skipped when they would not all fit the budget: LRU over shuffled epochs would evict
        them before use, so each training batch computes its own (bounded memory, same values:
        a row's states do not depend on its bucket-mates)."""
        d = self.hf.config.get_text_config().hidden_size
        itemsize = torch.empty((), dtype=self.cache_dtype).element_size()
        if sum(len(e.ids) for e in encs) * d * itemsize > self.prefix_cache.max_bytes:
            return
        keys = [ids_key(e.ids) for e in encs]
        missing = [i for i, k in enumerate(keys) if k not in self.prefix_cache]
        for _ in self._compute_prefix(encs, missing, keys):
            pass

    def _logits(self, encs: Sequence[Encoded], states: Sequence[torch.Tensor] | None) -> torch.Tensor:
        """(b, 2) [legit, phishing] logits; from cached states when given, else a full forward."""
        lengths = [len(e.ids) for e in encs]
        # training: plain autocast; no-grad: the inference context (attention kernel); the
        # label read-out stays outside, in float32
        ctx = autocast(self.device, self.compute_dtype) if torch.is_grad_enabled() else self.inference_context()
        with ctx:
            if states is not None:
                h, mask = lmf.pad_states(states, self.weights_dtype, self.device, self.opts.pad_multiple)
                out = lmf.run_layers(self.decoder, self.split, self.n_layers, inputs_embeds=h,
                                     attention_mask=mask)
            else:
                ids, mask = pad_right([e.ids for e in encs], self.pad_id, self.opts.pad_multiple)
                out = lmf.run_layers(self.decoder, 0, self.n_layers, input_ids=ids.to(self.device),
                                     attention_mask=mask.to(self.device))
        return lmf.label_logits(self.hf, lmf.gather_last(out, lengths), self.codec.label_ids)

    def inference_context(self):
        """What every no-grad forward of this model runs under (models/attention.inference_context):
        autocast to the compute dtype and, on a bf16 CPU, gapscope's attention kernel. Scoring, the
        prefix cache, perturbed-copy reuse and the internals views all use it."""
        return attention_inference(self.hf, self.device, self.compute_dtype)

    @property
    def _use_cache(self) -> bool:
        return self.prefix_cache is not None

    # -- the frozen prefix, for analyses that run the layers themselves (internals) --------
    def prefix_states(self, encs: Sequence[Encoded]) -> list[torch.Tensor]:
        """Residual stream entering layer `split` per text, from the shared cache (computed
        and kept when missing). Needs the prefix cache (split > 0)."""
        if not self._use_cache:
            raise RuntimeError(f"{self.spec.name}: no frozen prefix (prefix_cache off or train_layers = all)")
        return self._prefix_states(encs)

    def keep_prefix_states(self, encs: Sequence[Encoded], states: Sequence[torch.Tensor]) -> None:
        """Put states computed elsewhere (same layers, same inputs) into the shared cache."""
        if self._use_cache:
            for e, s in zip(encs, states):
                self.prefix_cache.put(ids_key(e.ids), s.detach().to(self.cache_dtype).cpu().clone())

    # -- the contract ------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: np.ndarray, *, seed: int = 0,
            progress: ProgressFn | None = None) -> dict[str, Any]:
        labels = np.asarray(labels).astype(int)
        if len(texts) != len(labels) or len(texts) == 0:
            raise GapscopeError(f"model {self.spec.name!r}: need as many labels as texts (got {len(texts)}/{len(labels)})")
        t0 = time.perf_counter()
        torch.manual_seed(seed)  # LoRA A matrices are drawn from torch's RNG
        self._attach_adapter()
        encs = self.codec.encode(texts)
        if self._use_cache:
            self._warm_prefix_cache(encs)
        prefix_seconds = time.perf_counter() - t0
        params = [p for p in self.hf.parameters() if p.requires_grad]

        def step(idx: np.ndarray):
            # states come through the cache batch by batch (recomputed on a miss), so fit() holds
            # no more than prefix_cache_max_mb plus one batch (it once held every text's states)
            batch = [encs[i] for i in idx]
            logits = self._logits(batch, self._prefix_states(batch) if self._use_cache else None)
            return logits, sum(len(e.ids) for e in batch)

        self.hf.train()  # only LoRA dropout (0 by default) reacts; base dropouts are 0 in these LMs
        try:
            log = train_loop(step, labels, param_groups=[{"params": params, "lr": self.opts.lr}],
                             epochs=self.opts.epochs, batch_size=self.opts.batch_size, seed=seed,
                             weight_decay=self.opts.weight_decay, grad_clip=self.opts.grad_clip,
                             progress=progress)
        finally:
            self.hf.eval()
        log.update({
            "n": len(texts), "seed": seed, "prefix_seconds": round(prefix_seconds, 3),
            "total_seconds": round(time.perf_counter() - t0, 3), "layers": self.n_layers,
            "train_layers": self.train_layers, "prefix_cache": self._use_cache,
            "trainable_params": int(sum(p.numel() for p in params)), "lora_targets": list(self._targets),
            "lora_modules": self._adapted,
            "compute_dtype": str(self.compute_dtype).removeprefix("torch."), "device": str(self.device),
            "single_token_labels": self.codec.single_token_labels,
        })
        return log

    def score(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        if len(texts) == 0:  # the tokenizer raises IndexError on an empty batch
            return np.empty(0, dtype=np.float64)
        encs = self.codec.encode(texts)
        out = np.empty(len(encs), dtype=np.float64)
        done = 0
        for bucket in length_buckets([len(e.ids) for e in encs], self.opts.eval_batch_size, self.opts.pad_multiple):
            batch = [encs[i] for i in bucket]
            with torch.no_grad():
                states = self._prefix_states(batch) if self._use_cache else None
                logits = self._logits(batch, states)
            out[bucket] = (logits[:, 1] - logits[:, 0]).double().cpu().numpy()
            done += len(bucket)
            if progress:
                progress(done, len(encs))
        return out

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        has_adapter = self.base is not None and self.base.adapter is not None
        if has_adapter:
            from safetensors.torch import save_file

            save_file(lora_state_dict(self.base.adapter), str(directory / "adapter.safetensors"))
        meta = {"kind": self.kind, "source": self.source.source, "arch": self.source.arch,
                "options": asdict(self.opts), "adapter": has_adapter, "train_layers": self.train_layers,
                "label_ids": list(self.codec.label_ids), "label_words": list(LABEL_WORDS),
                "prompt": {"instruction": INSTRUCTION, "answer_cue": ANSWER_CUE}}
        (directory / "causal_lm.json").write_text(json.dumps(meta, indent=1))

    def load(self, directory: Path) -> None:
        from gapscope.study.artifacts import read_json, read_tensors

        directory = Path(directory)
        meta = read_json(directory / "causal_lm.json")
        saved = meta["options"]
        self.opts = replace(self.opts, **{k: saved[k] for k in STRUCTURAL_OPTIONS if k in saved})
        self.codec = PromptCodec(self.base.tokenizer, self.opts.max_length)
        if tuple(meta["label_ids"]) != tuple(self.codec.label_ids):
            raise GapscopeError(f"{directory}: adapter was trained with another tokenizer/base model")
        drop_adapter(self.base)  # before the margin check, which reads the bare base
        self._configure_split()
        if meta["adapter"]:
            self._attach_adapter()
            load_lora_state_dict(self.base.adapter, read_tensors(directory / "adapter.safetensors"))
            self.hf.eval()

    def token_relevance(self, texts: Sequence[str]) -> list:
        """Conservative relevance (models/linearized.py) of each email token for the margin: one
        forward and backward per length bucket, in the compute dtype (bf16 autocast where the
        hardware has it: 2.5x faster than float32 on SmolLM2, same faithfulness; the relevances
        then add up to the margin within ~0.05 instead of exactly)."""
        encs, offsets = zip(*self.codec.encode_with_offsets(texts)) if texts else ((), ())
        if any(o is None for o in offsets):
            raise GapscopeError(f"model {self.spec.name!r}: relevance needs a fast tokenizer (character offsets)")
        out: list = [None] * len(encs)
        for bucket in length_buckets([len(e.ids) for e in encs], min(self.opts.eval_batch_size, RELEVANCE_BATCH), self.opts.pad_multiple):
            batch = [encs[i] for i in bucket]
            ids, mask = pad_right([e.ids for e in batch], self.pad_id, self.opts.pad_multiple)
            ids, mask = ids.to(self.device), mask.to(self.device)
            lengths = [len(e.ids) for e in batch]

            def forward():
                with autocast(self.device, self.compute_dtype):
                    h = lmf.run_layers(self.decoder, 0, self.n_layers, input_ids=ids, attention_mask=mask)
                logits = lmf.label_logits(self.hf, lmf.gather_last(h, lengths), self.codec.label_ids,
                                          conservative=True)
                return logits[:, 1] - logits[:, 0]

            margins, rel = input_relevance(self.hf, self.decoder.layers[0], forward)
            rel = rel.double().cpu().numpy()
            for r, i in enumerate(bucket):
                e = encs[i]
                own = rel[r, e.email_start:e.email_end]
                out[i] = TokenRelevance(spans=offsets[i][: len(own)], relevance=own, margin=float(margins[r]),
                                        rest=float(rel[r, : len(e.ids)].sum() - own.sum()))
        return out

    def tokenize(self, text: str) -> list[str]:
        """The email's tokens as the model sees them (after truncation to max_length)."""
        return self.base.tokenizer.convert_ids_to_tokens(self.codec.email_ids([text])[0])

    def hidden_states(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Residual stream per layer (embeddings, then each layer; the last entry is final-normed)
        at the answer position and mean-pooled over the email tokens, float16 (clipped to its range)."""
        encs = self.codec.encode(texts)
        n, L, d = len(encs), self.n_layers, self.hf.config.get_text_config().hidden_size
        answer = np.zeros((n, L + 1, d), dtype=np.float16)
        mean = np.zeros((n, L + 1, d), dtype=np.float16)
        for bucket in length_buckets([len(e.ids) for e in encs], self.opts.eval_batch_size, self.opts.pad_multiple):
            batch = [encs[i] for i in bucket]
            ids, mask = pad_right([e.ids for e in batch], self.pad_id, self.opts.pad_multiple)
            with torch.no_grad(), self.inference_context():
                out = self.decoder(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                   use_cache=False, output_hidden_states=True)
            # Email span weights; an empty email falls back to the answer position.
            span = torch.zeros(ids.shape, dtype=torch.float32)
            for r, e in enumerate(batch):
                lo, hi = (e.email_start, e.email_end) if e.email_end > e.email_start else (e.answer_index, e.answer_index + 1)
                span[r, lo:hi] = 1.0 / (hi - lo)
            span = span.to(self.device)
            last = torch.as_tensor([e.answer_index for e in batch], device=self.device)
            rows = torch.arange(len(batch), device=self.device)
            for layer, h in enumerate(out.hidden_states):  # gathered per layer: memory stays O(b*T*d)
                h = h.float()
                answer[bucket, layer] = _to_f16(h[rows, last])
                mean[bucket, layer] = _to_f16(torch.einsum("bt,btd->bd", span, h))
        return {"answer": answer, "mean": mean}

    def close(self) -> None:
        if self.base is not None:
            if self.base.shared:
                give_back(self.base)
            self.base = None


def _to_f16(x: torch.Tensor) -> np.ndarray:
    # Some models (Gemma) carry residual outliers beyond float16's range: clip, never inf.
    return x.clamp(-65504.0, 65504.0).cpu().numpy().astype(np.float16)
