#!/usr/bin/env python3
"""bench_stage1_torch.py: the PyTorch competitor of bench_stage1 (bench/bench_stage1.c).

Hugging Face transformers' Blip2ForImageTextRetrieval at the real BLIP-2 stage-1 sizes
(EVA ViT-g/14 at 224 px, 39 layers; Q-Former with 32 queries), in f32 on the CPU, under
torch.no_grad with torch.set_num_threads(T). Times, after one warm-up pass, R rounds of
  preprocess  PIL Image.open(path).convert("RGB") + BlipImageProcessor (224, bicubic, CLIP
              mean/std; the PIL backend when transformers has one, else the default)
  vit         model.vision_model(pixel_values).last_hidden_state (ends with post_layernorm,
              LAVIS' ln_vision)
  qformer     model.qformer(query_embeds=query_tokens, encoder_hidden_states=...) then
              F.normalize(model.vision_projection(.), dim=-1): the 32 query features
and, after each round, F.linear on the ViT-g GEMM shapes (torch's own GEMM rate). Prints one
JSON line with the medians, the ViT's GFLOP/s (counted as bench_stage1 counts them), peak
memory (ru_maxrss, VmHWM; from_pretrained maps the safetensors file, so the weights' pages
count as the file's) and the versions of python / torch / transformers / pillow.

  --weights FILE   a safetensors file with Blip2ForImageTextRetrieval's names (extra tensors
                   such as vlzoo's `temp` or the LM head are ignored), e.g. the one
                   tests/fixtures/make_blip2_parity.py --full writes; loaded through
                   from_pretrained from a temporary folder holding config.json and a link to
                   the file. Without it the model keeps transformers' random initialization.
  --ln-vision-eps  eps of post_layernorm (ln_vision): 1e-5 as the zoo config
                   blip2_stage1_vit_g says (LAVIS), 1e-6 is transformers' default
  --reference F    a file bench_stage1 --save wrote (same weights, same image): adds the cosines
                   between its outputs and torch's
  --save F         writes torch's pixel_values, image_embeds, query_output, image_features
"""
import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
import transformers
from transformers import Blip2Config, Blip2ForImageTextRetrieval

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_IMAGE = "../shared/assets/images/merlion.png"
GEMM_SHAPES = [(257, 1408, 1408), (257, 6144, 1408), (257, 1408, 6144)]  # M, N, K

# blip2_stage1_vit_g's sizes come from the parity script, so both agree.
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures"))
import make_blip2_parity as mbp  # noqa: E402


