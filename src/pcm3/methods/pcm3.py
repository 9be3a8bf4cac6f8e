"""PCM3: prompted contrast with masked motion modelling, on any registered backbone.

Per batch of raw clips ``(N, C, T, V, M)``: three random crop-resized views (query: crop +
shear or joint corruption; key: the same kind; masked-prediction source: crop + shear), the
body-part segment mask on view 3, the mixed view of view 1, then

    q       = g(E(view1 + base) ⊕ cl)               positive: k
    pc      = g(E(mixed + mix) ⊕ cl)                positive: mixed key kc
    F       = E_dense(masked + mask)                 masked view, per-step features
    R       = DEC(up(neck(F ⊕ mp)))                  reconstruction (40 × masked MSE)
    mask_q  = g(pool(F) ⊕ cl)                        positive: k
    x̂       = R_cl ⊙ (1 − m) + view3 ⊙ m              R_cl = DEC(up(neck(stopgrad(F ⊕ mp))))
    recon_q = g(E(x̂ + recons) ⊕ cl)                  positive: k
    k       = g_k(E_k(view2 + base) ⊕ cl), EMA encoder, no gradient

InfoNCE over the queue for the four pairs, relational KL for each (joint stream), masked
MSE. ``pool(F)`` is the masked view's sequence feature (the BiGRU's official ``"last"`` pooling
gives the last step); ``up`` repeats each step of a strided backbone (``time_stride > 1``) over
the frames it covers, so the decoder reconstructs every frame. Input prompts have the
backbone's ``input_prompt_shape``; task prompts act on the two halves of its features.
Deviations from the official code (prompt placement, per-sample randomness, views sharing one
encoder call) are listed in ``docs/fidelity.md``; ``official: true`` switches all of them to the
official forward pass (``model.prompt_offsets: batch``, ``model.separate_view_calls: true``,
``model.input_prompts: false``, ``augment.shared_randomness: true``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pcm3.augment.masking import body_part_segment_mask
from pcm3.augment.mixing import mix_batch, mixed_key
from pcm3.augment.spatial import shear, spatial_augment
from pcm3.augment.temporal import temporal_crop_resize
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError
from pcm3.layouts import Layout
from pcm3.losses import info_nce_from_similarities, masked_mse, relational_kl
from pcm3.methods.base import MomentumContrastMethod
from pcm3.methods.pcm3_options import PCM3Options
from pcm3.modalities import to_stream
from pcm3.models.encoder import features_and_dense
from pcm3.models.heads import GRUDecoder, MaskedPredictionNeck, upsample_steps
from pcm3.models.prompts import InputPrompts, TaskPrompt

INPUT_PROMPTS = ("base", "mask", "recons", "mix")


class PCM3(MomentumContrastMethod):
    """The PCM3 objective for one stream (joint: with prompts and KL; motion / bone: without)."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> None:
        o: PCM3Options = cfg.method_options
        super().__init__(cfg, layout, in_channels, num_persons, queue_size=o.moco.queue_size,
                         momentum=o.moco.momentum, schedule=o.moco.momentum_schedule)
        m = cfg.model
        joint = cfg.stream == "joint"  # official: motion and bone streams have no prompts, no KL
        self.use_input_prompts = m.input_prompts and joint
        self.use_task_prompts = m.task_prompts and joint
        self.kl_weight = o.loss.kl if joint else 0.0
        self.semantic_guidance = o.loss.semantic_guidance and joint
        self.neck = MaskedPredictionNeck(self.feature_dim, m.neck_hidden, m.neck_hidden)
        self.decoder = GRUDecoder(layout.num_joints, num_persons, in_channels, in_features=m.neck_hidden,
                                  hidden_size=m.decoder_hidden_size, num_layers=m.decoder_layers)
        half = self.feature_dim // 2
        if self.use_task_prompts and not 0 < m.prompt_length < half:
            raise ConfigError(f"model.prompt_length = {m.prompt_length} must be in 1..{half - 1}: below "
                              f"half the feature width of backbone {m.backbone!r} (feature_dim "
                              f"{self.feature_dim})")
        self.cl_prompt = TaskPrompt(half, m.prompt_length) if self.use_task_prompts else None
        self.mp_prompt = TaskPrompt(half, m.prompt_length) if self.use_task_prompts else None
        self.input_prompts = (InputPrompts(self.encoder.input_prompt_shape, INPUT_PROMPTS)
                              if self.use_input_prompts else None)

    @property
    def has_unused_parameters(self) -> bool:
        """True when a zero loss weight leaves a branch (and its parameters) out (DDP needs it)."""
        w = self.options.loss
        return min(w.mix, w.masked, w.reconstructed, w.reconstruction) == 0

    # ------------------------------------------------------------------ helpers
    def eval_input_prompt(self) -> Tensor | None:
        return self.input_prompts["base"] if self.input_prompts is not None else None

    def _prompt_rows(self, names: list[str], n: int) -> Tensor | None:
        """``(len(names) * n, *input_prompt_shape)``: each view's input prompt for its n samples."""
        if self.input_prompts is None:
            return None
        shape = self.input_prompts.shape
        return torch.cat([self.input_prompts[name].expand(n, *shape) for name in names])

    def _offsets(self, prompt: TaskPrompt, rows: int, views: int, generator: torch.Generator,
                  device: torch.device) -> Tensor:
        """``(rows,)`` offsets of ``prompt`` for ``views`` stacked views: one per sample, or with
        ``model.prompt_offsets: batch`` one per view, shared by its samples (official)."""
        if self.cfg.model.prompt_offsets == "batch":
            return prompt.random_offsets(views, generator, device).repeat_interleave(rows // views)
        return prompt.random_offsets(rows, generator, device)

    def _embed(self, features: Tensor, generator: torch.Generator, key: bool = False,
               views: int = 1) -> Tensor:
        """``(B, D)`` features of ``views`` stacked views -> L2-normalised ``(B, embed_dim)``
        (task prompt, projector)."""
        if self.cl_prompt is not None:
            features = self.cl_prompt(features, self._offsets(self.cl_prompt, features.shape[0], views,
                                                              generator, features.device))
        projector = self.key_projector if key else self.projector
        return F.normalize(projector(features), dim=1)

    def _contrastive_losses(
        self, pairs: dict[str, tuple[Tensor, Tensor]], queue: Tensor
    ) -> dict[str, Tensor]:
        """InfoNCE of every (student, teacher) pair and, for the joint stream, the relational KL
        summed over the pairs: the values of ``pcm3.losses.info_nce`` and
        ``relational_kl_from_embeddings`` per pair, with one queue product for all students
        (shared by both losses) and one per distinct teacher. Full precision, as in ``pcm3.losses``.
        """
        w = self.options.loss
        n = next(iter(pairs.values()))[0].shape[0]
        with torch.autocast(device_type=queue.device.type, enabled=False):
            students = torch.cat([s for s, _ in pairs.values()])  # (P*N, D)
            dtype = torch.promote_types(students.dtype, torch.float32)  # bf16 -> fp32, fp64 stays
            students, queue = students.to(dtype), queue.to(dtype)
            teachers = [t.to(dtype) for _, t in pairs.values()]
            similarities = students @ queue.T  # (P*N, K)
            positive = (students * torch.cat(teachers)).sum(dim=1)
            per_row = info_nce_from_similarities(positive, similarities, w.temperature, reduction="none")
            per_pair = per_row.view(len(pairs), n).mean(dim=1)
            losses = dict(zip(pairs, per_pair.unbind(), strict=True))
            if self.kl_weight > 0:
                with torch.no_grad():
                    distinct = {id(t): t for t in teachers}
                    teacher_sims = {key: t @ queue.T for key, t in distinct.items()}
                    teacher = torch.cat([teacher_sims[id(t)] for t in teachers])
                # batchmean over all P*N rows, times P = the sum of the per-pair batchmeans
                losses["kl"] = len(pairs) * relational_kl(
                    similarities, teacher, w.kl_student_temperature, w.kl_teacher_temperature, w.kl_topk)
        return losses

    def make_views(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """The raw views of one batch, in the stream's modality: query, key, source, mask, mixed."""
        a, layout = self.cfg.augment, self.layout
        crops = [temporal_crop_resize(x, lengths, generator, a.view_frames, a.crop_scale, a.crop_min_frames)
                 for _ in range(3)]
        query = spatial_augment(crops[0], layout, generator, a.corruption_prob_query, a.shear_magnitude)
        key = spatial_augment(crops[1], layout, generator, a.corruption_prob_key, a.shear_magnitude)
        source = shear(crops[2], generator, a.shear_magnitude)  # official: always shear, never corruption
        views = {name: to_stream(v, self.cfg.stream, layout)
                 for name, v in (("query", query), ("key", key), ("source", source))}
        views["mask"] = body_part_segment_mask(
            x.shape[0], a.view_frames, layout, self.num_persons, generator, ratio=a.mask_ratio,
            segment_frames=a.mask_segment_frames, mask_persons=None if a.mask_all_persons else (0,),
            shared=a.shared_randomness, device=x.device, dtype=views["query"].dtype,
        )
        views["mixed"], views["partner"], views["lam"] = mix_batch(
            views["query"], layout, generator, shared=a.shared_randomness)
        return views

    # ------------------------------------------------------------------ objective
    def training_losses(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """Named losses for one batch (``"loss"`` = the weighted total)."""
        w = self.options.loss
        n = x.shape[0]
        v = self.make_views(x, lengths, generator)
        masked_input = v["source"] * v["mask"]
        need_mask_branch = (w.reconstruction > 0 or w.masked > 0 or w.reconstructed > 0)
        need_mix = w.mix > 0

        # keys: EMA update first, then the key view through the momentum encoder
        self.update_key_encoder()
        with torch.no_grad():
            base = self._prompt_rows(["base"], n)
            k = self._embed(self.key_encoder.forward_features(v["key"], input_prompt=base), generator,
                            key=True)
        queue = self.queue.snapshot()

        # one encoder call for every view that does not depend on the decoder (or, with
        # model.separate_view_calls, one call per view in the official order: query, masked,
        # reconstructed, mixed)
        separate = self.cfg.model.separate_view_calls
        names, inputs = ["base"], [v["query"]]
        if need_mix and not separate:
            names.append("mix")
            inputs.append(v["mixed"])
        if need_mask_branch:
            names.append("mask")
            inputs.append(masked_input)
        embeddings = self._encode_views(names, inputs, generator, separate)
        if need_mask_branch:
            embeddings, masked_dense = embeddings
        pairs = {"contrast": (embeddings[0], k)}
        if need_mix and not separate:
            pairs["mix"] = (embeddings[1], mixed_key(k, v["partner"], v["lam"]))

        losses: dict[str, Tensor] = {}
        if need_mask_branch:
            pairs["masked"] = (embeddings[-1], k)
            if self.mp_prompt is not None:
                masked_dense = self.mp_prompt(masked_dense, self._offsets(self.mp_prompt, n, 1, generator,
                                                                          masked_dense.device))
            stride, frames = self.encoder.time_stride, masked_input.shape[2]

            def neck(dense: Tensor) -> Tensor:  # (n, T', D) -> (n, T, neck): one row per frame
                return upsample_steps(self.neck(dense), stride, frames)

            # semantic guidance: contrast gradients train neck + decoder, not the encoder (a second
            # pass on stop-gradient features)
            guided = w.reconstructed > 0 and self.semantic_guidance
            if guided and w.reconstruction > 0:  # both decoder passes in one call (per-sample GRU)
                both = torch.cat((neck(masked_dense), neck(masked_dense.detach())))
                recon, recon_cl = self.decoder(both).split(n)
            else:
                recon = self.decoder(neck(masked_dense))
                recon_cl = self.decoder(neck(masked_dense.detach())) if guided else recon.detach()
            if w.reconstruction > 0:
                losses["reconstruction"] = masked_mse(recon, v["source"], v["mask"])
            if w.reconstructed > 0:
                filled = recon_cl * (1 - v["mask"]) + masked_input
                prompt = self._prompt_rows(["recons"], n)
                recon_feat = self.encoder.forward_features(filled, input_prompt=prompt)
                pairs["reconstructed"] = (self._embed(recon_feat, generator), k)
        if need_mix and separate:
            mixed = self.encoder.forward_features(v["mixed"], input_prompt=self._prompt_rows(["mix"], n))
            pairs["mix"] = (self._embed(mixed, generator), mixed_key(k, v["partner"], v["lam"]))

        losses.update(self._contrastive_losses(pairs, queue))
        losses.update(self.extra_losses(v, generator, queue, k))
        weights = self.loss_weights()
        losses["loss"] = sum(weights[name] * value for name, value in losses.items())
        self.queue.enqueue(k)
        return losses

    def _encode_views(self, names: list[str], inputs: list[Tensor], generator: torch.Generator,
                      separate: bool) -> Any:
        """Embeddings ``[(n, embed_dim)]`` of the views ``inputs`` (input prompts ``names``), and,
        when the last is the masked view (``"mask"``), also its per-step features: ``(embeddings,
        dense)``. One encoder call on the concatenated views, or one per view (``separate``)."""
        n, dense = inputs[0].shape[0], None
        if separate:
            pooled = []
            for name, x in zip(names, inputs, strict=True):
                prompt = self._prompt_rows([name], n)
                if name == "mask":
                    feature, dense = features_and_dense(self.encoder, x, prompt, dense_from=0)
                else:
                    feature = self.encoder.forward_features(x, input_prompt=prompt)
                pooled.append(self._embed(feature, generator))
            embeddings = pooled
        else:
            prompts = self._prompt_rows(names, n)
            if names[-1] == "mask":  # sequence features of every view, per-step features of the masked one
                feature, dense = features_and_dense(self.encoder, torch.cat(inputs), prompts, dense_from=-n)
            else:
                feature = self.encoder.forward_features(torch.cat(inputs), input_prompt=prompts)
            embeddings = list(self._embed(feature, generator, views=len(names)).split(n))
        return embeddings if dense is None else (embeddings, dense)

    def extra_losses(self, views: dict[str, Tensor], generator: torch.Generator,
                     queue: Tensor, key: Tensor) -> dict[str, Tensor]:
        """Hook for methods built on PCM3 (PCM3++ adds its clip pair here); none in PCM3.
        ``key`` ``(N, embed_dim)``: the key view's embedding, the sequence pairs' positive."""
        return {}

    def loss_weights(self) -> dict[str, float]:
        """Weight of every named loss in the total."""
        w = self.options.loss
        return {"contrast": w.contrast, "mix": w.mix, "masked": w.masked,
                "reconstructed": w.reconstructed, "kl": self.kl_weight,
                "reconstruction": w.reconstruction}
