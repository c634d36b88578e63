"""Second round of issue 17 item 1: does any per-query fusion rule beat the fixed 0.7 / 0.3 out-of-fold?

    .venv/bin/python benchmarks/fusion_search.py   # ~12 min on the 2 shared cores

Reads the candidate lists cached by ``benchmarks/adaptive_fusion.py collect`` (and the section
judgments of ``details``), so nothing is embedded or searched. Every family of rules below is
run through the same nested cross-validation as ``adaptive_fusion.py evaluate``: outer folds by
``sha1(id)[0] % 2``; on the training fold only, an inner 2-fold CV (``sha1(id)[1] % 2``) picks the
family's candidate (normalization, signals, penalty), which is then fitted on the whole training
fold and scores the held-out fold. Reported nDCG@10 is that of the real fusion of each held-out
query at its out-of-fold weight (not the interpolated curve the fit optimizes). The pooled
families are rerun with two other inner splits (``sha1(id)[2]``, ``[3]``) to show how much the
choice depends on the split.

What varies, family by family:
- the normalization before the convex sum: min-max (the retriever's), ``max`` (score / best
  score, which weights each list by its relative spread), z-score (missing = the list's
  lowest z), DBSF (mean ± 3 sd clipped to [0, 1]), reciprocal rank (k = 60);
- the weight model: one constant fitted on the training fold; a logistic model with a free
  intercept and an L2 penalty on the standardized slopes; the same *anchored* at 0.7 (the
  intercept held at logit 0.7, so a query moves off the default only as far as its signals
  push it);
- the signals: the five of ``rag_engine.fusion.signals``, or those plus eleven more read off the
  same two lists and the query (query length in words, lexical/vector top-1 agreement, the
  gap between each list's first and second score, each list's best score as a z-score, each
  top-1's reciprocal rank in the other list, the overlap of the full top 100s, the best BM25
  score raw and per query word);
- the objective: each query's nDCG@10 tabulated at weights 0, 0.025, ..., 1, optionally smoothed
  along the weight axis (Gaussian, sd 0.05) so the optimizer sees slopes instead of steps;
  always the mean over the sets of each set's mean.

Writes ``benchmarks/out/fusion/search.md``.
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import adaptive_fusion as af

NG = 41  # weights 0, 0.025, ..., 1
GRID = np.linspace(0.0, 1.0, NG)
LOGIT_DEFAULT = math.log(0.7 / 0.3)
EXTRA = ("query_words", "top1_agree", "vector_gap12", "lexical_gap12", "vector_top_z", "lexical_top_z",
         "vector_top1_in_lexical", "lexical_top1_in_vector", "overlap100", "lexical_top", "lexical_top_per_word")
NAMES = af.FEATURES + EXTRA
BASE5 = tuple(range(len(af.FEATURES)))
ALL = tuple(range(len(NAMES)))
NORMS = ("minmax", "max", "z", "dbsf", "rrf60")


# -- normalizations and signals (offline only: the retriever ships min-max, rag_engine.fusion.convex) --------------

def normalize(run: Mapping[int, float], how: str) -> tuple[dict[int, float], float]:
    """The normalized scores and the value an item missing from this list gets."""
    v = np.array(list(run.values()), dtype=float)
    if how == "minmax":
        lo, span = v.min(), (v.max() - v.min()) or 1.0
        return {k: (s - lo) / span for k, s in run.items()}, 0.0
    if how == "max":
        hi = v.max() or 1.0
        return {k: s / hi for k, s in run.items()}, 0.0
    mu, sd = v.mean(), v.std() or 1.0
    if how == "z":
        z = {k: (s - mu) / sd for k, s in run.items()}
        return z, min(z.values())
    if how == "dbsf":
        lo, hi = mu - 3 * sd, mu + 3 * sd
        return {k: (min(hi, max(lo, s)) - lo) / (hi - lo) for k, s in run.items()}, 0.0
    order = sorted(run, key=lambda i: (-run[i], i))
    return {c: 1.0 / (60 + r + 1) for r, c in enumerate(order)}, 0.0


def fuse(vector: Mapping[int, float], lexical: Mapping[int, float], w: float, how: str) -> dict[int, float]:
    if how == "minmax":
        from rag_engine.fusion import convex

        return convex((vector, lexical), (w, 1.0 - w))  # the retriever's own function
    nv, mv = normalize(vector, how)
    nl, ml = normalize(lexical, how)
    return {c: w * nv.get(c, mv) + (1 - w) * nl.get(c, ml) for c in set(nv) | set(nl)}


def extra_signals(row: Mapping[str, Any]) -> list[float]:
    vec, lex = row["vector"], row["lexical"]
    vk = sorted(vec, key=lambda c: (-vec[c], c))
    lk = sorted(lex, key=lambda c: (-lex[c], c))
    v, sl = [vec[c] for c in vk], [lex[c] for c in lk]
    words = len(re.findall(r"[a-z0-9]+", row["query"].lower()))
    lrank = {c: r for r, c in enumerate(lk)}
    vrank = {c: r for r, c in enumerate(vk)}
    return [
        float(words),
        float(bool(vk) and bool(lk) and vk[0] == lk[0]),
        v[0] - v[1] if len(v) > 1 else 0.0,
        1 - sl[1] / sl[0] if len(sl) > 1 and sl[0] > 0 else 0.0,
        float((v[0] - np.mean(v)) / (np.std(v) + 1e-9)) if v else 0.0,
        float((sl[0] - np.mean(sl)) / (np.std(sl) + 1e-9)) if sl else 0.0,
        1.0 / (1 + lrank.get(vk[0], af.DEPTH)) if vk else 0.0,
        1.0 / (1 + vrank.get(lk[0], af.DEPTH)) if lk else 0.0,
        len(set(vk) & set(lk)) / max(1, len(vk)),
        sl[0] if sl else 0.0,
        sl[0] / max(1, words) if sl else 0.0,
    ]


@dataclass(slots=True)
class SetData:
    data: dict[str, Any]
    qids: list[str]
    x: np.ndarray  # (queries, len(NAMES))
    curves: dict[str, np.ndarray]  # normalization -> (queries, NG) nDCG@10
    outer: np.ndarray
    inner: np.ndarray


def prepare(data: dict[str, Any]) -> SetData:
    from rag_engine.fusion import signals

    qids = sorted(data["rows"])
    xs, curves = [], {h: [] for h in NORMS}
    for q in qids:
        row = data["rows"][q]
        xs.append([*signals(row["vector"], row["lexical"], af.DEPTH).vector(), *extra_signals(row)])
        for how in NORMS:
            curves[how].append([ndcg(data, q, fuse(row["vector"], row["lexical"], float(w), how)) for w in GRID])
    return SetData(data, qids, np.array(xs), {h: np.array(c) for h, c in curves.items()},
                   np.array([af.fold_of(q) for q in qids]), inner_folds(qids, 1))


def ndcg(data: dict[str, Any], qid: str, fused: dict[int, float]) -> float:
    return af.ndcg10(list(af.doc_run(fused, data["chunk_doc"])), data["qrels"][qid])


def inner_folds(qids: Sequence[str], byte: int) -> np.ndarray:
    return np.array([hashlib.sha1(q.encode()).digest()[byte] % 2 for q in qids])


# -- the weight models ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Candidate:
    norm: str
    cols: tuple[int, ...]  # signals used (indices into NAMES); () = one constant weight
    l2: float = 0.0  # on the standardized slopes
    anchored: bool = False  # intercept held at logit 0.7
    sigma: float = 0.05  # smoothing of the curves along the weight axis, for the fit only

    def describe(self) -> str:
        what = "constant" if not self.cols else f"{len(self.cols)} signals" if len(self.cols) > 2 else \
            "+".join(NAMES[c] for c in self.cols)
        return f"{self.norm}, {what}{', anchored' if self.anchored else ''}{f', l2 {self.l2:g}' if self.cols else ''}"


@dataclass(frozen=True, slots=True)
class Model:
    cand: Candidate
    theta: np.ndarray
    mu: np.ndarray
    sd: np.ndarray

    def weights(self, x: np.ndarray) -> np.ndarray:
        z = self.theta[0] + ((x[:, self.cand.cols] - self.mu) / self.sd) @ self.theta[1:]
        return np.asarray(1 / (1 + np.exp(-np.clip(z, -30, 30))))


def smooth(curves: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return curves
    k = np.exp(-0.5 * ((GRID[:, None] - GRID[None, :]) / sigma) ** 2)
    return np.asarray(curves @ (k / k.sum(0, keepdims=True)))


def interp(curves: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's value at its weight (linear between grid points) and the slope there."""
    pos = np.clip(w, 0.0, 1.0) * (NG - 1)
    lo = np.floor(pos).astype(int).clip(0, NG - 2)
    frac, rows = pos - lo, np.arange(len(w))
    return (curves[rows, lo] * (1 - frac) + curves[rows, lo + 1] * frac,
            (curves[rows, lo + 1] - curves[rows, lo]) * (NG - 1))


