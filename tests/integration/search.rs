//! Search quality and HNSW recall on the real ml-latest-small index.

use reelrank::documents::DocumentTemplate;
use reelrank::engine::{MovieRef, SearchMode, SearchRequest, SimilarRequest};
use reelrank::eval::search::{default_variants, evaluate_search, SearchQuality};
use reelrank::rank::{Filters, YearRange, DEFAULT_ALPHA};
use reelrank::Error;

use crate::common::{real_engine, real_graph_engine};

fn titles(request: &SearchRequest) -> Vec<(String, Vec<String>)> {
    real_engine()
        .search(request)
        .expect("search")
        .results
        .into_iter()
        .map(|r| (r.title, r.genres))
        .collect()
}

#[test]
fn space_wars_returns_science_fiction() {
    let results = titles(&SearchRequest::new("Space travel and futuristic wars"));
    assert_eq!(results.len(), 10);
    let scifi = results
        .iter()
        .filter(|(_, g)| g.iter().any(|g| g == "Sci-Fi"))
        .count();
    assert!(scifi >= 7, "only {scifi} Sci-Fi: {results:?}");
    assert!(
        results
            .iter()
            .any(|(t, _)| t.starts_with("Star Wars") || t.starts_with("Star Trek")),
        "{results:?}"
    );
}

#[test]
fn toys_query_finds_toy_story() {
    let results = titles(&SearchRequest::new("animated movie about toys"));
    let position = results.iter().position(|(t, _)| t == "Toy Story (1995)");
    assert!(position.is_some_and(|p| p < 3), "{results:?}");
}

#[test]
fn results_are_ranked_by_the_blend() {
    let mut request = SearchRequest::new("a heist in las vegas");
    request.mode = SearchMode::Semantic;
    let response = real_engine().search(&request).expect("search");
    for pair in response.results.windows(2) {
        assert!(pair[0].score >= pair[1].score);
    }
    for r in &response.results {
        let similarity = r.query_similarity.expect("a query result has a similarity");
        let expected = DEFAULT_ALPHA * similarity + (1.0 - DEFAULT_ALPHA) * r.popularity / 5.0;
        assert!((r.score - f64::from(expected)).abs() < 1e-5);
        assert_eq!(r.personal_score, None);
        assert_eq!(r.sources, ["semantic"]);
        assert_eq!(r.bm25, None);
    }
    // alpha = 1 ranks by similarity alone, which the exact scan orders the same way.
    request.alpha = 1.0;
    request.exact = true;
    let exact = real_engine().search(&request).expect("search");
    for pair in exact.results.windows(2) {
        assert!(pair[0].query_similarity >= pair[1].query_similarity);
    }
}

#[test]
fn hnsw_recall_at_10_against_exact() {
    let engine = real_engine();
    let catalog = &engine.index().catalog().movies;
    // 300 queries: titles alone (not the indexed documents), spread over the catalogue.
    let queries: Vec<String> = (0..300)
        .map(|i| catalog[(i * 7919) % catalog.len()].movie.title.clone())
        .collect();
    let vectors: Vec<Vec<f32>> = queries
        .iter()
        .map(|q| engine.encoder().embed(q).expect("embed"))
        .collect();
    let exact: Vec<_> = vectors
        .iter()
        .map(|v| engine.index().flat().search(v, 10, &|_| true))
        .collect();
    let graph = engine.index().hnsw().expect("graph");
    let recall = graph.recall_at(&vectors, &exact, 10, graph.params().ef_search);
    assert!(recall >= 0.99, "recall@10 = {recall}");
}

#[test]
fn filters_apply_before_the_cut() {
    let mut request = SearchRequest::new("space travel and futuristic wars");
    request.filters = Filters {
        genres: vec!["comedy".into()],
        years: Some(YearRange::parse("1980..1999").expect("range")),
    };
    let response = real_engine().search(&request).expect("search");
    assert_eq!(response.results.len(), 10);
    for r in &response.results {
        assert!(r.genres.iter().any(|g| g == "Comedy"), "{r:?}");
        assert!(r.year.is_some_and(|y| (1980..=1999).contains(&y)), "{r:?}");
    }
    // A filter so narrow that few movies pass: still k results when k exist.
    let mut narrow = SearchRequest::new("detective story");
    narrow.filters = Filters {
        genres: vec!["Film-Noir".into()],
        years: Some(YearRange::parse("1940..1949").expect("range")),
    };
    let matching = real_engine()
        .index()
        .catalog()
        .movies
        .iter()
        .filter(|e| narrow.filters.matches(&e.movie))
        .count();
    assert!(
        matching >= 10,
        "fixture assumption: {matching} movies match"
    );
    let response = real_engine().search(&narrow).expect("search");
    assert_eq!(response.results.len(), 10);
    assert!(response
        .results
        .iter()
        .all(|r| r.genres.iter().any(|g| g == "Film-Noir")));
}

