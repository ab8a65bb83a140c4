"""Post-hoc calibration methods for the basic readout on corpora never seen: a probe over the
cold windows `ser-train encoder-table` saves (RUNS/<corpus>/seed<N>-<recipe>.npz).

For each held-out corpus C and seed s every method is fitted on the OTHER six corpora's windows
(same seed and recipe) and C is scored as trainer.calibrate.readout_metrics scores it (ECE over
15 bins of the top probability, coverage at the fitted threshold, how often a shown label is
right). The nested choice picks, for each (C, s), the method with the lowest mean ECE in leave
one corpus out inside the six (fit on five, score the sixth) and applies it fitted on all six
to C. `--floor` prints why every map fitted on other corpora stalls: each corpus's accuracy
against its confidence, and bounds fitted on the scored corpus itself (which no app can do).

Needs scipy and scikit-learn, which serapp does not depend on (pip install scipy scikit-learn):
    python benchmarks/probe_calibration.py [--runs runs/encoder-table-v3/loco] [--recipe four-way] [--floor]
Figures in docs/results.md ("Calibration fitted across corpora is at its floor").
"""
import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
from scipy.optimize import minimize
from sklearn.isotonic import IsotonicRegression

from serapp.readout import Readout
from trainer.calibrate import calibrate_pooled, coverage_and_accuracy, ece, readout_metrics, readout_targets

CORPORA = "ravdess tess nemo urdu turev-db ased emovo".split()
SEEDS = (0, 1, 2)
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--runs", default="runs/encoder-table-v3/loco", help="the table's leave-one-corpus-out folder")
ap.add_argument("--recipe", default="four-way")
ap.add_argument("--no-nested", action="store_true", help="skip the nested choice (the slow part)")
ap.add_argument("--floor", action="store_true", help="print the floor and the threshold trade-off instead")
ARGS = ap.parse_args()
ROOT = ARGS.runs


def load(c, s):
    z = np.load(f"{ROOT}/{c}/seed{s}-{ARGS.recipe}.npz")
    labels, probs, true = [str(k) for k in z["model_labels"]], z["probs"], [str(k) for k in z["true"]]
    # the basic readout (no calibration) then its targets, as readout_metrics does
    basic = Readout.for_bundle(labels, None, "basic").apply(probs).astype(np.float64)
    shown, y = readout_targets(labels, "basic", true)
    keep = y >= 0
    return dict(labels=labels, probs=probs, true=true, p=basic[keep], y=y[keep], shown=shown)


DATA = {(c, s): load(c, s) for c in CORPORA for s in SEEDS}
K = len(DATA[CORPORA[0], 0]["shown"])


def logp(p):
    return np.log(np.maximum(p, 1e-30))


def softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def stack(parts, balanced):
    """Pooled fit data; weights 1 per window, or each corpus weighing the same (mean 1 per window)."""
    p = np.concatenate([d["p"] for d in parts])
    y = np.concatenate([d["y"] for d in parts])
    if balanced:
        w = np.concatenate([np.full(len(d["y"]), 1.0 / len(d["y"])) for d in parts])
    else:
        w = np.ones(len(y))
    return p, y, w * len(y) / w.sum()


