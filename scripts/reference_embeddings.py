#!/usr/bin/env python3
"""Reference sentence embeddings for the Rust encoder's tests, computed independently of candle.

A plain numpy BERT forward over the safetensors weights, tokenised by HF `tokenizers`, with
sentence-transformers' settings for all-MiniLM-L6-v2: truncation at max_seq_length (256, from
sentence_bert_config.json, not the 128 of tokenizer.json), mean pooling over the attention mask,
L2 normalisation. Writes tests/fixtures/reference_embeddings.json.

    pip install numpy tokenizers safetensors
    python3 scripts/reference_embeddings.py ../shared/models/all-MiniLM-L6-v2
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

LONG = (
    "A sweeping science fiction saga about a rebellion against a galactic empire, with "
    "space battles, desert planets, smugglers, droids, laser swords and a farm boy who learns "
    "that his father was a fallen knight. "
)
TEXTS = [
    "space travel and futuristic wars",
    "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags: pixar, fun.",
    "Amélie (2001) — une comédie romantique à Paris; 東京物語 (1953)!",
    # ~190 tokens: longer than tokenizer.json's 128, shorter than 256
    (LONG * 5).strip(),
    # ~460 tokens: cut at 256
    (LONG * 12).strip(),
]


def layer_norm(x, weight, bias, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def embed(weights, config, ids):
    w = lambda name: weights[name].astype(np.float64)
    n = len(ids)
    x = w("embeddings.word_embeddings.weight")[ids]
    x = x + w("embeddings.position_embeddings.weight")[:n]
    x = x + w("embeddings.token_type_embeddings.weight")[0]
    x = layer_norm(x, w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
    heads = config["num_attention_heads"]
    head_dim = config["hidden_size"] // heads
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda name, h: h @ w(p + name + ".weight").T + w(p + name + ".bias")
        q = lin("attention.self.query", x).reshape(n, heads, head_dim).transpose(1, 0, 2)
        k = lin("attention.self.key", x).reshape(n, heads, head_dim).transpose(1, 0, 2)
        v = lin("attention.self.value", x).reshape(n, heads, head_dim).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(head_dim)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(n, -1)
        attn = lin("attention.output.dense", context)
        x = layer_norm(attn + x, w(p + "attention.output.LayerNorm.weight"), w(p + "attention.output.LayerNorm.bias"))
        inter = gelu(lin("intermediate.dense", x))
        out = lin("output.dense", inter)
        x = layer_norm(out + x, w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias"))
    pooled = x.mean(0)  # one unpadded text: every position is attended
    return pooled / np.linalg.norm(pooled)


def main():
    model = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/models/all-MiniLM-L6-v2")
    config = json.loads((model / "config.json").read_text())
    max_len = json.loads((model / "sentence_bert_config.json").read_text())["max_seq_length"]
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_len)
    weights = load_file(str(model / "model.safetensors"))
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    out = []
    for text in TEXTS:
        ids = tokenizer.encode(text).ids
        vector = embed(weights, config, ids)
        out.append({"text": text, "tokens": len(ids), "embedding": [round(float(v), 7) for v in vector]})
        print(f"{len(ids):4d} tokens  {text[:60]!r}", file=sys.stderr)
    target = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "reference_embeddings.json"
    lines = ",\n".join("  " + json.dumps(entry, ensure_ascii=False) for entry in out)
    header = json.dumps({"model": model.name, "max_seq_length": max_len})[:-1]
    target.write_text(f'{header}, "texts": [\n{lines}\n]}}\n', encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
