"""Reference check of a datamill model against scikit-learn.

`scorer train --export-split DIR` writes the rows of the exact split it
trained and tested on (DIR/train.csv, DIR/test.csv: the label and feature
columns the dataset declares, as text) and its own feature vectors
(DIR/train_features.csv, DIR/test_features.csv). This script reads the
dataset's declaration (the model section of its dataset.yaml), computes the
declared features from the rows itself, with the rules the scorer documents
(numeric: log1p, days since the data's reference date -- the newest
training date of any days_since column --, median fill, missing indicator,
standardisation; categorical: the most frequent values, at most top of them,
each with at least min_share of the training rows, then other and missing; boolean: true, false,
missing; tokens: lower-cased runs of letters and digits, FNV-1a 32 hashed
into buckets; of a list column -- an array of strings in the clean.avsc
beside the declaration, exported as PostgreSQL writes a text[], {DE,EU} --
the tokens of its items), compares them with the scorer's, fits scikit-learn's
LogisticRegression (same objective: L2 penalty on the weights only,
C = 1 / l2) or Ridge (alpha = l2) on the training rows, and prints its test
ROC-AUC (or RMSE, MAE and R²) next to the Go model's, read from the
artefact. It fails when a test feature value differs from datamill's by
more than 1e-9, or the ROC-AUCs by more than 0.005 (the RMSEs by more than
0.5 %, the MAEs by more than 5 %).

    python3 -m venv .cache/sklearn
    .cache/sklearn/bin/pip install scikit-learn pyyaml
    .cache/sklearn/bin/python bench/sklearn_reference.py \\
        schemas/avro/users/dataset.yaml DIR models/churn-<version>.json
"""

import csv
import datetime as dt
import json
import math
import os
import re
import sys
import time

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score, roc_auc_score

WORD = re.compile(r"[^\W_]+")


def list_columns(decl_path):
    """The clean schema's arrays of strings, read from the clean.avsc
    beside the declaration (none when there is no such file)."""
    try:
        with open(os.path.join(os.path.dirname(decl_path), "clean.avsc")) as f:
            fields = json.load(f)["fields"]
    except FileNotFoundError:
        return set()

    def non_null(t):
        if isinstance(t, list):
            t = [u for u in t if u != "null"]
            return t[0] if len(t) == 1 else None
        return t

    out = set()
    for fld in fields:
        t = non_null(fld["type"])
        if isinstance(t, dict) and t.get("type") == "array" and non_null(t["items"]) == "string":
            out.add(fld["name"])
    return out


def text_array(s):
    """The items of a one-dimensional PostgreSQL text[] in its text form,
    its NULL items left out; None for an empty cell (missing)."""
    if s == "":
        return None
    s = s.strip()
    if len(s) < 2 or s[0] != "{" or s[-1] != "}":
        raise ValueError("a list is written {item,item}: %r" % s)
    body, items, i = s[1:-1], [], 0
    if body.strip() == "":
        return items
    while True:
        while i < len(body) and body[i].isspace():
            i += 1
        item, quoted = [], i < len(body) and body[i] == '"'
        if quoted:
            i += 1
            while body[i] != '"':
                if body[i] == "\\":
                    i += 1
                item.append(body[i])
                i += 1
            i += 1
            while i < len(body) and body[i].isspace():
                i += 1
        else:
            while i < len(body) and body[i] != ",":
                if body[i] == "\\":
                    i += 1
                item.append(body[i])
                i += 1
        text = "".join(item)
        if not quoted:
            text = text.rstrip()
        if quoted or text.upper() != "NULL":
            items.append(text)
        if i >= len(body):
            return items
        i += 1


def declaration(path):
    with open(path) as f:
        model = yaml.safe_load(f)["model"]
    lists = list_columns(path)
    for feat in model["features"]:
        feat["name"] = feat.get("name") or feat["column"]
        feat["top"] = feat.get("top") or 0
        feat["min_share"] = feat.get("min_share") or 0.005
        feat["buckets"] = feat.get("buckets") or 256
        feat["list"] = feat["column"] in lists
    model["label"]["positive"] = [str(v).lower() if isinstance(v, bool) else str(v) for v in model["label"].get("positive") or []]
    return model


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def number(s):
    if s is None or s == "":
        return None
    try:
        return float(s.strip())
    except ValueError:
        return None


def date(s):
    if s is None or s == "":
        return None
    if len(s) == 10:
        return dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def boolean(s):
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def fnv1a32(token):
    h = 0x811C9DC5
    for b in token.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


