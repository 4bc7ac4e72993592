"""Reference check of datamill's churn model against scikit-learn.

`scorer train --export-split DIR` writes the feature vectors and labels of
the exact split it trained and tested on (DIR/train.csv, DIR/test.csv: the
preprocessed features, then the label). This script fits scikit-learn's
LogisticRegression on the same training rows, with the same objective
(L2 penalty on the weights only, C = 1 / l2), and prints its test ROC-AUC
next to the Go model's, read from the artefact.

    python3 -m venv .cache/sklearn
    .cache/sklearn/bin/pip install scikit-learn
    .cache/sklearn/bin/python bench/sklearn_reference.py DIR models/churn-<version>.json
"""

import csv
import json
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score


def load(path):
    with open(path) as f:
        rows = csv.reader(f)
        header = next(rows)
        data = np.array([[float(v) for v in row] for row in rows])
    return header[:-1], data[:, :-1], data[:, -1]


def main(split_dir, artefact):
    with open(artefact) as f:
        model = json.load(f)
    names, x_train, y_train = load(split_dir + "/train.csv")
    _, x_test, y_test = load(split_dir + "/test.csv")
    l2 = model["training"]["l2"]
    weight = "balanced" if model["training"]["class_weight"] == "balanced" else None
    start = time.time()
    ref = LogisticRegression(C=1.0 / l2, class_weight=weight, tol=1e-10, max_iter=10000)
    ref.fit(x_train, y_train)
    took = time.time() - start
    auc = roc_auc_score(y_test, ref.predict_proba(x_test)[:, 1])
    go_auc = model["test_metrics"]["roc_auc"]
    gap = np.max(np.abs(ref.coef_[0] - np.array(model["weights"])))
    print("rows: %d train, %d test, %d features" % (len(y_train), len(y_test), len(names)))
    print("test ROC-AUC  datamill (Go) %.5f   scikit-learn %.5f   difference %+.5f" % (go_auc, auc, go_auc - auc))
    print("largest coefficient difference %.2e; scikit-learn fit in %.1f s" % (gap, took))
    if abs(go_auc - auc) > 0.005:
        sys.exit("the ROC-AUCs differ by more than 0.005")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