def fit(sets: Sequence[tuple[np.ndarray, np.ndarray]], cand: Candidate) -> Model:
    """Maximize the mean over sets of mean (smoothed) nDCG@10 minus the penalty; sets are (signals, curves)."""
    from scipy.optimize import minimize

    cols = list(cand.cols)
    allx = np.vstack([x[:, cols] for x, _ in sets])
    mu, sd = allx.mean(0), allx.std(0) + 1e-9
    if not cols:  # one weight: scan (the objective is piecewise linear in it)
        if cand.anchored:
            return Model(cand, np.array([LOGIT_DEFAULT]), mu, sd)
        ws = np.linspace(0.0125, 0.9875, 79)
        vals = [np.mean([interp(smooth(c, cand.sigma), np.full(len(c), w))[0].mean() for _, c in sets]) for w in ws]
        w = float(ws[int(np.argmax(vals))])
        return Model(cand, np.array([math.log(w / (1 - w))]), mu, sd)
    prepared = [((x[:, cols] - mu) / sd, smooth(c, cand.sigma)) for x, c in sets]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        if cand.anchored:
            theta = np.r_[LOGIT_DEFAULT, theta]
        value, grad = 0.0, np.zeros_like(theta)
        for z_x, c in prepared:
            w = 1 / (1 + np.exp(-np.clip(theta[0] + z_x @ theta[1:], -30, 30)))
            v, slope = interp(c, w)
            dz = slope * w * (1 - w)
            value += v.mean()
            grad[0] += dz.mean()
            grad[1:] += (z_x * dz[:, None]).mean(0)
        value, grad = value / len(prepared), grad / len(prepared)
        value -= cand.l2 * float(theta[1:] @ theta[1:])
        grad[1:] -= 2 * cand.l2 * theta[1:]
        return -value, -(grad[1:] if cand.anchored else grad)

    starts = [np.zeros(len(cols))] if cand.anchored else [np.r_[a, np.zeros(len(cols))]
                                                          for a in (LOGIT_DEFAULT, 0.0, 1.5)]
    best = min((minimize(objective, s, jac=True, method="L-BFGS-B") for s in starts), key=lambda r: r.fun)
    theta = np.r_[LOGIT_DEFAULT, best.x] if cand.anchored else best.x
    return Model(cand, theta, mu, sd)