#[test]
fn hnsw_and_exact_agree_on_the_top_results() {
    let mut request = SearchRequest::new("a boy wizard goes to a school of magic");
    let approximate = real_graph_engine().search(&request).expect("search");
    // Below GRAPH_FROM_MOVIES the default engine scans exactly without being asked.
    let exact = real_engine().search(&request).expect("search");
    assert_eq!(exact.retrieval, Some("exact"));
    assert_eq!(approximate.retrieval, Some("hnsw"));
    request.exact = true;
    let forced = real_graph_engine().search(&request).expect("search");
    assert_eq!(forced.retrieval, Some("exact"));
    assert_eq!(forced.results, exact.results);
    assert_eq!(approximate.results[..3], exact.results[..3]);
    assert!(
        exact
            .results
            .iter()
            .any(|r| r.title.contains("Harry Potter")),
        "{:?}",
        exact.results
    );
}

#[test]
fn bad_requests_are_refused() {
    let engine = real_engine();
    for query in ["", "   \t\n"] {
        let error = engine
            .search(&SearchRequest::new(query))
            .expect_err("empty");
        assert!(matches!(error, Error::InvalidArgument { .. }));
    }
    let error = engine
        .search(&SearchRequest::new("x".repeat(10_001)))
        .expect_err("too long");
    assert!(error.to_string().contains("10000"), "{error}");
    let mut request = SearchRequest::new("war");
    request.filters.genres = vec!["Westerns".into()];
    let error = engine.search(&request).expect_err("unknown genre");
    assert!(error.to_string().contains("Western"), "{error}");
    request.filters.genres.clear();
    request.alpha = 2.0;
    assert!(engine.search(&request).is_err());
}

fn first_title(query: &str, mode: SearchMode) -> String {
    let mut request = SearchRequest::new(query);
    request.mode = mode;
    let response = real_engine().search(&request).expect("search");
    response
        .results
        .first()
        .map(|r| r.title.clone())
        .unwrap_or_default()
}

#[test]
fn hybrid_search_finds_named_titles_first() {
    // Title queries outside tests/queries/: articles, numbers as words, typos, alternative titles.
    for (query, title) in [
        ("the godfather", "Godfather, The (1972)"),
        ("toy story", "Toy Story (1995)"),
        (
            "seven samurai",
            "Seven Samurai (Shichinin no samurai) (1954)",
        ),
        (
            "back to the future part three",
            "Back to the Future Part III (1990)",
        ),
        ("jurasic world", "Jurassic World (2015)"),
        (
            "lord of the rings fellowship",
            "Lord of the Rings: The Fellowship of the Ring, The (2001)",
        ),
        ("no country for old men", "No Country for Old Men (2007)"),
    ] {
        assert_eq!(first_title(query, SearchMode::Hybrid), title, "{query}");
    }
    // The semantic retriever alone misses a typo'd title that hybrid finds.
    assert_ne!(
        first_title("the godfahter", SearchMode::Semantic),
        "Godfather, The (1972)"
    );
    assert_eq!(
        first_title("the godfahter", SearchMode::Hybrid),
        "Godfather, The (1972)"
    );
}

#[test]
fn each_result_says_which_retriever_found_it() {
    let mut request = SearchRequest::new("the matrix");
    let hybrid = real_engine().search(&request).expect("search");
    assert_eq!(hybrid.mode, Some("hybrid"));
    let first = &hybrid.results[0];
    assert_eq!(first.sources, ["semantic", "keyword"]);
    assert!(first.bm25.is_some_and(|s| s > 0.0) && first.query_similarity.is_some());
    for r in &hybrid.results {
        assert_eq!(r.bm25.is_some(), r.sources.contains(&"keyword"), "{r:?}");
    }

    request.mode = SearchMode::Keyword;
    let keyword = real_engine().search(&request).expect("search");
    assert!(
        !keyword.timings_ms.contains_key("embed"),
        "keyword mode embeds nothing"
    );
    assert!(keyword
        .results
        .iter()
        .all(|r| r.sources == ["keyword"] && r.query_similarity.is_none() && r.bm25.is_some()));

    // Filters apply to the keyword retriever too.
    request.filters = Filters {
        genres: vec!["Animation".into()],
        ..Filters::default()
    };
    for mode in [SearchMode::Keyword, SearchMode::Hybrid] {
        request.mode = mode;
        let filtered = real_engine().search(&request).expect("search");
        assert!(!filtered.results.is_empty());
        assert!(filtered
            .results
            .iter()
            .all(|r| r.genres.iter().any(|g| g == "Animation")));
    }
}