# ---- the affine family on log-probabilities: z = logp @ W + b ----------------------------
def fit_affine(p, y, w, kind, l2=0.0):
    L = logp(p); n, k = L.shape
    Y = np.eye(k)[y]; sw = w.sum()

    def unpack(th):
        if kind == "ts": return np.eye(k) * th[0], np.zeros(k)
        if kind == "bias": return np.eye(k), th
        if kind == "tsbias": return np.eye(k) * th[0], th[1:]
        if kind == "vs": return np.diag(th[:k]), th[k:]
        if kind == "ms": return th[:k * k].reshape(k, k), th[k * k:]

    def f(th):
        W, b = unpack(th)
        z = L @ W + b
        z = z - z.max(1, keepdims=True)
        lse = np.log(np.exp(z).sum(1))
        nll = (w * (lse - (z * Y).sum(1))).sum() / sw
        dz = (softmax(z) - Y) * (w / sw)[:, None]
        gW, gb = L.T @ dz, dz.sum(0)
        if kind == "ts": g = np.array([np.trace(gW)])
        elif kind == "bias": g = gb
        elif kind == "tsbias": g = np.concatenate([[np.trace(gW)], gb])
        elif kind == "vs": g = np.concatenate([np.diag(gW), gb])
        else: g = np.concatenate([gW.ravel(), gb])
        if l2:  # matrix scaling pulled toward the temperature-free identity
            d = th.copy()
            if kind == "ms": d[:k * k] -= np.eye(k).ravel()
            nll += l2 * (d ** 2).sum(); g = g + 2 * l2 * d
        return nll, g

    th0 = {"ts": [1.0], "bias": np.zeros(k), "tsbias": np.r_[1.0, np.zeros(k)],
           "vs": np.r_[np.ones(k), np.zeros(k)], "ms": np.r_[np.eye(k).ravel(), np.zeros(k)]}[kind]
    r = minimize(f, np.asarray(th0, float), jac=True, method="L-BFGS-B")
    W, b = unpack(r.x)
    b = b - b.mean()
    return lambda q: softmax(logp(q) @ W + b), dict(W=W, b=b)


# ---- top-label maps: confidence -> calibrated confidence, label kept (argmax of the input) --
def top_map(g):
    def apply(q):
        c = q.max(1); c2 = np.clip(g(c), 1e-6, 1 - 1e-6)
        rest = q * ((1 - c2) / np.maximum(1 - c, 1e-12))[:, None]
        out = rest; out[np.arange(len(q)), q.argmax(1)] = c2
        return out  # NB other labels can exceed the top; scoring keeps the input's argmax
    return apply


def fit_isotonic(p, y, w):
    c, ok = p.max(1), (p.argmax(1) == y).astype(float)
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(c, ok, sample_weight=w)
    return top_map(iso.predict), dict(points=len(iso.X_thresholds_))


def fit_hist(p, y, w, bins=15):
    c, ok = p.max(1), (p.argmax(1) == y).astype(float)
    o = np.argsort(c); cw = np.cumsum(w[o]) / w.sum()
    edges = np.unique(c[o][np.searchsorted(cw, np.linspace(0, 1, bins + 1)[1:-1])])
    which = np.digitize(c, edges)
    acc = np.array([np.average(ok[which == b], weights=w[which == b]) if (which == b).any() else np.nan
                    for b in range(len(edges) + 1)])
    acc = np.where(np.isnan(acc), np.nanmean(acc), acc)
    return top_map(lambda x: acc[np.digitize(x, edges)]), dict(edges=edges, acc=acc)


def fit_logistic_top(p, y, w, beta):
    c, ok = np.clip(p.max(1), 1e-6, 1 - 1e-6), (p.argmax(1) == y).astype(float)
    feats = (lambda x: np.c_[np.log(x), -np.log(1 - x)]) if beta else (lambda x: (np.log(x) - np.log(1 - x))[:, None])
    X = feats(c); X = np.c_[X, np.ones(len(X))]

    def f(th):
        s = X @ th
        nll = (w * (np.logaddexp(0, s) - ok * s)).sum() / w.sum()
        g = X.T @ (w * (1 / (1 + np.exp(-s)) - ok)) / w.sum()
        return nll, g
    th = minimize(f, np.r_[np.ones(X.shape[1] - 1), 0.0], jac=True, method="L-BFGS-B").x
    return top_map(lambda x: 1 / (1 + np.exp(-(np.c_[feats(np.clip(x, 1e-6, 1 - 1e-6)), np.ones(len(x))] @ th)))), dict(theta=th)


