#!/usr/bin/env python3
"""Trains blip2_tiny_shapes, the small BLIP-2 stage 1 that ships with vlzoo.

The world: 224 x 224 RGB images of one filled circle, square or triangle in
red, green, blue or yellow on a light background, described as
"a {color} {shape}" (12 classes).

The model is BLIP-2 stage 1 written plainly in PyTorch with LAVIS's
parameter names and layouts (lavis/models/eva_vit.py, blip2.py, Qformer.py,
blip2_qformer.py) at the sizes of zoo-configs/blip2_tiny_shapes.yaml, which
this script reads. Its maths is what vlzoo's C model computes
(models/eva_vit.c, qformer.c, blip2_stage1.c). It is trained from scratch
with LAVIS's three stage-1 losses (ITC, ITM with hard negatives, LM), then
written as a LAVIS state dict and converted with vlzoo's own converter:

  zoo-configs/shipped/blip2_tiny_shapes.ckpt        the weights (vlzoo names, f16)
  zoo-configs/shipped/blip2_tiny_shapes_vocab.json  a tokenizer.json holding the
                                                    pieces it knows, at their
                                                    bert-base-uncased ids
  zoo-configs/shipped/blip2_tiny_shapes.md          the model card
  tests/fixtures/tiny_shapes/                       parity fixture for the C test

Usage (from the repository root, after building vlzoo in build-train/):

  /work/venv-train/bin/python scripts/train_tiny_shapes.py \\
      --vlzoo build-train/vlzoo --shapes-gen build-train/tests/vlzoo_shapes_gen

  --record-fixture   only re-record the parity fixture from the shipped .ckpt
  --evaluate         only measure the shipped model on the C generator's images

Needs torch, pillow, numpy, pyyaml, tokenizers, safetensors and the
bert-base-uncased vocabulary (vocab.txt and tokenizer.json) in
../shared/assets/tokenizers.
"""

import argparse
import colorsys
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from PIL import Image, ImageDraw, ImageFilter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "zoo-configs", "blip2_tiny_shapes.yaml")
SHIPPED = os.path.join(ROOT, "zoo-configs", "shipped")
CKPT = os.path.join(SHIPPED, "blip2_tiny_shapes.ckpt")
VOCAB_JSON = os.path.join(SHIPPED, "blip2_tiny_shapes_vocab.json")
CARD = os.path.join(SHIPPED, "blip2_tiny_shapes.md")
FIXTURE_DIR = os.path.join(ROOT, "tests", "fixtures", "tiny_shapes")
ASSETS = os.path.join(os.path.dirname(ROOT), "shared", "assets", "tokenizers")
BERT_VOCAB = os.path.join(ASSETS, "bert-base-uncased-vocab.txt")
BERT_TOKENIZER_JSON = os.path.join(ASSETS, "bert-base-uncased-tokenizer.json")

COLORS = ["red", "green", "blue", "yellow"]
SHAPES = ["circle", "square", "triangle"]
CLASSES = [f"{c} {s}" for c in COLORS for s in SHAPES]  # index = color * 3 + shape

# Ways a caption is written in training: the bare description (what a user
# passes as a label), the zoo's classification template "a picture of {}."
# (zoo-configs/blip2_tiny_shapes.yaml) and a few other phrasings, with and
# without the final period (LAVIS's blip_caption cleanup removes it).
TEMPLATES = [
    "{}", "{}", "{}", "{}.", "a picture of {}.", "a picture of {}.", "a picture of {}",
    "a photo of {}.", "a photo of {}", "an image of {}.", "a drawing of {}.",
    "this is {}.", "{} on a light background.", "a picture of {} on a light background.",
]
LABEL_FORMS = ["a {c} {s}", "a {c} {s}", "a {c} {s}", "{c} {s}", "one {c} {s}", "a {s} that is {c}"]


def fill_texts(color, shape):
    """Every training text for one class."""
    out = []
    for form in LABEL_FORMS:
        label = form.format(c=color, s=shape)
        out.extend(t.format(label) for t in TEMPLATES)
    return out


# ---------------------------------------------------------------------------
# Training images (Pillow). The C generator used for evaluation
# (tests/shapes_gen.c) is independent: its own colors, sizes and drawing.

# Fill colors as ranges of hue (degrees), saturation and value, so that the
# model learns "red" as a family of colors rather than one RGB triple.
COLOR_HSV = {
    "red": ((-12, 10), (0.6, 1.0), (0.55, 1.0)),
    "green": ((90, 155), (0.45, 1.0), (0.4, 0.95)),
    "blue": ((200, 248), (0.5, 1.0), (0.5, 1.0)),
    "yellow": ((47, 63), (0.6, 1.0), (0.82, 1.0)),
}


def random_fill(rng, color):
    (h0, h1), (s0, s1), (v0, v1) = COLOR_HSV[color]
    h = (rng.uniform(h0, h1) % 360) / 360
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(s0, s1), rng.uniform(v0, v1))
    return tuple(int(round(255 * x)) for x in (r, g, b))


def random_background(rng):
    level = rng.uniform(200, 255)
    return tuple(int(min(255, max(185, level + rng.uniform(-14, 14)))) for _ in range(3))


def shape_points(rng, shape, cx, cy, r):
    """Polygon vertices (None for a circle) around (cx, cy), radius r."""
    if shape == "square":
        a = rng.uniform(0, math.pi / 2)
        return [(cx + r * math.cos(a + k * math.pi / 2), cy + r * math.sin(a + k * math.pi / 2))
                for k in range(4)]
    if shape == "triangle":
        while True:  # three vertices on the circle, roughly 120 degrees apart
            a = rng.uniform(0, 2 * math.pi)
            angles = [a + k * 2 * math.pi / 3 + rng.uniform(-0.35, 0.35) for k in range(3)]
            pts = [(cx + r * math.cos(t), cy + r * math.sin(t)) for t in angles]
            (x0, y0), (x1, y1), (x2, y2) = pts
            area = abs((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)) / 2
            if area > 0.8 * r * r:  # equilateral: 1.30 r^2
                return pts
    return None