fn row<'a>(rows: &'a [SearchQuality], set: &str, half: &str, variant: &str) -> &'a SearchQuality {
    rows.iter()
        .find(|r| r.set == set && r.half == half && r.variant == variant)
        .expect("row")
}

#[test]
fn judged_query_sets_hybrid_beats_semantic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/queries");
    let variants = default_variants(DocumentTemplate::default());
    let rows = evaluate_search(real_engine(), &dir, &variants).expect("evaluate");
    for half in ["tune", "held-out"] {
        let nav = row(&rows, "navigational", half, "hybrid");
        assert!(nav.queries >= 25 && nav.hit_at_1 >= 0.9, "{nav:?}");
        let semantic = row(&rows, "navigational", half, "semantic");
        assert!(nav.mrr_at_10 > semantic.mrr_at_10, "{nav:?} {semantic:?}");
        let hybrid = row(&rows, "descriptive", half, "hybrid");
        let semantic = row(&rows, "descriptive", half, "semantic");
        assert!(hybrid.queries >= 15);
        assert!(
            hybrid.hit_at_10 >= semantic.hit_at_10
                && hybrid.recall_at_10 >= semantic.recall_at_10 - 0.01,
            "{hybrid:?} {semantic:?}"
        );
    }
}

#[test]
fn a_query_naming_a_movie_to_start_from_answers_like_similar() {
    let engine = real_engine();
    let search = engine
        .search(&SearchRequest::new("Movies like The Matrix"))
        .expect("search");
    let named = search
        .intent
        .as_ref()
        .and_then(|i| i.similar_to.as_ref())
        .expect("a movie to start from");
    assert_eq!(named.title, "Matrix, The (1999)");
    let similar = engine
        .similar(&SimilarRequest::new(MovieRef::Id(named.movie_id)))
        .expect("similar");
    let ids = |r: &reelrank::engine::Response| -> Vec<u32> {
        r.results.iter().map(|m| m.movie_id).collect()
    };
    assert_eq!(ids(&search), ids(&similar));
    assert!(!ids(&search).contains(&named.movie_id));
    // A typo and another opening name the same movie; the most rated of equally named wins.
    let typo = engine
        .search(&SearchRequest::new("something similar to the matrx"))
        .expect("search");
    assert_eq!(ids(&typo), ids(&similar));
    let titanic = engine
        .search(&SearchRequest::new("films like titanic"))
        .expect("search");
    let named = titanic.intent.and_then(|i| i.similar_to).expect("named");
    assert_eq!(named.title, "Titanic (1997)");
    // A title that opens with "like" is a title, not a rule; so is an unknown name.
    let title = engine
        .search(&SearchRequest::new("like mike"))
        .expect("search");
    assert!(title.intent.is_none());
    assert_eq!(title.results[0].title, "Like Mike (2002)");
    let unknown = engine
        .search(&SearchRequest::new("movies like qwzxv"))
        .expect("search");
    assert!(unknown.intent.is_none());
    // Taken literally, the query is a plain search.
    let mut literal = SearchRequest::new("movies like the matrix");
    literal.intent = false;
    let literal = engine.search(&literal).expect("search");
    assert!(literal.intent.is_none());
    assert_ne!(ids(&literal), ids(&similar));
}

#[test]
fn decade_and_genre_words_boost_their_movies() {
    let engine = real_engine();
    let share = |request: &SearchRequest| {
        let response = engine.search(request).expect("search");
        let matching = response
            .results
            .iter()
            .filter(|r| {
                r.year.is_some_and(|y| (1990..2000).contains(&y))
                    && r.genres.iter().any(|g| g == "Sci-Fi")
                    && r.genres.iter().any(|g| g == "Comedy")
            })
            .count();
        (response, matching)
    };
    let request = SearchRequest::new("90s sci-fi comedies");
    let (boosted, with_rules) = share(&request);
    let intent = boosted.intent.expect("rules read");
    assert_eq!(intent.decades, vec![1990]);
    assert_eq!(intent.genres, vec!["Sci-Fi", "Comedy"]);
    let mut literal = request.clone();
    literal.intent = false;
    let (plain, without_rules) = share(&literal);
    assert!(plain.intent.is_none());
    assert!(
        with_rules > without_rules && with_rules >= 5,
        "{with_rules} vs {without_rules} of 10 are 90s sci-fi comedies"
    );
    // The boosts are soft: an explicit filter still rules.
    let mut filtered = request.clone();
    filtered.filters.years = Some(YearRange::parse("1980..1989").expect("range"));
    let response = engine.search(&filtered).expect("search");
    assert!(response
        .results
        .iter()
        .all(|r| r.year.is_some_and(|y| (1980..1990).contains(&y))));
}
