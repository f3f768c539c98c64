// reelrank's page: search as you type, filters, a profile kept in this browser (its id is the
// capability to write to it), "For you" recommendations (under the server's first experiment,
// if it runs one, reporting clicks, likes and ratings of that row), "More like this", a
// first-visit row of popular movies to rate. Plain JavaScript over the JSON API; no library, no build step.
"use strict";

// Errors are kept for diagnostics (the browser tests read them: the page must raise none).
window.reelrankErrors = [];
window.addEventListener("error", (e) => window.reelrankErrors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.reelrankErrors.push(String(e.reason)));

const PROFILE_KEY = "reelrank.profile";
const DEBOUNCE_MS = 250;
const RESULTS = 12;
const ONBOARDING = 12;
// Ratings after which the first-visit row gives way to recommendations alone.
const ONBOARDED_AFTER = 5;

const $ = (id) => document.getElementById(id);
const state = {
  profile: localStorage.getItem(PROFILE_KEY),
  ratings: new Map(), // movie_id -> rating
  searchSeq: 0,
  similarTo: null, // {movie_id, title} while "More like this" is shown
  experiment: null, // the experiment the For-you row runs under, if the server runs one
};

class ApiError extends Error {}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    const error = new ApiError(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function why(movie) {
  const parts = [];
  if (movie.query_similarity !== null && movie.query_similarity !== undefined) {
    parts.push(`${state.similarTo ? "similarity" : "query match"} ${movie.query_similarity.toFixed(2)}`);
  }
  if (movie.personal_score !== null && movie.personal_score !== undefined) {
    parts.push(`for you ${movie.personal_score.toFixed(2)}`);
  }
  if (movie.popularity !== undefined) parts.push(`popularity ${movie.popularity.toFixed(2)}/5`);
  if (movie.rating_count !== undefined) {
    const mean = movie.mean_rating ? `, mean ${movie.mean_rating.toFixed(1)} ★` : "";
    parts.push(`${movie.rating_count} ratings${mean}`);
  }
  if (movie.sources && movie.sources.length) parts.push(`via ${movie.sources.join(", ")}`);
  return parts.join(" · ");
}

// Tells the experiment what the person did with a movie of the For-you row it showed.
function report(movie, kind, rating) {
  if (!movie.listId) return;
  const body = { list_id: movie.listId, movie_id: movie.movie_id, kind };
  if (kind === "rating") body.rating = rating;
  api("/v1/events", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  }).catch((error) => setStatus(error.message, true));
}

// Like (rating 5) or Dislike (rating 1), pressed when that is the movie's rating.
function likeButton(movie, label, rating, current) {
  const kind = label.toLowerCase();
  return el(
    "button",
    {
      type: "button",
      class: kind,
      "aria-pressed": String(current === rating),
      "aria-label": `${label} ${movie.title}`,
      onclick: () => {
        report(movie, kind);
        rate(movie, rating);
      },
    },
    label
  );
}

function ratingControls(movie) {
  const current = state.ratings.get(movie.movie_id);
  const stars = el(
    "select",
    {
      class: "stars",
      "aria-label": `Rate ${movie.title}`,
      onchange: (e) => {
        if (!e.target.value) return;
        report(movie, "rating", Number(e.target.value));
        rate(movie, Number(e.target.value));
      },
    },
    el("option", { value: "" }, "Rate…"),
    [5, 4.5, 4, 3.5, 3, 2.5, 2, 1.5, 1, 0.5].map((r) =>
      el("option", { value: String(r), selected: current === r }, `${r} ★`)
    )
  );
  return el(
    "div",
    { class: "actions" },
    likeButton(movie, "Like", 5, current),
    likeButton(movie, "Dislike", 1, current),
    stars,
    el(
      "button",
      {
        type: "button",
        class: "more",
        "aria-label": `More like ${movie.title}`,
        onclick: () => {
          report(movie, "click");
          moreLike(movie);
        },
      },
      "More like this"
    )
  );
}

function card(movie) {
  const title = movie.title.replace(/\s*\(\d{4}\)\s*$/, "");
  const rated = state.ratings.get(movie.movie_id);
  return el(
    "li",
    {
      class: "card",
      "data-movie-id": String(movie.movie_id),
      "data-genres": (movie.genres || []).join("|"),
      "data-year": movie.year ?? "",
      "data-list-id": movie.listId,
    },
    el("h3", {}, title, " ", el("span", { class: "year" }, movie.year ? `(${movie.year})` : "")),
    el("ul", { class: "genres", "aria-label": "genres" }, (movie.genres || []).map((g) => el("li", {}, g))),
    why(movie) ? el("p", { class: "why" }, why(movie)) : null,
    rated !== undefined ? el("p", { class: "rated" }, `Your rating: ${rated} ★`) : null,
    el(
      "p",
      { class: "links" },
      movie.imdb_url
        ? el("a", { href: movie.imdb_url, target: "_blank", rel: "noopener", onclick: () => report(movie, "click") }, "IMDb")
        : null,
      movie.tmdb_url
        ? el("a", { href: movie.tmdb_url, target: "_blank", rel: "noopener", onclick: () => report(movie, "click") }, "TMDB")
        : null
    ),
    ratingControls(movie)
  );
}

function show(listId, movies) {
  $(listId).replaceChildren(...movies.map(card));
}

function filterParams() {
  const params = new URLSearchParams();
  const genre = $("genre").value;
  if (genre) params.append("genre", genre);
  const from = $("year-from").value.trim();
  const to = $("year-to").value.trim();
  if (from || to) params.set("year", `${from}..${to}`);
  return params;
}

