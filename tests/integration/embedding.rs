//! The encoder against reference vectors and facts that hold for sentence-transformers.

use reelrank::embed::{model_files, Encoder, ModelSource, StockBert};
use reelrank::linalg::dot;
use serde::Deserialize;
use std::sync::OnceLock;

use crate::common::real_model;

fn encoder() -> &'static Encoder {
    static ENCODER: OnceLock<Encoder> = OnceLock::new();
    ENCODER.get_or_init(|| {
        let files = model_files(&ModelSource::Dir(real_model())).expect("model files");
        Encoder::load(&files).expect("load the model")
    })
}

#[derive(Deserialize)]
struct Reference {
    max_seq_length: usize,
    texts: Vec<ReferenceText>,
}

#[derive(Deserialize)]
struct ReferenceText {
    text: String,
    tokens: usize,
    embedding: Vec<f32>,
}

/// Vectors from scripts/reference_embeddings.py: an independent numpy BERT forward with
/// sentence-transformers' settings.
fn reference() -> Reference {
    let text = include_str!("../fixtures/reference_embeddings.json");
    serde_json::from_str(text).expect("parse the reference fixture")
}

#[test]
fn matches_reference_vectors() {
    let reference = reference();
    let encoder = encoder();
    assert_eq!(encoder.files().max_seq_length, reference.max_seq_length);
    for r in &reference.texts {
        let v = encoder.embed(&r.text).expect("embed");
        assert_eq!(v.len(), 384);
        assert_eq!(
            encoder.token_count(&r.text).expect("tokens"),
            r.tokens,
            "{}",
            r.text
        );
        let cosine = dot(&v, &r.embedding);
        assert!(cosine >= 0.9999, "cosine {cosine} for {:?}", r.text);
    }
}

#[test]
fn the_fused_encoder_equals_candles_stock_bert() {
    // The stock model is the oracle: every reference text (a word, sentences, a 212-token and
    // a 460-token text cut at 256) alone, and all of them packed into one batch.
    let files = model_files(&ModelSource::Dir(real_model())).expect("model files");
    let stock = StockBert::load(&files).expect("the stock model");
    let reference = reference();
    let texts: Vec<&str> = reference.texts.iter().map(|r| r.text.as_str()).collect();
    assert!(
        reference.texts.iter().any(|r| r.tokens == 256),
        "a truncated text"
    );
    let expected = stock.embed(&texts).expect("stock batch");
    let packed = encoder().embed_batch(&texts).expect("fused batch");
    for ((text, want), got) in texts.iter().zip(&expected).zip(&packed) {
        let alone = encoder().embed(text).expect("fused alone");
        for (how, vector) in [("alone", &alone), ("packed", got)] {
            let cosine = dot(vector, want);
            assert!(cosine >= 0.99999, "{how}: cosine {cosine} for {text:?}");
        }
    }
}

#[test]
fn vectors_are_unit_length() {
    let v = encoder()
        .embed("a quiet drama about a lighthouse keeper")
        .expect("embed");
    let norm = dot(&v, &v).sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
}

#[test]
fn batch_and_alone_agree() {
    let texts = [
        "space travel and futuristic wars",
        "a heist movie",
        "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags: pixar, fun.",
        "a very long description of a courtroom drama where a young lawyer defends an innocent man \
         against a powerful corporation, with many twists, witnesses and a final verdict",
    ];
    let encoder = encoder();
    let batch = encoder.embed_batch(&texts).expect("batch");
    for (text, in_batch) in texts.iter().zip(&batch) {
        let alone = encoder.embed(text).expect("alone");
        let cosine = dot(&alone, in_batch);
        assert!(cosine >= 0.99999, "cosine {cosine} for {text}");
    }
    // The length-sorted path used by `build` agrees too, in input order.
    let owned: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    let all = encoder.embed_all(&owned, &|_| {}).expect("embed_all");
    for (i, in_batch) in batch.iter().enumerate() {
        let cosine = dot(&all.vectors[i * 384..(i + 1) * 384], in_batch);
        assert!(cosine >= 0.99999, "cosine {cosine} for text {i}");
    }
    assert_eq!(all.truncated, 0);
}

#[test]
fn long_texts_are_cut_at_256_tokens_not_128() {
    let encoder = encoder();
    let filler =
        "the crew repairs the engine and plots a course to the next star system ".repeat(10);
    assert!(encoder.token_count(&filler).expect("tokens") > 140);
    // Differing only after token ~150: distinct vectors (a 128-token cut would make them equal).
    let a = encoder
        .embed(&format!("{filler} a romantic comedy in paris"))
        .expect("a");
    let b = encoder
        .embed(&format!("{filler} a horror film about zombies"))
        .expect("b");
    assert!(dot(&a, &b) < 0.9995, "tail after 128 tokens was ignored");
    // Differing only after token 256: identical vectors.
    let long = filler.repeat(3);
    assert_eq!(encoder.token_count(&long).expect("tokens"), 256);
    let c = encoder
        .embed(&format!("{long} a romantic comedy"))
        .expect("c");
    let d = encoder.embed(&format!("{long} a zombie film")).expect("d");
    assert!(dot(&c, &d) > 0.99999);
    let all = encoder
        .embed_all(&[long.clone(), "short".into()], &|_| {})
        .expect("embed_all");
    assert_eq!(all.truncated, 1);
}

#[test]
fn similar_meanings_are_closer() {
    let encoder = encoder();
    let cat = encoder.embed("a cat sits on the mat").expect("embed");
    let kitten = encoder.embed("a kitten rests on a rug").expect("embed");
    let stocks = encoder
        .embed("the stock market crashed today")
        .expect("embed");
    assert!(dot(&cat, &kitten) > dot(&cat, &stocks) + 0.2);
}

/// The query cache's key (lowercase, whitespace collapsed) is safe: the model's tokenizer
/// lowercases and splits on whitespace itself, so texts with one key embed identically.
#[test]
fn texts_with_one_cache_key_embed_identically() {
    let encoder = encoder();
    for text in [
        "  The   Matrix\t",
        "Space Travel AND futuristic  wars",
        "Amélie à Paris",
    ] {
        let key = reelrank::embed::query_key(text);
        assert_ne!(key, text);
        let (a, b) = (
            encoder.embed(text).expect("embed"),
            encoder.embed(&key).expect("embed"),
        );
        assert!(dot(&a, &b) > 0.999_999, "{text:?} and {key:?} differ");
    }
    let cache = reelrank::embed::QueryCache::new(2);
    let first = cache.embed(encoder, "The Matrix").expect("embed");
    let again = cache.embed(encoder, "the  matrix").expect("embed");
    assert_eq!(first, again);
    assert_eq!(cache.stats(), (1, 1));
    for text in ["a", "b", "c"] {
        cache.embed(encoder, text).expect("embed");
    }
    assert_eq!(cache.len(), 2, "bounded");
    let off = reelrank::embed::QueryCache::new(0);
    off.embed(encoder, "x").expect("embed");
    off.embed(encoder, "x").expect("embed");
    assert_eq!((off.stats(), off.len()), ((0, 2), 0));
}