def fit_method(name, parts):
    """A method fitted on `parts`: (calibrate function, params, fit-weights)."""
    base, _, bal = name.partition("/")
    balanced = bal == "bal"
    p, y, w = stack(parts, balanced)
    if base == "raw": return (lambda q: q), {}, w
    if base in ("ts", "bias", "tsbias", "vs", "ms"): f, prm = fit_affine(p, y, w, base)
    elif base == "ms-l2": f, prm = fit_affine(p, y, w, "ms", l2=1e-2)
    elif base == "iso": f, prm = fit_isotonic(p, y, w)
    elif base == "hist": f, prm = fit_hist(p, y, w)
    elif base == "platt": f, prm = fit_logistic_top(p, y, w, beta=False)
    elif base == "beta": f, prm = fit_logistic_top(p, y, w, beta=True)
    elif base == "ts+iso":  # temperature, then isotonic on the tempered top
        f1, _ = fit_affine(p, y, w, "ts"); f2, prm = fit_isotonic(f1(p), y, w)
        f = lambda q: f2(f1(q))
    return f, prm, w


def weighted_threshold(conf, correct, w, right=0.70, min_cov=0.50):
    """trainer.calibrate.choose_threshold with window weights (uniform weights: the same rule)."""
    o = np.argsort(-conf); c, k, ww = conf[o], correct[o], w[o]
    cw, ck = np.cumsum(ww), np.cumsum(ww * k)
    tot = ww.sum()
    # candidate thresholds ascending = prefixes of the descending order ending at a value change
    last = np.r_[c[1:] != c[:-1], True]
    cov, acc, t = cw[last] / tot, ck[last] / cw[last], c[last]
    for i in range(len(t) - 1, -1, -1):  # lowest threshold first
        if cov[i] < min_cov: break
        if acc[i] >= right: return float(t[i])
    return float(t[np.searchsorted(cov, min_cov)]) if (cov >= min_cov).any() else float(t[-1])


def score(f, thr, d, argmax_from_input=True):
    q = f(d["p"])
    # top-label maps keep the input's label; affine maps relabel by their own argmax (both: q's argmax
    # except for a top map whose calibrated top falls below a rest-scaled label)
    lab = d["p"].argmax(1) if argmax_from_input else q.argmax(1)
    conf = q[np.arange(len(q)), lab] if argmax_from_input else q.max(1)
    ok = lab == d["y"]
    cov, acc = coverage_and_accuracy(conf, ok, thr) if thr is not None else (np.nan, np.nan)
    return ece(conf, ok), cov, acc, conf, ok


TOPMAP = {"iso", "hist", "platt", "beta", "ts+iso"}


def run_method(name, train, test, threshold_rule="method"):
    f, prm, w = fit_method(name, train)
    top = name.split("/")[0] in TOPMAP
    p, y, _ = stack(train, False)
    q = f(p); lab = p.argmax(1) if top else q.argmax(1)
    conf_fit, ok_fit = q[np.arange(len(q)), lab], lab == y
    thr = weighted_threshold(conf_fit, ok_fit, w)
    return score(f, thr, test, top)[:3], prm, thr


METHODS = ["raw", "ts", "ts/bal", "bias", "bias/bal", "tsbias", "tsbias/bal", "vs", "vs/bal",
           "ms", "ms/bal", "ms-l2/bal", "platt", "platt/bal", "beta", "beta/bal", "hist", "hist/bal",
           "iso", "iso/bal", "ts+iso/bal"]
NESTED_POOL = [m for m in METHODS if m != "raw"]