def draw_shape(rng, color, shape, size=224, level=1.0, with_mask=False):
    """One training image (PIL RGB) of a `color` `shape`. `level` (0..1) is
    the curriculum: at 0 shapes are centered, at 1 anywhere. Any size
    (circumradius 16-100 px) and rotation at every level. With `with_mask`,
    also the shape's coverage (PIL "L", 255 inside) drawn the same way."""
    background = random_background(rng)
    fill = random_fill(rng, color)
    scale = rng.choice([1, 2])  # supersampled half of the time: anti-aliased edges
    canvas = size * scale
    img = Image.new("RGB", (canvas, canvas), background)
    if rng.random() < 0.25:  # a gentle gradient on some backgrounds
        arr = np.asarray(img, dtype=np.float32)
        ramp = np.linspace(-1, 1, canvas, dtype=np.float32)
        d = rng.uniform(-12, 12)
        arr = arr + (ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]) * d
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    mask = Image.new("L", (canvas, canvas), 0)
    mask_draw = ImageDraw.Draw(mask)
    # radius of the circumscribed circle; squares and triangles look smaller
    r = rng.uniform(16, 100 if shape != "circle" else 90)
    margin = 2
    spread = (size / 2 - r - margin) * level  # how far from the center
    cx = size / 2 + rng.uniform(-spread, spread)
    cy = size / 2 + rng.uniform(-spread, spread)
    if shape == "circle":
        box = [(cx - r) * scale, (cy - r) * scale, (cx + r) * scale, (cy + r) * scale]
        draw.ellipse(box, fill=fill)
        mask_draw.ellipse(box, fill=255)
    else:
        pts = [(x * scale, y * scale) for x, y in shape_points(rng, shape, cx, cy, r)]
        draw.polygon(pts, fill=fill)
        mask_draw.polygon(pts, fill=255)
    if scale > 1:
        img = img.resize((size, size), Image.BOX)
        mask = mask.resize((size, size), Image.BOX)
    if rng.random() < 0.15:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return (img, mask) if with_mask else img


# ---------------------------------------------------------------------------
# Preprocessing: vlzoo's (LAVIS blip_image_eval): bicubic resize to the
# config's image size (Pillow's, antialiased, as vlzoo's image processor),
# /255, CLIP mean / std.

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def to_pixels(img, size):
    img = img.convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    arr = np.asarray(img, dtype=np.float32) / np.float32(255)
    arr = (arr - CLIP_MEAN) / CLIP_STD
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


# ---------------------------------------------------------------------------
# The model, with LAVIS's module names.


def read_sizes(path=CONFIG):
    with open(path) as f:
        cfg = yaml.safe_load(f)
    mc = cfg["model"]["model_config"]
    v, q = mc["vision_config"], mc["qformer_config"]
    vocab = q["vocab_size"] + (q.get("special_token_nums", 0) if q.get("resize_token_embeddings") else 0)
    return dict(
        image_size=v["image_size"], patch_size=v["patch_size"], vision_width=v["hidden_size"],
        vision_layers=v["num_hidden_layers"], vision_heads=v["num_attention_heads"],
        vision_mlp=v["intermediate_size"], vision_eps=float(v["layer_norm_eps"]),
        ln_vision_eps=float(mc["ln_vision_eps"]),
        queries=q["query_length"], width=q["hidden_size"], layers=q["num_hidden_layers"],
        heads=q["num_attention_heads"], intermediate=q["intermediate_size"],
        cross_freq=q["cross_attention_freq"], encoder_width=q["encoder_width"], vocab=vocab,
        max_positions=q["max_position_embeddings"], eps=float(q["layer_norm_eps"]),
        embed_dim=q["head_embed_dim"], dec_id=q["bos_token_id"], pad_id=q["pad_token_id"],
        max_txt_len=mc["max_txt_len"], template=cfg["pipeline"]["hypothesis_template"],
    )


class EvaAttention(nn.Module):
    """lavis eva_vit.Attention: qkv without bias, q_bias and v_bias (k: none)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.num_heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(B, N, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)  # scale head_dim^-0.5
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class EvaBlock(nn.Module):
    """Pre-norm block without layer scale (BLIP-2's EVA ViT-g has none)."""

    def __init__(self, dim, heads, mlp, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = EvaAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, D], raster order


class VisionTransformer(nn.Module):
    """lavis eva_vit.VisionTransformer as BLIP-2 uses it: no final norm."""

    def __init__(self, s):
        super().__init__()
        D = s["vision_width"]
        grid = s["image_size"] // s["patch_size"]
        self.patch_embed = PatchEmbed(s["patch_size"], D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, D))
        self.blocks = nn.ModuleList(
            EvaBlock(D, s["vision_heads"], s["vision_mlp"], s["vision_eps"])
            for _ in range(s["vision_layers"]))

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return x


class BertSelfAttention(nn.Module):
    def __init__(self, width, heads, kv_width):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(kv_width, width)
        self.value = nn.Linear(kv_width, width)

    def split(self, x):
        B, S, _ = x.shape
        return x.view(B, S, self.heads, -1).transpose(1, 2)

    def forward(self, x, kv, mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(kv)), self.split(self.value(kv))
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # additive -10000 mask
        return ctx.transpose(1, 2).reshape(x.shape)