function personParams(params) {
  if (state.profile && state.ratings.size > 0) params.set("profile", state.profile);
  return params;
}

async function search() {
  const query = $("q").value.trim();
  const seq = ++state.searchSeq;
  state.similarTo = null;
  if (!query) {
    $("results-section").hidden = true;
    setStatus("");
    return;
  }
  const params = personParams(filterParams());
  params.set("q", query);
  params.set("k", String(RESULTS));
  try {
    const response = await api(`/v1/search?${params}`);
    if (seq !== state.searchSeq) return; // a newer query was typed meanwhile
    $("results-title").textContent = response.intent && response.intent.similar_to
      ? `Movies like ${response.intent.similar_to.title}`
      : state.ratings.size > 0 ? "Results, ranked for you" : "Results";
    show("results", response.results);
    $("results-section").hidden = false;
    // What the shown results answer (read by the browser tests).
    $("results-section").dataset.query = query;
    setStatus(response.results.length ? `${response.results.length} results in ${Math.round(response.timings_ms.total)} ms` : "Nothing matches these filters.");
  } catch (error) {
    if (seq !== state.searchSeq) return;
    setStatus(error.message, true);
  }
}

async function moreLike(movie) {
  const params = personParams(filterParams());
  params.set("movie", String(movie.movie_id));
  params.set("k", String(RESULTS));
  const seq = ++state.searchSeq;
  try {
    const response = await api(`/v1/similar?${params}`);
    if (seq !== state.searchSeq) return;
    state.similarTo = movie;
    $("results-title").textContent = `More like ${movie.title}`;
    show("results", response.results);
    $("results-section").hidden = false;
    setStatus("");
    $("results-title").scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function ensureProfile() {
  if (state.profile) return state.profile;
  const created = await api("/v1/profiles", { method: "POST" });
  state.profile = created.id;
  localStorage.setItem(PROFILE_KEY, created.id);
  return created.id;
}

async function rate(movie, rating) {
  try {
    const profile = await ensureProfile();
    await api(`/v1/profiles/${profile}/ratings/${movie.movie_id}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ rating }),
    });
    state.ratings.set(movie.movie_id, rating);
    setStatus(`Rated ${movie.title}: ${rating} ★`);
    await refreshPersonal();
    if (state.similarTo) await moreLike(state.similarTo);
    else await search();
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function refreshPersonal() {
  renderProfileLine();
  if (state.ratings.size > 0 && state.profile) {
    const params = filterParams();
    params.set("profile", state.profile);
    params.set("k", "10");
    if (state.experiment) params.set("experiment", state.experiment);
    try {
      const ratings = state.ratings.size;
      const response = await api(`/v1/recommend?${params}`);
      // Under an experiment, each movie carries the list it was shown in, for its events.
      const listId = response.experiment ? response.experiment.list_id : null;
      show("for-you-list", response.results.map((m) => ({ ...m, listId })));
      $("for-you").hidden = false;
      // How many ratings the row reflects (read by the browser tests).
      $("for-you").dataset.ratings = String(ratings);
    } catch (error) {
      setStatus(error.message, true);
    }
  } else {
    $("for-you").hidden = true;
  }
  if (state.ratings.size < ONBOARDED_AFTER) {
    const params = new URLSearchParams({ k: String(ONBOARDING) });
    if (state.profile) params.set("profile", state.profile);
    const response = await api(`/v1/onboarding?${params}`);
    show("onboarding-list", response.movies);
    $("onboarding").hidden = false;
  } else {
    $("onboarding").hidden = true;
  }
}

function renderProfileLine() {
  const line = $("profile-line");
  if (state.profile) {
    line.textContent = `Your profile: ${state.ratings.size} rating${state.ratings.size === 1 ? "" : "s"}, kept in this browser.`;
    $("forget").hidden = false;
  } else {
    line.textContent = "No profile yet: your first rating creates one, kept in this browser.";
    $("forget").hidden = true;
  }
}

async function loadProfile() {
  if (!state.profile) return;
  try {
    const profile = await api(`/v1/profiles/${state.profile}`);
    state.ratings = new Map(profile.ratings.map((r) => [r.movie_id, r.rating]));
  } catch (error) {
    if (error.status === 404 || error.status === 400) {
      // A profile of another server's database: start afresh.
      localStorage.removeItem(PROFILE_KEY);
      state.profile = null;
      state.ratings = new Map();
    } else {
      throw error;
    }
  }
}

async function loadExperiments() {
  const { experiments } = await api("/v1/experiments");
  state.experiment = experiments.length ? experiments[0].name : null;
}

async function loadGenres() {
  const { genres } = await api("/v1/genres");
  $("genre").append(...genres.filter((g) => !g.startsWith("(")).map((g) => el("option", { value: g }, g)));
}

function debounce(fn, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

async function start() {
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    search();
  });
  $("q").addEventListener("input", debounce(search, DEBOUNCE_MS));
  for (const id of ["genre", "year-from", "year-to"]) {
    $(id).addEventListener("change", () => {
      search();
      refreshPersonal();
    });
  }
  $("forget").addEventListener("click", () => {
    localStorage.removeItem(PROFILE_KEY);
    state.profile = null;
    state.ratings = new Map();
    refreshPersonal();
    search();
  });
  try {
    await Promise.all([loadGenres(), loadProfile(), loadExperiments()]);
    await refreshPersonal();
    if ($("q").value.trim()) await search();
    document.body.dataset.ready = "true";
  } catch (error) {
    setStatus(error.message, true);
  }
}

start();
