//! What extending a built HNSW graph with new movies costs (`HnswIndex::extend_into`, as a
//! rebuild with appended movies runs it), against building it anew (the build's `hnsw`
//! timing): NEW synthetic movies (the normalised sum of two catalogue vectors each) inserted
//! into a generation's graph, then each checked to be its own nearest neighbour.
//!
//! `cargo run --release --example bench_graph_extend -- INDEX_DIR [NEW]` (NEW: 100): the
//! graph of the index's current generation.

use std::time::Instant;

use anyhow::Context;
use reelrank::ann::{FlatIndex, HnswIndex};
use reelrank::store::MovieIndex;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let root = std::path::PathBuf::from(args.next().context("INDEX_DIR")?);
    let new: usize = args.next().map_or(Ok(100), |n| n.parse())?;
    let index = MovieIndex::open(&root)?;
    let generation = index.dir().join(index.generation());
    let dim = index.flat().dim();
    let mut vectors = index.flat().vectors().to_vec();
    let n = vectors.len() / dim;
    for i in 0..new {
        let (a, b) = ((i * 7919) % n, (i * 104_729 + 13) % n);
        let mut v: Vec<f32> = (0..dim)
            .map(|d| vectors[a * dim + d] + vectors[b * dim + d])
            .collect();
        let norm = reelrank::linalg::dot(&v, &v).sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        vectors.extend(v);
    }

    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    HnswIndex::extend_into(&generation, dir.path(), &vectors, dim, n)?;
    println!(
        "{n} points loaded, {new} inserted and the graph written in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let extended = HnswIndex::load(
        dir.path(),
        index.manifest().hnsw,
        &FlatIndex::new(vectors.clone(), dim),
    )
    .map_err(anyhow::Error::msg)?;
    let found = (n..n + new)
        .filter(|&p| {
            let hits = extended.search_with_ef(&vectors[p * dim..(p + 1) * dim], 1, 64, None);
            hits.first().is_some_and(|h| h.position == p)
        })
        .count();
    println!("each inserted movie its own nearest: {found}/{new}");
    Ok(())
}