def training(prep: Mapping[str, SetData], rows: Mapping[str, np.ndarray],
             norm: str) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(p.x[rows[n]], p.curves[norm][rows[n]]) for n, p in prep.items()]


def select(prep: Mapping[str, SetData], cands: Sequence[Candidate], rows: Mapping[str, np.ndarray],
           inner: Mapping[str, np.ndarray]) -> Candidate:
    """The candidate with the best inner-CV value (mean over sets) inside ``rows``."""
    if len(cands) == 1:
        return cands[0]
    best: tuple[float, Candidate] | None = None
    for cand in cands:
        scored: dict[str, list[np.ndarray]] = {n: [] for n in prep}
        for g in (0, 1):
            train = {n: rows[n] & (inner[n] != g) for n in prep}
            test = {n: rows[n] & (inner[n] == g) for n in prep}
            model = fit(training(prep, train, cand.norm), cand)
            for n, p in prep.items():
                scored[n].append(interp(p.curves[cand.norm][test[n]], model.weights(p.x[test[n]]))[0])
        value = float(np.mean([np.concatenate(v).mean() for v in scored.values()]))
        if best is None or value > best[0]:
            best = (value, cand)
    assert best is not None
    return best[1]


@dataclass(slots=True)
class Outcome:
    label: str
    per_set: dict[str, float]  # out-of-fold nDCG@10, real fusion
    chosen: list[str]  # per outer fold
    mean_weight: float

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.per_set.values())))