class BertSelfOutput(nn.Module):
    def __init__(self, width, eps):
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class BertAttention(nn.Module):
    def __init__(self, width, heads, kv_width, eps):
        super().__init__()
        self.self = BertSelfAttention(width, heads, kv_width)
        self.output = BertSelfOutput(width, eps)

    def forward(self, x, kv=None, mask=None):
        return self.output(self.self(x, x if kv is None else kv, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, width, inter):
        super().__init__()
        self.dense = nn.Linear(width, inter)

    def forward(self, x):
        return F.gelu(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, inter, width, eps):
        super().__init__()
        self.dense = nn.Linear(inter, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class BertLayer(nn.Module):
    """Post-norm BERT layer; the first `nq` rows are queries, which alone
    cross-attend to the image (every cross_freq-th layer) and take their own
    FFN (intermediate_query / output_query)."""

    def __init__(self, s, index):
        super().__init__()
        W, I, eps = s["width"], s["intermediate"], s["eps"]
        self.attention = BertAttention(W, s["heads"], W, eps)
        self.has_cross = index % s["cross_freq"] == 0
        if self.has_cross:
            self.crossattention = BertAttention(W, s["heads"], s["encoder_width"], eps)
        self.intermediate = BertIntermediate(W, I)
        self.output = BertOutput(I, W, eps)
        self.intermediate_query = BertIntermediate(W, I)
        self.output_query = BertOutput(I, W, eps)

    def forward(self, x, mask, nq, image):
        a = self.attention(x, mask=mask)
        if nq == 0:
            return self.output(self.intermediate(a), a)
        q = a[:, :nq]
        if self.has_cross:
            q = self.crossattention(q, kv=image)
        q = self.output_query(self.intermediate_query(q), q)
        if a.shape[1] == nq:
            return q
        t = a[:, nq:]
        return torch.cat([q, self.output(self.intermediate(t), t)], dim=1)


class BertEmbeddings(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.word_embeddings = nn.Embedding(s["vocab"], s["width"], padding_idx=s["pad_id"])
        self.position_embeddings = nn.Embedding(s["max_positions"], s["width"])
        self.LayerNorm = nn.LayerNorm(s["width"], eps=s["eps"])
        # LAVIS's persistent buffer (0..n-1); the converter checks and drops it
        self.register_buffer("position_ids", torch.arange(s["max_positions"]).unsqueeze(0))

    def forward(self, ids=None, queries=None):
        if ids is not None:
            x = self.word_embeddings(ids) + self.position_embeddings(self.position_ids[:, :ids.shape[1]])
            if queries is not None:
                x = torch.cat([queries, x], dim=1)
        else:
            x = queries
        return self.LayerNorm(x)  # queries go through it too


class BertEncoder(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(s, i) for i in range(s["layers"]))


class BertModel(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.embeddings = BertEmbeddings(s)
        self.encoder = BertEncoder(s)

    def forward(self, ids=None, queries=None, mask=None, image=None):
        x = self.embeddings(ids, queries)
        nq = 0 if queries is None else queries.shape[1]
        for layer in self.encoder.layer:
            x = layer(x, mask, nq, image)
        return x


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.dense = nn.Linear(s["width"], s["width"])
        self.LayerNorm = nn.LayerNorm(s["width"], eps=s["eps"])

    def forward(self, x):
        return self.LayerNorm(F.gelu(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.transform = BertPredictionHeadTransform(s)
        self.decoder = nn.Linear(s["width"], s["vocab"], bias=False)
        self.bias = nn.Parameter(torch.zeros(s["vocab"]))
        self.decoder.bias = self.bias  # one tensor under two names, as in LAVIS

    def forward(self, x):
        return self.decoder(self.transform(x))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.predictions = BertLMPredictionHead(s)


class BertLMHeadModel(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.bert = BertModel(s)
        self.cls = BertOnlyMLMHead(s)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight  # tied


def mask_bias(keep):
    """0 / 1 (or bool) keep-matrix -> additive mask: 0 or -10000 (LAVIS)."""
    return (1.0 - keep.float()) * -10000.0


def sincos_positions(dim, grid):
    """[1, grid^2 + 1, dim]: MAE's 2-D sine-cosine embedding, zero for CLS."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64),
                            torch.arange(grid, dtype=torch.float64), indexing="ij")
    parts = []
    for coord in (xs.reshape(-1), ys.reshape(-1)):
        angle = coord[:, None] * omega[None, :]
        parts += [torch.sin(angle), torch.cos(angle)]
    table = torch.cat(parts, dim=1)
    table = torch.cat([torch.zeros(1, dim, dtype=torch.float64), table], dim=0)
    return table.float()[None]


class Blip2Qformer(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s
        self.visual_encoder = VisionTransformer(s)
        self.ln_vision = nn.LayerNorm(s["vision_width"], eps=s["ln_vision_eps"])
        self.Qformer = BertLMHeadModel(s)
        self.query_tokens = nn.Parameter(torch.zeros(1, s["queries"], s["width"]))
        self.vision_proj = nn.Linear(s["width"], s["embed_dim"])
        self.text_proj = nn.Linear(s["width"], s["embed_dim"])
        self.itm_head = nn.Linear(s["width"], 2)
        self.temp = nn.Parameter(0.07 * torch.ones([]))
        # Training only, not exported: each patch token's class (or
        # background). A label per patch reaches the ViT's early layers far
        # sooner than one per image: with the image-level losses alone, a
        # ViT this small tells the shapes apart only after thousands of steps.
        self.token_head = nn.Linear(s["vision_width"], len(CLASSES) + 1)
        self.apply(self._init)
        # 2-D sine-cosine positions (MAE) to start from: a ViT learning from
        # scratch on few images finds which patches are neighbours slowly.
        with torch.no_grad():
            self.visual_encoder.pos_embed.copy_(sincos_positions(
                s["vision_width"], s["image_size"] // s["patch_size"]))
        nn.init.trunc_normal_(self.visual_encoder.cls_token, std=0.02)
        self.query_tokens.data.normal_(0.0, 0.02)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    # -- the stage-1 outputs, as vlzoo names them (include/vlzoo/model.h)

    def image_embeds(self, pixels):
        return self.ln_vision(self.visual_encoder(pixels))

    def query_output(self, image_embeds):
        q = self.query_tokens.expand(image_embeds.shape[0], -1, -1)
        return self.Qformer.bert(queries=q, image=image_embeds)

    def image_features(self, query_output):
        return F.normalize(self.vision_proj(query_output), dim=-1)

    def text_features(self, ids, att):
        mask = mask_bias(att)[:, None, None, :]
        h = self.Qformer.bert(ids=ids, mask=mask)
        return F.normalize(self.text_proj(h[:, 0]), dim=-1)

    def multimodal(self, image_embeds, ids, att, unilm):
        B, L = ids.shape
        Q = self.s["queries"]
        keep = torch.cat([torch.ones(B, Q, dtype=att.dtype), att], dim=1)[:, None, :]  # [B, 1, S]
        if unilm:  # queries see queries; text sees the queries and earlier text
            S = Q + L
            rows = torch.arange(S)[:, None]
            cols = torch.arange(S)[None, :]
            allowed = (cols < Q) | ((rows >= Q) & (cols <= rows))
            keep = keep * allowed[None].to(keep.dtype)  # [B, S, S]
        q = self.query_tokens.expand(B, -1, -1)
        return self.Qformer.bert(ids=ids, queries=q, mask=mask_bias(keep)[:, None], image=image_embeds)

    def itm_logits(self, image_embeds, ids, att):
        h = self.multimodal(image_embeds, ids, att, unilm=False)
        return self.itm_head(h[:, :self.s["queries"]]).mean(dim=1)

    def lm_logits(self, image_embeds, dec_ids, att):
        h = self.multimodal(image_embeds, dec_ids, att, unilm=True)
        return self.Qformer.cls.predictions(h[:, self.s["queries"]:])

    @staticmethod
    def similarity(image_feats, text_feats):
        """max over queries of the cosine: [Bi, Q, E] x [Bt, E] -> [Bi, Bt]."""
        return torch.einsum("iqe,te->itq", image_feats, text_feats).max(dim=-1).values

    # -- training (LAVIS Blip2Qformer.forward, one device, with image ids)

    def forward(self, pixels, ids, att, class_ids, patch_labels, gen, itc_only=False):
        s = self.s
        image_embeds = self.image_embeds(pixels)
        patch_logits = self.token_head(image_embeds[:, 1:])
        loss_patches = F.cross_entropy(patch_logits.reshape(-1, patch_logits.shape[-1]),
                                       patch_labels.reshape(-1))
        image_feats = self.image_features(self.query_output(image_embeds))
        text_feat = self.text_features(ids, att)

        # ITC. The batch holds several images of each class, so LAVIS's
        # "image_id" path applies: every pair of one class is a positive.
        with torch.no_grad():
            self.temp.clamp_(0.001, 0.5)
        sim = self.similarity(image_feats, text_feat)
        sim_i2t, sim_t2i = sim / self.temp, sim.t() / self.temp
        same = class_ids[:, None] == class_ids[None, :]
        targets = same.float() / same.float().sum(1, keepdim=True)
        targets = 0.9 * targets + 0.1 * torch.ones_like(targets) / targets.shape[1]
        loss_itc = (-(F.log_softmax(sim_i2t, dim=1) * targets).sum(1).mean()
                    - (F.log_softmax(sim_t2i, dim=1) * targets).sum(1).mean()) / 2

        if itc_only:
            return loss_itc, None, None, loss_patches

        # ITM with hard negatives drawn from the similarities (same class never)
        B = pixels.shape[0]
        with torch.no_grad():
            w_t2i = F.softmax(sim_t2i.masked_fill(same, -10000), dim=1)
            w_i2t = F.softmax(sim_i2t.masked_fill(same, -10000), dim=1)
            neg_images = torch.multinomial(w_t2i, 1, generator=gen).squeeze(1)
            neg_texts = torch.multinomial(w_i2t, 1, generator=gen).squeeze(1)
        ids_all = torch.cat([ids, ids, ids[neg_texts]])
        att_all = torch.cat([att, att, att[neg_texts]])
        embeds_all = torch.cat([image_embeds, image_embeds[neg_images], image_embeds])
        logits = self.itm_logits(embeds_all, ids_all, att_all)
        labels = torch.cat([torch.ones(B, dtype=torch.long), torch.zeros(2 * B, dtype=torch.long)])
        loss_itm = F.cross_entropy(logits, labels)

        # LM: [DEC] replaces [CLS]; predict each next token, [PAD] ignored
        dec = ids.clone()
        dec[:, 0] = s["dec_id"]
        scores = self.lm_logits(image_embeds, dec, att)
        target = dec.masked_fill(dec == s["pad_id"], -100)[:, 1:]
        loss_lm = F.cross_entropy(scores[:, :-1].reshape(-1, s["vocab"]), target.reshape(-1),
                                  ignore_index=-100, label_smoothing=0.1)
        return loss_itc, loss_itm, loss_lm, loss_patches


# ---------------------------------------------------------------------------
# Tokenization: bert-base-uncased plus [DEC] (30522), as LAVIS init_tokenizer.


class BertTokenizer:
    """bert-base-uncased WordPiece (Hugging Face tokenizers, from vocab.txt)
    with [DEC] added as a special token: what LAVIS's init_tokenizer makes."""

    def __init__(self):
        from tokenizers.implementations import BertWordPieceTokenizer

        self.t = BertWordPieceTokenizer(BERT_VOCAB, lowercase=True)
        self.t.add_special_tokens(["[DEC]"])
        assert self.t.token_to_id("[DEC]") == 30522

    def ids(self, text, max_len=None):
        """[CLS] text [SEP], cut on the right to max_len."""
        ids = self.t.encode(text).ids
        if max_len is not None and len(ids) > max_len:
            ids = ids[:max_len - 1] + ids[-1:]
        return ids

    def tokenize(self, text):
        return self.t.encode(text, add_special_tokens=False).tokens

    def vocab(self):
        return self.t.get_vocab()


def encode(tok, texts, max_len):
    """ids and attention mask [B, L], padded with [PAD] to the longest."""
    rows = [tok.ids(t, max_len) for t in texts]
    L = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), L, dtype=torch.long)
    att = torch.zeros(len(rows), L, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        att[i, :len(r)] = 1
    return ids, att


# Words the shipped vocabulary holds besides the training pieces, so that a
# user's labels in plain words tokenize as bert-base-uncased would.
COMMON_WORDS = """
a an the of on in at to with and or is are this that these those it its there here one two three
four five six seven eight nine ten some no not very what which image images picture pictures photo
photos photograph drawing drawings painting illustration sketch diagram render rendering shape
shapes object objects thing figure symbol icon logo sign background foreground white black gray grey
red green blue yellow orange purple violet pink brown cyan magenta teal gold silver dark light bright
pale deep colored coloured color colour colors colours circle circles round disk disc dot ring oval
ellipse square squares box rectangle rectangular triangle triangles triangular star diamond heart
cross line lines polygon hexagon pentagon octagon cube sphere ball small large big tiny little huge
medium filled solid plain flat simple single empty blank center centre middle left right top bottom
corner side edge near next inside outside above below over under close up view shot of made from by
has have having shown showing contains containing depicting painted drawn looks like kind type sort
cat dog car tree house person man woman boy girl bird flower sky water apple sun
""".split()


def vocab_subset(tok, training_texts):
    """token -> bert-base-uncased id: the specials, every piece of the
    training texts and labels, and the pieces of the common words, digits,
    letters and punctuation (every piece of a word, so greedy WordPiece
    picks the same pieces from the subset as from the full vocabulary)."""
    full = tok.vocab()
    keep = {t: full[t] for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]}
    singles = list("abcdefghijklmnopqrstuvwxyz0123456789") + list(".,!?;:'\"()[]{}-_/&+*=%$#@<>|~`^")
    texts = list(training_texts) + CLASSES + COMMON_WORDS + singles
    for text in texts:
        for piece in tok.tokenize(text):
            if piece != "[UNK]":
                keep[piece] = full[piece]
    return dict(sorted(keep.items(), key=lambda kv: kv[1]))


def write_vocab_json(tok, training_texts, path):
    with open(BERT_TOKENIZER_JSON) as f:
        spec = json.load(f)
    assert spec["model"]["type"] == "WordPiece"
    vocab = vocab_subset(tok, training_texts)
    # [DEC] in the WordPiece vocabulary too: tokenizers (0.23) gives an added
    # token that the vocabulary lacks the next free id, not the one written.
    vocab["[DEC]"] = 30522
    spec["model"]["vocab"] = vocab
    spec["added_tokens"] = [a for a in spec["added_tokens"] if a["content"] in vocab]
    spec["added_tokens"].append({"id": 30522, "content": "[DEC]", "single_word": False,
                                 "lstrip": False, "rstrip": False, "normalized": False,
                                 "special": True})
    spec["truncation"] = None
    spec["padding"] = None
    with open(path, "w") as f:
        json.dump(spec, f, ensure_ascii=False, indent=1, sort_keys=False)
        f.write("\n")
    # The subset must tokenize every text it was made from exactly as the full vocabulary.
    from tokenizers import Tokenizer

    small = Tokenizer.from_file(path)
    for text in list(training_texts) + CLASSES + [" ".join(COMMON_WORDS)]:
        want = tok.ids(text)
        got = small.encode(text).ids
        assert got == want, (text, got, want)
    assert small.token_to_id("[DEC]") == 30522
    return len(vocab)


# ---------------------------------------------------------------------------
# Training


def batch_classes(rng, per_class, shape_focus):
    """Class ids of one batch: every class `per_class` times, or (with
    probability shape_focus) only two colors, each shape of them
    2 * per_class times: batches where color tells nothing make ITC learn
    shapes, which the ViT finds much later than colors."""
    if rng.random() < shape_focus:
        colors = rng.sample(range(len(COLORS)), 2)
        cls = [col * 3 + shp for col in colors for shp in range(3) for _ in range(2 * per_class)]
    else:
        cls = [c for c in range(len(CLASSES)) for _ in range(per_class)]
    rng.shuffle(cls)
    return cls


BACKGROUND = len(CLASSES)  # the token label of a patch the shape barely touches


def token_labels(mask, class_id, image_size, patch):
    """[grid^2]: the class for each patch the shape covers at least 15 % of,
    BACKGROUND for the others (raster order, as the ViT's patch tokens)."""
    grid = image_size // patch
    cover = np.asarray(mask.resize((image_size, image_size), Image.BOX), dtype=np.float32) / 255
    frac = cover.reshape(grid, patch, grid, patch).mean(axis=(1, 3)).reshape(-1)
    return torch.from_numpy(np.where(frac >= 0.15, class_id, BACKGROUND))


def make_batch(rng, s, class_ids, texts_by_class, tok_cache, max_level=1.0):
    """Images (each of curriculum level uniform in [0, max_level]), their
    patches' labels and texts of the classes, as tensors."""
    pixels, patch_labels, text_rows = [], [], []
    for c in class_ids:
        color, shape = COLORS[c // 3], SHAPES[c % 3]
        img, mask = draw_shape(rng, color, shape, level=rng.uniform(0, max_level), with_mask=True)
        pixels.append(to_pixels(img, s["image_size"]))
        patch_labels.append(token_labels(mask, c, s["image_size"], s["patch_size"]))
        text_rows.append(rng.choice(texts_by_class[c]))
    ids = [tok_cache[t] for t in text_rows]
    L = max(len(x) for x in ids)
    id_t = torch.zeros(len(ids), L, dtype=torch.long)
    att = torch.zeros(len(ids), L, dtype=torch.long)
    for i, x in enumerate(ids):
        id_t[i, :len(x)] = torch.tensor(x)
        att[i, :len(x)] = 1
    return torch.stack(pixels), id_t, att, torch.tensor(class_ids), torch.stack(patch_labels)


class BatchStream(torch.utils.data.IterableDataset):
    """The training batches, drawn in a worker process (the second CPU)
    while the model trains on the first; deterministic for a seed."""

    def __init__(self, s, seed, total, per_class, shape_focus, hold, ramp, texts_by_class, tok_cache):
        super().__init__()
        self.args = (seed, total, per_class, shape_focus, hold, ramp)
        self.s, self.texts_by_class, self.tok_cache = s, texts_by_class, tok_cache

    def __iter__(self):
        seed, total, per_class, shape_focus, hold, ramp = self.args
        torch.set_num_threads(1)
        rng = random.Random(seed)
        for step in range(total):
            level = min(1.0, max(0.0, (step - hold) / ramp)) if ramp > 0 else 1.0
            cls = batch_classes(rng, per_class, shape_focus)
            yield (level,) + make_batch(rng, self.s, cls, self.texts_by_class, self.tok_cache, level)


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return 1e-5 + (peak - 1e-5) * 0.5 * (1 + math.cos(math.pi * t))


def train(model, tok, args, log):
    s = model.s
    gen = torch.Generator().manual_seed(args.seed)
    texts_by_class = [fill_texts(COLORS[c // 3], SHAPES[c % 3]) for c in range(len(CLASSES))]
    all_texts = sorted({t for ts in texts_by_class for t in ts})
    tok_cache = {t: tok.ids(t, s["max_txt_len"]) for t in all_texts}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "embeddings" in name or name == "temp" else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), fused=True)
    history = []
    start = time.time()
    total = args.itc_steps + args.steps
    stream = BatchStream(s, args.seed, total, args.per_class, args.shape_focus, args.hold, args.ramp,
                         texts_by_class, tok_cache)
    batches = iter(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=1,
                                               prefetch_factor=4))
    model.train()
    for step in range(total):
        itc_only = step < args.itc_steps
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, args.lr, args.warmup)
        level, *batch = next(batches)
        itc, itm, lm, patches = model(*batch, gen, itc_only=itc_only)
        loss = (itc if itc_only else itc + itm + lm) + args.patch_weight * patches
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % args.log_every == 0 or step == 0 or step + 1 == total:
            row = dict(step=step + 1, itc=itc.item(), patches=patches.item(), itm=None if itc_only else itm.item(),
                       lm=None if itc_only else lm.item(), temp=model.temp.item(),
                       minutes=(time.time() - start) / 60)
            if (step + 1) % args.eval_every == 0 or step + 1 == total:
                model.eval()
                row["accuracy"] = evaluate_python_images(model, tok, 96, 99)
                model.train()
            history.append(row)
            log(f"step {step + 1:5d}/{total}  itc {row['itc']:.4f}  patches {row['patches']:.4f}"
                + ("" if itc_only else f"  itm {row['itm']:.4f}  lm {row['lm']:.4f}")
                + f"  temp {row['temp']:.4f}  level {level:.2f}"
                + (f"  accuracy {row['accuracy'] * 100:.1f}%" if "accuracy" in row else "")
                + f"  {row['minutes']:.1f} min")
    return history, (time.time() - start) / 60, tok_cache


# ---------------------------------------------------------------------------
# Evaluation: zero-shot classification as vlzoo's classify does it: the
# template over the 12 labels, ITC max over queries, argmax.


@torch.no_grad()
def text_features_for(model, tok, texts):
    ids, att = encode(tok, texts, model.s["max_txt_len"])
    return model.text_features(ids, att)


@torch.no_grad()
def classify(model, tok, images, labels, template, batch=32):
    text_feats = text_features_for(model, tok, [template.format(l) for l in labels])
    preds = []
    for i in range(0, len(images), batch):
        pixels = torch.stack([to_pixels(im, model.s["image_size"]) for im in images[i:i + batch]])
        feats = model.image_features(model.query_output(model.image_embeds(pixels)))
        preds.extend(model.similarity(feats, text_feats).argmax(dim=1).tolist())
    return preds


def evaluate_python_images(model, tok, n, seed):
    rng = random.Random(seed)
    classes = [i % len(CLASSES) for i in range(n)]
    images = [draw_shape(rng, COLORS[c // 3], SHAPES[c % 3]) for c in classes]
    labels = ["a " + c for c in CLASSES]
    preds = classify(model, tok, images, labels, model.s["template"])
    return sum(p == c for p, c in zip(preds, classes)) / n


def evaluate_c_images(model, tok, shapes_gen, n, seed, log):
    """Accuracy on images from tests/shapes_gen.c (an independent drawer)."""
    with tempfile.TemporaryDirectory() as d:
        cmd = [shapes_gen, "--out", d, "--count", str(n), "--seed", str(seed)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(d, "labels.txt")) as f:
            labels = [line.strip() for line in f if line.strip()]
        with open(os.path.join(d, "annotations.json")) as f:
            ann = json.load(f)
        images = [Image.open(os.path.join(d, a["image"])).convert("RGB") for a in ann]
        truth = [labels.index(a["caption"][0]) for a in ann]
        preds = classify(model, tok, images, labels, model.s["template"])
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    for p, t in zip(preds, truth):
        confusion[t, p] += 1
    acc = float(np.trace(confusion)) / len(truth)
    wrong = [(labels[t], labels[p], confusion[t, p]) for t in range(len(labels))
             for p in range(len(labels)) if t != p and confusion[t, p]]
    log(f"C generator images: {acc * 100:.2f}% of {len(truth)} ({' '.join(cmd[1:])})")
    for t, p, k in wrong:
        log(f"  {k} x '{t}' taken for '{p}'")
    return acc, labels, wrong


# ---------------------------------------------------------------------------
# Export


def round_to_f16(model):
    """Rounds every float parameter to the nearest f16, as the .ckpt stores it."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def lavis_state_dict(model):
    """What LAVIS's Blip2Qformer holds: all but the training-only patch head."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("token_head.")}


def export(model, vlzoo, out_path, log):
    with tempfile.TemporaryDirectory() as d:
        pth = os.path.join(d, "blip2_tiny_shapes_lavis.pth")
        torch.save({"model": lavis_state_dict(model)}, pth)
        cmd = [vlzoo, "convert", "--torch_path", pth, "--mindspore_path", out_path,
               "--model", "blip2_stage1_pretrained", "--from", "lavis", "--to", "vlzoo",
               "--dtype", "f16"]
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        log(res.stdout.strip())
        for line in res.stderr.strip().splitlines():
            log("  " + line)
    return " ".join(["vlzoo"] + cmd[1:3] + ["blip2_tiny_shapes_lavis.pth"] + cmd[4:5]
                    + [os.path.relpath(out_path, ROOT)] + cmd[6:])


def load_shipped(model, vlzoo, log):
    """The shipped .ckpt back into the torch model (vlzoo convert to LAVIS
    names in safetensors), to re-record the fixture without training."""
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as d:
        st = os.path.join(d, "lavis.safetensors")
        subprocess.run([vlzoo, "convert", "--torch_path", CKPT, "--safetensors_path", st,
                        "--model", "blip2_stage1_pretrained", "--from", "vlzoo", "--to", "lavis",
                        "--quiet"], check=True, stdout=subprocess.DEVNULL)
        sd = {k: v.float() if v.is_floating_point() else v for k, v in load_file(st).items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # the tied decoder weight and bias are the word embeddings and predictions.bias
    assert set(missing) <= {"Qformer.cls.predictions.decoder.weight",
                            "Qformer.cls.predictions.decoder.bias",
                            "token_head.weight", "token_head.bias"}, missing
    assert not unexpected, unexpected
    log(f"loaded {CKPT}")


# The texts of the parity fixture: labels as a user types them, the
# classification template, a mismatch and a padded-length sentence.
FIXTURE_TEXTS = ["a red circle", "a picture of a blue square.", "a picture of a green triangle.",
                 "a yellow triangle", "a photo of a red square on a light background."]


@torch.no_grad()
def record_fixture(model, tok, log):
    """Parity fixture for tests/test_tiny_shapes.c: 3 images (224 x 224
    PNGs, so the resize is the identity) and texts, with what the torch model
    computes in f32 from the f16-rounded weights."""
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    rng = random.Random(20240917)
    cases = [("red", "circle"), ("blue", "square"), ("yellow", "triangle")]
    images = []
    for color, shape in cases:
        name = f"{color}_{shape}.png"
        draw_shape(rng, color, shape).save(os.path.join(FIXTURE_DIR, name))
        images.append(name)
    # re-read the PNGs: what the C test reads
    pixels = torch.stack([to_pixels(Image.open(os.path.join(FIXTURE_DIR, n)), model.s["image_size"])
                          for n in images])
    image_embeds = model.image_embeds(pixels)
    image_feats = model.image_features(model.query_output(image_embeds))
    s = model.s
    texts = []
    for text in FIXTURE_TEXTS:
        row = tok.ids(text, s["max_txt_len"])  # no padding, as vlzoo embed
        ids = torch.tensor([row])
        att = torch.ones_like(ids)
        feat = model.text_features(ids, att)
        itc = model.similarity(image_feats, feat)[:, 0]
        itm = model.itm_logits(image_embeds, ids.expand(len(images), -1), att.expand(len(images), -1))
        texts.append(dict(text=text, ids=row, text_embed=feat[0].tolist(),
                          itc=itc.tolist(), itm_logits=itm.tolist()))
    out = dict(
        source="scripts/train_tiny_shapes.py --record-fixture: torch %s, f32 maths on the "
               "f16-rounded weights of zoo-configs/shipped/blip2_tiny_shapes.ckpt" % torch.__version__,
        model="blip2_tiny_shapes", max_txt_len=s["max_txt_len"],
        images=[dict(file=n, image_embeds=image_feats[i].tolist()) for i, n in enumerate(images)],
        texts=texts)
    with open(os.path.join(FIXTURE_DIR, "expected.json"), "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    log(f"wrote {FIXTURE_DIR}/expected.json and {len(images)} images")


# ---------------------------------------------------------------------------


def write_card(info):
    s = info["sizes"]
    lines = [
        "# blip2_tiny_shapes",
        "",
        "A small BLIP-2 stage 1 (EVA ViT + ln_vision + Q-Former + ITC / ITM / LM heads) that vlzoo",
        "trains itself and ships, so that `vlzoo classify --model blip2_tiny_shapes` answers on a",
        "machine without the real BLIP-2 weights. Same architecture and code paths as",
        "`blip2_stage1_vit_g`, much smaller.",
        "",
        "**World**: 224 x 224 RGB images of one filled circle, square or triangle in red, green,",
        "blue or yellow on a light background, any size and position; texts \"a {color} {shape}\"",
        "(12 classes). It knows nothing else: any other image still gets one of these answers.",
        "",
        "## Files",
        "",
        "- `blip2_tiny_shapes.ckpt`: the weights, MindSpore .ckpt with vlzoo (Hugging Face) names,"
        " f16 (%.1f MB). The LM decoder is tied to the word embeddings and not stored twice." % info["ckpt_mb"],
        "- `blip2_tiny_shapes_vocab.json`: a Hugging Face tokenizer.json (BERT normalizer,",
        "  pre-tokenizer, WordPiece, [CLS]/[SEP] template) holding %d pieces of bert-base-uncased" % info["vocab_pieces"],
        "  at their real ids (every piece of the training texts, and common English words, letters,",
        "  digits and punctuation) plus `[DEC]` = 30522. Words outside it become `[UNK]`.",
        "- `examples/*.png`: images from vlzoo's C generator (tests/shapes_gen.c), not seen in training.",
        "",
        "## Sizes",
        "",
        "| part | size |",
        "|---|---|",
        "| ViT | %d px (any image is resized to it), patch %d (%d tokens), width %d, %d blocks, %d heads, MLP %d |" % (
            s["image_size"], s["patch_size"], (s["image_size"] // s["patch_size"]) ** 2 + 1,
            s["vision_width"], s["vision_layers"], s["vision_heads"], s["vision_mlp"]),
        "| Q-Former | width %d, %d layers (cross-attention every %d), %d heads, FFN %d, %d queries |" % (
            s["width"], s["layers"], s["cross_freq"], s["heads"], s["intermediate"], s["queries"]),
        "| text | vocabulary %d (bert-base-uncased + [DEC]), %d positions |" % (s["vocab"], s["max_positions"]),
        "| heads | ITC width %d, ITM 2, LM tied |" % s["embed_dim"],
        "| parameters | %.2f M (%.2f M of them the word embeddings) |" % (info["params"] / 1e6,
                                                                        info["word_params"] / 1e6),
        "",
        "## Training",
        "",
        "From scratch, on CPU, with LAVIS's stage-1 losses summed: ITC (max over queries, learned",
        "temperature, label smoothing 0.1; several images of a class share a batch, so LAVIS's",
        "image-id targets are used with the class as the id), ITM (a hard negative image per text",
        "and text per image drawn from the ITC similarities, never of the same class) and LM",
        "(`[DEC]` in place of `[CLS]`, UniLM mask, label smoothing 0.1); ITC alone for the first",
        "%d steps. One training-only loss is added (its head is not exported): each patch token of" % info["itc_steps"],
        "`ln_vision`'s output is classified as the shape's class or background (cross-entropy, weight",
        "%g), which teaches the small ViT the shapes' outlines in far fewer steps." % info["patch_weight"],
        "",
        "- images: drawn on the fly with Pillow (`draw_shape` in the script): fill colors from hue /",
        "  saturation / value ranges per color, light backgrounds (some with a gradient), circumradius",
        "  16-92 px, random position, rotated squares and triangles, half of them anti-aliased by",
        "  supersampling, some blurred",
        "- texts: the bare label (\"a red circle\", \"red circle\", ...), the classification template",
        "  \"a picture of {}.\" and a few other phrasings, with and without the final period",
        "- %d + %d steps of %d images (%d per class), AdamW (lr %g, betas 0.9 / 0.98, weight decay" % (
            info["itc_steps"], info["steps"], info["batch"], info["per_class"], info["lr"]),
        "  0.05 on",
        "  matrices), %d warm-up steps then cosine decay, gradient clipping 1.0, seed %d" % (
            info["warmup"], info["seed"]),
        "- %.1f minutes on %s, %d torch thread(s), Python %s, torch %s" % (
            info["minutes"], info["machine"], info["threads"], info["python"], info["torch"]),
        "",
        "Losses (ITC / ITM / LM) at the first and the last logged step: %s -> %s; final"
        " temperature %.4f." % (info["first_losses"], info["last_losses"], info["temp"]),
        "",
        "## Accuracy",
        "",
        "Zero-shot classification as vlzoo does it: the template \"a picture of {}.\" over the 12",
        "labels, ITC score = max over the queries of the cosine, f16 weights:",
        "",
        "- **%.2f %%** on %d images from vlzoo's independent C generator (`%s`)" % (
            info["acc_c"] * 100, info["n_c"], info["c_cmd"]),
        "- %.2f %% on %d held-out images from the training generator (other seed)" % (
            info["acc_py"] * 100, info["n_py"]),
    ]
    if info["mistakes"]:
        lines.append("- mistakes on the C images: " + "; ".join(
            f"{k} x {t} -> {p}" for t, p, k in info["mistakes"]))
    lines += [
        "",
        "## Retraining",
        "",
        "```sh",
        "cmake -S . -B build-train -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build-train",
        "python3 -m venv venv && venv/bin/pip install torch pillow numpy pyyaml transformers safetensors",
        "venv/bin/python scripts/train_tiny_shapes.py --vlzoo build-train/vlzoo \\",
        "    --shapes-gen build-train/tests/vlzoo_shapes_gen",
        "```",
        "",
        "It needs `../shared/assets/tokenizers/bert-base-uncased-{vocab.txt,tokenizer.json}` beside the",
        "repository, reads the sizes from `zoo-configs/blip2_tiny_shapes.yaml`, and rewrites the",
        "files above and the parity fixture `tests/fixtures/tiny_shapes/` (checked by",
        "`tests/test_tiny_shapes.c`). The weights were converted with",
        "`%s`." % info["convert_cmd"],
        "",
    ]
    with open(CARD, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vlzoo", default=os.path.join(ROOT, "build-train", "vlzoo"))
    ap.add_argument("--shapes-gen", default=os.path.join(ROOT, "build-train", "tests", "vlzoo_shapes_gen"))
    ap.add_argument("--itc-steps", type=int, default=3500,
                    help="steps of ITC alone first (cheap: it is what teaches the ViT)")
    ap.add_argument("--steps", type=int, default=700, help="steps of ITC + ITM + LM after them")
    ap.add_argument("--ramp", type=int, default=0,
                    help="curriculum: steps over which shapes go from big and central to any")
    ap.add_argument("--hold", type=int, default=0, help="curriculum: steps at level 0 first")
    ap.add_argument("--shape-focus", type=float, default=0.5,
                    help="fraction of batches of two colors only")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--per-class", type=int, default=3, help="images of each class in a batch")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--patch-weight", type=float, default=1.0,
                    help="weight of the training-only per-patch class loss")
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads: 1 keeps a shared 2-CPU machine usable and is not slowed "
                         "down by other jobs the way 2 are")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-count", type=int, default=600)
    ap.add_argument("--eval-seed", type=int, default=2024)
    ap.add_argument("--record-fixture", action="store_true")
    ap.add_argument("--evaluate", action="store_true")
    ap.add_argument("--no-export", action="store_true", help="train and evaluate only")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    log = lambda msg: print(msg, flush=True)
    sizes = read_sizes()
    tok = BertTokenizer()
    model = Blip2Qformer(sizes)

    if args.record_fixture or args.evaluate:
        load_shipped(model, args.vlzoo, log)
        model.eval()
        if args.record_fixture:
            record_fixture(model, tok, log)
        if args.evaluate:
            evaluate_c_images(model, tok, args.shapes_gen, args.eval_count, args.eval_seed, log)
        return

    n_params = sum(p.numel() for p in model.parameters())
    word_params = model.Qformer.bert.embeddings.word_embeddings.weight.numel()
    log(f"blip2_tiny_shapes: {n_params / 1e6:.2f} M parameters; sizes {sizes}")
    history, minutes, tok_cache = train(model, tok, args, log)
    model.eval()
    round_to_f16(model)
    acc_py = evaluate_python_images(model, tok, 600, args.seed + 1)
    log(f"held-out training-generator images: {acc_py * 100:.2f}%")
    if args.no_export and not os.path.exists(args.shapes_gen):
        return
    acc_c, _, mistakes = evaluate_c_images(model, tok, args.shapes_gen, args.eval_count,
                                           args.eval_seed, log)
    if args.no_export:
        return
    os.makedirs(SHIPPED, exist_ok=True)
    convert_cmd = export(model, args.vlzoo, CKPT, log)
    n_vocab = write_vocab_json(tok, tok_cache.keys(), VOCAB_JSON)
    log(f"wrote {VOCAB_JSON}: {n_vocab} pieces")
    record_fixture(model, tok, log)

    fmt = lambda r: " / ".join("-" if r[k] is None else "%.3f" % r[k] for k in ("itc", "itm", "lm"))
    write_card(dict(
        sizes=sizes, params=n_params, word_params=word_params, steps=args.steps,
        itc_steps=args.itc_steps, patch_weight=args.patch_weight,
        batch=args.per_class * len(CLASSES), per_class=args.per_class, lr=args.lr,
        warmup=args.warmup, seed=args.seed, minutes=minutes, threads=args.threads,
        machine=f"{platform.machine()} ({os.cpu_count()} CPUs)", python=platform.python_version(),
        torch=torch.__version__, first_losses=fmt(history[0]), last_losses=fmt(history[-1]),
        temp=history[-1]["temp"], acc_c=acc_c, n_c=args.eval_count,
        c_cmd=f"vlzoo_shapes_gen --count {args.eval_count} --seed {args.eval_seed}",
        acc_py=acc_py, n_py=600, mistakes=mistakes, ckpt_mb=os.path.getsize(CKPT) / 1e6,
        vocab_pieces=n_vocab, convert_cmd=convert_cmd))
    log(f"wrote {CARD}")


if __name__ == "__main__":
    main()