def main():
    # 1. reproduce the repo's figure with its own functions
    rep = []
    for c in CORPORA:
        for s in SEEDS:
            d = DATA[c, s]
            others = [(DATA[o, s]["labels"], DATA[o, s]["probs"], DATA[o, s]["true"]) for o in CORPORA if o != c]
            entry = calibrate_pooled(others)
            m = readout_metrics(d["labels"], d["probs"], d["true"], sorted(set(d["true"])), "basic", entry["basic"])
            mine = run_method("ts", [DATA[o, s] for o in CORPORA if o != c], d)
            rep.append((c, s, m["ece_raw"], m["ece"], m["coverage"], m["shown_right"], entry["basic"]["temperature"], *mine[0], mine[2]))
    r = np.array([x[2:] for x in rep], float)
    print(f"[repo functions] basic/{ARGS.recipe}: ECE raw {r[:,0].mean():.3f} -> cross-corpus T {r[:,1].mean():.3f}; "
          f"coverage {100*r[:,2].mean():.1f}% shown-right {100*r[:,3].mean():.1f}%  (mean T {r[:,4].mean():.3f})")
    print(f"[this script 'ts'] ECE {r[:,5].mean():.3f} coverage {100*r[:,6].mean():.1f}% shown-right {100*r[:,7].mean():.1f}%  "
          f"max |dECE| vs repo {np.abs(r[:,5]-r[:,1]).max():.4f}")
    tv = r[[i for i, x in enumerate(rep) if x[0] == "turev-db"], 1].mean()
    print(f"  TurEV-DB (repo) {tv:.3f}\n")

    # 2. every method, plain held-out
    res = {}  # (method, c, s) -> (ece, cov, acc)
    for mname in METHODS:
        for c in CORPORA:
            for s in SEEDS:
                res[mname, c, s] = run_method(mname, [DATA[o, s] for o in CORPORA if o != c], DATA[c, s])[0]

    # 3. nested choice: LOCO inside the six
    choice = {}
    if not ARGS.no_nested:
        for c in CORPORA:
            for s in SEEDS:
                six = [o for o in CORPORA if o != c]
                inner = {m: np.mean([run_method(m, [DATA[o, s] for o in six if o != dd], DATA[dd, s])[0][0] for dd in six])
                         for m in NESTED_POOL}
                best = min(inner, key=inner.get)
                choice[c, s] = best
                res["NESTED", c, s] = res[best, c, s]

    rows = METHODS + (["NESTED"] if choice else [])
    short = {"ravdess": "ravd", "tess": "tess", "nemo": "nemo", "urdu": "urdu", "turev-db": "turev", "ased": "ased", "emovo": "emovo"}
    print(f"basic readout, {ARGS.recipe} heads; fitted on the other six corpora; mean over 7 corpora, ± sd over 3 seeds")
    print(f"{'method':12s} {'ECE':>13s} | " + " ".join(f"{short[c]:>6s}" for c in CORPORA) + " | cov%  right%  (turev cov/right) | dECE vs ts, paired: mean±sd seeds")
    TSS = np.array([[res["ts", c, s][0] for c in CORPORA] for s in SEEDS]).mean(1)
    for m in rows:
        E = np.array([[res[m, c, s][0] for c in CORPORA] for s in SEEDS])  # seeds x corpora
        cov = np.array([[res[m, c, s][1] for c in CORPORA] for s in SEEDS])
        acc = np.array([[res[m, c, s][2] for c in CORPORA] for s in SEEDS])
        per_seed = E.mean(1)
        ti = CORPORA.index("turev-db")
        print(f"{m:12s} {per_seed.mean():.3f}±{per_seed.std(ddof=1):.3f} | " + " ".join(f"{v:6.3f}" for v in E.mean(0))
              + f" | {100*np.nanmean(cov):4.1f}  {100*np.nanmean(acc):5.1f}  ({100*cov[:,ti].mean():.0f}/{100*np.nanmean(acc[:,ti]):.0f})"
              + f" | {(per_seed - TSS).mean():+.4f}±{(per_seed - TSS).std(ddof=1):.4f}")
    if choice:
        from collections import Counter
        print("\nnested choices (corpus: seed0 seed1 seed2):")
        for c in CORPORA:
            print(f"  {c:9s} " + " ".join(choice[c, s] for s in SEEDS))
        print("  counts:", dict(Counter(choice.values())))