class Features:
    """The declared features, fitted on the training rows."""

    def __init__(self, decl, train):
        self.features = decl["features"]
        self.fitted = {}
        dates = [d for f in self.features if f.get("transform") == "days_since" for d in (date(r[f["column"]]) for r in train) if d is not None]
        as_of = max(dates) if dates else dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        for f in self.features:
            f["as_of"] = as_of
            if f["kind"] == "numeric":
                seen = sorted(v for v in (self.raw(f, r) for r in train) if v is not None)
                median = seen[len(seen) // 2] if seen else 0.0
                imputed = np.array([median if v is None else v for v in (self.raw(f, r) for r in train)])
                mean = imputed.sum() / len(imputed)
                var = (imputed * imputed).sum() / len(imputed) - mean * mean
                self.fitted[f["name"]] = (median, mean, math.sqrt(var) if var > 1e-12 else 1.0)
            elif f["kind"] == "categorical":
                counts = {}
                for r in train:
                    v = r[f["column"]]
                    if v != "":
                        counts[v] = counts.get(v, 0) + 1
                keep = [c for c, n in counts.items() if n >= f["min_share"] * len(train) and c not in ("other", "missing")]
                keep.sort(key=lambda c: (-counts[c], c))
                if f["top"] > 0:
                    keep = keep[: f["top"]]
                self.fitted[f["name"]] = keep + ["other", "missing"]
            elif f["kind"] == "boolean":
                self.fitted[f["name"]] = ["true", "false", "missing"]

    @staticmethod
    def raw(f, r):
        s = r[f["column"]]
        t = f.get("transform")
        if t == "days_since":
            d = date(s)
            return None if d is None else (f["as_of"] - d).total_seconds() / 86400
        v = number(s)
        if t == "log1p":
            return None if v is None or v < 0 else math.log1p(v)
        return v

    def names(self):
        numeric = [f["name"] for f in self.features if f["kind"] == "numeric"]
        out = numeric + [n + "_missing" for n in numeric]
        for f in self.features:
            if f["kind"] in ("categorical", "boolean"):
                out += [f["name"] + "=" + c for c in self.fitted[f["name"]]]
            elif f["kind"] == "tokens":
                out += ["%s#%d" % (f["name"], b) for b in range(f["buckets"])]
        return out

    def vector(self, r):
        values, missing, rest = [], [], []
        for f in self.features:
            if f["kind"] == "numeric":
                median, mean, std = self.fitted[f["name"]]
                v = self.raw(f, r)
                values.append(((median if v is None else v) - mean) / std)
                missing.append(1.0 if v is None else 0.0)
        for f in self.features:
            s = r[f["column"]]
            if f["kind"] in ("categorical", "boolean"):
                cats = self.fitted[f["name"]]
                if f["kind"] == "boolean":
                    b = boolean(s)
                    hot = "missing" if b is None else str(b).lower()
                else:
                    hot = "missing" if s == "" else (s if s in cats[:-2] else "other")
                rest += [1.0 if c == hot else 0.0 for c in cats]
            elif f["kind"] == "tokens":
                buckets = [0.0] * f["buckets"]
                if f["list"]:
                    s = " ".join(text_array(s) or [])
                for tok in WORD.findall(s.lower()):
                    buckets[fnv1a32(tok) % f["buckets"]] = 1.0
                rest += buckets
        return values + missing + rest

    def matrix(self, rs):
        return np.array([self.vector(r) for r in rs])


def labels(decl, rs):
    col = decl["label"]["column"]
    if decl["kind"] == "ridge":
        return np.array([float(r[col]) for r in rs])
    return np.array([1.0 if r[col] in decl["label"]["positive"] else 0.0 for r in rs])


def go_features(path):
    with open(path) as f:
        data = list(csv.reader(f))
    return data[0][:-1], np.array([[float(v) for v in row[:-1]] for row in data[1:]])


def main(decl_path, split_dir, artefact):
    decl = declaration(decl_path)
    with open(artefact) as f:
        model = json.load(f)
    train, test = rows(split_dir + "/train.csv"), rows(split_dir + "/test.csv")
    feats = Features(decl, train)
    x_train, x_test = feats.matrix(train), feats.matrix(test)
    y_train, y_test = labels(decl, train), labels(decl, test)

    go_names, go_test = go_features(split_dir + "/test_features.csv")
    if go_names != feats.names():
        sys.exit("features differ:\n  datamill     %s\n  this script  %s" % (go_names, feats.names()))
    gap = np.max(np.abs(go_test - x_test)) if x_test.size else 0.0
    print("features: %d, the same as datamill's; largest difference of a test value %.2e" % (len(go_names), gap))
    if gap > 1e-9:
        sys.exit("the features this script computes differ from datamill's by %.2e" % gap)

    l2 = model["training"]["l2"]
    start = time.time()
    if decl["kind"] == "ridge":
        ref = Ridge(alpha=l2).fit(x_train, y_train)
        coef = ref.coef_
        predicted = ref.predict(x_test)
        rmse = math.sqrt(mean_squared_error(y_test, predicted))
        mae = mean_absolute_error(y_test, predicted)
        go_rmse, go_mae = model["test_metrics"]["rmse"], model["test_metrics"].get("mae", 0.0)
        print("rows: %d train, %d test" % (len(y_train), len(y_test)))
        print("test RMSE  datamill (Go) %.5f   scikit-learn %.5f" % (go_rmse, rmse))
        print("test MAE   datamill (Go) %.5f   scikit-learn %.5f   ratio %.5f" % (go_mae, mae, go_mae / max(mae, 1e-12)))
        print("test R²    datamill (Go) %.5f   scikit-learn %.5f" % (model["test_metrics"].get("r2", 0.0), r2_score(y_test, predicted)))
        failed = abs(go_rmse - rmse) > 0.005 * max(rmse, 1e-12) or abs(go_mae - mae) > 0.05 * max(mae, 1e-12)
    else:
        weight = "balanced" if model["training"]["class_weight"] == "balanced" else None
        ref = LogisticRegression(C=1.0 / l2, class_weight=weight, tol=1e-10, max_iter=10000).fit(x_train, y_train)
        coef = ref.coef_[0]
        auc = roc_auc_score(y_test, ref.predict_proba(x_test)[:, 1])
        go_auc = model["test_metrics"]["roc_auc"]
        print("rows: %d train, %d test" % (len(y_train), len(y_test)))
        print("test ROC-AUC  datamill (Go) %.5f   scikit-learn %.5f   difference %+.5f" % (go_auc, auc, go_auc - auc))
        failed = abs(go_auc - auc) > 0.005
    took = time.time() - start
    gap = np.max(np.abs(coef - np.array(model["weights"])))
    print("largest coefficient difference %.2e; scikit-learn fit in %.1f s" % (gap, took))
    if failed:
        sys.exit("datamill and scikit-learn differ by more than the tolerance")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