def status_bytes(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def maxrss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def image_processor(size):
    try:  # transformers 5: the Pillow backend (bit-exact Pillow resize), needs only Pillow
        from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil
        return BlipImageProcessorPil(size={"height": size, "width": size}), "BlipImageProcessorPil"
    except ImportError:
        from transformers import BlipImageProcessor
        return BlipImageProcessor(size={"height": size, "width": size}), "BlipImageProcessor"


def load_model(cfg, weights):
    if not weights:
        torch.manual_seed(0)
        return Blip2ForImageTextRetrieval(cfg).eval(), "transformers random init"
    tmp = tempfile.mkdtemp(prefix="vlzoo_stage1_torch_")
    try:
        cfg.save_pretrained(tmp)
        os.symlink(os.path.abspath(weights), os.path.join(tmp, "model.safetensors"))
        model, info = Blip2ForImageTextRetrieval.from_pretrained(
            tmp, dtype=torch.float32, output_loading_info=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    missing = [k for k in info.get("missing_keys", []) if not k.endswith("position_ids")]
    if missing:
        raise SystemExit(f"bench_stage1_torch: {weights} lacks {len(missing)} tensors, "
                         f"e.g. {missing[:3]}")
    return model.eval(), "file"


def vit_flop(v, tokens_side):
    n = tokens_side * tokens_side
    t = n + 1
    d, f, p = v.hidden_size, v.intermediate_size, v.patch_size
    conv = 2 * n * d * 3 * p * p
    layer = 2 * t * d * 3 * d + 4 * t * t * d + 2 * t * d * d + 4 * t * d * f
    return conv + v.num_hidden_layers * layer


def cosine(a, b):
    a, b = a.double().flatten(), b.double().flatten()
    return float((a @ b) / (a.norm() * b.norm()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--image", default=DEFAULT_IMAGE)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--ln-vision-eps", type=float, default=1e-5)
    ap.add_argument("--reference")
    ap.add_argument("--save")
    ap.add_argument("--gemm-calls", type=int, default=3,
                    help="F.linear calls per round on each ViT-g GEMM shape (0: none)")
    args = ap.parse_args()
    image = args.image
    if not os.path.exists(image) and not os.path.isabs(image):
        image = os.path.join(HERE, "..", image)

    torch.set_num_threads(args.threads)
    from PIL import Image
    import PIL

    cfg = Blip2Config(**mbp.full_config())
    size = cfg.vision_config.image_size
    proc, proc_name = image_processor(size)
    rss_start = status_bytes("VmRSS")
    t0 = time.perf_counter()
    model, source = load_model(cfg, args.weights)
    load_ms = (time.perf_counter() - t0) * 1e3
    model.vision_model.post_layernorm.eps = args.ln_vision_eps
    weights_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    load_hwm, load_maxrss = status_bytes("VmHWM"), maxrss_bytes()
    rss_loaded = status_bytes("VmRSS")
    hwm_reset = reset_hwm()

    pre, vit, qf, e2e = [], [], [], []
    g = torch.Generator().manual_seed(1)
    gemm = [(torch.rand(m, k, generator=g) * 2 - 1, (torch.rand(n, k, generator=g) * 2 - 1) * 0.035,
             []) for m, n, k in GEMM_SHAPES]
    outs = None
    with torch.no_grad():
        for r in range(-1, args.repeat):
            a0 = time.perf_counter()
            im = Image.open(image).convert("RGB")
            px = proc(images=im, return_tensors="pt")["pixel_values"]
            a1 = time.perf_counter()
            emb = model.vision_model(pixel_values=px).last_hidden_state
            a2 = time.perf_counter()
            q = model.query_tokens.expand(emb.shape[0], -1, -1)
            atts = torch.ones(emb.shape[:-1], dtype=torch.long)
            qo = model.qformer(query_embeds=q, encoder_hidden_states=emb,
                               encoder_attention_mask=atts).last_hidden_state
            feat = F.normalize(model.vision_projection(qo), dim=-1)
            a3 = time.perf_counter()
            outs = {"pixel_values": px, "image_embeds": emb, "query_output": qo,
                    "image_features": feat}
            print(f"bench_stage1_torch: round {r}: preprocess {(a1 - a0) * 1e3:.1f} ms, "
                  f"vit {(a2 - a1) * 1e3:.1f} ms, qformer {(a3 - a2) * 1e3:.1f} ms",
                  file=sys.stderr)
            for a, w, times in gemm:
                for _ in range(args.gemm_calls if r >= 0 else min(args.gemm_calls, 1)):
                    g0 = time.perf_counter()
                    F.linear(a, w)
                    if r >= 0:
                        times.append((time.perf_counter() - g0) * 1e3)
            if r < 0:
                first_pass_ms = (a3 - a0) * 1e3  # the warm-up: a program's first image
            if r >= 0:
                pre.append((a1 - a0) * 1e3)
                vit.append((a2 - a1) * 1e3)
                qf.append((a3 - a2) * 1e3)
                e2e.append((a3 - a0) * 1e3)
    infer_hwm, maxrss = status_bytes("VmHWM"), max(maxrss_bytes(), load_maxrss)
    vit_ms = statistics.median(vit)
    flop = vit_flop(cfg.vision_config, size // cfg.vision_config.patch_size)
    gemm_gf, gemm_ms = {}, []
    for (m, n, k), (_, _, times) in zip(GEMM_SHAPES, gemm):
        if times:
            gemm_ms.append(statistics.median(times))
            gemm_gf[f"{m}x{n}x{k}"] = 2 * m * n * k / (gemm_ms[-1] * 1e6)
    mix = None
    if len(gemm_ms) == len(GEMM_SHAPES):  # one ViT layer: qkv as 3 x 1408^2, proj, fc1, fc2
        fl = [2 * m * n * k for m, n, k in GEMM_SHAPES]
        mix = (4 * fl[0] + fl[1] + fl[2]) / ((4 * gemm_ms[0] + gemm_ms[1] + gemm_ms[2]) * 1e6)
    o = {
        "bench": "stage1_torch",
        "model": "Blip2ForImageTextRetrieval (blip2_stage1_vit_g sizes)",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "pillow": PIL.__version__},
        "torch_blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "torch_mkldnn": torch.backends.mkldnn.is_available(),
        "attn_implementation": getattr(model.config.vision_config, "_attn_implementation", None),
        "image_processor": proc_name,
        "dtype": "f32",
        "threads": torch.get_num_threads(),
        "repeat": args.repeat,
        "image": image,
        "image_size": size,
        "ln_vision_eps": args.ln_vision_eps,
        "weights": args.weights,
        "weights_source": source,
        "load_ms": load_ms,
        "preprocess_ms": statistics.median(pre),
        "vit_ms": vit_ms,
        "qformer_ms": statistics.median(qf),
        "end_to_end_ms": statistics.median(e2e),
        "first_pass_ms": first_pass_ms,
        "preprocess_ms_all": [round(x, 3) for x in pre],
        "vit_ms_all": [round(x, 3) for x in vit],
        "qformer_ms_all": [round(x, 3) for x in qf],
        "end_to_end_ms_all": [round(x, 3) for x in e2e],
        "vit_gflop": flop / 1e9,
        "vit_gflops": flop / (vit_ms * 1e6),
        "gemm": "F.linear(f32 [M, K], f32 weight [N, K])",
        "gemm_gflops_by_shape": gemm_gf,
        "gemm_gflops": mix,
        "vit_vs_gemm": flop / (vit_ms * 1e6) / mix if mix else None,
        "weights_bytes": weights_bytes,
        "peak_rss_bytes": maxrss,
        "vm_hwm_bytes": max(x for x in (load_hwm, infer_hwm) if x is not None) if load_hwm else None,
        "peak_rss_over_weights": maxrss / weights_bytes,
        "inference_peak_rss_bytes": infer_hwm if hwm_reset else None,
        "inference_peak_over_weights": infer_hwm / weights_bytes if hwm_reset else None,
        "rss_start": rss_start,
        "rss": {"start": rss_start, "after_load": rss_loaded, "end": status_bytes("VmRSS")},
    }
    if args.reference:
        from safetensors.torch import load_file
        ref = load_file(args.reference)
        c = {"file": args.reference}
        if "pixel_values" in ref:
            c["pixel_values_max_abs_diff"] = float((ref["pixel_values"] -
                                                    outs["pixel_values"]).abs().max())
        for k in ("image_embeds", "query_output", "image_features"):
            if k in ref and ref[k].shape == outs[k].shape:
                c[k + "_cosine"] = cosine(outs[k], ref[k])
        if "image_features" in ref:
            a, b = outs["image_features"].double(), ref["image_features"].double()
            per = F.cosine_similarity(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]), dim=-1)
            c["image_features_query_cosine_min"] = float(per.min())
            c["image_features_query_cosine_mean"] = float(per.mean())
        o["vs_reference"] = c
    if args.save:
        from safetensors.torch import save_file
        save_file({k: v.detach().contiguous().float() for k, v in outs.items()}, args.save)
    print(json.dumps(o))


if __name__ == "__main__":
    sys.exit(main())