def nested(prep: Mapping[str, SetData], label: str, cands: Sequence[Candidate], inner_byte: int = 1) -> Outcome:
    inner = {n: inner_folds(p.qids, inner_byte) for n, p in prep.items()}
    weight = {n: np.zeros(len(p.qids)) for n, p in prep.items()}
    norm = {n: [""] * len(p.qids) for n, p in prep.items()}
    chosen = []
    for f in (0, 1):
        rows = {n: p.outer != f for n, p in prep.items()}
        cand = select(prep, cands, rows, inner)
        model = fit(training(prep, rows, cand.norm), cand)
        chosen.append(cand.describe())
        for n, p in prep.items():
            held = p.outer == f
            weight[n][held] = model.weights(p.x[held])
            for i in np.flatnonzero(held):
                norm[n][i] = cand.norm
    per_set = {}
    for n, p in prep.items():
        rows = p.data["rows"]
        per_set[n] = float(np.mean([ndcg(p.data, q, fuse(rows[q]["vector"], rows[q]["lexical"], float(weight[n][i]),
                                                           norm[n][i])) for i, q in enumerate(p.qids)]))
    mean_w = float(np.mean([w.mean() for w in weight.values()]))
    return Outcome(label, per_set, chosen, mean_w)


def families() -> list[tuple[str, list[Candidate], tuple[int, ...]]]:
    """(label, candidates the inner CV chooses among, inner-split bytes to run it with)."""
    one = (1,)
    round1 = [Candidate("minmax", c, l2, sigma=0.0) for c, l2 in af.CANDIDATES]
    out: list[tuple[str, list[Candidate], tuple[int, ...]]] = [
        ("round 1's pool (min-max, 20 signal subsets, free intercept), this optimizer", round1, one)]
    out += [(f"one constant weight, {h}", [Candidate(h, ())], one) for h in NORMS]
    for h in ("minmax", "max"):
        for cols, what in ((BASE5, "5 signals"), (ALL, "16 signals")):
            for sigma in (0.0, 0.05):
                out.append((f"{h}, {what}, free intercept, l2 by inner CV, smoothing {sigma}",
                            [Candidate(h, cols, l2, sigma=sigma) for l2 in (0.001, 0.003, 0.01, 0.03, 0.1)], one))
    for h in ("minmax", "max"):
        for cols, what in ((BASE5, "5 signals"), (ALL, "16 signals")):
            out.append((f"{h}, {what}, anchored at 0.7, l2 by inner CV",
                        [Candidate(h, cols, l2, anchored=True) for l2 in (0.001, 0.003, 0.01, 0.03, 0.1)],
                        (1, 2, 3) if h == "max" and cols == ALL else one))
        out.append((f"{h}, one signal of 16 (inner CV picks it), anchored at 0.7",
                    [Candidate(h, (j,), l2, anchored=True) for j in ALL for l2 in (0.003, 0.03)],
                    (1, 2, 3) if h == "max" else one))
    pooled_all, pooled_b, pooled_c = [], [], []
    for h in ("minmax", "max", "z", "dbsf"):
        consts = [Candidate(h, ()), Candidate(h, (), anchored=True)]
        base = [Candidate(h, BASE5, l2, anchored=a) for l2 in (0.003, 0.03) for a in (False, True)]
        pooled_all += consts + base + [Candidate(h, ALL, l2, anchored=True) for l2 in (0.01, 0.03, 0.1)]
        pooled_b += consts + base
        pooled_c += [Candidate(h, (), anchored=True)] + [Candidate(h, BASE5, l2, anchored=True)
                                                         for l2 in (0.003, 0.01, 0.03, 0.1)]
    out += [("pool: 4 normalizations x (constants, 5 signals free/anchored, 16 signals anchored), 36 candidates",
             pooled_all, (1, 2, 3)),
            ("pool: 4 normalizations x (constants, 5 signals free/anchored), 24 candidates", pooled_b, (1, 2, 3)),
            ("pool: 4 normalizations x anchored at 0.7 (constant, 5 signals), 20 candidates", pooled_c, (1, 2, 3))]
    return out