def floor():
    print("per corpus (mean of seeds), TS fitted on the other six: accuracy, mean conf, ECE, |conf-acc|, acc of top-50% conf, by margin")
    rows = []
    for c in CORPORA:
        a = []
        for s in SEEDS:
            f, prm, w = fit_method("ts", [DATA[o, s] for o in CORPORA if o != c])
            d = DATA[c, s]; q = f(d["p"]); conf = q.max(1); ok = q.argmax(1) == d["y"]
            srt = np.sort(q, 1); margin = srt[:, -1] - srt[:, -2]
            top = conf >= np.quantile(conf, 0.5); topm = margin >= np.quantile(margin, 0.5)
            a.append([ok.mean(), conf.mean(), ece(conf, ok), abs(conf.mean() - ok.mean()), ok[top].mean(), ok[topm].mean(), 1 / prm["W"][0, 0]])
        a = np.mean(a, 0); rows.append(a)
        print(f"  {c:9s} acc {a[0]:.3f} conf {a[1]:.3f} ECE {a[2]:.3f} |gap| {a[3]:.3f}  top50%: by conf {a[4]:.3f} by margin {a[5]:.3f}  T {a[6]:.2f}")
    rows = np.array(rows)
    print(f"  mean      acc {rows[:,0].mean():.3f} conf {rows[:,1].mean():.3f} ECE {rows[:,2].mean():.3f} |gap| {rows[:,3].mean():.3f}  top50%: {rows[:,4].mean():.3f} / {rows[:,5].mean():.3f}")

    # oracle bounds: one map for all seven (in-sample, cheats) and each corpus its own map
    for name in ("ts", "iso"):
        for bal in ("", "/bal"):
            E = []
            for s in SEEDS:
                f, _, _ = fit_method(name + bal, [DATA[o, s] for o in CORPORA])
                E.append(np.mean([score(f, None, DATA[c, s], name == "iso")[0] for c in CORPORA]))
            print(f"oracle one {name+bal} map fitted on all 7 incl. the scored one: mean ECE {np.mean(E):.3f}")
    E = [np.mean([score(fit_method("ts", [DATA[c, s]])[0], None, DATA[c, s], False)[0] for c in CORPORA]) for s in SEEDS]
    print(f"oracle per-corpus temperature (fitted on the scored corpus itself): mean ECE {np.mean(E):.3f}")
    Ts = np.exp(np.linspace(np.log(0.8), np.log(3), 60)); per_seed = []
    for s in SEEDS:
        e = [np.mean([ece(*(lambda q, y: (q.max(1), q.argmax(1) == y))(softmax(logp(DATA[c, s]["p"]) / T), DATA[c, s]["y"])) for c in CORPORA]) for T in Ts]
        per_seed.append((Ts[int(np.argmin(e))], min(e)))
    print("best single T per seed for mean-over-corpora ECE (oracle):", ", ".join(f"T={t:.2f} ECE {e:.3f}" for t, e in per_seed),
          f"-> mean {np.mean([e for _, e in per_seed]):.3f}")
    print("\nthreshold trade-off, TS fitted on the other six, one fixed threshold on calibrated top prob (mean over corpora & seeds):")
    for t in (0.40, 0.45, 0.50, 0.55, 0.60, 0.65):
        cv, ac = [], []
        for c in CORPORA:
            for s in SEEDS:
                f, _, _ = fit_method("ts", [DATA[o, s] for o in CORPORA if o != c])
                _, cov, acc, _, _ = score(f, t, DATA[c, s], False); cv.append(cov); ac.append(acc)
        print(f"  t={t:.2f}: coverage {100*np.mean(cv):.1f}%  shown-right {100*np.nanmean(ac):.1f}%  (windows-weighted shown-right n/a)")
    print("oracle: each corpus shows its own top 50% by calibrated conf -> shown-right", f"{100*rows[:,4].mean():.1f}%")


if __name__ == "__main__":
    floor() if ARGS.floor else main()