def describe(prep: Mapping[str, SetData]) -> list[str]:
    """In-sample facts that explain the table (nothing here is a test result)."""
    from scipy.stats import spearmanr

    out = []
    for f in (0, 1):
        m = np.mean([p.curves["minmax"][p.outer == f].mean(0) for p in prep.values()], 0)
        out.append(f"outer fold {f}: best constant min-max weight {GRID[m.argmax()]:.3f} ({m.max():.4f}), "
                   f"0.7 gives {m[28]:.4f}")
    for h in ("minmax", "max"):
        m = np.mean([p.curves[h].mean(0) for p in prep.values()], 0)
        out.append(f"{h}, all queries: best constant weight {GRID[m.argmax()]:.3f} ({m.max():.4f}), "
                   f"0.7 gives {m[28]:.4f}")
    diffs = {n: p.curves["max"][:, 28] - p.curves["minmax"][:, 28] for n, p in prep.items()}
    rng = np.random.default_rng(0)
    boot = [np.mean([d[rng.integers(0, len(d), len(d))].mean() for d in diffs.values()]) for _ in range(4000)]
    out.append("max 0.7 minus min-max 0.7, all queries: " + ", ".join(f"{n} {d.mean():+.4f}" for n, d in diffs.items())
               + f"; mean {np.mean([d.mean() for d in diffs.values()]):+.4f}, paired bootstrap 95% "
               f"[{np.percentile(boot, 2.5):+.4f}, {np.percentile(boot, 97.5):+.4f}]")
    for n, p in prep.items():
        gain = p.curves["minmax"][:, 36] - p.curves["minmax"][:, 16]  # nDCG@10 at w 0.9 minus at w 0.4
        rho = [spearmanr(p.x[:, j], gain)[0] if p.x[:, j].std() > 0 else float("nan") for j in ALL]
        out.append(f"{n}: {int((gain != 0).sum())} queries where w 0.9 and 0.4 differ; spearman(signal, gain): "
                   + " ".join(f"{NAMES[j]} {r:+.2f}" for j, r in enumerate(rho)))
    return out


def main() -> None:
    t0 = time.perf_counter()
    datas = {n: af.load(n) for n in ("tts-handbook", "msmarco-5k", "examples-handbook")}
    datas["tts-handbook-sections"] = af.sections(datas["tts-handbook"])
    prep = {n: prepare(d) for n, d in datas.items()}
    print(f"prepared ({time.perf_counter() - t0:.0f}s)", flush=True)
    facts = describe(prep)
    print("\n".join(facts), flush=True)
    col = {n: p.curves["minmax"] for n, p in prep.items()}
    floor = {n: max(c[:, 0].mean(), c[:, -1].mean()) - 0.005 for n, c in col.items()}
    fixed = float(np.mean([c[:, 28].mean() for c in col.values()]))  # GRID[28] = 0.7
    head = "| rule (what the inner CV chooses among) | inner split | " + " | ".join(prep) + " | mean | floor |"
    lines = [head, "|---|---:|" + "---:|" * (len(prep) + 2)]
    lines.append("| fixed min-max 0.7 / 0.3 (nothing fitted) | | " + " | ".join(
        f"{c[:, 28].mean():.4f}" for c in col.values()) + f" | {fixed:.4f} | ok |")
    for label, cands, bytes_ in families():
        for b in bytes_:
            o = nested(prep, label, cands, b)
            ok = all(o.per_set[n] >= floor[n] for n in prep)
            lines.append(f"| {label} | [{b}] | " + " | ".join(f"{o.per_set[n]:.4f}" for n in prep)
                         + f" | {o.mean:.4f} | {'ok' if ok else 'missed'} |")
            print(f"{o.mean:.4f} ({o.mean - fixed:+.4f} vs fixed) inner [{b}] {label}; chosen per fold: "
                  f"{o.chosen}; mean w {o.mean_weight:.2f}", flush=True)
    (af.OUT / "search.md").write_text("\n".join(lines) + "\n\n" + "\n".join(f"- {f}" for f in facts) + "\n")
    print("\n".join(lines))
    print(f"done ({time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
